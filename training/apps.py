from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The API turns run_changed into webhook deliveries: it renders the body (a run as the
        # API shows it) and hands it to training/webhooks/, which never imports the API.
        from training.api import receivers  # noqa: F401
