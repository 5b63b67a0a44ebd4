"""Drop the defaults snapshot whenever a row it is built from changes (experiments.defaults).

Queryset .update() sends no signal: the services call defaults.invalidate() themselves."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from experiments.defaults import invalidate
from experiments.models import Arm, DefaultsOverride, Experiment


def _changed(sender: Any, **kwargs: Any) -> None:
    invalidate()


def connect() -> None:
    for model in (Experiment, Arm, DefaultsOverride):
        uid = f"experiments.snapshot.{model.__name__}"
        post_save.connect(_changed, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(_changed, sender=model, dispatch_uid=uid + ".delete")
