"""Daily rollups of training runs, for the moderator dashboard and /metrics (docs/console.md).

Reading a million raw runs per page view does not scale, so the dashboard reads these tables
instead: counts and costs per UTC day, engine, base model, status and error code (once by the day
a run was created, once by the day it ended), parameter usage per day, duration and queue-wait
quantile sketches per day, orchestrator events per day, and each user's latest run times.

They are kept current incrementally: `rollup_refresh` finds the runs touched since its last pass
(by `updated_at`, which every transition sets), and recomputes whole days from the runs for just
the days those runs belong to. Recomputing a day is idempotent, so an overlap between passes costs
a little time and never double-counts. Whoever reads the rollups calls `rollup_ensure_fresh`,
which refreshes when the last pass is older than TRAINING_ROLLUP_MAX_AGE_SECONDS; one process
refreshes at a time (a row lock) while the others keep serving the previous, complete pass.

The models live here rather than in training/models.py: training/admin.py imports this module,
and admin autodiscovery imports that at start-up, so the app registry always knows them.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, Count, Max, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from training import catalog
from training.models import RunEvent, RunStatus, TrainingRun

log = logging.getLogger(__name__)

# Quantile sketch: a day's values are kept as they are up to SKETCH_POINTS of them, beyond that as
# the SKETCH_POINTS quantiles 0, 1/(n-1), ... 1 (every 2 %). Merging days then places p50 and p90
# within about one percentile rank of the exact value; small windows stay exact.
SKETCH_POINTS = 51
SKETCH_FRACTIONS = tuple(i / (SKETCH_POINTS - 1) for i in range(SKETCH_POINTS))
# Transactions commit after they stamp updated_at; look back this far past the previous pass so
# a slow commit is never missed (recomputing a day twice is harmless).
OVERLAP = timedelta(minutes=2)
STATE_KEY = "runs"
DEFAULT_MAX_AGE_SECONDS = 60.0

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.EXPIRED)
TERMINAL = (*FINISHED, RunStatus.CANCELED)
# Base models on which a user could have chosen AI Toolkit: the adoption denominator.
AI_TOOLKIT_BASES = tuple(k for k, b in catalog.BASE_MODELS.items() if catalog.AI_TOOLKIT in b.engines)
ERROR_KINDS = ("transient", "auth", "rejected")
PARAMS = ("optimizer", "scheduler", "network_dim", "epochs")


def ecosystem_of(base_model: str) -> str:
    """The family a base model trains in: its AI Toolkit ecosystem, else its base type
    (Hunyuan Video has no AI Toolkit ecosystem)."""
    base = catalog.BASE_MODELS.get(base_model)
    if base is None:
        return "unknown"
    return base.ecosystem or base.base_type


class Basis(models.TextChoices):
    CREATED = "created"  # counted on the day the run was created ("runs started")
    COMPLETED = "completed"  # counted on the day the run ended


class RunDailyStat(models.Model):
    day = models.DateField()
    basis = models.CharField(max_length=9, choices=Basis.choices)
    engine = models.CharField(max_length=32)
    base_model = models.CharField(max_length=64)
    status = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64, blank=True, default="")
    runs = models.PositiveIntegerField()
    cost_runs = models.PositiveIntegerField(default=0)  # runs with a charged cost
    cost_total = models.BigIntegerField(default=0)
    error_example = models.TextField(blank=True, default="")  # one message with this code

    class Meta:
        app_label = "training"
        constraints = [
            models.UniqueConstraint(
                fields=["basis", "day", "engine", "base_model", "status", "error_code"],
                name="rollup_run_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.basis} {self.engine} {self.status}: {self.runs}"


class RunParamDailyStat(models.Model):
    """Runs created per day by engine, parameter value and status (for usage and success)."""

    day = models.DateField()
    engine = models.CharField(max_length=32)
    param = models.CharField(max_length=16)
    value = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16)
    runs = models.PositiveIntegerField()

    class Meta:
        app_label = "training"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "engine", "param", "value", "status"], name="rollup_param_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.engine} {self.param}={self.value}: {self.runs}"


class RunTimingDailyStat(models.Model):
    """A day's training durations (succeeded runs) or queue waits (finished runs), by the day the
    run ended, per engine or per ecosystem: the values themselves or their quantiles (seconds)."""

    day = models.DateField()
    group_kind = models.CharField(max_length=9)  # "engine" | "ecosystem"
    group = models.CharField(max_length=32)
    metric = models.CharField(max_length=8)  # "duration" | "queue"
    samples = models.PositiveIntegerField()
    points = models.JSONField(default=list)

    class Meta:
        app_label = "training"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "group_kind", "group", "metric"], name="rollup_timing_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.group_kind}={self.group} {self.metric}: {self.samples}"


class RunEventDailyStat(models.Model):
    """Orchestrator callbacks and submission errors (by kind: transient, auth, rejected) per day."""

    day = models.DateField()
    kind = models.CharField(max_length=16)
    label = models.CharField(max_length=16, blank=True, default="")
    events = models.PositiveIntegerField()

    class Meta:
        app_label = "training"
        constraints = [
            models.UniqueConstraint(fields=["day", "kind", "label"], name="rollup_event_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.label}: {self.events}"


class UserTrainingActivity(models.Model):
    """Each user's latest run on a base model that allows AI Toolkit, and latest AI Toolkit run:
    distinct users in any window ending now are a range count here, not a DISTINCT over runs."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_eligible_at = models.DateTimeField(null=True, blank=True)
    last_ai_toolkit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "training"
        indexes = [
            models.Index(
                fields=["last_eligible_at", "last_ai_toolkit_at"], name="activity_eligible"
            )
        ]

    def __str__(self) -> str:
        return f"user {self.owner_id}"


