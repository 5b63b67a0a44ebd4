"""Operations: the numbers behind /metrics (prometheus-client) and the checks behind /healthz.

/metrics reads the daily rollups for its counters and its histogram, and the runs table only
through an index for its gauges (`training.stats.active_runs`: few rows on the status index), so a
scrape costs the same at any number of runs (bench/RESULTS.md).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from console.metrics import Guard, rollout_guard
from console.models import Basis, RunDailyStat, RunEventDailyStat
from console.rollup import LATENCY_BUCKETS, LATENCY_KIND, LATENCY_SUM, rollup_ensure_fresh
from training.stats import (
    ERROR_KINDS,
    TERMINAL_STATUSES,
    RunEventKind,
    RunStatus,
    active_runs,
)
from vocabulary import catalog

# --- access --------------------------------------------------------------------------------------


def metrics_token() -> str:
    return str(settings.METRICS_TOKEN or "")


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def has_metrics_token(request: HttpRequest) -> bool:
    token = metrics_token()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )


def metrics_access(request: HttpRequest) -> int:
    """200 when the scraper may read /metrics, else the status to answer with.

    With METRICS_TOKEN set, every scraper sends it (401 otherwise), loopback included. Without
    one, only loopback callers and only with DEBUG on (`make run`): behind a reverse proxy on the
    same host every request arrives from loopback, so in production an address proves nothing
    (docs/decisions.md, "Who may read /metrics")."""
    if metrics_token():
        return 200 if has_metrics_token(request) else 401
    if settings.DEBUG and _is_loopback(request.META.get("REMOTE_ADDR")):
        return 200
    return 403


# --- /metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpsSnapshot:
    created: dict[str, int]  # engine -> runs ever created
    finished: dict[tuple[str, str], int]  # (engine, terminal status) -> runs
    active: dict[tuple[str, str], int]  # (engine, active status) -> runs now
    pending_oldest_seconds: float | None
    latency_buckets: dict[str, int]  # upper bound label -> runs in that bucket (not cumulative)
    latency_sum: float  # seconds
    errors: dict[str, int]  # submission errors by kind
    callbacks: int
    rollup_age_seconds: float | None
    rollup_duration_seconds: float
    rollup_complete: bool
    guard: Guard


def ops_snapshot() -> OpsSnapshot:
    """Six queries at any size: rollup freshness, rollup sums (runs, events), active runs and
    the rollout guard."""
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
    live = active_runs()
    errors = {kind: 0 for kind in (*ERROR_KINDS, "other")}
    callbacks = 0
    latency_buckets: dict[str, int] = {}
    latency_sum = 0.0
    events = RunEventDailyStat.objects.values("kind", "label").annotate(n=Sum("events"))
    for row in events.order_by():
        if row["kind"] == RunEventKind.CALLBACK:
            callbacks += row["n"]
        elif row["kind"] == RunEventKind.SUBMIT_ERROR:
            errors[row["label"] or "other"] = errors.get(row["label"] or "other", 0) + row["n"]
        elif row["kind"] == LATENCY_KIND and row["label"] == LATENCY_SUM:
            latency_sum = float(row["n"])
        elif row["kind"] == LATENCY_KIND:
            latency_buckets[row["label"]] = row["n"]
    refreshed = state.refreshed_at if state else None
    return OpsSnapshot(
        created=created,
        finished=finished,
        active=live.counts,
        pending_oldest_seconds=(
            (now - live.oldest_pending).total_seconds() if live.oldest_pending else None
        ),
        latency_buckets=latency_buckets,
        latency_sum=latency_sum,
        errors=errors,
        callbacks=callbacks,
        rollup_age_seconds=(now - refreshed).total_seconds() if refreshed else None,
        rollup_duration_seconds=(state.last_duration_ms / 1000) if state else 0.0,
        rollup_complete=bool(state and state.complete),
        guard=rollout_guard(),
    )


class TrainingCollector(Collector):
    """Reads the numbers at scrape time. Counters and the histogram are sums over the daily
    rollups of things that only ever happen once per run or event, so they never go down
    between scrapes (except after a full rebuild of the rollups, which Prometheus reads as a
    counter reset)."""

    def collect(self) -> Iterator[Metric]:
        snap = ops_snapshot()
        engines = list(catalog.ENGINES)
        created = CounterMetricFamily(
            "training_runs_created", "Training runs created, by engine.", labels=["engine"]
        )
        for e in engines:
            created.add_metric([e], snap.created.get(e, 0))
        yield created
        terminal = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.EXPIRED)
        finished = CounterMetricFamily(
            "training_runs_finished",
            "Training runs that reached a final status, by engine and status.",
            labels=["engine", "status"],
        )
        for e in engines:
            for s in terminal:
                finished.add_metric([e, str(s)], snap.finished.get((e, str(s)), 0))
        yield finished
        active = GaugeMetricFamily(
            "training_runs_active",
            "Training runs not finished yet, by engine and status.",
            labels=["engine", "status"],
        )
        live = (RunStatus.PENDING, RunStatus.SUBMITTING, RunStatus.SUBMITTED, RunStatus.PROCESSING)
        for e in engines:
            for s in live:
                active.add_metric([e, str(s)], snap.active.get((e, str(s)), 0))
        yield active
        yield GaugeMetricFamily(
            "training_pending_runs",
            "Runs stored but not yet claimed by a worker (the submission backlog).",
            value=sum(n for (_, s), n in snap.active.items() if s == RunStatus.PENDING),
        )
        yield GaugeMetricFamily(
            "training_pending_oldest_age_seconds",
            "Age of the oldest pending run; 0 when none is pending.",
            value=round(snap.pending_oldest_seconds or 0.0, 3),
        )
        cumulative, buckets = 0, []
        for label in [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]:
            cumulative += snap.latency_buckets.get(label, 0)
            buckets.append((label, float(cumulative)))
        latency = HistogramMetricFamily(
            "training_submission_latency_seconds",
            "Seconds from a run's creation to its workflow's submission, every submitted run "
            "(the sum is rounded to whole seconds per day).",
        )
        latency.add_metric([], buckets=buckets, sum_value=snap.latency_sum)
        yield latency
        errors = CounterMetricFamily(
            "training_orchestrator_errors",
            "Orchestrator errors while submitting runs, by kind (transient, auth, rejected, other).",
            labels=["kind"],
        )
        for kind, n in snap.errors.items():
            errors.add_metric([kind], n)
        yield errors
        yield CounterMetricFamily(
            "training_callbacks_received",
            "Orchestrator callbacks received and recorded.",
            value=snap.callbacks,
        )
        guard = snap.guard
        labels = ["engine", "window"]
        window = [guard.engine, f"{guard.window_days}d"]
        finished_runs = GaugeMetricFamily(
            "training_rollout_guard_finished_runs",
            "Finished runs the rollout guard counts.",
            labels=labels,
        )
        finished_runs.add_metric(window, guard.finished)
        yield finished_runs
        ratio = GaugeMetricFamily(
            "training_rollout_guard_success_ratio",
            "Succeeded / finished runs the rollout guard gates on; absent with no finished runs.",
            labels=labels,
        )
        if guard.rate is not None:
            ratio.add_metric(window, guard.rate)
        yield ratio
        age = GaugeMetricFamily(
            "training_rollup_age_seconds", "Age of the daily rollups the counters come from."
        )
        if snap.rollup_age_seconds is not None:
            age.add_metric([], round(snap.rollup_age_seconds, 3))
        yield age
        yield GaugeMetricFamily(
            "training_rollup_refresh_duration_seconds",
            "How long the last rollup refresh took.",
            value=snap.rollup_duration_seconds,
        )
        yield GaugeMetricFamily(
            "training_rollup_complete",
            "1 when the rollups cover every day since the oldest run, 0 while history is built.",
            value=1 if snap.rollup_complete else 0,
        )


def render_prometheus() -> bytes:
    # A registry per scrape: the collector reads the database, which the default registry's
    # process-wide collectors (and other tests' registrations) have no business sharing.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TrainingCollector())
    return generate_latest(registry)


# --- /healthz ------------------------------------------------------------------------------------

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_SECONDS = 2.0
ORCHESTRATOR_PROBE_EVERY = 30.0  # seconds: at most one probe per period, shared by every node
ORCHESTRATOR_PROBE_KEY = "healthz:orchestrator"
ORCHESTRATOR_PROBE_LOCK = "healthz:orchestrator:lock"
_last_probe: dict[str, Any] = {}  # this process's own copy, for when the cache is away


@dataclass(frozen=True)
class Check:
    status: str  # "up", "down" or "not configured"
    ms: int
    detail: str = ""
    checked_at: float = 0.0  # time.time() of the probe

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "ms": self.ms}
        if self.detail:
            out["detail"] = self.detail
        if self.checked_at:
            out["age_seconds"] = round(max(0.0, time.time() - self.checked_at), 1)
        return out


def _timed(probe: Any) -> Check:
    started = time.monotonic()
    try:
        detail = probe()
    except Exception as exc:  # any failure is "down", with what went wrong (staff only)
        return Check(
            "down",
            int((time.monotonic() - started) * 1000),
            f"{type(exc).__name__}: {exc}",
            time.time(),
        )
    return Check("up", int((time.monotonic() - started) * 1000), detail or "", time.time())


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return ""


def _redis() -> str:
    import redis

    # Straight to Redis: the cache backend swallows Redis errors by design.
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


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:  # the cache is an optimisation here: Redis's own check reports it
        return None


def orchestrator_check() -> Check:
    """The orchestrator's reachability from a probe at most every 30 s across all web nodes (a
    lock in the shared cache picks the one that probes; the others read its result), so load
    balancer checks never multiply into upstream traffic or wait on an upstream timeout."""
    now = time.time()
    for cached in (_cache_get(ORCHESTRATOR_PROBE_KEY), _last_probe.get("check")):
        if isinstance(cached, Check) and now - cached.checked_at < ORCHESTRATOR_PROBE_EVERY:
            return cached
    try:
        mine = bool(cache.add(ORCHESTRATOR_PROBE_LOCK, 1, timeout=ORCHESTRATOR_PROBE_EVERY))
    except Exception:
        mine = True  # no shared cache: this process probes on its own, still at most every 30 s
    stale = _cache_get(ORCHESTRATOR_PROBE_KEY) or _last_probe.get("check")
    if not mine and isinstance(stale, Check):
        return stale
    check = _timed(_orchestrator)
    _last_probe["check"] = check
    try:
        cache.set(ORCHESTRATOR_PROBE_KEY, check, timeout=10 * ORCHESTRATOR_PROBE_EVERY)
    except Exception:
        log.debug("healthz: could not share the orchestrator probe", exc_info=True)
    return check


def health(*, detailed: bool) -> tuple[int, dict[str, Any]]:
    """200 whenever this node can serve: its database and Redis answer. The orchestrator being
    away makes the status `degraded`, never a failure: taking every web node out of the load
    balancer during an upstream outage would also take down the pages that still work.
    Anonymous callers get statuses only; `detailed` adds timings and error text."""
    checks = {"database": _timed(_database)}
    if settings.REDIS_URL:
        checks["redis"] = _timed(_redis)
    else:
        checks["redis"] = Check("not configured", 0, "REDIS_URL is not set")
    checks["orchestrator"] = orchestrator_check()
    serving = checks["database"].status != "down" and checks["redis"].status != "down"
    if not serving:
        status = "unavailable"
    elif checks["orchestrator"].status == "down":
        status = "degraded"
    else:
        status = "ok"
    if detailed:
        body = {name: c.as_dict() for name, c in checks.items()}
    else:
        body = {name: {"status": c.status} for name, c in checks.items()}
    return (200 if serving else 503), {"status": status, "checks": body}
