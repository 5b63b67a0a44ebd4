"""Celery adapters: take an id, call one service. Retries are for transient errors only, bounded,
with exponential backoff and full jitter, and always well under the broker's visibility timeout."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from training import lifecycle

log = logging.getLogger(__name__)


def backoff(retries: int, *, retry_after: float | None = None) -> float:
    base = settings.SUBMIT_RETRY_BASE_SECONDS * (2**retries)
    delay = random.uniform(0, min(settings.SUBMIT_RETRY_MAX_SECONDS, base))  # full jitter
    return max(delay, retry_after or 0.0)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def submit_run_task(self: Task[Any, Any], run_id: str) -> str:
    try:
        return lifecycle.run_submit(run_id=run_id, is_retry=self.request.retries > 0).status
    except lifecycle.Retry as exc:
        if self.request.retries >= settings.SUBMIT_MAX_RETRIES:
            if lifecycle.run_submit_deadline_passed(run_id=run_id):
                lifecycle.run_submit_exhausted(
                    run_id=run_id, error=f"{exc.error.kind}: {exc.error}"
                )
                return "failed"
            # An outage longer than one retry chain: leave the run submitting; the reconciler
            # looks it up by tag and, finding nothing, resubmits it, until the deadline.
            return "deferred"
        raise self.retry(
            countdown=backoff(self.request.retries, retry_after=exc.retry_after)
        ) from exc


@shared_task(acks_late=True, ignore_result=True, autoretry_for=(), max_retries=0)
def refresh_run_task(run_id: str) -> str:
    # No retry: a failed refresh is repeated by the reconciler once the run has gone quiet.
    try:
        return lifecycle.run_refresh(run_id=run_id)
    except lifecycle.OrchestratorError as exc:
        log.warning("refresh of run %s failed: %s", run_id, exc)
        return "error"


@shared_task(ignore_result=True)
def reconcile_runs_task() -> dict[str, int]:
    report = lifecycle.runs_reconcile()
    for run_id in report.pending_requeued + report.submitting_requeued:
        submit_run_task.delay(run_id)
    for run_id in report.quiet_refreshed + report.submitting_adopted:
        refresh_run_task.delay(run_id)
    counts = {k: len(v) for k, v in report.__dict__.items()}
    if any(counts.values()):
        log.info("reconcile: %s", counts)
    return counts


@shared_task(ignore_result=True)
def prune_idempotency_keys_task() -> int:
    from training.idempotency import idempotency_keys_prune

    return idempotency_keys_prune()


@shared_task(ignore_result=True)
def prune_orphan_uploads_task() -> int:
    from training.uploads import training_zips_prune

    return training_zips_prune(older_than=timedelta(hours=settings.TRAINING_UPLOAD_ORPHAN_HOURS))


@shared_task(ignore_result=True)
def bench_noop_task(run_id: str) -> str:
    # The benchmark baseline's enqueue target (bench/submit_api.py); does nothing on purpose.
    return run_id


@shared_task(ignore_result=True)
def bench_post_workflow_task(body: dict[str, Any]) -> None:
    # The worker benchmark's baseline: the same POST a submission makes, and nothing else.
    from training.orchestrator.client import get_client

    get_client().submit(body)
