"""Operator-wide reads of runs and run events: the aggregates the console's rollups and /metrics
are built from, across every owner.

Why a module of its own rather than more functions in `selectors.py`: the reads there serve a
request for its user, scoped by owner (another user's run does not exist for them), and the module
sits on the flags and experiments layers to resolve what that user may see. These take no user,
answer for the whole service and need nothing but the runs table, so the console's read path does
not pull in the gate. (`selectors.engine_success_rate`, the rollout guard's one number, predates
this module and stays there under the name flags and the docs know it by.) They return plain rows
(dataclasses, tuples, sets), never a queryset to refine: how runs are queried (day ranges, the
params' JSON keys, which event messages are which error kind) stays here, beside the models; what
is kept of it and how it is shown stays in `console/`.

Days are UTC days. A set of days is queried as datetime ranges, consecutive days merged, so the
indexes on `created_at`/`completed_at` serve them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from django.db import models
from django.db.models import Case, Count, F, Max, Min, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, TruncDate

from training.models import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    TERMINAL_STATUSES,
    RunEvent,
    RunStatus,
    TrainingRun,
)
from vocabulary import catalog

# The run vocabulary the console needs to label what these functions return (re-exported, so the
# console imports nothing else from the runs layer).
__all__ = [
    "ACTIVE_STATUSES",
    "AI_TOOLKIT_BASES",
    "ERROR_KINDS",
    "EVENT_KINDS",
    "FINISHED_STATUSES",
    "PARAMS",
    "TERMINAL_STATUSES",
    "ActiveRuns",
    "CompletedRunsDay",
    "CreatedRunsDay",
    "EventsDay",
    "LatencyDay",
    "LatestRuns",
    "ParamDay",
    "RunEventKind",
    "RunStatus",
    "RunTiming",
    "TouchedDays",
    "active_runs",
    "events_per_day",
    "first_run_times",
    "latest_runs_created_on",
    "latest_runs_touched_since",
    "param_counts_per_day",
    "run_counts_completed_per_day",
    "run_counts_created_per_day",
    "run_timings_finished_on",
    "submit_latency_per_day",
    "touched_days_since",
]

RunEventKind = RunEvent.Kind
# The events counted per day: orchestrator callbacks, and submission errors by kind.
EVENT_KINDS = (RunEventKind.CALLBACK, RunEventKind.SUBMIT_ERROR)
ERROR_KINDS = ("transient", "auth", "rejected")  # lifecycle's "<kind>: <message>" prefixes
# Base models on which a user could have chosen AI Toolkit: the adoption denominator.
AI_TOOLKIT_BASES = tuple(
    k for k, b in catalog.BASE_MODELS.items() if catalog.AI_TOOLKIT in b.engines
)
# The parameters counted per value, under these names; `params` holds them under the engine's own
# names (AI Toolkit's epochs are `epochs`, the legacy engines' `maxTrainEpochs`).
PARAMS = ("optimizer", "scheduler", "network_dim", "epochs")
_PARAM_KEYS: dict[str, Any] = {
    "optimizer": KeyTextTransform("optimizerType", "params"),
    "scheduler": KeyTextTransform("lrScheduler", "params"),
    "network_dim": KeyTextTransform("networkDim", "params"),
    "epochs": Coalesce(
        KeyTextTransform("epochs", "params"), KeyTextTransform("maxTrainEpochs", "params")
    ),
}


# --- days ----------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _ranges(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Days as [start, end) datetime ranges, consecutive days merged."""
    out: list[tuple[datetime, datetime]] = []
    for day in sorted(set(days)):
        start = _day_start(day)
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], start + timedelta(days=1))
        else:
            out.append((start, start + timedelta(days=1)))
    return out


def _days_q(field: str, days: Iterable[date]) -> Q:
    q = Q()
    for start, end in _ranges(days):
        q |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
    return q


def _utc_date(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=UTC)


# --- runs per day --------------------------------------------------------------------------------


def first_run_times() -> tuple[datetime | None, datetime | None]:
    """When the oldest run was created, and when the first one completed (None: no such run).
    Completion follows creation, but imported or repaired rows may not: callers take both."""
    firsts = TrainingRun.objects.aggregate(c=Min("created_at"), d=Min("completed_at"))
    return firsts["c"], firsts["d"]


@dataclass(frozen=True)
class CreatedRunsDay:
    day: date
    engine: str
    base_model: str
    runs: int
    cost_runs: int  # runs with a charged cost
    cost_total: int


