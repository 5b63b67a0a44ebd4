"""`manage.py check --deploy` refuses the dangerous combinations of production settings (#16.10)
and passes a sound production configuration; with DEBUG off no development code is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import override_settings

from config.checks import production_settings

ROOT = Path(__file__).resolve().parents[2]

SOUND = {
    "DEBUG": "false",
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuv",
    "ALLOWED_HOSTS": "training.example.com",
    "ORCHESTRATOR_TOKEN": "orchestrator-token",
    "PUBLIC_BASE_URL": "https://training.example.com",
    "METRICS_TOKEN": "a-scraper-token",
    "CALLBACK_SECRET": "a-separate-callback-secret-0123456789-abcdefghijklmnopqrstuv",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SOUND and k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **SOUND, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ids(**changes: object) -> set[str]:
    production = {
        "DEBUG": False,
        "PUBLIC_BASE_URL": SOUND["PUBLIC_BASE_URL"],
        "METRICS_TOKEN": SOUND["METRICS_TOKEN"],
        "CALLBACK_SECRET": SOUND["CALLBACK_SECRET"],
        "BENCH_MODE": False,
    }
    with override_settings(**{**production, **changes}):
        return {message.id for message in production_settings(None)}


def test_a_sound_production_configuration_passes_the_deploy_check() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_check_fails_on_an_http_callback_base() -> None:
    result = _manage("check", "--deploy", PUBLIC_BASE_URL="http://127.0.0.1:8000")
    assert result.returncode != 0
    assert "project.E001" in result.stderr and "PUBLIC_BASE_URL" in result.stderr


def test_the_deploy_check_fails_on_an_empty_metrics_token() -> None:
    result = _manage("check", "--deploy", METRICS_TOKEN="")
    assert result.returncode != 0
    assert "project.E002" in result.stderr and "METRICS_TOKEN" in result.stderr


def test_the_benchmark_settings_fail_the_deploy_check() -> None:
    result = _manage("check", "--deploy", DJANGO_SETTINGS_MODULE="bench.settings")
    assert result.returncode != 0
    assert "project.E003" in result.stderr


def test_a_callback_secret_falling_back_to_the_secret_key_is_a_warning() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", CALLBACK_SECRET="")
    assert result.returncode != 0
    assert "project.W001" in result.stderr


def test_each_check_names_only_its_own_problem() -> None:
    assert _ids() == set()
    assert _ids(PUBLIC_BASE_URL="http://training.example.com") == {"project.E001"}
    assert _ids(METRICS_TOKEN="") == {"project.E002"}
    assert _ids(BENCH_MODE=True) == {"project.E003"}
    assert _ids(CALLBACK_SECRET="same", SECRET_KEY="same") == {"project.W001"}


def test_with_debug_on_the_checks_stay_quiet() -> None:
    assert _ids(DEBUG=True, PUBLIC_BASE_URL="http://127.0.0.1:8000", METRICS_TOKEN="") == set()


def test_with_debug_off_the_emulator_is_not_installed() -> None:
    # (With DEBUG on, as in development and in these tests, it is: tests/emulator use it.)
    script = "from django.apps import apps; print(apps.is_installed('emulator'))"
    result = _manage("shell", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_the_production_urls_have_no_benchmark_endpoint() -> None:
    script = (
        "from django.urls import resolve, Resolver404\n"
        "try:\n    resolve('/api/v1/bench/baseline/'); print('routed')\n"
        "except Resolver404:\n    print('absent')"
    )
    assert _manage("shell", "-c", script).stdout.strip().splitlines()[-1] == "absent"
    bench = _manage("shell", "-c", script, DJANGO_SETTINGS_MODULE="bench.settings")
    assert bench.stdout.strip().splitlines()[-1] == "routed", bench.stderr
