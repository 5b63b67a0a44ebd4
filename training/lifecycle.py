"""The run's life after it is accepted (DESIGN.md §5): submission, following the workflow,
reconciliation. Every transition is an ORM compare-and-set on the row
(`TrainingRun.objects.filter(pk=…, status=expected).update(…)`, with its timeline event in the same
transaction; `transition`), acted on only when exactly one row changed, so two workers, a late
callback and the reconciler can never move a run twice or backwards. Every status change of a run
is written in this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from training.models import TERMINAL_STATUSES, RunEvent, RunStatus, TrainingRun
from training.orchestrator import contracts
from training.orchestrator.client import (
    AuthError,
    NotFoundError,
    OrchestratorError,
    RejectedError,
    TransientError,
    get_client,
)
from training.orchestrator.contracts.base import WorkflowState, parse_time
from training.payloads import stored_workflow_body
from training.signals import run_changed_on_commit

log = logging.getLogger(__name__)

# How far each status is along the run's life: a run only ever moves to a higher rank.
RANK = {
    RunStatus.PENDING: 0,
    RunStatus.SUBMITTING: 1,
    RunStatus.SUBMITTED: 2,
    RunStatus.PROCESSING: 3,
    RunStatus.SUCCEEDED: 4,
    RunStatus.FAILED: 4,
    RunStatus.CANCELED: 4,
    RunStatus.EXPIRED: 4,
}
# The orchestrator's WorkflowStatus -> ours.
FROM_ORCHESTRATOR = {
    "unassigned": RunStatus.SUBMITTED,
    "preparing": RunStatus.SUBMITTED,
    "scheduled": RunStatus.SUBMITTED,
    "processing": RunStatus.PROCESSING,
    "succeeded": RunStatus.SUCCEEDED,
    "failed": RunStatus.FAILED,
    "expired": RunStatus.EXPIRED,
    "canceled": RunStatus.CANCELED,
}


def transition(
    run_id: UUID | str,
    *,
    expected: RunStatus | str,
    to: RunStatus | str,
    kind: str = RunEvent.Kind.STATUS,
    message: str = "",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Compare-and-set one run from `expected` to `to`, with its timeline event; False, and
    nothing changed, if it was not in `expected` any more (someone else moved it first).
    `fields` are written in the same UPDATE (ORM expressions such as F() included)."""
    # savepoint=False: inside a caller's transaction (apply_workflow_state) a failure here
    # fails the caller's transaction anyway; at the top level it is the transaction itself.
    with transaction.atomic(savepoint=False):
        # A compare-and-set: the status in the WHERE clause makes the UPDATE itself the check,
        # so of two workers, a late callback and the reconciler racing, exactly one moves it.
        changed = TrainingRun.objects.filter(pk=run_id, status=expected).update(
            status=to, updated_at=timezone.now(), **fields
        )
        if changed != 1:
            return False
        RunEvent.objects.create(
            run_id=run_id, kind=kind, from_status=str(expected), to_status=str(to),
            message=message, data=data or {},
        )  # fmt: skip
        if str(to) in ANNOUNCED:
            run_changed_on_commit(run_id)  # webhooks follow the run (training/api/receivers.py)
    return True


# The states a run's followers (webhooks: start, completed) hear about. Submitting and submitted
# say nothing to them, so the submission path pays no announcement.
ANNOUNCED = frozenset({str(RunStatus.PROCESSING), *(str(s) for s in TERMINAL_STATUSES)})


