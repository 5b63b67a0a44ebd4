"""Connected in TrainingConfig.ready(): the run's life -> webhook deliveries."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from training.signals import run_changed
from training.webhooks.services import run_webhook_announce


@receiver(run_changed, dispatch_uid="webhooks-announce")
def _announce(sender: Any, run_id: str, **_: Any) -> None:
    run_webhook_announce(run_id=run_id)
