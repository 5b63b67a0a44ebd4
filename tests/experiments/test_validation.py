"""Arm and override values stay inside the catalog's ranges and locks (model and admin), and at
most one experiment runs per ecosystem (service, database, model, admin)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from experiments import services
from experiments.models import Arm, DefaultsOverride, Experiment, ExperimentStatus
from tests.conftest import make_user
from tests.experiments.conftest import make_experiment

pytestmark = pytest.mark.django_db
WebClient = Callable[[User | None], Client]


def arm_errors(experiment: Experiment, overrides: dict[str, Any]) -> list[str]:
    arm = Arm(experiment=experiment, name="test", weight=1, overrides=overrides)
    with pytest.raises(ValidationError) as exc:
        arm.full_clean()
    return exc.value.message_dict["overrides"]


@pytest.fixture
def draft() -> Experiment:
    return make_experiment(arms=[("control", 1, {})])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 30}, "epochs must be between 5 and 20 for AI Toolkit ecosystem flux1; got 30."),
        ({"networkDim": 4}, "networkDim must be between 8 and 32 for AI Toolkit ecosystem flux1"),
        ({"epochs": 7.5}, "epochs must be a whole number."),
        ({"optimizerType": "sgd"}, "optimizerType must be one of adam, adamw"),
        ({"resolution": 512}, "resolution is fixed at 1024 for AI Toolkit ecosystem flux1"),
        ({"textEncoderLr": 0.0001}, "textEncoderLr is fixed at None"),
        ({"unetLR": 0.0002}, "unetLR is not an AI Toolkit parameter with a default"),
        ({"ecosystem": "flux1"}, "ecosystem is not an AI Toolkit parameter with a default"),
        ({"lr": 0.5}, "lr must be below 0.1 unless the optimizer is Prodigy"),
    ],
)
def test_arm_values_outside_the_catalog_are_refused_naming_the_parameter(
    draft: Experiment, overrides: dict[str, Any], message: str
) -> None:
    errors = arm_errors(draft, overrides)
    assert any(e.startswith(message) for e in errors), errors


def test_a_scoped_experiment_names_its_base_model(mod: User) -> None:
    experiment = make_experiment(ecosystem="sd3", base_model="sd3_large", arms=[("control", 1, {})])
    assert arm_errors(experiment, {"epochs": 2}) == [
        "epochs must be between 5 and 20 for SD 3.5 Large with AI Toolkit; got 2."
    ]


def test_valid_arm_values_pass_and_the_control_must_be_empty(draft: Experiment) -> None:
    Arm(experiment=draft, name="ok", overrides={"epochs": 20, "lr": 0.0002}).full_clean()
    control = Arm(experiment=draft, name="c2", is_control=True, overrides={"epochs": 6})
    with pytest.raises(ValidationError) as exc:
        control.full_clean()
    assert "overrides" in exc.value.message_dict
    with pytest.raises(ValidationError):
        Arm(experiment=draft, name="empty", overrides={}).full_clean()


def test_a_base_model_of_another_ecosystem_is_refused() -> None:
    experiment = Experiment(name="x", ecosystem="flux1", base_model="sdxl")
    experiment.starts_at = experiment.ends_at = None  # type: ignore[assignment]
    with pytest.raises(ValidationError) as exc:
        experiment.clean()
    assert exc.value.message_dict["base_model"] == [
        "SDXL 1.0 (standard) trains under ecosystem sdxl, not flux1."
    ]


def test_defaults_override_values_are_validated_on_save() -> None:
    override = DefaultsOverride(ecosystem="wan", values={"noiseOffset": 0.2, "epochs": 11})
    with pytest.raises(ValidationError) as exc:
        override.full_clean()
    assert exc.value.message_dict["values"] == [
        "noiseOffset is fixed at 0 for AI Toolkit ecosystem wan; its default cannot change.",
        "epochs must be between 2 and 10 for AI Toolkit ecosystem wan; got 11.",
    ]


def _admin_add_data(overrides: str) -> dict[str, str]:
    return {
        "name": "Flux longer",
        "hypothesis": "",
        "ecosystem": "flux1",
        "base_model": "",
        "starts_at_0": "2030-01-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "2030-02-01",
        "ends_at_1": "00:00:00",
        "arms-TOTAL_FORMS": "2",
        "arms-INITIAL_FORMS": "0",
        "arms-MIN_NUM_FORMS": "0",
        "arms-MAX_NUM_FORMS": "1000",
        "arms-0-name": "control",
        "arms-0-is_control": "on",
        "arms-0-weight": "1",
        "arms-0-overrides": "{}",
        "arms-1-name": "longer",
        "arms-1-weight": "1",
        "arms-1-overrides": overrides,
    }


def test_the_admin_form_shows_the_error_at_the_arms_field(
    moderator: User, web_client: WebClient
) -> None:
    client = web_client(moderator)
    response = client.post(
        reverse("admin:experiments_experiment_add"), _admin_add_data('{"epochs": 30}')
    )
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[1].errors["overrides"] == [
        "epochs must be between 5 and 20 for AI Toolkit ecosystem flux1; got 30."
    ]
    assert "epochs must be between 5 and 20" in response.content.decode()
    assert not Experiment.objects.exists()


def test_the_admin_needs_one_control_arm(moderator: User, web_client: WebClient) -> None:
    data = _admin_add_data('{"epochs": 8}')
    del data["arms-0-is_control"]
    data["arms-0-overrides"] = '{"epochs": 9}'
    response = web_client(moderator).post(reverse("admin:experiments_experiment_add"), data)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == [
        "Give the experiment exactly one control arm (no overrides)."
    ]


def test_a_moderator_creates_an_experiment_in_admin(moderator: User, web_client: WebClient) -> None:
    response = web_client(moderator).post(
        reverse("admin:experiments_experiment_add"), _admin_add_data('{"epochs": 8}')
    )
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert (experiment.status, experiment.created_by) == (ExperimentStatus.DRAFT, moderator)
    assert [(a.name, a.is_control, a.overrides) for a in experiment.arms.all()] == [
        ("control", True, {}),
        ("longer", False, {"epochs": 8}),
    ]


def test_staff_who_are_not_moderators_get_no_experiment_admin(web_client: WebClient) -> None:
    staff = make_user("stan", is_staff=True)
    response = web_client(staff).get(reverse("admin:experiments_experiment_changelist"))
    assert response.status_code == 403


# --- one running experiment per ecosystem -------------------------------------------------------


def _two_on_flux() -> tuple[Experiment, Experiment]:
    arms = [("control", 1, {}), ("longer", 1, {"epochs": 8})]
    return make_experiment(arms=arms, name="first"), make_experiment(arms=arms, name="second")


def test_the_service_refuses_a_second_running_experiment() -> None:
    first, second = _two_on_flux()
    services.experiment_start(actor=None, experiment=first)
    with pytest.raises(services.ExperimentError, match="already running on ecosystem flux1"):
        services.experiment_start(actor=None, experiment=second)
    second.refresh_from_db()
    assert second.status == ExperimentStatus.DRAFT
    # another ecosystem is fine
    sdxl = make_experiment(ecosystem="sdxl", arms=[("c", 1, {}), ("d", 1, {"networkDim": 48})])
    assert services.experiment_start(actor=None, experiment=sdxl).status == "running"


def test_the_database_refuses_a_second_running_experiment() -> None:
    first, second = _two_on_flux()
    services.experiment_start(actor=None, experiment=first)
    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.filter(pk=second.pk).update(status=ExperimentStatus.RUNNING)


def test_model_validation_refuses_a_second_running_experiment() -> None:
    first, second = _two_on_flux()
    services.experiment_start(actor=None, experiment=first)
    second.status = ExperimentStatus.RUNNING
    with pytest.raises(ValidationError) as exc:
        second.full_clean()
    assert "Another experiment is already running on this ecosystem; end it first." in str(
        exc.value
    )


def test_the_admin_start_action_says_why_it_refused(moderator: User, web_client: WebClient) -> None:
    first, second = _two_on_flux()
    client = web_client(moderator)
    url = reverse("admin:experiments_experiment_changelist")

    def act(action: str, experiment: Experiment) -> list[str]:
        data = {"action": action, "_selected_action": [experiment.pk]}
        response = client.post(url, data, follow=True)
        return [str(m) for m in response.context["messages"]]

    assert act("start", first) == ["Started first."]
    assert act("start", second) == [
        "Another experiment is already running on ecosystem flux1; end it before starting this "
        "one (one experiment per ecosystem, so users get one set of defaults)."
    ]
    assert act("end", first) == ["Ended first."]
    first.refresh_from_db()
    assert (first.status, first.ended_by) == (ExperimentStatus.ENDED, moderator)


def test_an_experiment_with_bad_arms_does_not_start() -> None:
    experiment = make_experiment(arms=[("control", 1, {})])
    Arm.objects.create(experiment=experiment, name="hot", overrides={"epochs": 99}, position=1)
    with pytest.raises(services.ExperimentError) as exc:
        services.experiment_start(actor=None, experiment=experiment)
    assert "Arm hot: epochs must be between 5 and 20" in str(exc.value)


def test_arms_are_read_only_once_running(moderator: User, web_client: WebClient) -> None:
    experiment = make_experiment(arms=[("control", 1, {}), ("longer", 1, {"epochs": 8})])
    services.experiment_start(actor=moderator, experiment=experiment)
    page = web_client(moderator).get(
        reverse("admin:experiments_experiment_change", args=[experiment.pk])
    )
    formset = page.context["inline_admin_formsets"][0]
    assert not formset.has_change_permission and not formset.has_add_permission


def test_a_running_experiments_end_can_still_move(moderator: User, web_client: WebClient) -> None:
    experiment = make_experiment(arms=[("control", 1, {}), ("longer", 1, {"epochs": 8})])
    services.experiment_start(actor=moderator, experiment=experiment)
    response = web_client(moderator).post(
        reverse("admin:experiments_experiment_change", args=[experiment.pk]),
        {
            "name": "renamed",
            "hypothesis": "",
            "starts_at_0": "2020-01-01",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2040-01-01",
            "ends_at_1": "00:00:00",
            "arms-TOTAL_FORMS": "2",
            "arms-INITIAL_FORMS": "2",
            "arms-MIN_NUM_FORMS": "0",
            "arms-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, [
        (f.formset.errors, f.formset.non_form_errors())
        for f in response.context["inline_admin_formsets"]
    ]
    experiment.refresh_from_db()
    assert (experiment.name, experiment.ends_at.year, experiment.status) == (
        "renamed",
        2040,
        "running",
    )
    assert experiment.arms.count() == 2