class RollupState(models.Model):
    key = models.CharField(max_length=16, primary_key=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    changes_since = models.DateTimeField(null=True, blank=True)  # None: rebuild everything
    last_duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "training"

    def __str__(self) -> str:
        return f"{self.key} refreshed {self.refreshed_at}"


# --- quantiles -----------------------------------------------------------------------------------


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over sorted values: linear interpolation between ranks."""
    if not values:
        return None
    rank = fraction * (len(values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def sketch(values: list[float]) -> list[float]:
    ordered = sorted(values)
    if len(ordered) <= SKETCH_POINTS:
        return ordered
    return [percentile_cont(ordered, f) or 0.0 for f in SKETCH_FRACTIONS]


@dataclass(frozen=True)
class Distribution:
    """Several days' sketches merged: each stored point stands for samples/len(points) values."""

    points: tuple[tuple[float, float], ...]  # (value, weight), sorted by value
    samples: int

    @classmethod
    def merge(cls, parts: Iterable[tuple[int, Sequence[float]]]) -> Distribution:
        weighted: list[tuple[float, float]] = []
        total = 0
        for samples, points in parts:
            if not samples or not points:
                continue
            total += samples
            weight = samples / len(points)
            weighted.extend((float(v), weight) for v in points)
        weighted.sort()
        return cls(tuple(weighted), total)

    def percentile(self, fraction: float) -> float | None:
        """percentile_cont over the merged values; exact while every day kept its raw values."""
        if not self.points:
            return None
        total = sum(w for _, w in self.points)
        rank = fraction * (total - 1) if total > 1 else 0.0

        def at(position: float) -> float:
            seen = 0.0
            for value, weight in self.points:
                seen += weight
                if position < seen - 1e-9:
                    return value
            return self.points[-1][0]

        low = math.floor(rank + 1e-9)
        lower, upper = at(low), at(low + 1)
        return lower + (upper - lower) * max(0.0, rank - low)

    def histogram(self, edges: Sequence[float]) -> list[float]:
        """Estimated counts between consecutive `edges` (the last bin is open-ended)."""
        counts = [0.0] * len(edges)
        for value, weight in self.points:
            index = max(0, bisect.bisect_right(edges, value) - 1)
            counts[index] += weight
        return counts


# --- refresh -------------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _days_q(field: str, days: Iterable[date] | None) -> Q:
    """Runs whose `field` falls on one of `days` (UTC), as index-friendly ranges."""
    if days is None:
        return Q(**{f"{field}__isnull": False})
    q = Q(pk__in=[])
    for day in sorted(days):
        start = _day_start(day)
        q |= Q(**{f"{field}__gte": start, f"{field}__lt": start + timedelta(days=1)})
    return q


def _utc_date(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=UTC)


def _rebuild_runs(basis: str, days: set[date] | None) -> None:
    field = "created_at" if basis == Basis.CREATED else "completed_at"
    old = RunDailyStat.objects.filter(basis=basis)
    if days is not None:
        old = old.filter(day__in=days)
    old.delete()
    if days is not None and not days:
        return
    runs = TrainingRun.objects.filter(_days_q(field, days))
    if basis == Basis.COMPLETED:
        runs = runs.filter(status__in=TERMINAL)
    aggregates: dict[str, Any] = {
        "n": Count("pk"),
        "cost_n": Count("charged_cost"),
        "cost_sum": Sum("charged_cost"),
    }
    if basis == Basis.COMPLETED:
        aggregates["example"] = Max("error_message")
    rows = (
        runs.annotate(day=_utc_date(field))
        .values("day", "engine", "base_model", "status", "error_code")
        .annotate(**aggregates)
        .order_by()
    )
    RunDailyStat.objects.bulk_create(
        (
            RunDailyStat(
                day=r["day"],
                basis=basis,
                engine=r["engine"],
                base_model=r["base_model"],
                status=r["status"],
                error_code=r["error_code"],
                runs=r["n"],
                cost_runs=r["cost_n"],
                cost_total=r["cost_sum"] or 0,
                error_example=(r.get("example") or "")[:500],
            )
            for r in rows
        ),
        batch_size=2000,
    )


def _param_value(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]  # 32.0 and 32 are the same network dim
    return text[:64]


def _rebuild_params(days: set[date] | None) -> None:
    old = RunParamDailyStat.objects.all()
    if days is not None:
        old = old.filter(day__in=days)
    old.delete()
    if days is not None and not days:
        return
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
    totals: dict[tuple[date, str, str, str, str], int] = defaultdict(int)
    for r in rows:
        for param in PARAMS:
            totals[(r["day"], r["engine"], param, _param_value(r[param]), r["status"])] += r["n"]
    RunParamDailyStat.objects.bulk_create(
        (
            RunParamDailyStat(day=d, engine=e, param=p, value=v, status=s, runs=n)
            for (d, e, p, v, s), n in totals.items()
        ),
        batch_size=2000,
    )


def _eco_case_sql() -> tuple[str, list[str]]:
    whens = []
    params: list[str] = []
    for key in catalog.BASE_MODELS:
        whens.append("WHEN %s THEN %s")
        params += [key, ecosystem_of(key)]
    return f"CASE base_model {' '.join(whens)} ELSE 'unknown' END", params


def _timing_rows_postgresql(days: set[date] | None) -> list[tuple[date, str, str, str, int, Any]]:
    """One pass over the days' finished runs; percentile_cont computes each day's sketch."""
    eco_sql, eco_params = _eco_case_sql()
    where = "status IN ('succeeded', 'failed', 'expired') AND completed_at IS NOT NULL"
    where_params: list[Any] = []
    if days is not None:
        ranges = []
        for day in sorted(days):
            ranges.append("(completed_at >= %s AND completed_at < %s)")
            where_params += [_day_start(day), _day_start(day) + timedelta(days=1)]
        where += " AND (" + " OR ".join(ranges) + ")"
    sql = f"""
        WITH r AS (
            SELECT (completed_at AT TIME ZONE 'UTC')::date AS day, engine, {eco_sql} AS eco,
                   status, EXTRACT(EPOCH FROM completed_at - started_at)::float8 AS duration,
                   EXTRACT(EPOCH FROM started_at - submitted_at)::float8 AS queue
            FROM training_trainingrun WHERE {where}
        ), m AS (
            SELECT day, engine, eco, 'duration' AS metric, duration AS v FROM r
            WHERE status = 'succeeded' AND duration >= 0
            UNION ALL
            SELECT day, engine, eco, 'queue', queue FROM r WHERE queue >= 0
        )
        SELECT day, GROUPING(engine) AS by_eco, COALESCE(engine, eco), metric, count(*),
               CASE WHEN count(*) <= %s THEN array_agg(v ORDER BY v)
                    ELSE percentile_cont(%s::float8[]) WITHIN GROUP (ORDER BY v) END
        FROM m GROUP BY GROUPING SETS ((day, metric, engine), (day, metric, eco))
    """  # noqa: S608 - only the catalog's keys and placeholders are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [*eco_params, *where_params, SKETCH_POINTS, list(SKETCH_FRACTIONS)])
        return [
            (day, "ecosystem" if by_eco else "engine", group, metric, n, list(points))
            for day, by_eco, group, metric, n, points in cursor.fetchall()
        ]


def _timing_rows_python(days: set[date] | None) -> list[tuple[date, str, str, str, int, Any]]:
    values: dict[tuple[date, str, str, str], list[float]] = defaultdict(list)
    runs = TrainingRun.objects.filter(_days_q("completed_at", days), status__in=FINISHED)
    fields = ("engine", "base_model", "status", "submitted_at", "started_at", "completed_at")
    for engine, base_model, status, submitted, started, completed in runs.values_list(
        *fields
    ).iterator():
        day = completed.astimezone(UTC).date()
        groups = (("engine", engine), ("ecosystem", ecosystem_of(base_model)))
        if status == RunStatus.SUCCEEDED and started and completed >= started:
            for kind, group in groups:
                values[(day, kind, group, "duration")].append((completed - started).total_seconds())
        if submitted and started and started >= submitted:
            for kind, group in groups:
                values[(day, kind, group, "queue")].append((started - submitted).total_seconds())
    return [(d, k, g, m, len(v), sketch(v)) for (d, k, g, m), v in values.items()]


def _rebuild_timings(days: set[date] | None) -> None:
    old = RunTimingDailyStat.objects.all()
    if days is not None:
        old = old.filter(day__in=days)
    old.delete()
    if days is not None and not days:
        return
    if connection.vendor == "postgresql":
        rows = _timing_rows_postgresql(days)
    else:  # the SQLite dev default: same numbers, computed here
        rows = _timing_rows_python(days)
    RunTimingDailyStat.objects.bulk_create(
        (
            RunTimingDailyStat(
                day=d, group_kind=k, group=g, metric=m, samples=n, points=[float(p) for p in pts]
            )
            for d, k, g, m, n, pts in rows
        ),
        batch_size=1000,
    )


EVENT_KINDS = (RunEvent.Kind.CALLBACK, RunEvent.Kind.SUBMIT_ERROR)


def _rebuild_events(days: set[date] | None) -> None:
    old = RunEventDailyStat.objects.all()
    if days is not None:
        old = old.filter(day__in=days)
    old.delete()
    if days is not None and not days:
        return
    # lifecycle writes submit errors as "<kind>: <message>" (transient, auth; rejected may follow).
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
        (
            RunEventDailyStat(day=r["day"], kind=r["kind"], label=r["label"], events=r["n"])
            for r in rows
        ),
        batch_size=2000,
    )


