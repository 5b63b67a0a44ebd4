from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from flags import env
        from flags.services import features_sync_after_migrate

        # Unreadable FEATURE_FLAG_* values stop start-up here (ImproperlyConfigured); the
        # ROLLOUT_* values are checked by their readers in config/settings.py.
        env.load()
        # After every migrate (and every test-database flush): create missing flags, the tier
        # groups and the moderators' permissions; never overwrite a moderator's edits.
        post_migrate.connect(
            features_sync_after_migrate, sender=self, dispatch_uid="flags.features_sync"
        )
