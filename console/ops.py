"""Operations: the numbers behind /metrics (Prometheus text format) and the checks behind /healthz.

/metrics reads the daily rollups for its counters and the runs table only through indexes for its
gauges (active runs: few rows on the status index; submission latency: the last hour on the
created_at index), so a scrape costs the same at any number of runs (bench/RESULTS.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Sum
from django.http import HttpRequest
from django.utils import timezone

from console.metrics import Guard, rollout_guard
from console.models import Basis, RunDailyStat, RunEventDailyStat
from console.rollup import ERROR_KINDS, rollup_ensure_fresh
from training.models import ACTIVE_STATUSES, TERMINAL_STATUSES, RunEvent, RunStatus, TrainingRun

LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LATENCY_WINDOW = timedelta(hours=1)
HEALTH_TIMEOUT_SECONDS = 2.0


# --- access --------------------------------------------------------------------------------------


def metrics_token() -> str:
    return str(getattr(settings, "METRICS_TOKEN", "") or "")


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def metrics_access(request: HttpRequest) -> int:
    """200 when the scraper may read /metrics, else the status to answer with: 401 for a missing
    or wrong bearer token, 403 from a non-loopback address when no token is configured."""
    token = metrics_token()
    if not token:
        return 200 if _is_loopback(request.META.get("REMOTE_ADDR")) else 403
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return 200
    return 401


# --- /metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpsSnapshot:
    created: dict[str, int]  # engine -> runs ever created
    finished: dict[tuple[str, str], int]  # (engine, terminal status) -> runs
    active: dict[tuple[str, str], int]  # (engine, active status) -> runs now
    pending_oldest_seconds: float | None
    latency: list[float]  # created -> submitted, seconds, runs created in the last hour
    errors: dict[str, int]  # submission errors by kind
    callbacks: int
    rollup_age_seconds: float | None
    rollup_duration_seconds: float
    rollup_complete: bool
    guard: Guard


def ops_snapshot() -> OpsSnapshot:
    """Seven queries at any size: rollup freshness, rollup sums (runs, events), active runs,
    the last hour's submissions, and the rollout guard."""
    state = rollup_ensure_fresh()
    now = timezone.now()
    created: dict[str, int] = {}
    finished: dict[tuple[str, str], int] = {}
    totals = (
        RunDailyStat.objects.values("basis", "engine")
        .annotate(
            n=Sum("runs"),
            succeeded=Sum("succeeded"),
            failed=Sum("failed"),
            expired=Sum("expired"),
            canceled=Sum("canceled"),
        )
        .order_by()
    )
    for row in totals:
        if row["basis"] == Basis.CREATED:
            created[row["engine"]] = created.get(row["engine"], 0) + row["n"]
            continue
        for status in TERMINAL_STATUSES:
            finished[(row["engine"], str(status))] = row[str(status)]
    active: dict[tuple[str, str], int] = {}
    oldest_pending: datetime | None = None
    live = (
        TrainingRun.objects.filter(status__in=ACTIVE_STATUSES)
        .values("engine", "status")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
        .order_by()
    )
    for row in live:
        active[(row["engine"], row["status"])] = row["n"]
        if row["status"] == RunStatus.PENDING:
            oldest = row["oldest"]
            oldest_pending = oldest if oldest_pending is None else min(oldest_pending, oldest)
    recent = TrainingRun.objects.filter(
        created_at__gte=now - LATENCY_WINDOW, submitted_at__isnull=False
    ).values_list("created_at", "submitted_at")
    latency = [(sub - created_at).total_seconds() for created_at, sub in recent if sub is not None]
    errors = {kind: 0 for kind in (*ERROR_KINDS, "other")}
    callbacks = 0
    events = RunEventDailyStat.objects.values("kind", "label").annotate(n=Sum("events"))
    for row in events.order_by():
        if row["kind"] == RunEvent.Kind.CALLBACK:
            callbacks += row["n"]
        elif row["kind"] == RunEvent.Kind.SUBMIT_ERROR:
            errors[row["label"] or "other"] = errors.get(row["label"] or "other", 0) + row["n"]
    refreshed = state.refreshed_at if state else None
    return OpsSnapshot(
        created=created,
        finished=finished,
        active=active,
        pending_oldest_seconds=(now - oldest_pending).total_seconds() if oldest_pending else None,
        latency=latency,
        errors=errors,
        callbacks=callbacks,
        rollup_age_seconds=(now - refreshed).total_seconds() if refreshed else None,
        rollup_duration_seconds=(state.last_duration_ms / 1000) if state else 0.0,
        rollup_complete=bool(state and state.complete),
        guard=rollout_guard(),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, help_text: str, values: list[float]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for bound in (*LATENCY_BUCKETS, math.inf):
            count = sum(1 for v in values if v <= bound)
            le = "+Inf" if math.isinf(bound) else _number(bound)
            self.lines.append(f'{name}_bucket{{le="{le}"}} {count}')
        self.lines.append(f"{name}_sum {_number(round(sum(values), 6))}")
        self.lines.append(f"{name}_count {len(values)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_prometheus(snap: OpsSnapshot) -> str:
    from training import catalog

    out = _Exposition()
    engines = list(catalog.ENGINES)
    out.family(
        "training_runs_created_total",
        "counter",
        "Training runs created, by engine.",
        (({"engine": e}, snap.created.get(e, 0)) for e in engines),
    )
    terminal = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.EXPIRED)
    out.family(
        "training_runs_finished_total",
        "counter",
        "Training runs that reached a final status, by engine and status.",
        (({"engine": e, "status": str(s)}, snap.finished.get((e, s), 0)) for e in engines for s in terminal),
    )  # fmt: skip
    active = (RunStatus.PENDING, RunStatus.SUBMITTING, RunStatus.SUBMITTED, RunStatus.PROCESSING)
    out.family(
        "training_runs_active",
        "gauge",
        "Training runs not finished yet, by engine and status.",
        (({"engine": e, "status": str(s)}, snap.active.get((e, s), 0)) for e in engines for s in active),
    )  # fmt: skip
    out.family(
        "training_pending_runs",
        "gauge",
        "Runs stored but not yet claimed by a worker (the submission backlog).",
        [({}, sum(n for (_, s), n in snap.active.items() if s == RunStatus.PENDING))],
    )
    out.family(
        "training_pending_oldest_age_seconds",
        "gauge",
        "Age of the oldest pending run; 0 when none is pending.",
        [({}, round(snap.pending_oldest_seconds or 0.0, 3))],
    )
    out.histogram(
        "training_submission_latency_seconds",
        "Seconds from a run's creation to its workflow's submission, over runs created in the "
        "last hour (a sliding window: read it directly, without rate()).",
        snap.latency,
    )
    out.family(
        "training_orchestrator_errors_total",
        "counter",
        "Orchestrator errors while submitting runs, by kind (transient, auth, rejected, other).",
        (({"kind": k}, n) for k, n in snap.errors.items()),
    )
    out.family(
        "training_callbacks_received_total",
        "counter",
        "Orchestrator callbacks received and recorded.",
        [({}, snap.callbacks)],
    )
    guard = snap.guard
    window = f"{guard.window_days}d"
    out.family(
        "training_rollout_guard_finished_runs",
        "gauge",
        "Finished runs the rollout guard counts (selectors.engine_success_rate).",
        [({"engine": guard.engine, "window": window}, guard.finished)],
    )
    out.family(
        "training_rollout_guard_success_ratio",
        "gauge",
        "Succeeded / finished runs the rollout guard gates on; absent with no finished runs.",
        [({"engine": guard.engine, "window": window}, guard.rate)]
        if guard.rate is not None
        else [],
    )
    out.family(
        "training_rollup_age_seconds",
        "gauge",
        "Age of the daily rollups the counters above come from.",
        [({}, round(snap.rollup_age_seconds, 3))] if snap.rollup_age_seconds is not None else [],
    )
    out.family(
        "training_rollup_refresh_duration_seconds",
        "gauge",
        "How long the last rollup refresh took.",
        [({}, snap.rollup_duration_seconds)],
    )
    out.family(
        "training_rollup_complete",
        "gauge",
        "1 when the rollups cover every day since the oldest run, 0 while history is built.",
        [({}, 1 if snap.rollup_complete else 0)],
    )
    return out.text()


# --- /healthz ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    status: str  # "up", "down" or "not configured"
    ms: int
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "ms": self.ms}
        if self.detail:
            out["detail"] = self.detail
        return out


