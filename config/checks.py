"""System checks for dangerous combinations of settings (DESIGN.md §2), run by
`manage.py check --deploy`: each assumes DEBUG off is a production deployment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def production_settings(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    found: list[CheckMessage] = []
    if urlsplit(settings.PUBLIC_BASE_URL).scheme != "https":
        found.append(
            Error(
                f"PUBLIC_BASE_URL is {settings.PUBLIC_BASE_URL!r}: the orchestrator would send "
                "callbacks, and their per-run tokens, over plain HTTP.",
                hint="Set PUBLIC_BASE_URL to the service's public https:// address.",
                id="project.E001",
            )
        )
    if not settings.METRICS_TOKEN:
        found.append(
            Error(
                "METRICS_TOKEN is empty: /metrics trusts every loopback address, so behind a "
                "proxy on the same host it is public.",
                hint="Set METRICS_TOKEN and give it to the scraper as a bearer token.",
                id="project.E002",
            )
        )
    if settings.BENCH_MODE:
        found.append(
            Error(
                "BENCH_MODE is on with DEBUG off: the benchmark endpoint and the emulator are "
                "for the benchmark processes only.",
                hint="Use config.settings, not bench.settings, for a deployment.",
                id="project.E003",
            )
        )
    if settings.CALLBACK_SECRET == settings.SECRET_KEY:
        found.append(
            Warning(
                "CALLBACK_SECRET is not set and falls back to SECRET_KEY: rotating SECRET_KEY "
                "would invalidate the callback URL of every run in flight.",
                hint="Set CALLBACK_SECRET to its own long random value.",
                id="project.W001",
            )
        )
    return found
