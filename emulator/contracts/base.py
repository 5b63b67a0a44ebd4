"""What a wire contract gives the emulator: validation, a plan per step, and the response shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from urllib.parse import quote

from emulator.records import JsonObject, StepPlan, WorkflowRecord, iso
from training.orchestrator.contracts.base import WireError, air_regex


class EmulatorContract(Protocol):
    name: str
    # Whether the contract has a moderation status to report (beta86): only then does the
    # `moderation` fault hold or reject workflows.
    reports_moderation: bool

    def validate(self, body: Mapping[str, object]) -> list[WireError]: ...

    def plan(self, body: Mapping[str, object]) -> StepPlan:
        """Read a validated WorkflowTemplate's (single) step."""
        ...

    def render_workflow(
        self,
        wf: WorkflowRecord,
        *,
        base_url: str,
        preceding_jobs: int,
        eta: float,
        url_ttl_seconds: float,
    ) -> JsonObject: ...

    def event_details(self, wf: WorkflowRecord) -> JsonObject | None:
        """The `details` of a workflow event for callbacks that ask for them, if it has any."""
        ...


_AIR = air_regex(r"a-zA-Z0-9_\-/.=,%+:")


def air_ecosystem(air: str) -> str:
    match = _AIR.match(air)
    return (match.group("ecosystem") or "") if match else ""


def obj(mapping: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}


def integer(mapping: Mapping[str, object], key: str, default: int) -> int:
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def text(mapping: Mapping[str, object], key: str, default: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else default


def strings(mapping: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = mapping.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def first_step(body: Mapping[str, object]) -> Mapping[str, object]:
    steps = body.get("steps")
    if isinstance(steps, Sequence) and steps and isinstance(steps[0], Mapping):
        return steps[0]
    return {}


def blob_url(base_url: str, workflow_id: str | None, file: str) -> str:
    return f"{base_url}/blobs/{quote(workflow_id or 'whatif', safe='')}/{quote(file, safe='')}"


def job(wf: WorkflowRecord, preceding_jobs: int) -> JsonObject:
    return {
        "id": wf.job_id,
        "status": wf.status,
        "cost": wf.cost,
        "startedAt": iso(wf.started_at),
        "completedAt": iso(wf.completed_at),
        "queuePosition": {"support": "available", "precedingJobs": preceding_jobs},
    }


def step(wf: WorkflowRecord, output: JsonObject, preceding_jobs: int) -> JsonObject:
    template = first_step(wf.template)
    return {
        "$type": wf.plan.step_type,
        "name": text(template, "name", "") or "0",
        "priority": wf.plan.priority,
        "timeout": template.get("timeout"),
        "retries": template.get("retries"),
        "status": wf.status,
        "startedAt": iso(wf.started_at),
        "completedAt": iso(wf.completed_at),
        "metadata": template.get("metadata") or {},
        "input": template.get("input"),
        "output": output,
        "jobs": [job(wf, preceding_jobs)],
    }


def workflow(wf: WorkflowRecord, steps: list[JsonObject]) -> JsonObject:
    template = wf.template
    body: JsonObject = {
        "id": wf.id,
        "createdAt": iso(wf.created_at),
        "startedAt": iso(wf.started_at),
        "completedAt": iso(wf.completed_at),
        "status": wf.status,
        "steps": steps,
        "cost": {"base": wf.cost, "total": wf.cost, "tips": {"civitai": 0, "creators": 0}},
        "transactions": {"list": [{"type": "debit", "amount": wf.cost, "accountType": "yellow"}]},
        "metadata": wf.metadata,
        "tags": list(wf.tags),
        "callbacks": template.get("callbacks") or [],
        "tips": template.get("tips") or {"civitai": 0, "creators": 0},
        "arguments": template.get("arguments") or {},
        "upgradeMode": template.get("upgradeMode") or "manual",
        "currencies": template.get("currencies") or [],
    }
    for optional in ("nsfwLevel", "experimental", "allowMatureContent"):
        if optional in template:
            body[optional] = template[optional]
    return body