def _update_activity(since: datetime | None) -> None:
    runs = TrainingRun.objects.filter(base_model__in=AI_TOOLKIT_BASES)
    if since is None:
        UserTrainingActivity.objects.all().delete()
    else:
        runs = runs.filter(created_at__gte=since)
    latest = (
        runs.values("owner_id")
        .annotate(
            eligible=Max("created_at"),
            ai=Max("created_at", filter=Q(engine=catalog.AI_TOOLKIT)),
        )
        .order_by()
    )
    fresh = {r["owner_id"]: (r["eligible"], r["ai"]) for r in latest}
    if not fresh:
        return
    if since is not None:
        # Keep the later of what we had and what we just saw (a batch may hold only older news).
        for row in UserTrainingActivity.objects.filter(owner_id__in=list(fresh)):
            eligible, ai = fresh[row.owner_id]
            fresh[row.owner_id] = (
                _later(eligible, row.last_eligible_at),
                _later(ai, row.last_ai_toolkit_at),
            )
    UserTrainingActivity.objects.bulk_create(
        (
            UserTrainingActivity(owner_id=o, last_eligible_at=e, last_ai_toolkit_at=a)
            for o, (e, a) in fresh.items()
        ),
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["owner"],
        update_fields=["last_eligible_at", "last_ai_toolkit_at"],
    )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


