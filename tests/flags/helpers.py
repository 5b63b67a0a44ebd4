"""Helpers for the flag tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group, User
from django.utils import timezone

from flags.models import FeaturePreference
from flags.registry import AI_TOOLKIT_TRAINING
from flags.services import rollout_set_stage, rollout_stage
from training.models import TrainingRun

AI = AI_TOOLKIT_TRAINING

PERSONAS = (
    "anonymous",
    "plain_user",
    "bronze_member",
    "silver_member",
    "gold_member",
    "moderator",
    "staff",
    "superuser",
)


def make_user(username: str, *groups: str, **extra: Any) -> User:
    # No password: hashing one costs ~0.3 s, and tests log in with force_login / tokens.
    user = User.objects.create_user(username=username, password=None, **extra)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


def at_stage(stage: str, key: str = AI) -> None:
    """Put a staged feature at a stage the way a moderator would, guard overridden."""
    if rollout_stage(key=key) != stage:
        rollout_set_stage(
            actor=None, key=key, to_stage=stage, reason="test set-up, guard overridden"
        )


def opt_in(user: Any, key: str = AI, enabled: bool = True) -> None:
    if user.is_authenticated:
        FeaturePreference.objects.update_or_create(
            user=user, key=key, defaults={"enabled": enabled}
        )


def make_runs(
    owner: User, *, succeeded: int, failed: int, days_ago: int = 1, engine: str = "ai-toolkit"
) -> None:
    done = timezone.now() - timedelta(days=days_ago)
    for status, count in (("succeeded", succeeded), ("failed", failed)):
        for i in range(count):
            TrainingRun.objects.create(
                owner=owner,
                base_model="flux_dev",
                engine=engine,
                training_data_url="https://data.example.com/set.zip",
                image_count=20,
                lora_name=f"{status}-{i}",
                status=status,
                completed_at=done,
            )