def run_counts_created_per_day(days: Iterable[date]) -> list[CreatedRunsDay]:
    """Runs created on the days, per day, engine and base model, with their charged cost."""
    rows = (
        TrainingRun.objects.filter(_days_q("created_at", days))
        .annotate(day=_utc_date("created_at"))
        .values("day", "engine", "base_model")
        .annotate(
            runs=Count("pk"),
            cost_runs=Count("charged_cost"),
            cost_total=Coalesce(Sum("charged_cost"), 0),
        )
        .order_by()
    )
    return [CreatedRunsDay(**row) for row in rows]


@dataclass(frozen=True)
class CompletedRunsDay:
    day: date
    engine: str
    base_model: str
    error_code: str
    runs: int  # every run that ended: the four outcomes below
    succeeded: int
    failed: int
    expired: int
    canceled: int
    error_example: str | None  # one message with this error code


def run_counts_completed_per_day(days: Iterable[date]) -> list[CompletedRunsDay]:
    """Runs that reached a final status on the days, per day, engine, base model and error code,
    by outcome."""
    rows = (
        TrainingRun.objects.filter(_days_q("completed_at", days), status__in=TERMINAL_STATUSES)
        .annotate(day=_utc_date("completed_at"))
        .values("day", "engine", "base_model", "error_code")
        .annotate(
            runs=Count("pk"),
            succeeded=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("pk", filter=Q(status=RunStatus.FAILED)),
            expired=Count("pk", filter=Q(status=RunStatus.EXPIRED)),
            canceled=Count("pk", filter=Q(status=RunStatus.CANCELED)),
            error_example=Max("error_message"),
        )
        .order_by()
    )
    return [CompletedRunsDay(**row) for row in rows]


@dataclass(frozen=True)
class ParamDay:
    day: date
    engine: str
    values: dict[str, str | None]  # PARAMS name -> the value as text (None: not set)
    runs: int
    succeeded: int
    finished: int  # succeeded + failed + expired


def param_counts_per_day(days: Iterable[date]) -> list[ParamDay]:
    """Runs created on the days, per day, engine and combination of PARAMS values, and how many
    of them have finished and succeeded."""
    rows = (
        TrainingRun.objects.filter(_days_q("created_at", days))
        .annotate(day=_utc_date("created_at"), **_PARAM_KEYS)
        .values("day", "engine", *PARAMS)
        .annotate(
            n=Count("pk"),
            ok=Count("pk", filter=Q(status=RunStatus.SUCCEEDED)),
            done=Count("pk", filter=Q(status__in=FINISHED_STATUSES)),
        )
        .order_by()
    )
    return [
        ParamDay(
            day=r["day"],
            engine=r["engine"],
            values={p: r[p] for p in PARAMS},
            runs=r["n"],
            succeeded=r["ok"],
            finished=r["done"],
        )
        for r in rows
    ]


class RunTiming(NamedTuple):
    engine: str
    base_model: str
    succeeded: bool
    submitted_at: datetime | None
    started_at: datetime | None
    completed_at: datetime


def run_timings_finished_on(days: Iterable[date]) -> list[RunTiming]:
    """Every run that finished (succeeded, failed or expired) on the days, with its timestamps:
    one row per run, for the caller's durations and queue waits."""
    runs = TrainingRun.objects.filter(_days_q("completed_at", days), status__in=FINISHED_STATUSES)
    fields = ("engine", "base_model", "status", "submitted_at", "started_at", "completed_at")
    return [
        RunTiming(engine, base_model, status == RunStatus.SUCCEEDED, submitted, started, completed)
        for engine, base_model, status, submitted, started, completed in runs.values_list(*fields)
    ]


@dataclass(frozen=True)
class LatencyDay:
    day: date
    counts: tuple[int, ...]  # runs per bucket: one per bound, then one above the last bound
    total: timedelta | None  # the latencies summed


def submit_latency_per_day(days: Iterable[date], *, bounds: Sequence[float]) -> list[LatencyDay]:
    """Submission latency (created -> submitted) of the runs created on the days, per day, in
    buckets (low, bound] of seconds; runs not submitted yet are not counted."""
    latency = F("submitted_at") - F("created_at")
    buckets: dict[str, Any] = {}
    low: timedelta | None = None
    for bound in (*bounds, None):
        within = Q() if low is None else Q(latency__gt=low)
        if bound is not None:
            within &= Q(latency__lte=timedelta(seconds=bound))
        buckets[f"b{len(buckets)}"] = Count("pk", filter=within)
        low = timedelta(seconds=bound) if bound is not None else None
    rows = (
        # submitted_at before created_at is a clock problem, not a latency: left out.
        TrainingRun.objects.filter(_days_q("created_at", days), submitted_at__gte=F("created_at"))
        .annotate(day=_utc_date("created_at"), latency=latency)
        .values("day")
        .annotate(total=Sum("latency"), **buckets)
        .order_by()
    )
    return [
        LatencyDay(day=r["day"], counts=tuple(r[b] for b in buckets), total=r["total"])
        for r in rows
    ]


