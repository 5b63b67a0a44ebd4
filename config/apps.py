from __future__ import annotations

from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """Not an app with models: registers the project's system checks (config/checks.py)."""

    name = "config"
    label = "project"
    verbose_name = "Project"

    def ready(self) -> None:
        from config import checks  # noqa: F401  # registers the checks
