"""/metrics (read back with prometheus-client's parser, scraped twice) and /healthz."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from console import ops
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.console.helpers import ago, event, make_run, refreshed
from training.models import RunEvent

pytestmark = pytest.mark.django_db

LOOPBACK = "127.0.0.1"


def parse(text: str) -> dict[str, Metric]:
    """Families by name, read by prometheus-client's own parser (which raises on bad lines)."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for family in families.values():
        if family.type == "histogram":
            buckets = [s.value for s in family.samples if s.name.endswith("_bucket")]
            assert buckets == sorted(buckets), f"{family.name}: buckets are not cumulative"
            (count,) = [s.value for s in family.samples if s.name.endswith("_count")]
            assert buckets[-1] == count
        if family.type == "counter":
            assert all(s.value >= 0 for s in family.samples)
    return families


def value(families: dict[str, Metric], name: str, **labels: str) -> float:
    matches = [
        s.value
        for f in families.values()
        for s in f.samples
        if s.name == name and s.labels == labels
    ]
    assert len(matches) == 1, (name, labels)
    return matches[0]


def monotonic_samples(families: dict[str, Metric]) -> dict[tuple[str, tuple], float]:
    """Every sample Prometheus treats as a counter: counters' totals and histograms' parts."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        if f.type in ("counter", "histogram")
        for s in f.samples
        if not s.name.endswith("_created")
    }


# --- /metrics --------------------------------------------------------------------------------------


def scrape(**headers: str) -> str:
    with override_settings(METRICS_TOKEN="s3cret-token"):
        response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def test_metrics_have_the_expected_samples(owner: User) -> None:
    make_run(owner, engine="kohya")
    make_run(owner, engine="kohya")
    failed = make_run(owner, engine="kohya", status="failed", error_code="orchestrator_failed")
    make_run(owner, engine="ai-toolkit", status="expired", error_code="orchestrator_expired")
    make_run(owner, engine="ai-toolkit", status="canceled")
    make_run(owner, engine="rapid", base_model="flux_dev", status="pending", submit_after=None,
             created=ago(minutes=10))  # fmt: skip
    make_run(owner, engine="musubi", base_model="wan_2_1_t2v_14b", status="processing",
             duration=None)  # fmt: skip
    # Six runs above were submitted 5 s after creation (two days ago); three more today.
    for seconds in (0.4, 3, 45):
        make_run(owner, status="processing", created=ago(minutes=30), submit_after=seconds,
                 duration=None)  # fmt: skip
    for message in ("transient: 503", "transient: timed out", "auth: 401", "rejected: bad", "?"):
        event(failed, RunEvent.Kind.SUBMIT_ERROR, message)
    for _ in range(4):
        event(failed, RunEvent.Kind.CALLBACK, "orchestrator reports failed")
    refreshed()

    families = parse(scrape())
    assert families["training_runs_created"].type == "counter"
    assert value(families, "training_runs_created_total", engine="kohya") == 6
    assert value(families, "training_runs_created_total", engine="ai-toolkit") == 2
    assert value(families, "training_runs_created_total", engine="rapid") == 1
    assert value(families, "training_runs_created_total", engine="musubi") == 1
    finished = "training_runs_finished_total"
    assert value(families, finished, engine="kohya", status="succeeded") == 2
    assert value(families, finished, engine="kohya", status="failed") == 1
    assert value(families, finished, engine="ai-toolkit", status="expired") == 1
    assert value(families, finished, engine="ai-toolkit", status="canceled") == 1
    assert value(families, finished, engine="musubi", status="succeeded") == 0
    active = "training_runs_active"
    assert families[active].type == "gauge"
    assert value(families, active, engine="rapid", status="pending") == 1
    assert value(families, active, engine="musubi", status="processing") == 1
    assert value(families, active, engine="kohya", status="processing") == 3
    assert value(families, "training_pending_runs") == 1
    assert 590 <= value(families, "training_pending_oldest_age_seconds") <= 660
    latency = "training_submission_latency_seconds"
    assert families[latency].type == "histogram"
    # Every submitted run, however old: a histogram Prometheus can rate().
    assert value(families, latency + "_count") == 9
    assert value(families, latency + "_sum") == 30 + 48  # whole seconds per day
    assert value(families, latency + "_bucket", le="0.5") == 1
    assert value(families, latency + "_bucket", le="5.0") == 8
    assert value(families, latency + "_bucket", le="30.0") == 8
    assert value(families, latency + "_bucket", le="60.0") == 9
    assert value(families, latency + "_bucket", le="+Inf") == 9
    errors = "training_orchestrator_errors_total"
    assert value(families, errors, kind="transient") == 2
    assert value(families, errors, kind="auth") == 1
    assert value(families, errors, kind="rejected") == 1
    assert value(families, errors, kind="other") == 1
    assert value(families, "training_callbacks_received_total") == 4
    guard = {"engine": "ai-toolkit", "window": "14d"}
    assert value(families, "training_rollout_guard_finished_runs", **guard) == 1
    assert value(families, "training_rollout_guard_success_ratio", **guard) == 0
    assert value(families, "training_rollup_complete") == 1


def test_no_counter_or_histogram_goes_down_between_scrapes(owner: User) -> None:
    make_run(owner, created=ago(minutes=50), submit_after=2, status="processing", duration=None)
    make_run(owner, created=ago(days=3), status="failed", error_code="x")
    refreshed()
    first = monotonic_samples(parse(scrape()))

    # Time moves on: the first run finishes, new runs arrive and are submitted, callbacks land.
    run = make_run(owner, created=ago(minutes=5), submit_after=40, status="succeeded")
    make_run(owner, created=ago(minutes=1), status="pending", submit_after=None)
    event(run, RunEvent.Kind.CALLBACK, "orchestrator reports succeeded")
    refreshed()
    second = monotonic_samples(parse(scrape()))

    assert set(first) <= set(second)
    went_down = {k: (first[k], second[k]) for k in first if second[k] < first[k]}
    assert went_down == {}
    grew = {k for k in first if second[k] > first[k]}
    assert ("training_submission_latency_seconds_count", ()) in grew
    assert ("training_callbacks_received_total", ()) in grew
    assert ("training_runs_created_total", (("engine", "kohya"),)) in grew


def test_an_empty_database_scrapes_cleanly(db: None) -> None:
    families = parse(scrape())
    assert value(families, "training_runs_created_total", engine="kohya") == 0
    assert value(families, "training_submission_latency_seconds_count") == 0
    assert families["training_rollout_guard_success_ratio"].samples == []  # no rate, not 0


def test_without_a_token_nobody_may_scrape_in_production(db: None) -> None:
    # A reverse proxy on the same host makes every request come from loopback.
    with override_settings(METRICS_TOKEN="", DEBUG=False):
        assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
        assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
        assert Client().get("/metrics", REMOTE_ADDR="::1").status_code == 403


def test_without_a_token_loopback_may_scrape_in_development(db: None) -> None:
    with override_settings(METRICS_TOKEN="", DEBUG=True):
        assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
        assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_with_a_token_every_scraper_needs_it(db: None) -> None:
    with override_settings(METRICS_TOKEN="s3cret-token", DEBUG=True):
        anonymous = Client().get("/metrics", REMOTE_ADDR=LOOPBACK)
        assert anonymous.status_code == 401
        assert anonymous["WWW-Authenticate"].startswith("Bearer")
        wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR=LOOPBACK)
        assert wrong.status_code == 401
        right = Client().get(
            "/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token", REMOTE_ADDR="10.1.2.3"
        )
        assert right.status_code == 200
        parse(right.content.decode())


def test_a_scrape_costs_the_same_queries_at_any_size(owner: User) -> None:
    def count() -> int:
        refreshed()
        with CaptureQueriesContext(connection) as queries:
            scrape()
        return len(queries)

    make_run(owner)
    few = count()
    for day in range(40):
        make_run(owner, created=ago(days=day), status="failed", error_code="x")
        make_run(owner, created=ago(minutes=day), status="processing", duration=None)
    assert count() == few <= 7


# --- /healthz --------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", 0, EmulatorConfig(drop_callbacks=True))
    server.start()
    yield server
    server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    def forget() -> None:
        cache.delete_many([ops.ORCHESTRATOR_PROBE_KEY, ops.ORCHESTRATOR_PROBE_LOCK])
        ops._last_probe.clear()

    forget()
    yield
    forget()


def health(client: Client | None = None, **overrides: str) -> tuple[int, dict]:
    with override_settings(**overrides):
        response = (client or Client()).get("/healthz")
    return response.status_code, response.json()


def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops-staff", is_staff=True))
    return client


def test_healthz_is_200_when_everything_answers(db: None, emulator: EmulatorServer) -> None:
    status, body = health(staff_client(), ORCHESTRATOR_URL=emulator.url)
    assert status == 200
    assert body["status"] == "ok"
    assert {name: c["status"] for name, c in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "orchestrator": "up",
    }
    assert body["checks"]["orchestrator"]["detail"].startswith("HTTP ")


def test_an_unreachable_orchestrator_is_degraded_not_a_failure(db: None) -> None:
    status, body = health(ORCHESTRATOR_URL=f"http://orchestrator.internal:{closed_port()}")
    assert status == 200  # the load balancer keeps this node: it can still serve
    assert body["status"] == "degraded"
    assert body["checks"]["orchestrator"] == {"status": "down"}
    assert body["checks"]["database"] == {"status": "up"}


def test_anonymous_callers_see_statuses_only(db: None) -> None:
    url = f"http://orchestrator.internal:{closed_port()}"
    _status, anonymous = health(
        ORCHESTRATOR_URL=url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"
    )
    text = str(anonymous)
    assert "orchestrator.internal" not in text and "127.0.0.1" not in text
    assert "Error" not in text and "detail" not in text
    with override_settings(METRICS_TOKEN="s3cret-token", ORCHESTRATOR_URL=url):
        scraper = Client().get("/healthz", HTTP_AUTHORIZATION="Bearer s3cret-token").json()
    assert "detail" in scraper["checks"]["orchestrator"]
    _status, staff = health(staff_client(), ORCHESTRATOR_URL=url)
    assert "Error" in staff["checks"]["orchestrator"]["detail"]


def test_the_orchestrator_is_probed_at_most_every_30_seconds(
    db: None, emulator: EmulatorServer
) -> None:
    assert health(ORCHESTRATOR_URL=emulator.url)[1]["status"] == "ok"
    # The orchestrator goes away: within the period, the last probe still answers.
    for _ in range(3):
        status, body = health(ORCHESTRATOR_URL=f"http://127.0.0.1:{closed_port()}")
        assert (status, body["status"]) == (200, "ok")
    # Once the probe is older than the period, the next caller probes again.
    stale = cache.get(ops.ORCHESTRATOR_PROBE_KEY)
    old = dataclasses.replace(stale, checked_at=stale.checked_at - ops.ORCHESTRATOR_PROBE_EVERY)
    cache.set(ops.ORCHESTRATOR_PROBE_KEY, old)
    ops._last_probe["check"] = old
    cache.delete(ops.ORCHESTRATOR_PROBE_LOCK)
    status, body = health(ORCHESTRATOR_URL=f"http://127.0.0.1:{closed_port()}")
    assert (status, body["status"]) == (200, "degraded")


def test_healthz_fails_when_this_node_cannot_reach_redis(
    db: None, emulator: EmulatorServer
) -> None:
    # The cache swallows Redis errors; the health check must not.
    status, body = health(
        ORCHESTRATOR_URL=emulator.url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"
    )
    assert status == 503 and body["status"] == "unavailable"
    assert body["checks"]["redis"] == {"status": "down"}


def test_healthz_needs_no_login_and_is_not_cached(db: None, emulator: EmulatorServer) -> None:
    with override_settings(ORCHESTRATOR_URL=emulator.url):
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_the_refresh_task_runs_a_pass(owner: User) -> None:
    from console.tasks import refresh_rollups_task

    make_run(owner)
    result = refresh_rollups_task.apply().get()
    assert result is not None and result["complete"] is True and result["backfilled_days"] >= 1
