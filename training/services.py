"""Every write to training runs. Each state change is a compare-and-set on the row."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db import transaction

from training.models import RunEvent, RunStatus, TrainingRun
from training.orchestrator import contracts
from training.orchestrator.callbacks import callback_url
from training.orchestrator.contracts import RunLike
from training.params import Problem
from training.runspec import RunRejected, RunSpec

log = logging.getLogger(__name__)

# Previews have no run yet: they show the body with this id in its place.
PREVIEW_RUN_ID = UUID(int=0)


def workflow_body(run: RunLike, *, run_id: UUID | str) -> dict[str, Any]:
    """The exact workflow body the worker will POST for this run, under the active contract."""
    return contracts.active().build_workflow(
        run, run_id=str(run_id), callback_url=callback_url(run_id)
    )


def _checked_body(spec: RunSpec, *, run_id: UUID | str) -> dict[str, Any]:
    body = workflow_body(spec, run_id=run_id)
    wire_problems = contracts.active().validate_workflow(body)
    if wire_problems:
        # The catalog keeps runs inside the contract, so this means a value the contract refuses
        # that our own checks let through: refuse the run rather than store one that cannot run.
        raise RunRejected(
            [
                Problem(f"payload.{p.path}", "contract", f"The orchestrator would refuse it: {p.message}")
                for p in wire_problems
            ]
        )
    return body


def training_run_preview(*, spec: RunSpec) -> dict[str, Any]:
    return _checked_body(spec, run_id=PREVIEW_RUN_ID)


@transaction.atomic
def training_run_create(*, owner: Any, spec: RunSpec) -> TrainingRun:
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
    )
    _checked_body(spec, run_id=run.id)
    run.save(force_insert=True)
    RunEvent.objects.create(run=run, kind=RunEvent.Kind.CREATED, to_status=RunStatus.PENDING)
    return run
