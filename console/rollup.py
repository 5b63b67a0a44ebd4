"""Keeping the console's rollups (console.models) current.

Reading a million raw runs per page view does not scale, so the dashboard and /metrics read daily
rollups instead. A pass (`rollup_refresh`) finds the runs and events touched since the previous
pass (by `updated_at`, which every transition sets) and recomputes, from the runs, just the days
those belong to; recomputing a day is idempotent, so passes may overlap and never double-count.
History is built newest day first, a week per step, within a time budget, so the first pass on a
large table does not hold a request for minutes (the dashboard says how far back it is built).

Passes run from the Celery task in console.tasks when beat schedules it, and otherwise
from whoever reads a rollup older than TRAINING_ROLLUP_MAX_AGE_SECONDS (`rollup_ensure_fresh`).
One process refreshes at a time (a row lock); the others keep reading the last complete pass.
"""

from __future__ import annotations

import logging
import time as clock
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Case, Count, F, Max, Min, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from console.models import (
    Basis,
    RollupState,
    RollupWindowSnapshot,
    RunDailyStat,
    RunEventDailyStat,
    RunParamDailyStat,
    RunTimingDailyStat,
    UserActivityDailyStat,
    UserTrainingActivity,
)
from console.sketch import sketch
from console.windows import snapshot_windows
from training.models import RunEvent, RunStatus, TrainingRun
from training.selectors import FINISHED_STATUSES, ecosystem_of
from vocabulary import catalog

log = logging.getLogger(__name__)

STATE_KEY = "runs"
# Transactions commit after they stamp updated_at: look back this far past the previous pass so
# a slow commit is never missed (recomputing a day twice is harmless).
OVERLAP = timedelta(minutes=2)
BACKFILL_DAYS = 7
DEFAULT_REQUEST_BUDGET_SECONDS = 2.0  # backfill time a reader's request may spend

TERMINAL = (*FINISHED_STATUSES, RunStatus.CANCELED)
# Base models on which a user could have chosen AI Toolkit: the adoption denominator.
AI_TOOLKIT_BASES = tuple(
    k for k, b in catalog.BASE_MODELS.items() if catalog.AI_TOOLKIT in b.engines
)
EVENT_KINDS = (RunEvent.Kind.CALLBACK, RunEvent.Kind.SUBMIT_ERROR)
ERROR_KINDS = ("transient", "auth", "rejected")  # lifecycle's "<kind>: <message>" prefixes
# Submission latency (created -> submitted), per day the run was created: one RunEventDailyStat
# row per bucket (kind LATENCY_KIND, label = the bucket's upper bound, events = runs in it, not
# cumulative) and one with label "sum" (whole seconds). /metrics sums every day into a cumulative
# histogram, so its buckets only grow as runs are submitted (a real Prometheus histogram).
LATENCY_KIND = "latency"
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LATENCY_SUM = "sum"
PARAMS = ("optimizer", "scheduler", "network_dim", "epochs")


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


def _rebuild_runs(basis: str, days: set[date]) -> None:
    RunDailyStat.objects.filter(basis=basis, day__in=days).delete()
    if basis == Basis.CREATED:
        keys: tuple[str, ...] = ("day", "engine", "base_model")
        runs = TrainingRun.objects.filter(_days_q("created_at", days)).annotate(
            day=_utc_date("created_at")
        )
        aggregates: dict[str, Any] = {
            "runs": Count("pk"),
            "cost_runs": Count("charged_cost"),
            "cost_total": Coalesce(Sum("charged_cost"), 0),
        }
    else:
        keys = ("day", "engine", "base_model", "error_code")
        runs = TrainingRun.objects.filter(
            _days_q("completed_at", days), status__in=TERMINAL
        ).annotate(day=_utc_date("completed_at"))
        aggregates = {
            "runs": Count("pk"),
            **{
                str(status): Count("pk", filter=Q(status=status))
                for status in (
                    RunStatus.SUCCEEDED,
                    RunStatus.FAILED,
                    RunStatus.EXPIRED,
                    RunStatus.CANCELED,
                )
            },
            "error_example": Max("error_message"),
        }
    rows = runs.values(*keys).annotate(**aggregates).order_by()
    objects = []
    for row in rows:
        if row.get("error_example"):
            row["error_example"] = row["error_example"][:500]
        objects.append(RunDailyStat(basis=basis, **row))
    RunDailyStat.objects.bulk_create(objects, batch_size=2000)


