from __future__ import annotations

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The moderator console, /metrics and /healthz: the top layer, reading the apps below it."""

    name = "console"
    verbose_name = "Moderator console"
    default_auto_field = "django.db.models.BigAutoField"