# --- events per day ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventsDay:
    day: date
    kind: str  # one of EVENT_KINDS
    label: str  # submission errors: one of ERROR_KINDS or "other"; callbacks: ""
    events: int


def events_per_day(days: Iterable[date]) -> list[EventsDay]:
    """Callbacks and submission errors recorded on the days, errors by kind."""
    label = Case(
        *[
            When(kind=RunEventKind.SUBMIT_ERROR, message__startswith=f"{k}:", then=Value(k))
            for k in ERROR_KINDS
        ],
        When(kind=RunEventKind.SUBMIT_ERROR, then=Value("other")),
        default=Value(""),
        output_field=models.CharField(),
    )
    rows = (
        RunEvent.objects.filter(_days_q("created_at", days), kind__in=EVENT_KINDS)
        .annotate(day=_utc_date("created_at"), label=label)
        .values("day", "kind", "label")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return [EventsDay(day=r["day"], kind=r["kind"], label=r["label"], events=r["n"]) for r in rows]


# --- what changed --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TouchedDays:
    created: set[date]  # creation days of runs touched since then
    completed: set[date]  # completion days of those of them that ended
    events: set[date]  # days of the EVENT_KINDS events recorded since then


def touched_days_since(since: datetime) -> TouchedDays:
    """The days whose per-day figures may have changed since `since`, by `updated_at` (which
    every transition sets) and by the events' own time."""
    created: set[date] = set()
    completed: set[date] = set()
    touched = (
        TrainingRun.objects.filter(updated_at__gte=since)
        .annotate(c=_utc_date("created_at"), d=_utc_date("completed_at"))
        .values_list("c", "d")
        .distinct()
        .order_by()
    )
    for created_day, completed_day in touched:
        created.add(created_day)
        if completed_day is not None:
            completed.add(completed_day)
    events = set(
        RunEvent.objects.filter(created_at__gte=since, kind__in=EVENT_KINDS)
        .annotate(d=_utc_date("created_at"))
        .values_list("d", flat=True)
        .distinct()
        .order_by()
    )
    return TouchedDays(created=created, completed=completed, events=events)


# --- per owner -----------------------------------------------------------------------------------


class LatestRuns(NamedTuple):
    owner_id: int
    eligible_at: datetime  # latest run on a base model that allows AI Toolkit
    ai_toolkit_at: datetime | None  # latest AI Toolkit run


def _latest_runs(which: Q) -> list[LatestRuns]:
    rows = (
        TrainingRun.objects.filter(which, base_model__in=AI_TOOLKIT_BASES)
        .values("owner_id")
        .annotate(
            eligible=Max("created_at"), ai=Max("created_at", filter=Q(engine=catalog.AI_TOOLKIT))
        )
        .values_list("owner_id", "eligible", "ai")
        .order_by()
    )
    return [LatestRuns(owner_id, eligible, ai) for owner_id, eligible, ai in rows]


def latest_runs_created_on(days: Iterable[date]) -> list[LatestRuns]:
    """Per owner with an eligible run created on the days: the latest eligible and AI Toolkit
    creation times among those runs."""
    return _latest_runs(_days_q("created_at", days))


def latest_runs_touched_since(since: datetime) -> list[LatestRuns]:
    """The same among runs touched since `since` (which includes every run created since)."""
    return _latest_runs(Q(updated_at__gte=since))


# --- now -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveRuns:
    counts: dict[tuple[str, str], int]  # (engine, active status) -> runs now
    oldest_pending: datetime | None  # creation time of the oldest pending run


def active_runs() -> ActiveRuns:
    """Runs not finished yet, by engine and status (a few rows, read on the status index)."""
    counts: dict[tuple[str, str], int] = {}
    oldest_pending: datetime | None = None
    live = (
        TrainingRun.objects.filter(status__in=ACTIVE_STATUSES)
        .values("engine", "status")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
        .order_by()
    )
    for row in live:
        counts[(row["engine"], row["status"])] = row["n"]
        if row["status"] == RunStatus.PENDING:
            oldest = row["oldest"]
            oldest_pending = oldest if oldest_pending is None else min(oldest_pending, oldest)
    return ActiveRuns(counts=counts, oldest_pending=oldest_pending)
