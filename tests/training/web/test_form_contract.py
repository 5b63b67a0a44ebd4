"""The new-run form shows what the active contract takes, from the catalog (#17): Steps and
Checkpoints under beta86, Epochs under beta12, and submits them as the API's fields."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from tests.flags.helpers import at_stage, opt_in
from tests.training.web.helpers import form_data
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
Browser = Callable[[User], Client]


@pytest.fixture
def ai_gold(gold_member: User) -> User:
    at_stage("paid")
    opt_in(gold_member)
    return gold_member


def ai_toolkit_rows(page: str, base: str) -> dict[str, dict[str, Any]]:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', page, re.S)
    assert match
    data = json.loads(match.group(1))
    model = next(m for m in data["catalog"]["baseModels"] if m["key"] == base)
    engine = next(e for e in model["engines"] if e["key"] == "ai-toolkit")
    return {row["name"]: row for row in engine["params"]}


@pytest.mark.parametrize("contract", ["beta12", "beta86"])
def test_the_form_offers_the_length_fields_of_the_active_contract(
    ai_gold: User, browser_for: Browser, contract: str
) -> None:
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        page = browser_for(ai_gold).get("/train/new?baseModel=flux_dev").content.decode()
    rows = ai_toolkit_rows(page, "flux_dev")
    if contract == "beta86":
        assert (rows["steps"]["label"], rows["steps"]["default"]) == ("Steps", 2000)
        assert (rows["maxTrainEpochs"]["label"], rows["maxTrainEpochs"]["max"]) == (
            "Checkpoints",
            20,
        )
        assert "automagic" in rows["optimizerType"]["options"] and "resolution" not in rows
    else:
        assert "steps" not in rows and rows["maxTrainEpochs"]["label"] == "Epochs"
        assert "adam" in rows["optimizerType"]["options"] and "resolution" in rows


def test_steps_and_checkpoints_typed_on_the_form_reach_the_run_under_beta86(
    ai_gold: User, browser_for: Browser
) -> None:
    data = form_data(
        baseModel="flux_dev",
        engine="ai-toolkit",
        **{"params.steps": "3000", "params.maxTrainEpochs": "12"},
    )
    with override_settings(ORCHESTRATOR_CONTRACT="beta86"):
        response = browser_for(ai_gold).post("/train/new", data)
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert (run.params["steps"], run.params["epochs"]) == (3000, 12)