def _note(run_id: UUID | str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    RunEvent.objects.create(run_id=run_id, kind=kind, message=message, data=data or {})


class Retry(Exception):
    """The submission hit a transient error: the task retries it after `countdown` at least."""

    def __init__(self, error: OrchestratorError) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = getattr(error, "retry_after", None)


@dataclass(frozen=True)
class SubmitOutcome:
    status: str
    workflow_id: str = ""


def _adopt(run: TrainingRun, workflow: dict[str, Any], *, how: str) -> SubmitOutcome:
    """The workflow exists at the orchestrator: record it and move to submitted."""
    state = contracts.active().parse_workflow(workflow)
    workflow_id = str(workflow.get("id") or "")
    moved = transition(
        run.pk,
        expected=RunStatus.SUBMITTING,
        to=RunStatus.SUBMITTED,
        message=how,
        data={"workflowId": workflow_id},
        workflow_id=workflow_id,
        orchestrator_status=state.status,
        submitted_at=timezone.now(),
        charged_cost=state.charged if state.charged is not None else state.cost,
        estimated_cost=run.estimated_cost if run.estimated_cost is not None else state.cost,
    )
    further = FROM_ORCHESTRATOR.get(state.status) not in (None, RunStatus.SUBMITTED)
    held = state.moderation in (MODERATION_HELD, MODERATION_REJECTED)
    if moved and (further or state.epochs or held):
        # The workflow is already further along (adopted late): apply what it says.
        apply_workflow_state(run.pk, workflow_id=workflow_id, state=state)
    return SubmitOutcome(RunStatus.SUBMITTED if moved else "raced", workflow_id)


SUBMISSION_FIELDS = ("status", "submit_attempts", "payload", "estimated_cost")


def run_submit(*, run_id: UUID | str, is_retry: bool = False) -> SubmitOutcome:
    """Send a pending run to the orchestrator exactly once.

    The first attempt claims the run (pending -> submitting) and POSTs. Any later attempt first
    looks the workflow up by its `run:<id>` tag, because an earlier POST may have been accepted
    although its answer was lost; only when none exists does it POST again."""
    # The claim counts the attempt it is about to make in the same UPDATE: if we die mid-POST,
    # the next attempt sees the count and looks the workflow up before posting again.
    claimed = transition(
        run_id,
        expected=RunStatus.PENDING,
        to=RunStatus.SUBMITTING,
        message="a worker claimed the run",
        submit_attempts=F("submit_attempts") + 1,
    )
    # Only what a submission reads (the counters, the stored body, the quoted price): turning the
    # whole row into a model was a fifth of a submission's CPU (bench/RESULTS.md).
    run = TrainingRun.objects.only(*SUBMISSION_FIELDS).get(pk=run_id)
    if claimed:
        posted_before = run.submit_attempts > 1  # an earlier chain, reset by the reconciler
    elif is_retry and run.status == RunStatus.SUBMITTING:
        # Count this attempt and touch the row in one go, so the reconciler never mistakes a
        # live retry chain for a run whose worker died (it waits RECONCILE_SUBMITTING_SECONDS).
        # A compare-and-set on `submitting`: a run the reconciler moved meanwhile is left alone.
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.SUBMITTING).update(
            submit_attempts=F("submit_attempts") + 1, updated_at=timezone.now()
        )
        posted_before = True
    else:
        return SubmitOutcome(run.status)  # another worker has it, or it is past submission
    client = get_client()
    try:
        if posted_before:
            existing = client.find_by_tag(f"run:{run.pk}")
            if existing:
                return _adopt(run, existing[0], how="found the workflow an earlier attempt made")
        # A run stored before bodies were has its body built from the whole row, as then.
        workflow = client.submit(
            stored_workflow_body(run if run.payload else TrainingRun.objects.get(pk=run.pk))
        )
    except RejectedError as exc:
        transition(
            run.pk,
            expected=RunStatus.SUBMITTING,
            to=RunStatus.FAILED,
            message=exc.message,
            error_code="orchestrator_rejected",
            error_message=f"The orchestrator refused the run: {exc.message}",
            completed_at=timezone.now(),
        )
        return SubmitOutcome(RunStatus.FAILED)
    except (TransientError, AuthError) as exc:
        _note(run.pk, RunEvent.Kind.SUBMIT_ERROR, f"{exc.kind}: {exc.message}")
        raise Retry(exc) from exc
    return _adopt(run, workflow, how="workflow created")


def run_submit_exhausted(*, run_id: UUID | str, error: str) -> None:
    code = "orchestrator_auth" if error.startswith("auth") else "submit_exhausted"
    transition(
        run_id,
        expected=RunStatus.SUBMITTING,
        to=RunStatus.FAILED,
        message=error,
        error_code=code,
        error_message=(
            "The orchestrator could not be reached after several attempts; nothing was charged. "
            f"Retry the run later. Last error: {error}"
        ),
        completed_at=timezone.now(),
    )


# TrainingModerationStatus values that change what we do (orchestrator-api-beta86.md §6.4).
MODERATION_HELD = "underReview"
MODERATION_REJECTED = "rejected"
MODERATION_REJECTED_MESSAGE = (
    "The orchestrator's moderation rejected this run's training data, so the run was stopped and "
    "produces no model. Check the images against the content rules; a retry with the same data "
    "will be rejected again."
)


def _merged_outputs(current: dict[str, Any], state: WorkflowState) -> dict[str, Any] | None:
    """The run's outputs with the workflow's news folded in, or None if nothing changed."""
    outputs = dict(current or {})
    if state.epochs:
        outputs["epochs"] = state.epochs
    # Moderation is kept once it says something worth showing (held or rejected), and then
    # followed (approved after a hold); a plain "approved" on every workflow is not news.
    if state.moderation in (MODERATION_HELD, MODERATION_REJECTED) or (
        state.moderation and "moderation" in outputs
    ):
        outputs["moderation"] = state.moderation
    if state.eta_minutes is not None:  # its own finish estimate (training/progress.py)
        finish = timezone.now() + timedelta(minutes=state.eta_minutes)
        outputs["etaAt"] = finish.isoformat(timespec="seconds").replace("+00:00", "Z")
    return outputs if outputs != (current or {}) else None


