"""The exact workflow body a run sends, under the active contract, checked against its schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from training.orchestrator import contracts
from training.orchestrator.callbacks import callback_url
from training.orchestrator.contracts import RunLike
from training.runspec import RunRejected
from vocabulary.params import Problem

if TYPE_CHECKING:
    from training.models import TrainingRun

# Previews have no run yet: they show the body with this id in its place.
PREVIEW_RUN_ID = UUID(int=0)


def workflow_body(run: RunLike, *, run_id: UUID | str) -> dict[str, Any]:
    """The exact workflow body the worker will POST for this run."""
    return contracts.active().build_workflow(
        run, run_id=str(run_id), callback_url=callback_url(run_id)
    )


def checked_workflow_body(run: RunLike, *, run_id: UUID | str) -> dict[str, Any]:
    contract = contracts.active()
    unsent = contract.params_not_sent(run)
    if unsent:
        # The catalog offers only what the contract carries; a parameter it would leave out of the
        # body is refused, never accepted and dropped (#17).
        raise RunRejected(
            [
                Problem(
                    f"params.{name}",
                    "not_carried",
                    f"{name} cannot be sent to the orchestrator ({contract.name}); remove it.",
                )
                for name in sorted(unsent)
            ]
        )
    body = workflow_body(run, run_id=run_id)
    wire_problems = contract.validate_workflow(body)
    if wire_problems:
        # The catalog keeps runs inside the contract, so this is a value our own checks let
        # through that the contract refuses: refuse the run rather than store one that can't run.
        raise RunRejected(
            [
                Problem(
                    f"payload.{p.path}",
                    "contract",
                    f"The orchestrator would refuse it: {p.message}",
                )
                for p in wire_problems
            ]
        )
    return body


def stored_workflow_body(run: TrainingRun) -> dict[str, Any]:
    """The body stored when the run was created: what the worker POSTs and what the API and the
    pages show. Runs created before bodies were stored get theirs built now, as then."""
    return run.payload or workflow_body(run, run_id=run.pk)
