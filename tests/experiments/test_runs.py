"""Runs and the catalog under a running experiment: the arm's defaults fill what the user leaves
out, the user's own values always win, and the run records its experiment, arm and outcome."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from experiments.models import Experiment
from experiments.services import experiment_start
from tests.conftest import make_user, opt_in, run_body
from tests.experiments.conftest import (
    CATALOG_URL,
    URL,
    arm_named,
    make_experiment,
    user_in_arm,
)
from training.models import TrainingRun

Client = Callable[[User | None], APIClient]
FLUX = {"baseModel": "flux_dev", "engine": "ai-toolkit"}


def create(client: APIClient, **params: Any) -> TrainingRun:
    response = client.post(URL, run_body(**FLUX, params=params), format="json")
    assert response.status_code == 201, response.json()
    return TrainingRun.objects.get(pk=response.json()["id"])


def catalog_defaults(client: APIClient, base_key: str = "flux_dev") -> dict[str, Any]:
    data = client.get(CATALOG_URL).json()
    model = next(m for m in data["baseModels"] if m["key"] == base_key)
    engine = next(e for e in model["engines"] if e["key"] == "ai-toolkit")
    return {row["name"]: row["default"] for row in engine["params"]}


pytestmark = pytest.mark.django_db


def test_the_arms_defaults_fill_what_the_user_omits(
    flux_experiment: Experiment, in_arm: Callable[..., User], client_for: Client
) -> None:
    user = in_arm(flux_experiment, "longer")
    run = create(client_for(user))
    assert (run.params["epochs"], run.params["lr"]) == (8, 0.0002)
    assert run.params["networkDim"] == 16  # not tested: the catalog's
    assert run.experiment == flux_experiment
    assert run.experiment_arm == arm_named(flux_experiment, "longer")
    assert run.experiment_outcome == "assigned"


def test_the_users_value_beats_the_arms_default(
    flux_experiment: Experiment, in_arm: Callable[..., User], client_for: Client
) -> None:
    user = in_arm(flux_experiment, "longer")
    run = create(client_for(user), epochs=12)
    assert (run.params["epochs"], run.params["lr"]) == (12, 0.0002)
    assert run.experiment_arm == arm_named(flux_experiment, "longer")
    assert run.experiment_outcome == "assigned"  # lr still came from the arm


def test_setting_every_tested_parameter_takes_the_run_out_of_the_arm(
    flux_experiment: Experiment, in_arm: Callable[..., User], client_for: Client
) -> None:
    user = in_arm(flux_experiment, "longer")
    run = create(client_for(user), epochs=12, lr=0.0003)
    assert (run.params["epochs"], run.params["lr"]) == (12, 0.0003)
    assert run.experiment == flux_experiment
    assert run.experiment_arm is None
    assert run.experiment_outcome == "overrode_all"


def test_the_control_keeps_the_catalog_defaults(
    flux_experiment: Experiment, in_arm: Callable[..., User], client_for: Client
) -> None:
    user = in_arm(flux_experiment, "control")
    run = create(client_for(user))
    assert (run.params["epochs"], run.params["lr"]) == (5, 0.0001)
    assert run.experiment_arm == arm_named(flux_experiment, "control")
    assert run.experiment_outcome == "assigned"


def test_other_ecosystems_and_engines_are_untouched(
    flux_experiment: Experiment, in_arm: Callable[..., User], client_for: Client
) -> None:
    client = client_for(in_arm(flux_experiment, "longer"))
    sdxl = client.post(URL, run_body(baseModel="sdxl", engine="ai-toolkit"), format="json")
    kohya = client.post(URL, run_body(baseModel="flux_dev", engine="kohya"), format="json")
    for response in (sdxl, kohya):
        assert response.status_code == 201, response.json()
        run = TrainingRun.objects.get(pk=response.json()["id"])
        assert (run.experiment, run.experiment_arm, run.experiment_outcome) == (None, None, "")
    assert sdxl.json()["params"]["epochs"] == 5


def test_the_catalog_shows_each_user_their_arms_defaults(
    flux_experiment: Experiment, in_arm: Callable[..., User], client_for: Client
) -> None:
    treated = catalog_defaults(client_for(in_arm(flux_experiment, "longer")))
    control = catalog_defaults(client_for(in_arm(flux_experiment, "control")))
    assert (treated["epochs"], treated["lr"], treated["networkDim"]) == (8, 0.0002, 16)
    assert (control["epochs"], control["lr"]) == (5, 0.0001)
    # the ranges stay the catalog's
    rows = client_for(in_arm(flux_experiment, "longer", prefix="v")).get(CATALOG_URL).json()
    flux = next(m for m in rows["baseModels"] if m["key"] == "flux_dev")
    epochs = next(
        r for e in flux["engines"] if e["key"] == "ai-toolkit" for r in e["params"]
        if r["name"] == "epochs"
    )  # fmt: skip
    assert (epochs["min"], epochs["max"]) == (5, 20)


def test_a_scoped_experiment_leaves_the_ecosystems_other_base_models_alone(
    mod: User, client_for: Client
) -> None:
    experiment = make_experiment(
        ecosystem="sd3",
        base_model="sd3_large",
        arms=[("control", 1, {}), ("dim", 1, {"networkDim": 24})],
        start=True,
    )
    client = client_for(user_in_arm(experiment, "dim", "mod"))
    assert catalog_defaults(client, "sd3_large")["networkDim"] == 24
    assert catalog_defaults(client, "sd3_medium")["networkDim"] == 16


def test_an_experiment_costs_no_extra_query_once_the_cache_is_warm(
    mod: User, client_for: Client
) -> None:
    def count(client: APIClient) -> int:
        create(client)  # warms the flag cache and the defaults snapshot
        with CaptureQueriesContext(connection) as ctx:
            create(client)
        return len(ctx.captured_queries)

    without = count(client_for(opt_in(make_user("plain-mod", "mod"))))
    experiment = make_experiment(arms=[("control", 1, {}), ("longer", 1, {"epochs": 8})])
    experiment_start(actor=mod, experiment=experiment)
    user = user_in_arm(experiment, "longer", "mod")
    with_experiment = count(client_for(user))
    assert TrainingRun.objects.filter(experiment_arm__name="longer").count() == 2
    assert with_experiment <= without


def test_a_run_from_the_page_left_at_the_arms_defaults_stays_in_the_arm(
    flux_experiment: Experiment, in_arm: Callable[..., User]
) -> None:
    from django.test import Client as PageClient

    from tests.training.web.helpers import form_data

    user = in_arm(flux_experiment, "longer")
    page = PageClient()
    page.force_login(user)
    shown = page.get("/train/new?baseModel=flux_dev").content.decode()
    data_json = re.search(
        r'<script id="page-data" type="application/json">(.*?)</script>', shown, re.S
    )
    assert data_json
    flux = next(
        m for m in json.loads(data_json.group(1))["catalog"]["baseModels"] if m["key"] == "flux_dev"
    )
    rows = next(e for e in flux["engines"] if e["key"] == "ai-toolkit")["params"]
    shown_defaults = {row["name"]: row["default"] for row in rows}
    assert (shown_defaults["maxTrainEpochs"], shown_defaults["unetLR"]) == (8, 0.0002)
    # The browser posts every row as shown: the arm's values and the catalog's for the rest.
    data = form_data(
        baseModel="flux_dev",
        engine="ai-toolkit",
        **{"params.maxTrainEpochs": "8", "params.unetLR": "0.0002", "params.networkDim": "16"},
    )
    assert page.post("/train/new", data).status_code == 302
    run = TrainingRun.objects.get()
    assert (run.params["epochs"], run.params["lr"]) == (8, 0.0002)
    assert run.experiment_arm == arm_named(flux_experiment, "longer")
    assert run.experiment_outcome == "assigned"