def _param_value(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # 32.0 and 32 are the same network dim
    return text[:64]


def _rebuild_params(days: set[date]) -> None:
    RunParamDailyStat.objects.filter(day__in=days).delete()
    rows = (
        TrainingRun.objects.filter(_days_q("created_at", days))
        .annotate(
            day=_utc_date("created_at"),
            optimizer=KeyTextTransform("optimizerType", "params"),
            scheduler=KeyTextTransform("lrScheduler", "params"),
            network_dim=KeyTextTransform("networkDim", "params"),
            # AI Toolkit's name for epochs is `epochs`; the legacy engines' is `maxTrainEpochs`.
            epochs=Coalesce(
                KeyTextTransform("epochs", "params"), KeyTextTransform("maxTrainEpochs", "params")
            ),
        )
        .values("day", "engine", "status", *PARAMS)
        .annotate(n=Count("pk"))
        .order_by()
    )
    totals: dict[tuple[date, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        n = r["n"]
        for param in PARAMS:
            counts = totals[(r["day"], r["engine"], param, _param_value(r[param]))]
            counts[0] += n
            if r["status"] in FINISHED_STATUSES:
                counts[2] += n
                if r["status"] == RunStatus.SUCCEEDED:
                    counts[1] += n
    RunParamDailyStat.objects.bulk_create(
        [
            RunParamDailyStat(
                day=d, engine=e, param=p, value=v, runs=n, succeeded=ok, finished=done
            )
            for (d, e, p, v), (n, ok, done) in totals.items()
        ],
        batch_size=2000,
    )


TimingRow = tuple[date, str, str, str, int, list[float]]


def _timing_rows(days: set[date]) -> list[TimingRow]:
    """The days' finished runs' durations and queue waits, per engine and per ecosystem, as
    sketches (console.sketch: the same numbers PostgreSQL's percentile_cont gives)."""
    values: dict[tuple[date, str, str, str], list[float]] = defaultdict(list)
    runs = TrainingRun.objects.filter(_days_q("completed_at", days), status__in=FINISHED_STATUSES)
    fields = ("engine", "base_model", "status", "submitted_at", "started_at", "completed_at")
    for engine, base_model, status, submitted, started, completed in runs.values_list(*fields):
        day = completed.astimezone(UTC).date()
        groups = (("engine", engine), ("ecosystem", ecosystem_of(base_model)))
        if status == RunStatus.SUCCEEDED and started and completed >= started:
            for kind, group in groups:
                values[(day, kind, group, "duration")].append((completed - started).total_seconds())
        if submitted and started and started >= submitted:
            for kind, group in groups:
                values[(day, kind, group, "queue")].append((started - submitted).total_seconds())
    return [(d, k, g, m, len(v), sketch(v)) for (d, k, g, m), v in values.items()]


def _rebuild_timings(days: set[date]) -> None:
    RunTimingDailyStat.objects.filter(day__in=days).delete()
    rows = _timing_rows(days)
    RunTimingDailyStat.objects.bulk_create(
        [
            RunTimingDailyStat(day=d, group_kind=k, group=g, metric=m, samples=n, points=pts)
            for d, k, g, m, n, pts in rows
        ],
        batch_size=1000,
    )


def _rebuild_latency(days: set[date]) -> None:
    RunEventDailyStat.objects.filter(day__in=days, kind=LATENCY_KIND).delete()
    latency = F("submitted_at") - F("created_at")
    buckets: dict[str, Any] = {}
    low: timedelta | None = None
    for bound in (*LATENCY_BUCKETS, None):
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
    labels = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    objects = []
    for row in rows:
        for i, label in enumerate(labels):
            if row[f"b{i}"]:
                objects.append(
                    RunEventDailyStat(
                        day=row["day"], kind=LATENCY_KIND, label=label, events=row[f"b{i}"]
                    )
                )
        seconds = round(row["total"].total_seconds()) if row["total"] else 0
        objects.append(
            RunEventDailyStat(day=row["day"], kind=LATENCY_KIND, label=LATENCY_SUM, events=seconds)
        )
    RunEventDailyStat.objects.bulk_create(objects, batch_size=2000)


def _rebuild_events(days: set[date]) -> None:
    RunEventDailyStat.objects.filter(day__in=days, kind__in=EVENT_KINDS).delete()
    label = Case(
        *[
            When(kind=RunEvent.Kind.SUBMIT_ERROR, message__startswith=f"{k}:", then=Value(k))
            for k in ERROR_KINDS
        ],
        When(kind=RunEvent.Kind.SUBMIT_ERROR, then=Value("other")),
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
    RunEventDailyStat.objects.bulk_create(
        [
            RunEventDailyStat(day=r["day"], kind=r["kind"], label=r["label"], events=r["n"])
            for r in rows
        ],
        batch_size=2000,
    )


def _later(old: datetime | None, new: datetime | None) -> datetime | None:
    return max((t for t in (old, new) if t is not None), default=None)


def _update_activity(created: Q) -> None:
    """Fold the latest eligible / AI Toolkit run times of the runs matching `created` into each
    user's row, keeping whichever is later (a backfill step brings only older news). Safe to
    read then write: the caller holds the rollup state's lock, the only writer of these rows."""
    runs = TrainingRun.objects.filter(created, base_model__in=AI_TOOLKIT_BASES)
    latest = (
        runs.values("owner_id")
        .annotate(
            eligible=Max("created_at"), ai=Max("created_at", filter=Q(engine=catalog.AI_TOOLKIT))
        )
        .values_list("owner_id", "eligible", "ai")
        .order_by()
    )
    known: dict[int, tuple[datetime | None, datetime | None]] = {
        owner_id: (eligible, ai)
        for owner_id, eligible, ai in UserTrainingActivity.objects.filter(
            owner__in=runs.values("owner_id")
        ).values_list("owner_id", "last_eligible_at", "last_ai_toolkit_at")
    }
    rows = []
    for owner_id, eligible, ai in latest:
        old = known.get(owner_id)
        if old is not None:
            eligible, ai = _later(old[0], eligible), _later(old[1], ai)
            if (eligible, ai) == old:
                continue  # older news (a backfill step): nothing to write
        rows.append(
            UserTrainingActivity(
                owner_id=owner_id, last_eligible_at=eligible, last_ai_toolkit_at=ai
            )
        )
    UserTrainingActivity.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["owner"],
        update_fields=["last_eligible_at", "last_ai_toolkit_at"],
    )


def _rebuild_user_days() -> None:
    """Users by the day of their latest eligible / AI Toolkit run, from the activity rows."""
    per_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for column, slot in (("last_eligible_at", 0), ("last_ai_toolkit_at", 1)):
        rows = (
            UserTrainingActivity.objects.filter(**{f"{column}__isnull": False})
            .annotate(day=_utc_date(column))
            .values("day")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            per_day[row["day"]][slot] = row["n"]
    UserActivityDailyStat.objects.all().delete()
    RollupWindowSnapshot.objects.all().delete()
    UserActivityDailyStat.objects.bulk_create(
        [
            UserActivityDailyStat(day=d, eligible_users=e, ai_toolkit_users=a)
            for d, (e, a) in per_day.items()
        ]
    )


def _touched_days(since: datetime) -> tuple[set[date], set[date], set[date]]:
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
    return created, completed, events


def _rebuild_days(created: set[date], completed: set[date], events: set[date]) -> None:
    if created:
        _rebuild_runs(Basis.CREATED, created)
        _rebuild_params(created)
        _rebuild_latency(created)
    if completed:
        _rebuild_runs(Basis.COMPLETED, completed)
        _rebuild_timings(completed)
    if events:
        _rebuild_events(events)


@dataclass(frozen=True)
class RefreshReport:
    touched_days: int  # days recomputed because runs or events on them changed
    backfilled_days: int  # older days built for the first time
    complete: bool  # every day since the oldest run is built
    duration_ms: int


def _wipe() -> None:
    for model in (RunDailyStat, RunParamDailyStat, RunTimingDailyStat, RunEventDailyStat):
        model.objects.all().delete()
    UserTrainingActivity.objects.all().delete()
    UserActivityDailyStat.objects.all().delete()
    RollupWindowSnapshot.objects.all().delete()


def _lock_state() -> RollupState | None:
    # Another process is refreshing: do not wait, its pass is as good as ours.
    return RollupState.objects.filter(key=STATE_KEY).select_for_update(skip_locked=True).first()


def rollup_refresh(
    *, full: bool = False, max_age: float | None = None, budget: float | None = None
) -> RefreshReport | None:
    """One pass: recompute the days touched since the previous pass, then build older history
    (a week per step) until `budget` seconds have gone (None: all of it). `full` starts over.
    None when another process is refreshing, or the last pass is younger than `max_age`."""
    started = timezone.now()
    t0 = clock.monotonic()
    RollupState.objects.get_or_create(key=STATE_KEY)
    with transaction.atomic():
        state = _lock_state()
        if state is None:
            return None
        if (
            max_age is not None
            and not full
            and state.refreshed_at is not None
            and (started - state.refreshed_at).total_seconds() < max_age
        ):
            return None
        if full or state.built_from is None or state.history_start is None:
            _wipe()
            # Completion follows creation, but imported or repaired rows may not: take both.
            firsts = TrainingRun.objects.aggregate(c=Min("created_at"), d=Min("completed_at"))
            today = started.astimezone(UTC).date()
            known = [t.astimezone(UTC).date() for t in firsts.values() if t is not None]
            state.history_start = min(known, default=today)
            state.built_from = today + timedelta(days=1)
            state.changes_since = None
        built_from: date = state.built_from
        history_start: date = state.history_start
        touched = 0
        if state.changes_since is not None:
            created, completed, events = _touched_days(state.changes_since)
            # Days not built yet are left to the backfill, which will see these changes too.
            created = {d for d in created if d >= built_from}
            completed = {d for d in completed if d >= built_from}
            events = {d for d in events if d >= built_from}
            _rebuild_days(created, completed, events)
            # Runs touched since the last pass include every run created since then.
            _update_activity(Q(updated_at__gte=state.changes_since))
            touched = len(created | completed | events)
        backfilled = 0
        while built_from > history_start:
            if backfilled and budget is not None and clock.monotonic() - t0 > budget:
                break
            low = max(history_start, built_from - timedelta(days=BACKFILL_DAYS))
            days = {low + timedelta(days=i) for i in range((built_from - low).days)}
            _rebuild_days(days, days, days)
            _update_activity(_days_q("created_at", days))
            backfilled += len(days)
            built_from = low
        state.built_from = built_from
        _rebuild_user_days()
        snapshot_windows(started.astimezone(UTC).date())
        elapsed = int((clock.monotonic() - t0) * 1000)
        state.refreshed_at = started
        state.changes_since = started - OVERLAP
        state.last_duration_ms = elapsed
        state.save()
    if elapsed > 2000:
        log.info("training rollups: %d ms, %d days backfilled", elapsed, backfilled)
    return RefreshReport(touched, backfilled, state.complete, elapsed)


def max_age_seconds() -> float:
    return float(settings.TRAINING_ROLLUP_MAX_AGE_SECONDS)


def rollup_ensure_fresh() -> RollupState | None:
    """Refresh first when the last pass is too old or history is still being built; returns the
    state the caller's reads will reflect. One query when fresh."""
    state = RollupState.objects.filter(key=STATE_KEY).first()
    if (
        state is not None
        and state.refreshed_at is not None
        and state.complete
        and (timezone.now() - state.refreshed_at).total_seconds() < max_age_seconds()
    ):
        return state
    try:
        rollup_refresh(
            max_age=max_age_seconds() if state and state.complete else None,
            budget=float(
                getattr(
                    settings,
                    "TRAINING_ROLLUP_REQUEST_BUDGET_SECONDS",
                    DEFAULT_REQUEST_BUDGET_SECONDS,
                )
            ),
        )
    except Exception:  # a failed pass must not take the page down: it shows the data's age
        log.exception("training rollup refresh failed")
    return RollupState.objects.filter(key=STATE_KEY).first()
