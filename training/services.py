"""Every write a user or the API starts. Each state change is a compare-and-set on the row."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from training.lifecycle import transition
from training.models import ACTIVE_STATUSES, RunEvent, RunStatus, TrainingRun
from training.orchestrator.client import OrchestratorError, get_client
from training.orchestrator.contracts import active as active_contract
from training.payloads import PREVIEW_RUN_ID, checked_workflow_body
from training.runspec import RunRejected, RunSpec, resolve_run
from training.tasks import submit_run_task
from vocabulary import catalog
from vocabulary.params import Problem

log = logging.getLogger(__name__)


class RunConflict(Exception):
    """The run is in a state that does not allow the action (409)."""


class OrchestratorUnavailable(Exception):
    """The orchestrator could not answer now (503); nothing changed."""


class ActiveRunLimit(Exception):
    """The owner already has as many unfinished runs as allowed (429)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} runs pending or training, the most allowed at once; "
            "wait for one to finish or cancel one."
        )
        self.limit = limit


def training_run_preview(*, spec: RunSpec) -> dict[str, Any]:
    return checked_workflow_body(spec, run_id=PREVIEW_RUN_ID)


def _enqueue_submit(run_id: str) -> None:
    try:
        submit_run_task.delay(run_id)
    except Exception:  # the broker is away: the run is committed, the reconciler re-enqueues it
        log.warning(
            "could not enqueue run %s; the reconciler will pick it up", run_id, exc_info=True
        )


def _estimate_key(spec: RunSpec) -> str:
    # By the resolved run (every effective value) under the active contract: the body is built
    # from exactly these, so equal specs ask the same price, and a create finds the price its
    # estimate cached without building a body of its own to look it up.
    canonical = json.dumps(vars(spec), sort_keys=True, default=str)
    return (
        "estimate:" + active_contract().name + ":" + hashlib.sha256(canonical.encode()).hexdigest()
    )


@transaction.atomic
def training_run_create(
    *, owner: Any, spec: RunSpec, retried_from: TrainingRun | None = None
) -> TrainingRun:
    run = TrainingRun(
        owner=owner,
        base_model=spec.base_model,
        custom_model=spec.custom_model,
        engine=spec.engine,
        ecosystem=spec.ecosystem,
        model_variant=spec.model_variant,
        params=spec.params,
        training_data_url=spec.training_data_url,
        image_count=spec.image_count,
        sample_prompts=spec.sample_prompts,
        negative_prompt=spec.negative_prompt,
        lora_name=spec.lora_name,
        priority=spec.priority,
        status=RunStatus.PENDING,
        retried_from=retried_from,
        experiment_id=spec.experiment_id,
        experiment_arm_id=spec.experiment_arm_id,
        experiment_outcome=spec.experiment_outcome,
    )
    # The body is built and checked once, with the run's own id, and stored: the worker POSTs
    # it and the API shows it, as it was when the run was accepted.
    run.payload = checked_workflow_body(spec, run_id=run.id)
    # The price the user saw, when they asked for it (the pages always do) within the cache window.
    quoted = cache.get(_estimate_key(spec))
    if isinstance(quoted, dict):
        run.estimated_cost = quoted.get("cost", {}).get("total")
    cap = settings.TRAINING_MAX_ACTIVE_RUNS
    # The owner's row is locked until the transaction ends, so two creates by one user are
    # counted one after the other; the count is its own statement, whose snapshot is taken after
    # the lock is held (it sees a run committed while we waited). It stops at the cap, so its
    # cost never grows with a user's runs.
    get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk").get()
    mine = TrainingRun.objects.filter(owner_id=owner.pk, status__in=ACTIVE_STATUSES)
    if mine[:cap].count() >= cap:
        raise ActiveRunLimit(cap)
    run.save(force_insert=True)
    RunEvent.objects.create(run=run, kind=RunEvent.Kind.CREATED, to_status=RunStatus.PENDING)
    # Enqueue only once the row is committed, so a worker can never look for a run that isn't there.
    transaction.on_commit(lambda: _enqueue_submit(str(run.id)))
    return run


@dataclass(frozen=True)
class Estimate:
    cost: dict[str, int | None]
    jobsAhead: int | None  # camelCase: the API's spelling
    etaMinutes: float | None
    workflow: dict[str, Any]
    warnings: list[str]
    cached: bool = False


