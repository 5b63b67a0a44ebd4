"""Orchestrator callbacks as news, and how fresh the run is kept between them (issue #19.1, #16.6).

A callback says only "something happened to workflow W" (the orchestrator signs nothing; the
per-run token in the URL is the authentication). It is answered fast and never trusted for
state: it asks for a fresh GET of the workflow (a *re-fetch*), coalesced so that a run has at
most one re-fetch queued however many callbacks arrive. Replays cost nothing: a callback that
carries nothing we have not already seen writes no event and queues no re-fetch, callbacks for
finished runs are acknowledged and ignored, and each run takes at most CALLBACK_RATE_PER_MINUTE.
The reconciler (lifecycle.runs_reconcile) stays the safety net for callbacks that never come.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from training import lifecycle
from training.models import RunEvent, TrainingRun
from training.orchestrator.contracts import active as active_contract
from vocabulary import catalog

log = logging.getLogger(__name__)


def _refetch_key(run_id: UUID | str) -> str:
    return f"run-refetch:{run_id}"


def _within_rate(run_id: UUID | str) -> bool:
    """A fixed one-minute window per run, counted in Redis so every web process shares it."""
    key = f"callback-rate:{run_id}:{int(time.time() // 60)}"
    cache.add(key, 0, 120)
    try:
        count = cache.incr(key)
    except ValueError:  # the window expired between add and incr: this is its first call
        cache.add(key, 1, 120)
        count = 1
    return int(count) <= settings.CALLBACK_RATE_PER_MINUTE


class RateLimited(Exception):
    pass


def callback_receive(
    *,
    run_id: UUID | str,
    workflow_id: str,
    status: str,
    source: str = "workflow",
    progress: float | None = None,
) -> str:
    """Take one orchestrator callback; returns what happened (for the response and the log).
    Raises RateLimited when the run has had too many callbacks this minute."""
    if not _within_rate(run_id):
        raise RateLimited
    run = TrainingRun.objects.filter(pk=run_id).only("pk", "workflow_id", "status").first()
    if run is None:
        log.warning("callback for unknown run %s (workflow %s)", run_id, workflow_id)
        return "unknown_run"
    if run.workflow_id and run.workflow_id != workflow_id:
        log.warning(
            "callback for run %s names workflow %s, not %s", run.pk, workflow_id, run.workflow_id
        )
        return "foreign_workflow"
    if run.is_terminal:
        return "finished"  # nothing can change a finished run; acknowledged so it stops
    # What this callback says, as far as we read it. Seen before (a replay or a duplicate
    # delivery) means nothing new: no event, no re-fetch. Kept a day, longer than any retry.
    said = f"{source}:{status}:{'' if progress is None else round(float(progress), 4)}"
    if not cache.add(f"callback-seen:{run.pk}:{workflow_id}:{said}", 1, 86400):
        return "duplicate"
    if progress is None:
        # Status news goes on the timeline; progress shows as the epochs themselves.
        RunEvent.objects.create(
            run_id=run.pk,
            kind=RunEvent.Kind.CALLBACK,
            message=f"orchestrator reports {status}"
            + ("" if source == "workflow" else f" ({source})"),
            data={"workflowId": workflow_id, "status": status},
        )
    if not run.workflow_id:
        return "recorded"  # our submit answer is not in yet; the reconciler finds it by tag
    run_refetch_request(run_id=run.pk)
    return "accepted"


def run_refetch_request(*, run_id: UUID | str) -> bool:
    """Queue one fresh read of the run's workflow unless one is already queued (the key is
    cleared when the re-fetch starts, so news arriving during a GET gets a GET of its own; the
    TTL frees a run whose task was lost). True if this call queued it."""
    if not cache.add(_refetch_key(run_id), 1, settings.REFETCH_COALESCE_SECONDS):
        return False
    run_id = str(run_id)
    transaction.on_commit(lambda: refetch_run_task.delay(run_id), robust=True)
    return True


@shared_task(acks_late=True, ignore_result=True, max_retries=0)
def refetch_run_task(run_id: str) -> str:
    # Cleared before the GET: whatever arrives from here on is not in what we are about to read.
    cache.delete(_refetch_key(run_id))
    try:
        return lifecycle.run_refresh(run_id=run_id)
    except lifecycle.OrchestratorError as exc:
        # No retry: the reconciler repeats it once the run has gone quiet.
        log.warning("re-fetch of run %s failed: %s", run_id, exc)
        return "error"


# --- elapsed time and ETA ---------------------------------------------------------------------


def epochs_total(run: TrainingRun) -> int | None:
    """The epochs the run trains: its effective parameter, or the catalog's fixed value (Rapid
    stores none)."""
    name = "maxTrainEpochs"
    if run.engine == catalog.AI_TOOLKIT:
        name = catalog.KOHYA_TO_AI_TOOLKIT_NAMES[name]
    value = (run.params or {}).get(name)
    if value is None:
        specs = catalog.param_spec_map(run.base_model, run.engine, active_contract().name)  # type: ignore[arg-type]
        spec = specs.get(name)
        value = spec.default if spec else None
    return value if isinstance(value, int) else None


def run_timing(run: TrainingRun, *, now: datetime | None = None) -> dict[str, Any]:
    """`elapsedSeconds` since the run was accepted (until it finished, once it has) and an ETA
    of when it finishes: from the pace of its finished epochs once one has finished, before that
    from the orchestrator's own estimate at the last read of the workflow, else none. `computedAt`
    says when, so a client can age it."""
    now = now or timezone.now()
    end = run.completed_at or now
    elapsed = max(0, int((end - run.created_at).total_seconds()))
    eta: str | None = None
    source: str | None = None
    if not run.is_terminal:
        outputs = run.outputs or {}
        done = len(outputs.get("epochs") or [])
        total = epochs_total(run)
        if run.started_at and total and done:
            per_epoch = max(0.0, (now - run.started_at).total_seconds()) / done
            eta, source = _iso(now + timedelta(seconds=max(0, total - done) * per_epoch)), "pace"
        elif isinstance(outputs.get("etaAt"), str):
            eta, source = outputs["etaAt"], "orchestrator"
    return {"elapsedSeconds": elapsed, "eta": {"at": eta, "basis": source, "computedAt": _iso(now)}}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
