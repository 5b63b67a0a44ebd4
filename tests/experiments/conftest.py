"""Experiments on Flux defaults, users placed in a chosen arm, and logged-in page clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from experiments import services
from experiments.assignment import assign
from experiments.models import Arm, Experiment
from flags import env
from tests.conftest import make_user, opt_in

URL = "/api/v1/training-runs/"
CATALOG_URL = "/api/v1/training-catalog/"
# Flux.1 with AI Toolkit: epochs 5 (5-20), lr 0.0001, networkDim 16 (8-32) in the catalog.
LONGER = {"epochs": 8, "lr": 0.0002}


@pytest.fixture(autouse=True)
def _no_env_override() -> Iterator[None]:
    with env.override():
        yield


@pytest.fixture(autouse=True)
def _room_for_runs(settings: Any) -> None:
    settings.TRAINING_MAX_ACTIVE_RUNS = 1000


def make_experiment(
    *,
    arms: list[tuple[str, int, dict[str, Any]]],
    ecosystem: str = "flux1",
    base_model: str = "",
    name: str = "Flux: longer and faster",
    start: bool = False,
    actor: User | None = None,
) -> Experiment:
    """arms: (name, weight, overrides); the one with no overrides is the control."""
    now = timezone.now()
    experiment = Experiment.objects.create(
        name=name,
        ecosystem=ecosystem,
        base_model=base_model,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=14),
    )
    for position, (arm_name, weight, overrides) in enumerate(arms):
        Arm.objects.create(
            experiment=experiment,
            name=arm_name,
            weight=weight,
            overrides=overrides,
            is_control=not overrides,
            position=position,
        )
    if start:
        experiment = services.experiment_start(actor=actor, experiment=experiment)
    return experiment


@pytest.fixture
def flux_experiment(mod: User) -> Experiment:
    """Running: half the users keep the defaults, half get LONGER."""
    return make_experiment(arms=[("control", 1, {}), ("longer", 1, LONGER)], start=True, actor=mod)


def arm_named(experiment: Experiment, name: str) -> Arm:
    return experiment.arms.get(name=name)


def user_in_arm(experiment: Experiment, arm_name: str, *groups: str, prefix: str = "u") -> User:
    """A fresh opted-in user that the hash places in this arm (deterministic given the ids)."""
    arms = [(a.pk, a.weight) for a in experiment.arms.all()]
    wanted = arm_named(experiment, arm_name).pk
    for i in range(200):
        user = make_user(f"{prefix}{arm_name}{i}", *groups)
        if assign(experiment.pk, user.pk, arms) == wanted:
            return opt_in(user)
        user.delete()
    raise AssertionError(f"no user landed in {arm_name} in 200 tries")


@pytest.fixture
def in_arm() -> Callable[..., User]:
    def build(experiment: Experiment, arm_name: str, prefix: str = "u") -> User:
        return user_in_arm(experiment, arm_name, "mod", prefix=prefix)

    return build


@pytest.fixture
def moderator(db: None) -> User:
    return make_user("mona", "mod", is_staff=True)


@pytest.fixture
def web_client() -> Callable[[User | None], Client]:
    def build(user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return build
