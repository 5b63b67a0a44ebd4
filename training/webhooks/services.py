"""Webhook writes: the user's signing secret, a run's webhook, and turning what happened to a run
into deliveries (each event once, in order)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from training.models import TrainingRun
from training.signals import run_changed
from training.webhooks.delivery import webhook_send_task
from training.webhooks.keys import new_key
from training.webhooks.models import (
    EVENTS,
    RunWebhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSecret,
)


def webhook_secret_get(*, user: Any) -> WebhookSecret:
    secret, _ = WebhookSecret.objects.get_or_create(user=user, defaults={"key": new_key()})
    return secret


def webhook_secret_rotate(*, user: Any) -> WebhookSecret:
    """A new key at once; deliveries from now on (retries included) are signed with it."""
    secret, created = WebhookSecret.objects.get_or_create(user=user, defaults={"key": new_key()})
    if not created:
        secret.key = new_key()
        secret.save(update_fields=["key", "rotated_at"])
    return secret


def run_webhook_set(*, run: TrainingRun, url: str, events: list[str] | None) -> RunWebhook:
    chosen = [e for e in EVENTS if e in (events or EVENTS)]
    return RunWebhook.objects.create(run=run, url=url, events=chosen)


def run_webhook_announce(*, run_id: UUID | str, render: Callable[[TrainingRun], str]) -> list[str]:
    """Create the deliveries for what the run did since the last announcement: `start` once it
    trains, `output` when it has more epochs, `completed` once finished; in that order, each
    once (the webhook row is locked while it is compared and advanced). Events the client did
    not ask for advance the marks without a delivery. Returns the new delivery ids.

    `render` gives the body of the run as it is now: the caller's (the API's) representation of
    a run, asked for under the lock and only when a delivery is made."""
    with transaction.atomic():
        hook = RunWebhook.objects.select_for_update().filter(run__pk=run_id).first()
        if hook is None or hook.completed_announced:
            return []
        run = TrainingRun.objects.get(pk=run_id)
        epochs = len((run.outputs or {}).get("epochs") or [])
        happened: list[str] = []
        if not hook.started_announced and run.started_at is not None:
            hook.started_announced = True
            happened.append("start")
        if epochs > hook.epochs_announced:
            hook.epochs_announced = epochs
            happened.append("output")
        if run.is_terminal:
            hook.completed_announced = True
            happened.append("completed")
        if not happened:
            return []
        wanted = [e for e in happened if e in hook.events]
        made: list[str] = []
        if wanted:
            body = render(run)
            now = timezone.now()
            for event in wanted:
                delivery = WebhookDelivery.objects.create(
                    id=f"msg_{uuid.uuid4().hex}", run_id=run.pk, seq=hook.next_seq, event=event,
                    url=hook.url, body=body, next_attempt_at=now,
                )  # fmt: skip
                hook.next_seq += 1
                made.append(delivery.id)
        hook.save()
    if made:
        run_key = str(run_id)
        transaction.on_commit(lambda: webhook_send_task.delay(run_key), robust=True)
    return made


def delivery_log(run_id: Any) -> list[WebhookAttempt]:
    """Every attempt of the run's deliveries, oldest first (callers scope the run by owner)."""
    return list(
        WebhookAttempt.objects.filter(delivery__run_id=run_id)
        .select_related("delivery")
        .order_by("delivery__seq", "number")
    )


@shared_task(ignore_result=True)
def webhook_sweep_task() -> int:
    """The safety net: runs with a delivery overdue (its task lost, or its worker killed) get a
    sender again, and runs whose announcement was lost are announced: their `run_changed` is
    sent again, so the receiver that renders bodies (training/api/receivers.py) announces them
    the way it announces every change."""
    for run_id in RunWebhook.objects.filter(completed_announced=False).values_list(
        "run_id", flat=True
    )[:500]:
        run_changed.send(sender="training.TrainingRun", run_id=str(run_id))
    overdue = timezone.now() - timedelta(seconds=5)
    run_ids = set(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, next_attempt_at__lt=overdue
        ).values_list("run_id", flat=True)[:500]
    )
    for run_id in run_ids:
        webhook_send_task.delay(str(run_id))
    return len(run_ids)
