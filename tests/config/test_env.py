"""The typed readers stop start-up with the variable's name when a value cannot be used."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_prefixed


def test_a_rate_above_its_maximum_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROLLOUT_MIN_SUCCESS_RATE", "1.5")
    with pytest.raises(
        ImproperlyConfigured, match=r"ROLLOUT_MIN_SUCCESS_RATE=1\.5 must be at most 1"
    ):
        env_float("ROLLOUT_MIN_SUCCESS_RATE", 0.9, minimum=0, maximum=1)


def test_an_unset_rate_takes_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLOUT_MIN_SUCCESS_RATE", raising=False)
    assert env_float("ROLLOUT_MIN_SUCCESS_RATE", 0.9, minimum=0, maximum=1) == 0.9


def test_a_family_of_variables_is_read_by_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURE_FLAG_AI_TOOLKIT_TRAINING", "mod,gold")
    monkeypatch.setenv("FEATURE_FLAGS_UNRELATED", "x")  # a different prefix
    found = env_prefixed("FEATURE_FLAG_")
    assert found["FEATURE_FLAG_AI_TOOLKIT_TRAINING"] == "mod,gold"
    assert "FEATURE_FLAGS_UNRELATED" not in found
