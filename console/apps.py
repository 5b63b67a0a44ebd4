from __future__ import annotations

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The moderator console, /metrics and /healthz: the top layer, reading the apps below it."""

    name = "console"
    verbose_name = "Moderator console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from flags.services import rollout_evidence_register
        from training.selectors import engine_success_rate

        # The rollout guard (flags) counts runs (training), which sit above it: the top layer
        # hands it the counter, so flags never imports training (docs/decisions.md).
        rollout_evidence_register(engine_success_rate)
