"""Crafted runs for the console tests: every timestamp set exactly, relative to now."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from console.rollup import rollup_refresh
from training.models import RunEvent, TrainingRun

MIN = 60.0


def ago(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return timezone.now() - timedelta(days=days, hours=hours, minutes=minutes)


def make_run(
    owner: User,
    *,
    engine: str = "kohya",
    base_model: str = "sdxl",
    status: str = "succeeded",
    created: datetime | None = None,
    submit_after: float | None = 5.0,  # seconds after creation
    queue: float | None = 60.0,  # seconds from submission to start
    duration: float | None = 600.0,  # seconds from start to completion
    cost: int | None = 500,
    error_code: str = "",
    error_message: str = "",
    params: dict[str, Any] | None = None,
    workflow_id: str = "",
) -> TrainingRun:
    """A run as the lifecycle leaves it. Times chain from `created` (default: 2 days ago);
    a None step stops the chain (not submitted, not started, not completed)."""
    created = created or ago(days=2)
    submitted = started = completed = None
    if submit_after is not None:
        submitted = created + timedelta(seconds=submit_after)
        if queue is not None:
            started = submitted + timedelta(seconds=queue)
            if duration is not None and status in ("succeeded", "failed", "expired", "canceled"):
                completed = started + timedelta(seconds=duration)
    if completed is None and status in ("succeeded", "failed", "expired", "canceled"):
        completed = created + timedelta(minutes=1)
    eco = {"sdxl": "sdxl", "flux_dev": "flux1", "wan_2_1_t2v_14b": "wan", "sd_1_5": "sd1"}
    run = TrainingRun.objects.create(
        owner=owner,
        base_model=base_model,
        engine=engine,
        ecosystem=eco.get(base_model, "") if engine == "ai-toolkit" else "",
        params=params if params is not None else {},
        training_data_url="https://data.example.com/set.zip",
        image_count=20,
        lora_name="crafted",
        status=status,
        workflow_id=workflow_id or ("wf-crafted" if submitted else ""),
        charged_cost=cost,
        estimated_cost=cost,
        error_code=error_code,
        error_message=error_message,
        submitted_at=submitted,
        started_at=started,
        completed_at=completed,
    )
    # created_at is auto_now_add: set it afterwards (update() leaves updated_at as it is: now).
    TrainingRun.objects.filter(pk=run.pk).update(created_at=created)
    run.created_at = created
    return run


def event(run: TrainingRun, kind: str, message: str = "", at: datetime | None = None) -> RunEvent:
    ev = RunEvent.objects.create(run=run, kind=kind, message=message)
    if at is not None:
        RunEvent.objects.filter(pk=ev.pk).update(created_at=at)
    return ev


def refreshed() -> None:
    """A complete rollup pass, as the periodic task leaves it."""
    rollup_refresh(full=True)
