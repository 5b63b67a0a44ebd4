"""Rollout guard settings: a Django setting of the same name wins (tests use override_settings),
else the environment variable, else the default. Read on every use, checked at start-up."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int


def rollout_min_success_rate() -> float:
    value = getattr(settings, "ROLLOUT_MIN_SUCCESS_RATE", None)
    rate = float(value) if value is not None else env_float("ROLLOUT_MIN_SUCCESS_RATE", 0.9)
    if not 0.0 <= rate <= 1.0:
        raise ImproperlyConfigured(f"ROLLOUT_MIN_SUCCESS_RATE={rate} must be between 0 and 1.")
    return rate


def rollout_min_finished_runs() -> int:
    value = getattr(settings, "ROLLOUT_MIN_FINISHED_RUNS", None)
    if value is not None:
        return int(value)
    return env_int("ROLLOUT_MIN_FINISHED_RUNS", 20, minimum=1)


def rollout_window_days() -> int:
    value = getattr(settings, "ROLLOUT_WINDOW_DAYS", None)
    if value is not None:
        return int(value)
    return env_int("ROLLOUT_WINDOW_DAYS", 14, minimum=1)


def check() -> None:
    """Raise ImproperlyConfigured now rather than on the first promotion."""
    rollout_min_success_rate()
    rollout_min_finished_runs()
    rollout_window_days()
