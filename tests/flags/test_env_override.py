"""FEATURE_FLAG_<KEY>: true, false, a keyword list, and values that must stop start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from flags import env
from flags.env import parse_feature_env
from flags.gates import is_feature_active, is_feature_available
from flags.registry import SD3_TRAINING, env_name_for
from tests.flags.helpers import AI, at_stage, opt_in

AI_ENV = "FEATURE_FLAG_AI_TOOLKIT_TRAINING"
ROOT = Path(__file__).resolve().parents[2]


def test_the_variable_name_is_the_key_in_upper_snake_case() -> None:
    assert env_name_for("aiToolkitTraining") == AI_ENV
    assert env_name_for("sd3Training") == "FEATURE_FLAG_SD3_TRAINING"


def test_true_means_every_logged_in_user_and_false_means_nobody() -> None:
    parsed = parse_feature_env({AI_ENV: "true", "FEATURE_FLAG_SD3_TRAINING": "FALSE"})
    assert parsed[AI].keywords == {"user"}
    assert parsed[SD3_TRAINING].keywords == frozenset()
    assert parsed[SD3_TRAINING].is_off


def test_a_keyword_list_replaces_the_availability() -> None:
    assert parse_feature_env({AI_ENV: " Mod , gold"})[AI].keywords == {"mod", "gold"}


def test_unrelated_and_empty_variables_are_ignored() -> None:
    assert parse_feature_env({"PATH": "/bin", AI_ENV: "", "FEATURE_FLAG_SD3_TRAINING": "  "}) == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (AI_ENV, "mod,wizard"),  # unknown keyword
        (AI_ENV, "mod,,gold"),  # empty item
        (AI_ENV, "mod,"),  # trailing comma
        (AI_ENV, "yes"),  # not true/false, not a keyword
        ("FEATURE_FLAG_AI_TOOLKIT_TRAINNG", "true"),  # a typo in the name
    ],
)
def test_a_value_it_cannot_read_is_improperly_configured(name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        parse_feature_env({name: value})


def test_the_app_refuses_to_start_with_an_unreadable_override(settings: Any) -> None:
    settings.FEATURE_FLAG_OVERRIDES = {AI_ENV: "mods"}  # every FEATURE_FLAG_* at start-up
    with pytest.raises(ImproperlyConfigured, match="unknown keyword"):
        apps.get_app_config("flags").ready()


def test_manage_py_fails_at_start_up_with_an_unreadable_override() -> None:
    environ = {**os.environ, AI_ENV: "mod,wizard"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "wizard" in result.stderr


@pytest.mark.django_db
def test_override_true_opens_the_feature_to_every_logged_in_user_even_at_stage_off(
    plain_user: Any, anonymous: Any
) -> None:
    at_stage("off")
    opt_in(plain_user)
    with env.override(**{AI_ENV: "true", "FEATURE_FLAG_SD3_TRAINING": "true"}):
        assert is_feature_active(plain_user, AI)
        assert is_feature_active(plain_user, SD3_TRAINING)
        assert not is_feature_active(anonymous, SD3_TRAINING)
    assert not is_feature_active(plain_user, AI)


@pytest.mark.django_db
def test_override_false_turns_it_off_even_for_moderators(moderator: Any) -> None:
    opt_in(moderator)
    assert is_feature_active(moderator, AI)
    with env.override(**{AI_ENV: "false"}):
        assert not is_feature_active(moderator, AI)


@pytest.mark.django_db
def test_override_with_keywords_replaces_the_stage(
    gold_member: Any, bronze_member: Any, moderator: Any
) -> None:
    at_stage("off")
    for user in (gold_member, bronze_member, moderator):
        opt_in(user)
    with env.override(**{AI_ENV: "mod,gold"}):
        assert is_feature_active(gold_member, AI)
        assert is_feature_active(moderator, AI)
        assert not is_feature_active(bronze_member, AI)


@pytest.mark.django_db
def test_override_member_and_granted_keywords(
    silver_member: Any, plain_user: Any, staff: Any
) -> None:
    from waffle.models import Flag

    Flag.objects.get(name=SD3_TRAINING).users.add(plain_user)
    with env.override(FEATURE_FLAG_SD3_TRAINING="member"):
        assert is_feature_active(silver_member, SD3_TRAINING)
        assert not is_feature_active(plain_user, SD3_TRAINING)  # listed, but granted not named
    with env.override(FEATURE_FLAG_SD3_TRAINING="granted"):
        assert is_feature_active(plain_user, SD3_TRAINING)
        assert not is_feature_active(silver_member, SD3_TRAINING)
        assert not is_feature_active(staff, SD3_TRAINING)


@pytest.mark.django_db
def test_with_an_override_a_toggleable_feature_still_waits_for_the_users_choice(
    plain_user: Any,
) -> None:
    with env.override(**{AI_ENV: "true"}):
        assert is_feature_available(plain_user, AI)
        assert not is_feature_active(plain_user, AI)
        opt_in(plain_user)
        assert is_feature_active(plain_user, AI)


def test_load_replaces_the_overrides_in_force() -> None:
    with env.override():
        env.load({AI_ENV: "mod"})
        assert env.current()[AI].keywords == {"mod"}
        env.load({})
        assert env.current() == {}