@dataclass(frozen=True)
class RefreshReport:
    full: bool
    created_days: int
    completed_days: int
    event_days: int
    duration_ms: int


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


def rollup_refresh(*, full: bool = False, max_age: float | None = None) -> RefreshReport | None:
    """Bring every rollup up to date. None when another process holds the refresh, or when the
    last pass is younger than `max_age` seconds (checked again under the lock)."""
    started = timezone.now()
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
        since = None if full else state.changes_since
        if since is None:
            created: set[date] | None = None
            completed: set[date] | None = None
            events: set[date] | None = None
        else:
            created, completed, events = _touched_days(since)
        _rebuild_runs(Basis.CREATED, created)
        _rebuild_params(created)
        _rebuild_runs(Basis.COMPLETED, completed)
        _rebuild_timings(completed)
        _rebuild_events(events)
        _update_activity(since)
        elapsed = int((timezone.now() - started).total_seconds() * 1000)
        state.refreshed_at = started
        state.changes_since = started - OVERLAP
        state.last_duration_ms = elapsed
        state.save()
    if elapsed > 2000:
        log.info("training rollup refresh took %d ms (full=%s)", elapsed, since is None)
    return RefreshReport(
        full=since is None,
        created_days=-1 if created is None else len(created),
        completed_days=-1 if completed is None else len(completed),
        event_days=-1 if events is None else len(events),
        duration_ms=elapsed,
    )


def _lock_state() -> RollupState | None:
    query = RollupState.objects.filter(key=STATE_KEY)
    if connection.features.has_select_for_update_skip_locked:
        # Another process is refreshing: do not wait, its pass will be as good as ours.
        query = query.select_for_update(skip_locked=True)
    return query.first()


def max_age_seconds() -> float:
    return float(
        getattr(settings, "TRAINING_ROLLUP_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS)
    )


def rollup_ensure_fresh() -> datetime | None:
    """Refresh when the last pass is too old; returns when the data the caller will read was
    computed (None if never). One query when fresh."""
    state = RollupState.objects.filter(key=STATE_KEY).values_list("refreshed_at", flat=True)
    refreshed_at = state.first()
    age = max_age_seconds()
    if refreshed_at is not None and (timezone.now() - refreshed_at).total_seconds() < age:
        return refreshed_at
    try:
        rollup_refresh(max_age=age)
    except Exception:  # a failed refresh must not take the dashboard down; it shows its age
        log.exception("training rollup refresh failed")
    return RollupState.objects.filter(key=STATE_KEY).values_list("refreshed_at", flat=True).first()
