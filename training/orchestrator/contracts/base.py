"""What every wire contract offers, and the shape of a run it builds a workflow from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from vocabulary.catalog import BaseModel


class RunLike(Protocol):
    """A validated run: a stored TrainingRun or a not-yet-stored RunSpec (read-only view)."""

    @property
    def base_model(self) -> str: ...
    @property
    def custom_model(self) -> str: ...
    @property
    def engine(self) -> str: ...
    @property
    def ecosystem(self) -> str: ...
    @property
    def model_variant(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def training_data_url(self) -> str: ...
    @property
    def image_count(self) -> int: ...
    @property
    def sample_prompts(self) -> list[str]: ...
    @property
    def negative_prompt(self) -> str: ...
    @property
    def lora_name(self) -> str: ...
    @property
    def priority(self) -> str: ...


@dataclass(frozen=True)
class WorkflowState:
    """What a workflow says about a run, read the contract's way."""

    status: str  # the orchestrator's WorkflowStatus
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cost: int | None = None  # Buzz quoted for the whole workflow
    charged: int | None = None  # debits minus credits, when transactions are listed
    epochs: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""  # why it failed, when it says
    moderation: str | None = None
    jobs_ahead: int | None = None
    eta_minutes: float | None = None


@dataclass(frozen=True)
class WireError:
    path: str
    message: str


class Contract(Protocol):
    name: str

    def build_workflow(self, run: RunLike, *, run_id: str, callback_url: str) -> dict[str, Any]: ...

    def validate_workflow(self, body: Mapping[str, Any]) -> list[WireError]: ...

    def ai_toolkit_unavailable(self, base: BaseModel) -> str | None:
        """Why this contract cannot train the base model with AI Toolkit, or None if it can."""
        ...

    def parse_workflow(self, workflow: Mapping[str, Any]) -> WorkflowState: ...

    def ai_toolkit_epochs_range(self) -> tuple[int, int]:
        """The AI Toolkit `epochs` the wire accepts (inclusive); the catalog must stay inside."""
        ...

    def ai_toolkit_steps(self, run: RunLike) -> int | None:
        """The `steps` an AI Toolkit run sends, or None where the contract has no such field."""
        ...

    def params_not_sent(self, run: RunLike) -> frozenset[str]:
        """The run's parameters this contract has no field for. A run with any is refused when
        accepted (payloads.checked_workflow_body); only a run stored under another contract can
        have some, and they are left out of its body."""
        ...


def air_regex(version_chars: str) -> re.Pattern[str]:
    return re.compile(
        r"^(?:urn:)?(?:air:)?(?:(?P<ecosystem>[a-zA-Z0-9_\-/]+):)?(?:(?P<type>[a-zA-Z0-9_\-/]+):)?"
        r"(?P<source>[a-zA-Z0-9_\-/]+):(?P<id>[a-zA-Z0-9_\-/.]+)"
        rf"(?:@(?P<version>[{version_chars}]+))?(?:\.(?P<format>[a-zA-Z0-9_\-]+))?$"
    )


def wire_errors(exc: ValidationError, *, skip: Sequence[str] = ()) -> list[WireError]:
    """Pydantic errors as dotted paths (`steps[0].input.epochs`), without union tag segments."""
    out: list[WireError] = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part in skip:
                continue
            else:
                path += f".{part}" if path else str(part)
        out.append(WireError(path=path, message=err["msg"]))
    return out


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def charged_from(workflow: Mapping[str, Any]) -> int | None:
    entries = (workflow.get("transactions") or {}).get("list") or []
    if not entries:
        return None
    total = 0
    for entry in entries:
        amount = int(entry.get("amount") or 0)
        total += amount if entry.get("type") == "debit" else -amount
    return total


def first_step(workflow: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The training step's output and its first job: every training workflow has one step."""
    steps = workflow.get("steps") or []
    step: Mapping[str, Any] = steps[0] if steps and isinstance(steps[0], Mapping) else {}
    jobs = step.get("jobs") or []
    job: Mapping[str, Any] = jobs[0] if jobs and isinstance(jobs[0], Mapping) else {}
    return step.get("output") or {}, job


def failure_message(status: str, output: Mapping[str, Any], job: Mapping[str, Any]) -> str:
    if status not in ("failed", "expired", "canceled"):
        return ""
    reason = job.get("reason") or job.get("blockedReason") or output.get("reason")
    return f"The orchestrator reports the workflow {status}" + (f": {reason}" if reason else ".")


MAX_TRAINING_RETRIES = 2  # the step's `retries` (Civitai's constants.maxTrainingRetries)


def training_step(
    run: RunLike,
    *,
    run_id: str,
    new_input: Callable[[RunLike], dict[str, Any]],
    legacy_input: Callable[[RunLike], dict[str, Any]],
) -> dict[str, Any]:
    """AI Toolkit runs use the new `training` step, the other engines the legacy one."""
    if run.engine == "ai-toolkit":
        step_type, step_input = "training", new_input(run)
    else:
        step_type, step_input = "imageResourceTraining", legacy_input(run)
    return {
        "$type": step_type,
        "priority": run.priority,
        "retries": MAX_TRAINING_RETRIES,
        "metadata": {"runId": run_id},
        "input": step_input,
    }


def workflow_state(
    workflow: Mapping[str, Any],
    *,
    epochs: Callable[[Mapping[str, Any]], list[dict[str, Any]]],
    eta_minutes: Callable[[Mapping[str, Any], Mapping[str, Any]], float | None],
) -> WorkflowState:
    """What both contracts read the same way; the epochs and the ETA each contract reads its own."""
    output, job = first_step(workflow)
    status = str(workflow.get("status") or "")
    moderation = output.get("moderationStatus")
    return WorkflowState(
        status=status,
        started_at=parse_time(workflow.get("startedAt")),
        completed_at=parse_time(workflow.get("completedAt")),
        cost=(workflow.get("cost") or {}).get("total"),
        charged=charged_from(workflow),
        epochs=epochs(output),
        message=failure_message(status, output, job),
        moderation=moderation if isinstance(moderation, str) else None,
        jobs_ahead=(job.get("queuePosition") or {}).get("precedingJobs"),
        eta_minutes=eta_minutes(output, job),
    )