def _timed(probe: Any) -> Check:
    started = time.monotonic()
    try:
        detail = probe()
    except Exception as exc:  # any failure is "down", with what went wrong
        return Check(
            "down", int((time.monotonic() - started) * 1000), f"{type(exc).__name__}: {exc}"
        )
    return Check("up", int((time.monotonic() - started) * 1000), detail or "")


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _redis() -> str:
    import redis

    # Straight to Redis: the cache backend swallows Redis errors by design (config/cache.py).
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=HEALTH_TIMEOUT_SECONDS,
        socket_timeout=HEALTH_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return ""


def _orchestrator() -> str:
    # Any HTTP answer means the orchestrator is reachable; no token is sent.
    response = requests.get(
        settings.ORCHESTRATOR_URL, timeout=HEALTH_TIMEOUT_SECONDS, allow_redirects=False
    )
    return f"HTTP {response.status_code}"


def health() -> tuple[bool, dict[str, Any]]:
    checks = {"database": _timed(_database)}
    if getattr(settings, "REDIS_URL", ""):
        checks["redis"] = _timed(_redis)
    else:
        checks["redis"] = Check("not configured", 0, "REDIS_URL is not set")
    checks["orchestrator"] = _timed(_orchestrator)
    ok = all(c.status != "down" for c in checks.values())
    body = {"status": "ok" if ok else "unavailable"}
    return ok, {**body, "checks": {name: c.as_dict() for name, c in checks.items()}}
