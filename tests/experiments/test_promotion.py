"""Promoting a winning arm makes its values the defaults (audited); rolling back restores the
previous defaults (audited); new runs and the catalog follow both."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from experiments import services
from experiments.models import DefaultsChange, DefaultsOverride, Experiment, ExperimentStatus
from tests.conftest import make_user, opt_in
from tests.experiments.conftest import LONGER, arm_named, make_experiment
from tests.experiments.test_runs import catalog_defaults, create

pytestmark = pytest.mark.django_db
WebClient = Callable[[User | None], Client]
ApiClient = Callable[[User | None], APIClient]
CATALOG_FLUX = {"epochs": 5, "lr": 0.0001, "networkDim": 16}


def _newcomer(name: str) -> User:
    return opt_in(make_user(name, "mod"))


def _flux(run_params: dict[str, object]) -> dict[str, object]:
    return {k: run_params[k] for k in CATALOG_FLUX}


def test_promote_then_roll_back(
    flux_experiment: Experiment, moderator: User, client_for: ApiClient
) -> None:
    longer = arm_named(flux_experiment, "longer")
    override = services.experiment_promote(
        actor=moderator, experiment=flux_experiment, arm=longer, reason="90 % against 62 %"
    )
    flux_experiment.refresh_from_db()
    assert (flux_experiment.status, flux_experiment.promoted_arm) == ("ended", longer)
    assert flux_experiment.ended_by == moderator
    assert (override.active, override.values, override.replaced) == (True, LONGER, None)
    assert (override.source_experiment, override.source_arm) == (flux_experiment, longer)

    change = DefaultsChange.objects.get(action="promote")
    assert (change.actor, change.actor_name, change.ecosystem, change.base_model) == (
        moderator,
        "mona",
        "flux1",
        "",
    )
    assert change.changed == {"epochs": (5, 8), "lr": (0.0001, 0.0002)}
    assert (change.experiment, change.arm, change.reason) == (
        flux_experiment,
        longer,
        "90 % against 62 %",
    )

    # Everyone now gets the promoted values, whatever arm they had; explicit values still win.
    client = client_for(_newcomer("nina"))
    assert _flux(create(client).params) == {"epochs": 8, "lr": 0.0002, "networkDim": 16}
    assert create(client, epochs=6).params["epochs"] == 6
    assert catalog_defaults(client)["epochs"] == 8
    assert create(client).experiment is None  # the experiment has ended

    restored = services.defaults_override_rollback(
        actor=moderator, override=override, reason="quality complaints"
    )
    assert restored is None
    override.refresh_from_db()
    assert not override.active
    rollback = DefaultsChange.objects.get(action="rollback")
    assert rollback.changed == {"epochs": (8, 5), "lr": (0.0002, 0.0001)}
    assert (rollback.override, rollback.experiment, rollback.reason) == (
        override,
        flux_experiment,
        "quality complaints",
    )
    assert _flux(create(client).params) == CATALOG_FLUX
    assert catalog_defaults(client)["epochs"] == 5


def test_a_rollback_re_activates_the_override_it_replaced(moderator: User) -> None:
    manual = services.defaults_override_create(
        actor=moderator, ecosystem="flux1", base_model="", values={"networkDim": 24}
    )
    experiment = make_experiment(arms=[("control", 1, {}), ("longer", 1, LONGER)], start=True)
    promoted = services.experiment_promote(
        actor=moderator, experiment=experiment, arm=arm_named(experiment, "longer")
    )
    # the promoted override keeps what it did not test
    assert promoted.values == {"networkDim": 24, **LONGER}
    assert promoted.replaced == manual
    manual.refresh_from_db()
    assert not manual.active
    back = services.defaults_override_rollback(actor=moderator, override=promoted)
    assert back == manual and back is not None and back.active
    assert DefaultsOverride.objects.filter(active=True).get() == manual
    assert [c.action for c in DefaultsChange.objects.order_by("id")] == [
        "manual",
        "promote",
        "rollback",
    ]
    with pytest.raises(services.ExperimentError, match="not active"):
        services.defaults_override_rollback(actor=moderator, override=promoted)


def test_what_cannot_be_promoted(flux_experiment: Experiment, moderator: User) -> None:
    control = arm_named(flux_experiment, "control")
    with pytest.raises(services.ExperimentError, match="control arm is the current defaults"):
        services.experiment_promote(actor=moderator, experiment=flux_experiment, arm=control)
    draft = make_experiment(
        ecosystem="sdxl", arms=[("control", 1, {}), ("wide", 1, {"networkDim": 48})]
    )
    with pytest.raises(services.ExperimentError, match="never ran"):
        services.experiment_promote(actor=moderator, experiment=draft, arm=arm_named(draft, "wide"))
    with pytest.raises(services.ExperimentError, match="not an arm of"):
        services.experiment_promote(
            actor=moderator, experiment=flux_experiment, arm=arm_named(draft, "wide")
        )
    longer = arm_named(flux_experiment, "longer")
    services.experiment_promote(actor=moderator, experiment=flux_experiment, arm=longer)
    with pytest.raises(services.ExperimentError, match="already been promoted"):
        services.experiment_promote(actor=moderator, experiment=flux_experiment, arm=longer)
    assert DefaultsChange.objects.count() == 1


def test_no_manual_defaults_while_an_experiment_runs(
    flux_experiment: Experiment, moderator: User, web_client: WebClient
) -> None:
    with pytest.raises(services.ExperimentError, match="would change its control arm"):
        services.defaults_override_create(
            actor=moderator, ecosystem="flux1", base_model="", values={"epochs": 6}
        )
    response = web_client(moderator).post(
        reverse("admin:experiments_defaultsoverride_add"),
        {"ecosystem": "flux1", "base_model": "", "values": '{"epochs": 6}', "reason": ""},
    )
    assert response.status_code == 200
    assert "would change its control arm" in response.content.decode()
    assert not DefaultsOverride.objects.exists()


def test_manual_defaults_in_admin_are_validated_and_audited(
    moderator: User, web_client: WebClient
) -> None:
    client = web_client(moderator)
    url = reverse("admin:experiments_defaultsoverride_add")
    bad = client.post(url, {"ecosystem": "flux1", "values": '{"epochs": 40}', "reason": ""})
    assert bad.status_code == 200
    assert bad.context["adminform"].form.errors["values"] == [
        "epochs must be between 5 and 20 for AI Toolkit ecosystem flux1; got 40."
    ]
    good = client.post(
        url, {"ecosystem": "flux1", "values": '{"epochs": 7}', "reason": "faster"}, follow=True
    )
    assert good.redirect_chain[-1][0] == reverse("admin:experiments_defaultsoverride_changelist")
    override = DefaultsOverride.objects.get(active=True)
    assert (override.values, override.created_by, override.reason) == (
        {"epochs": 7},
        moderator,
        "faster",
    )
    change = DefaultsChange.objects.get()
    assert (change.action, change.changed) == ("manual", {"epochs": (5, 7)})
    # the admin rollback action
    response = client.post(
        reverse("admin:experiments_defaultsoverride_changelist"),
        {"action": "rollback", "_selected_action": [override.pk]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "Rolled back flux1: the catalog's defaults apply."
    ]
    assert not DefaultsOverride.objects.filter(active=True).exists()


def test_promote_and_roll_back_from_the_results_page(
    flux_experiment: Experiment, moderator: User, web_client: WebClient, client_for: ApiClient
) -> None:
    client = web_client(moderator)
    longer = arm_named(flux_experiment, "longer")
    detail = reverse("experiments:detail", args=[flux_experiment.pk])
    response = client.post(
        reverse("experiments:promote", args=[flux_experiment.pk]),
        {"arm": longer.pk, "reason": "clear winner"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == detail
    html = response.content.decode()
    assert "Promoted longer" in html
    assert 'id="promote-form"' not in html  # promoted once
    assert 'id="rollback-form"' in html
    override = DefaultsOverride.objects.get(active=True)
    assert catalog_defaults(client_for(_newcomer("olga")))["lr"] == 0.0002

    response = client.post(
        reverse("experiments:override-rollback", args=[override.pk]),
        {"reason": "regression", "experiment": flux_experiment.pk},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == detail
    assert (
        "Rolled back flux1: runs now get the catalog&#x27;s defaults." in response.content.decode()
    )
    assert catalog_defaults(client_for(_newcomer("oscar")))["lr"] == 0.0001
    assert DefaultsChange.objects.get(action="rollback").actor == moderator


def test_promotion_is_for_moderators_and_needs_csrf(
    flux_experiment: Experiment, moderator: User, web_client: WebClient
) -> None:
    url = reverse("experiments:promote", args=[flux_experiment.pk])
    data = {"arm": arm_named(flux_experiment, "longer").pk}
    assert web_client(make_user("plain")).post(url, data).status_code == 403
    assert web_client(None).post(url, data).status_code == 302  # to the login page
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(moderator)
    assert strict.post(url, data).status_code == 403
    assert web_client(moderator).get(url).status_code == 405
    flux_experiment.refresh_from_db()
    assert flux_experiment.status == ExperimentStatus.RUNNING
    assert not DefaultsOverride.objects.exists()


def test_the_admin_pages_open_for_moderators(
    flux_experiment: Experiment, moderator: User, web_client: WebClient
) -> None:
    override = services.experiment_promote(
        actor=moderator, experiment=flux_experiment, arm=arm_named(flux_experiment, "longer")
    )
    client = web_client(moderator)
    for name, args in [
        ("experiments_experiment_changelist", []),
        ("experiments_experiment_change", [flux_experiment.pk]),
        ("experiments_defaultsoverride_changelist", []),
        ("experiments_defaultsoverride_change", [override.pk]),
        ("experiments_defaultschange_changelist", []),
    ]:
        response = client.get(reverse(f"admin:{name}", args=args))
        assert response.status_code == 200, name
    changes = client.get(reverse("admin:experiments_defaultschange_changelist")).content.decode()
    assert "epochs: 5 → 8" in changes
    # the audit cannot be edited or deleted, nor an override changed in place
    change = DefaultsChange.objects.get()
    edit = client.post(
        reverse("admin:experiments_defaultschange_change", args=[change.pk]), {"reason": "x"}
    )
    assert edit.status_code == 403
    assert (
        client.post(reverse("admin:experiments_defaultsoverride_delete", args=[override.pk]))
    ).status_code == 403
