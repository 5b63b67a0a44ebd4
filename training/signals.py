"""Signals the run's life sends to the surfaces that follow it (the API's webhook receiver,
training/api/receivers.py), so the runs layer never imports them."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.dispatch import Signal

# Sent after the commit of any change to a run's status or outputs; kwargs: run_id (str). Sent
# again by the webhook sweep for runs whose announcement may have been lost, so a receiver must
# be idempotent (it compares what it announced with the run as it is).
run_changed = Signal()


def run_changed_on_commit(run_id: UUID | str) -> None:
    run_id = str(run_id)
    transaction.on_commit(
        lambda: run_changed.send_robust(sender="training.TrainingRun", run_id=run_id),
        robust=True,
    )
