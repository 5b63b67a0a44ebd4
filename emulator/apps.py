from django.apps import AppConfig


class EmulatorAppConfig(AppConfig):
    name = "emulator"
    verbose_name = "Orchestrator emulator"
