"""Keeping the console's rollups (console.models) current.

Reading a million raw runs per page view does not scale, so the dashboard and /metrics read daily
rollups instead. A pass (`rollup_refresh`) finds the runs and events touched since the previous
pass (by `updated_at`, which every transition sets) and recomputes, from the runs, just the days
those belong to; recomputing a day is idempotent, so passes may overlap and never double-count.
History is built newest day first, a week per step, within a time budget, so the first pass on a
large table does not hold a request for minutes (the dashboard says how far back it is built).
The runs and their events are read only through `training.stats`, which returns plain rows; what
is kept of them, and how, is decided here.

Passes run from the Celery task in console.tasks when beat schedules it, and otherwise
from whoever reads a rollup older than TRAINING_ROLLUP_MAX_AGE_SECONDS (`rollup_ensure_fresh`).
One process refreshes at a time (a row lock); the others keep reading the last complete pass.
"""

from __future__ import annotations

import logging
import time as clock
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
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
from training import stats
from training.selectors import ecosystem_of

log = logging.getLogger(__name__)

STATE_KEY = "runs"
# Transactions commit after they stamp updated_at: look back this far past the previous pass so
# a slow commit is never missed (recomputing a day twice is harmless).
OVERLAP = timedelta(minutes=2)
BACKFILL_DAYS = 7
# Owners looked up per query when folding their latest runs into UserTrainingActivity. The console
# does not query runs, so the owners arrive as a list (training.stats), not as a subquery: one
# query up to here (a backfill week at 1M runs has ~34k owners, about 0.3 s more to send than the
# subquery it replaced), and past it chunks that stay under PostgreSQL's 65,535 parameters per
# statement should server-side binding be turned on.
OWNERS_PER_QUERY = 50_000

# Submission latency (created -> submitted), per day the run was created: one RunEventDailyStat
# row per bucket (kind LATENCY_KIND, label = the bucket's upper bound, events = runs in it, not
# cumulative) and one with label "sum" (whole seconds). /metrics sums every day into a cumulative
# histogram, so its buckets only grow as runs are submitted (a real Prometheus histogram).
LATENCY_KIND = "latency"
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LATENCY_SUM = "sum"


def _rebuild_runs(basis: str, days: set[date]) -> None:
    RunDailyStat.objects.filter(basis=basis, day__in=days).delete()
    # The rows' fields are the table's columns (training.stats names them after RunDailyStat).
    rows: list[Any] = (
        stats.run_counts_created_per_day(days)
        if basis == Basis.CREATED
        else stats.run_counts_completed_per_day(days)
    )
    objects = [RunDailyStat(basis=basis, **asdict(row)) for row in rows]
    for stat in objects:
        stat.error_example = (stat.error_example or "")[:500]
    RunDailyStat.objects.bulk_create(objects, batch_size=2000)


def _param_value(value: str | None) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # 32.0 and 32 are the same network dim
    return text[:64]


def _rebuild_params(days: set[date]) -> None:
    RunParamDailyStat.objects.filter(day__in=days).delete()
    totals: dict[tuple[date, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in stats.param_counts_per_day(days):
        for param in stats.PARAMS:
            counts = totals[(r.day, r.engine, param, _param_value(r.values[param]))]
            counts[0] += r.runs
            counts[1] += r.succeeded
            counts[2] += r.finished
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
    for (
        engine,
        base_model,
        succeeded,
        submitted,
        started,
        completed,
    ) in stats.run_timings_finished_on(days):
        day = completed.astimezone(UTC).date()
        groups = (("engine", engine), ("ecosystem", ecosystem_of(base_model)))
        if succeeded and started and completed >= started:
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
    labels = [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]
    objects = []
    for row in stats.submit_latency_per_day(days, bounds=LATENCY_BUCKETS):
        for label, n in zip(labels, row.counts, strict=True):
            if n:
                objects.append(
                    RunEventDailyStat(day=row.day, kind=LATENCY_KIND, label=label, events=n)
                )
        seconds = round(row.total.total_seconds()) if row.total else 0
        objects.append(
            RunEventDailyStat(day=row.day, kind=LATENCY_KIND, label=LATENCY_SUM, events=seconds)
        )
    RunEventDailyStat.objects.bulk_create(objects, batch_size=2000)


def _rebuild_events(days: set[date]) -> None:
    RunEventDailyStat.objects.filter(day__in=days, kind__in=stats.EVENT_KINDS).delete()
    RunEventDailyStat.objects.bulk_create(
        [
            RunEventDailyStat(day=r.day, kind=r.kind, label=r.label, events=r.events)
            for r in stats.events_per_day(days)
        ],
        batch_size=2000,
    )


def _later(old: datetime | None, new: datetime | None) -> datetime | None:
    return max((t for t in (old, new) if t is not None), default=None)


def _update_activity(latest: list[stats.LatestRuns]) -> None:
    """Fold owners' latest eligible / AI Toolkit run times into each one's row, keeping whichever
    is later (a backfill step brings only older news). Safe to read then write: the caller holds
    the rollup state's lock, the only writer of these rows."""
    known: dict[int, tuple[datetime | None, datetime | None]] = {}
    owners = [row.owner_id for row in latest]
    for i in range(0, len(owners), OWNERS_PER_QUERY):
        known.update(
            (owner_id, (eligible, ai))
            for owner_id, eligible, ai in UserTrainingActivity.objects.filter(
                owner__in=owners[i : i + OWNERS_PER_QUERY]
            ).values_list("owner_id", "last_eligible_at", "last_ai_toolkit_at")
        )
    rows = []
    for owner_id, eligible_at, ai_at in latest:
        eligible: datetime | None = eligible_at
        ai: datetime | None = ai_at
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
            .annotate(day=TruncDate(column, tzinfo=UTC))
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
            today = started.astimezone(UTC).date()
            known = [t.astimezone(UTC).date() for t in stats.first_run_times() if t is not None]
            state.history_start = min(known, default=today)
            state.built_from = today + timedelta(days=1)
            state.changes_since = None
        built_from: date = state.built_from
        history_start: date = state.history_start
        touched = 0
        if state.changes_since is not None:
            changed = stats.touched_days_since(state.changes_since)
            # Days not built yet are left to the backfill, which will see these changes too.
            created = {d for d in changed.created if d >= built_from}
            completed = {d for d in changed.completed if d >= built_from}
            events = {d for d in changed.events if d >= built_from}
            _rebuild_days(created, completed, events)
            # Runs touched since the last pass include every run created since then.
            _update_activity(stats.latest_runs_touched_since(state.changes_since))
            touched = len(created | completed | events)
        backfilled = 0
        while built_from > history_start:
            if backfilled and budget is not None and clock.monotonic() - t0 > budget:
                break
            low = max(history_start, built_from - timedelta(days=BACKFILL_DAYS))
            days = {low + timedelta(days=i) for i in range((built_from - low).days)}
            _rebuild_days(days, days, days)
            _update_activity(stats.latest_runs_created_on(days))
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
            budget=settings.TRAINING_ROLLUP_REQUEST_BUDGET_SECONDS,
        )
    except Exception:  # a failed pass must not take the page down: it shows the data's age
        log.exception("training rollup refresh failed")
    return RollupState.objects.filter(key=STATE_KEY).first()
