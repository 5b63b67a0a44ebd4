"""The rollout guard's settings, declared and range-checked in config/settings.py; read on every
use so that tests can change them with override_settings."""

from __future__ import annotations

from django.conf import settings


def rollout_min_success_rate() -> float:
    return float(settings.ROLLOUT_MIN_SUCCESS_RATE)


def rollout_min_finished_runs() -> int:
    return int(settings.ROLLOUT_MIN_FINISHED_RUNS)


def rollout_window_days() -> int:
    return int(settings.ROLLOUT_WINDOW_DAYS)