def _moderation_notes(run_id: UUID | str, before: str | None, after: str | None) -> None:
    if after == before:
        return
    if after == MODERATION_HELD:
        _note(run_id, RunEvent.Kind.NOTE, "held for review by the orchestrator's moderation; "
              "it continues once a moderator approves the training data")  # fmt: skip
    elif before == MODERATION_HELD and after != MODERATION_REJECTED:
        _note(run_id, RunEvent.Kind.NOTE, f"released from review (moderation: {after})")


def apply_workflow_state(run_id: UUID | str, *, workflow_id: str, state: WorkflowState) -> str:
    """Move the run forward to what the workflow says; never backwards, never out of a terminal
    state, so duplicate, late and out-of-order news changes nothing.

    Moderation: `underReview` keeps the run where it is (a held workflow never becomes our
    `succeeded`, whose model would then be out before review) and shows it held; `rejected`
    fails it with its own code. The row is locked while it is read and written, so a hold is
    noted once however many refreshes race."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.workflow_id and workflow_id and run.workflow_id != workflow_id:
            log.warning(
                "run %s: workflow %s is not its own (%s)", run.pk, workflow_id, run.workflow_id
            )
            return run.status
        target = FROM_ORCHESTRATOR.get(state.status)
        rejected = state.moderation == MODERATION_REJECTED and target not in (
            RunStatus.EXPIRED,
            RunStatus.CANCELED,
        )
        if rejected:
            target = RunStatus.FAILED
        elif state.moderation == MODERATION_HELD and target == RunStatus.SUCCEEDED:
            target = RunStatus.PROCESSING
        updates: dict[str, Any] = {"orchestrator_status": state.status}
        if state.charged is not None:
            updates["charged_cost"] = state.charged
        if state.started_at:
            updates["started_at"] = state.started_at
        outputs = _merged_outputs(run.outputs, state)
        if outputs is not None:
            updates["outputs"] = outputs
        before = (run.outputs or {}).get("moderation")
        after = (outputs or run.outputs or {}).get("moderation")
        if target is None or RANK[target] <= RANK[RunStatus(run.status)] or run.is_terminal:
            if not run.is_terminal and updates.keys() - {"orchestrator_status"}:
                # Same status, more news (an epoch finished): record it on the same state. A
                # compare-and-set on the status we read, so news never lands on a run that moved.
                TrainingRun.objects.filter(pk=run.pk, status=run.status).update(**updates)
                _moderation_notes(run.pk, before, after)
                run_changed_on_commit(run.pk)
            return run.status
        if target in TERMINAL_STATUSES:
            updates["completed_at"] = state.completed_at or timezone.now()
        if rejected:
            updates["error_code"] = "moderation_rejected"
            updates["error_message"] = MODERATION_REJECTED_MESSAGE
        elif target in (RunStatus.FAILED, RunStatus.EXPIRED):
            updates["error_code"] = f"orchestrator_{state.status}"
            updates["error_message"] = state.message or f"The workflow {state.status}."
        if target == RunStatus.PROCESSING and not state.started_at:
            updates["started_at"] = timezone.now()
        message = "moderation rejected the training data" if rejected else state.message
        moved = transition(run.pk, expected=run.status, to=target, message=message, **updates)
        if moved:
            _moderation_notes(run.pk, before, after)
            return str(target)
        return TrainingRun.objects.values_list("status", flat=True).get(pk=run.pk)


# Signed blob URLs expire (beta86 says when): links that expire within this margin are
# fetched again before they are shown, and at most once per run per throttle window.
URL_REFRESH_MARGIN = timedelta(minutes=1)
URL_REFRESH_THROTTLE_SECONDS = 10


def _links_expire_by(outputs: dict[str, Any], moment: datetime) -> bool:
    for epoch in (outputs or {}).get("epochs") or []:
        expires = parse_time(epoch.get("urlExpiresAt")) if isinstance(epoch, dict) else None
        if expires is not None and expires <= moment:
            return True
    return False


def _store_epochs(run_id: UUID | str, epochs: list[dict[str, Any]]) -> None:
    """New links for a run's epochs, whatever its state (a finished run's links expire too)."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().only("pk", "outputs").get(pk=run_id)
        # No status in the WHERE: links are refreshed whatever the state; the row lock taken just
        # above keeps a concurrent outputs write from being lost between our read and this write.
        TrainingRun.objects.filter(pk=run.pk).update(
            outputs={**(run.outputs or {}), "epochs": epochs}
        )


