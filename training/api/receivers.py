"""The run's life -> webhook deliveries, connected in TrainingConfig.ready(). It sits on the API
surface because a webhook's body is, by definition, the run as GET /api/v1/training-runs/{id}/
returns it: the surface renders the body and hands it down; training/webhooks/ stores, signs and
sends what it is given and never imports the API."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.dispatch import receiver

from training.api.serializers import RunDetailSerializer
from training.models import TrainingRun
from training.signals import run_changed
from training.webhooks.services import run_webhook_announce


def run_webhook_body(run: TrainingRun) -> str:
    return json.dumps(RunDetailSerializer(run).data, cls=DjangoJSONEncoder)


@receiver(run_changed, dispatch_uid="webhooks-announce")
def _announce(sender: Any, run_id: str, **_: Any) -> None:
    run_webhook_announce(run_id=run_id, render=run_webhook_body)