def training_run_estimate(*, spec: RunSpec) -> Estimate:
    """The orchestrator's whatif answer for the exact body this run would send; cached briefly
    by request content so a form's repeated asks cost one call."""
    from vocabulary.params import run_warnings

    body = checked_workflow_body(spec, run_id=PREVIEW_RUN_ID)
    key = _estimate_key(spec)
    hit = cache.get(key)
    if isinstance(hit, dict):
        return Estimate(**{**hit, "cached": True})
    try:
        answer = get_client().submit(body, whatif=True)
    except OrchestratorError as exc:
        if exc.kind == "rejected":
            raise RunRejected([Problem("payload", "orchestrator_rejected", exc.message)]) from exc
        raise OrchestratorUnavailable(exc.message) from exc
    state = active_contract().parse_workflow(answer)
    cost = answer.get("cost") or {}
    estimate = Estimate(
        cost={"base": cost.get("base"), "total": cost.get("total")},
        jobsAhead=state.jobs_ahead,
        etaMinutes=state.eta_minutes,
        workflow=body,
        warnings=run_warnings(spec),
    )
    cache.set(key, asdict(estimate), settings.ESTIMATE_CACHE_SECONDS)
    return estimate


MIN_CANCEL_REASON = 10  # characters: "spam" tells the owner nothing


class CancelReasonRequired(ValueError):
    pass


def training_run_cancel(*, run: TrainingRun, actor: Any = None, reason: str = "") -> TrainingRun:
    """Pending: cancel here. Submitted or processing: cancel at the orchestrator, then record.
    A moderator (actor other than the owner) must give a reason; the owner reads it on the
    run's timeline (docs/console.md)."""
    by_moderator = actor is not None and actor.pk != run.owner_id
    reason = reason.strip()
    if by_moderator and len(reason) < MIN_CANCEL_REASON:
        raise CancelReasonRequired(
            f"Write a reason of at least {MIN_CANCEL_REASON} characters; the owner will read it."
        )
    who, note = ("a moderator", f": {reason}") if by_moderator else ("the owner", "")
    data = {"canceled_by": actor.get_username(), "reason": reason} if by_moderator else None
    if run.status == RunStatus.PENDING and transition(
        run.pk,
        expected=RunStatus.PENDING,
        to=RunStatus.CANCELED,
        message=f"canceled by {who} before submission{note}",
        data=data,
        completed_at=timezone.now(),
    ):
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    if run.status == RunStatus.SUBMITTING:
        raise RunConflict("The run is being submitted right now; try again in a few seconds.")
    if run.is_terminal:
        raise RunConflict(f"The run has already {run.status}; there is nothing to cancel.")
    try:
        get_client().cancel(run.workflow_id)
    except OrchestratorError as exc:
        if exc.kind in ("transient", "auth"):
            raise OrchestratorUnavailable(
                "The orchestrator did not confirm the cancel; try again shortly."
            ) from exc
        log.warning("cancel of run %s refused by the orchestrator: %s", run.pk, exc)
    transition(
        run.pk,
        expected=run.status,
        to=RunStatus.CANCELED,
        message=f"canceled by {who}{note}",
        data=data,
        orchestrator_status="canceled",
        completed_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


RETRYABLE = (RunStatus.FAILED, RunStatus.EXPIRED, RunStatus.CANCELED)


def training_run_retry(*, run: TrainingRun, user: Any) -> TrainingRun:
    """A new run with the same configuration, validated under today's rules; the old one stays."""
    if run.status not in RETRYABLE:
        raise RunConflict(
            f"Only failed, expired or canceled runs can be retried; this one is {run.status}."
        )
    params = dict(run.params)
    if run.engine == catalog.RAPID:
        params = {}
    data = {
        "baseModel": run.base_model,
        "customModel": run.custom_model,
        "engine": run.engine,
        "loraName": run.lora_name,
        "trainingData": {"url": run.training_data_url, "imageCount": run.image_count},
        "samplePrompts": run.sample_prompts,
        "negativePrompt": run.negative_prompt,
        "priority": run.priority,
        "params": {k: v for k, v in params.items() if not _is_locked(run, k)},
    }
    spec = resolve_run(user=user, data=data)
    return training_run_create(owner=user, spec=spec, retried_from=run)


def _is_locked(run: TrainingRun, name: str) -> bool:
    specs = catalog.param_spec_map(run.base_model, run.engine, active_contract().name)  # type: ignore[arg-type]
    spec = specs.get(name)
    return spec is None or spec.locked or (name == "textEncoderLr" and run.params.get(name) is None)
