"""The run's life after it is accepted (DESIGN.md §5): submission, following the workflow,
reconciliation. Every transition is a compare-and-set on the row (`UPDATE … WHERE id = %s AND
status = expected`, with its timeline event in the same statement; `transition_row`), acted on only
when exactly one row changed, so two workers, a late callback and the reconciler can never move a
run twice or backwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
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
from training.payloads import workflow_body
from training.rows import fetch_one
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


INCREMENT = object()  # a field value meaning "its current value plus one", in the same UPDATE


def _transition_sql(
    run_id: UUID | str,
    *,
    expected: RunStatus | str,
    to: RunStatus | str,
    kind: str,
    message: str,
    data: dict[str, Any] | None,
    returning: str,
    fields: dict[str, Any],
) -> tuple[str, list[Any]]:
    """PostgreSQL: one statement updates the row, appends the event and returns `returning`, so a
    transition costs one round trip instead of four (bench/worker_throughput.py). A statement is
    atomic by itself: the event exists exactly when the update happened."""
    run_meta, event_meta = TrainingRun._meta, RunEvent._meta
    q = connection.ops.quote_name
    now = timezone.now()
    sets, params = [f"{q('status')} = %s", f"{q('updated_at')} = %s"], [str(to), now]
    for name, value in fields.items():
        field: Any = run_meta.get_field(name)
        column = q(field.column)
        if value is INCREMENT:
            sets.append(f"{column} = {column} + 1")
        else:
            sets.append(f"{column} = %s")
            params.append(field.get_db_prep_save(value, connection))
    data_field: Any = event_meta.get_field("data")
    event_data = data_field.get_db_prep_save(data or {}, connection)
    # Only model metadata (table and column names, quoted) is interpolated; values are parameters.
    sql = (
        f"WITH moved AS (UPDATE {q(run_meta.db_table)} SET {', '.join(sets)} "  # noqa: S608
        f"WHERE {q('id')} = %s AND {q('status')} = %s RETURNING {returning}), "
        f"logged AS (INSERT INTO {q(event_meta.db_table)} "
        f"({q('run_id')}, {q('created_at')}, {q('kind')}, {q('from_status')}, {q('to_status')}, "
        f"{q('message')}, {q('data')}) "
        f"SELECT {q('id')}, %s, %s, %s, %s, %s, %s FROM moved) "
        f"SELECT {returning} FROM moved"
    )
    params += [str(run_id), str(expected), now, str(kind), str(expected), str(to), message,
               event_data]  # fmt: skip
    return sql, params


def _transition_portable(
    run_id: UUID | str,
    *,
    expected: RunStatus | str,
    to: RunStatus | str,
    kind: str,
    message: str,
    data: dict[str, Any] | None,
    fields: dict[str, Any],
) -> bool:
    # SQLite (the embedded default): the same compare-and-set in a transaction.
    values = {k: F(k) + 1 if v is INCREMENT else v for k, v in fields.items()}
    with transaction.atomic():
        changed = TrainingRun.objects.filter(pk=run_id, status=expected).update(
            status=to, updated_at=timezone.now(), **values
        )
        if changed != 1:
            return False
        RunEvent.objects.create(
            run_id=run_id, kind=kind, from_status=str(expected), to_status=str(to),
            message=message, data=data or {},
        )  # fmt: skip
    return True


def transition_row(
    run_id: UUID | str,
    *,
    expected: RunStatus | str,
    to: RunStatus | str,
    kind: str = RunEvent.Kind.STATUS,
    message: str = "",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> TrainingRun | None:
    """Compare-and-set one run from `expected` to `to`, with its timeline event; returns the run
    as it now is, or None if it was not in `expected` any more (someone else moved it first), in
    which case nothing changes."""
    if connection.vendor != "postgresql":
        moved = _transition_portable(
            run_id, expected=expected, to=to, kind=kind, message=message, data=data, fields=fields
        )
        return TrainingRun.objects.get(pk=run_id) if moved else None
    q = connection.ops.quote_name
    columns = [f.column for f in TrainingRun._meta.concrete_fields]
    sql, params = _transition_sql(
        run_id, expected=expected, to=to, kind=kind, message=message, data=data,
        returning=", ".join(q(c) for c in columns), fields=fields,
    )  # fmt: skip
    row = fetch_one(sql, params)
    if row is None:
        return None
    run_changed_on_commit(run_id)  # webhooks follow the run (training/webhooks/)
    # The columns are the model's own, in its field order, so the row becomes a model as a
    # queryset would build it (the same converters) without re-deriving the mapping every call.
    values = [
        _convert(value, converters)
        for value, converters in zip(row, _row_converters(), strict=True)
    ]
    return TrainingRun.from_db(connection.alias, _FIELD_NAMES, values)


_CONVERTERS: dict[str, list[tuple[Any, list[Any]]]] = {}
_FIELD_NAMES = [f.attname for f in TrainingRun._meta.concrete_fields]


def _row_converters() -> list[tuple[Any, list[Any]]]:
    if connection.alias not in _CONVERTERS:
        table = TrainingRun._meta.db_table
        found = []
        field: Any
        for field in TrainingRun._meta.concrete_fields:
            col = field.get_col(table)
            found.append(
                (col, connection.ops.get_db_converters(col) + field.get_db_converters(connection))
            )
        _CONVERTERS[connection.alias] = found
    return _CONVERTERS[connection.alias]


def _convert(value: Any, converters: tuple[Any, list[Any]]) -> Any:
    expression, functions = converters
    for function in functions:
        value = function(value, expression, connection)
    return value


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
    """Compare-and-set one run from `expected` to `to` (see transition_row); False if someone
    else moved it first. Nothing but the answer comes back, so it costs no model."""
    if connection.vendor != "postgresql":
        return _transition_portable(
            run_id, expected=expected, to=to, kind=kind, message=message, data=data, fields=fields
        )
    sql, params = _transition_sql(
        run_id, expected=expected, to=to, kind=kind, message=message, data=data,
        returning=connection.ops.quote_name("id"), fields=fields,
    )  # fmt: skip
    moved = fetch_one(sql, params) is not None
    if moved:
        run_changed_on_commit(run_id)  # webhooks follow the run (training/webhooks/)
    return moved


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


def run_submit(*, run_id: UUID | str, is_retry: bool = False) -> SubmitOutcome:
    """Send a pending run to the orchestrator exactly once.

    The first attempt claims the run (pending -> submitting) and POSTs. Any later attempt first
    looks the workflow up by its `run:<id>` tag, because an earlier POST may have been accepted
    although its answer was lost; only when none exists does it POST again."""
    # The claim counts the attempt it is about to make in the same UPDATE: if we die mid-POST,
    # the next attempt sees the count and looks the workflow up before posting again.
    claimed = transition_row(
        run_id,
        expected=RunStatus.PENDING,
        to=RunStatus.SUBMITTING,
        message="a worker claimed the run",
        submit_attempts=INCREMENT,
    )
    run = claimed or TrainingRun.objects.get(pk=run_id)
    if claimed:
        posted_before = run.submit_attempts > 1  # an earlier chain, reset by the reconciler
    elif is_retry and run.status == RunStatus.SUBMITTING:
        # Count this attempt and touch the row in one go, so the reconciler never mistakes a
        # live retry chain for a run whose worker died (it waits RECONCILE_SUBMITTING_SECONDS).
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
        workflow = client.submit(workflow_body(run, run_id=run.pk))
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
                # Same status, more news (an epoch finished): record it on the same state.
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


def callback_record(*, run_id: UUID | str, workflow_id: str, status: str) -> str:
    """Record an orchestrator callback and ask for a fresh GET; the payload itself is never
    trusted for state. Returns what happened, for the log and the response."""
    run = TrainingRun.objects.filter(pk=run_id).only("pk", "workflow_id", "status").first()
    if run is None:
        log.warning("callback for unknown run %s (workflow %s)", run_id, workflow_id)
        return "unknown_run"
    if run.workflow_id and run.workflow_id != workflow_id:
        log.warning(
            "callback for run %s names workflow %s, not %s", run.pk, workflow_id, run.workflow_id
        )
        return "foreign_workflow"
    _note(run.pk, RunEvent.Kind.CALLBACK, f"orchestrator reports {status}", {
        "workflowId": workflow_id, "status": status,
    })  # fmt: skip
    if not run.workflow_id:
        return "recorded"  # our submit answer is not in yet; the reconciler finds it by tag
    if not run.is_terminal:
        transaction.on_commit(lambda: _enqueue_refresh(str(run.pk)), robust=True)
    return "accepted"


def _enqueue_refresh(run_id: str) -> None:
    from training.tasks import refresh_run_task

    refresh_run_task.delay(run_id)