def run_outputs_fresh(run: TrainingRun) -> TrainingRun:
    """The run, with epoch links that are still good when it is shown. Best effort: when the
    orchestrator cannot answer, the stored links are shown as they are. Under a contract that
    gives no expiry (beta12) nothing is ever fetched."""
    soon = timezone.now() + URL_REFRESH_MARGIN
    if not run.workflow_id or not _links_expire_by(run.outputs, soon):
        return run
    if not cache.add(f"run-outputs-fresh:{run.pk}", 1, URL_REFRESH_THROTTLE_SECONDS):
        return run  # fetched a moment ago, or being fetched right now
    try:
        workflow = get_client().get(run.workflow_id)
    except OrchestratorError as exc:
        log.warning("run %s: could not refresh expiring output links: %s", run.pk, exc)
        return run
    state = contracts.active().parse_workflow(workflow)
    if run.is_terminal:
        if state.epochs:
            _store_epochs(run.pk, state.epochs)
    else:
        apply_workflow_state(run.pk, workflow_id=run.workflow_id, state=state)
    run.refresh_from_db()
    return run


def run_refresh(*, run_id: UUID | str) -> str:
    """GET the workflow and apply it; the only way orchestrator news reaches a run."""
    run = TrainingRun.objects.get(pk=run_id)
    if run.is_terminal or not run.workflow_id:
        return run.status
    try:
        workflow = get_client().get(run.workflow_id)
    except NotFoundError:
        log.warning("run %s: workflow %s not found at the orchestrator", run.pk, run.workflow_id)
        return run.status
    # Touch the row so the reconciler sees fresh news; a compare-and-set on the status we read, so
    # it never marks a run that moved meanwhile.
    TrainingRun.objects.filter(pk=run.pk, status=run.status).update(updated_at=timezone.now())
    state = contracts.active().parse_workflow(workflow)
    return apply_workflow_state(run.pk, workflow_id=run.workflow_id, state=state)


@dataclass(frozen=True)
class ReconcileReport:
    pending_requeued: list[str]
    submitting_adopted: list[str]
    submitting_requeued: list[str]
    quiet_refreshed: list[str]


def _older_than(seconds: int) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)


def runs_reconcile(*, batch: int = 500) -> ReconcileReport:
    """The safety net (every minute on beat): find runs nobody moved and move them along."""
    pending = [
        str(pk)
        for pk in TrainingRun.objects.filter(
            status=RunStatus.PENDING, updated_at__lt=_older_than(settings.RECONCILE_PENDING_SECONDS)
        )
        .order_by("updated_at")
        .values_list("pk", flat=True)[:batch]
    ]
    adopted: list[str] = []
    requeued: list[str] = []
    stale_submitting = TrainingRun.objects.filter(
        status=RunStatus.SUBMITTING,
        updated_at__lt=_older_than(settings.RECONCILE_SUBMITTING_SECONDS),
    ).order_by("updated_at")[:batch]
    for run in stale_submitting:
        # Never submit twice: ask the orchestrator first whether the workflow exists.
        try:
            existing = get_client().find_by_tag(f"run:{run.pk}")
        except OrchestratorError as exc:
            log.warning("reconcile: cannot look up run %s: %s", run.pk, exc)
            continue
        if existing:
            if _adopt(run, existing[0], how="reconciler adopted the workflow").status != "raced":
                adopted.append(str(run.pk))
        elif transition(
            run.pk,
            expected=RunStatus.SUBMITTING,
            to=RunStatus.PENDING,
            message="reconciler found no workflow; submitting again",
        ):
            requeued.append(str(run.pk))
    quiet = [
        str(pk)
        for pk in TrainingRun.objects.filter(
            status__in=(RunStatus.SUBMITTED, RunStatus.PROCESSING),
            updated_at__lt=_older_than(settings.RECONCILE_QUIET_SECONDS),
        )
        .order_by("updated_at")
        .values_list("pk", flat=True)[:batch]
    ]
    return ReconcileReport(pending, adopted, requeued, quiet)


def run_submit_deadline_passed(*, run_id: str) -> bool:
    """Past this age a run that still could not be submitted fails instead of waiting longer."""
    created = TrainingRun.objects.filter(pk=run_id).values_list("created_at", flat=True).first()
    return (
        created is None
        or (timezone.now() - created).total_seconds() > settings.SUBMIT_DEADLINE_SECONDS
    )
