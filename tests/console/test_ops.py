"""/metrics (Prometheus text format, read by a parser written here) and /healthz."""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.console.helpers import ago, event, make_run, refreshed
from training.models import RunEvent

pytestmark = pytest.mark.django_db

LOOPBACK = "127.0.0.1"

# --- a small parser for the text exposition format (version 0.0.4) ------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^(?P<name>{_NAME})(?:\{{(?P<labels>.*)\}})? (?P<value>\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _labels(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    rest = text or ""
    while rest:
        match = _LABEL.match(rest)
        assert match, f"bad labels: {text!r}"
        labels[match.group(1)] = _unescape(match.group(2))
        rest = rest[match.end() :]
    return labels


def _value(text: str) -> float:
    return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text) or float(text)


def parse(text: str) -> dict[str, Family]:
    """Families by name; every sample must belong to a family declared by # TYPE before it."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            families.setdefault(name, Family(name)).help = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in _TYPES, line
            family = families.setdefault(name, Family(name))
            assert not family.samples, f"TYPE after samples: {line}"
            family.type = kind
        elif line.startswith("#"):
            continue
        else:
            match = _SAMPLE.match(line)
            assert match, f"bad sample line: {line!r}"
            name = match["name"]
            owner = next(
                (
                    families[base]
                    for base in (name, re.sub(r"_(bucket|sum|count)$", "", name))
                    if base in families
                ),
                None,
            )
            assert owner is not None, f"sample without a family: {line}"
            owner.samples.append((name, _labels(match["labels"]), _value(match["value"])))
    for family in families.values():
        if family.type == "histogram":
            buckets = [(s[1]["le"], s[2]) for s in family.samples if s[0].endswith("_bucket")]
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{family.name}: buckets are not cumulative"
            assert buckets[-1][0] == "+Inf"
            (count,) = [s[2] for s in family.samples if s[0] == family.name + "_count"]
            assert buckets[-1][1] == count
        if family.type == "counter":
            assert all(s[2] >= 0 for s in family.samples)
    return families


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    family = families.get(name) or families[base]
    matches = [v for n, lab, v in family.samples if n == name and lab == labels]
    assert len(matches) == 1, (name, labels, family.samples)
    return matches[0]


def test_the_parser_rejects_what_prometheus_would() -> None:
    with pytest.raises(AssertionError):
        parse("orphan_sample 1\n")
    with pytest.raises(AssertionError):
        parse('# TYPE x gauge\nx{a="unterminated} 1\n')
    ok = parse('# TYPE x gauge\nx{a="q\\"uote",b="back\\\\slash"} 2.5\n')
    assert value(ok, "x", a='q"uote', b="back\\slash") == 2.5


# --- /metrics --------------------------------------------------------------------------------------


def scrape() -> str:
    response = Client().get("/metrics", REMOTE_ADDR=LOOPBACK)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
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
    # Submission latency over runs created in the last hour: 0.4 s, 3 s and 45 s.
    for seconds in (0.4, 3, 45):
        make_run(owner, status="processing", created=ago(minutes=30), submit_after=seconds,
                 duration=None)  # fmt: skip
    for message in ("transient: 503", "transient: timed out", "auth: 401", "rejected: bad", "?"):
        event(failed, RunEvent.Kind.SUBMIT_ERROR, message)
    for _ in range(4):
        event(failed, RunEvent.Kind.CALLBACK, "orchestrator reports failed")
    refreshed()

    families = parse(scrape())
    assert families["training_runs_created_total"].type == "counter"
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
    assert value(families, latency + "_count") == 3
    assert value(families, latency + "_sum") == pytest.approx(48.4)
    assert value(families, latency + "_bucket", le="0.5") == 1
    assert value(families, latency + "_bucket", le="5") == 2
    assert value(families, latency + "_bucket", le="30") == 2
    assert value(families, latency + "_bucket", le="60") == 3
    assert value(families, latency + "_bucket", le="+Inf") == 3
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


def test_an_empty_database_scrapes_cleanly(db: None) -> None:
    families = parse(scrape())
    assert value(families, "training_runs_created_total", engine="kohya") == 0
    assert value(families, "training_submission_latency_seconds_count") == 0
    assert families["training_rollout_guard_success_ratio"].samples == []  # no rate, not 0


def test_without_a_token_only_loopback_may_scrape(db: None) -> None:
    with override_settings(METRICS_TOKEN=""):
        assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
        assert Client().get("/metrics", REMOTE_ADDR="::1").status_code == 200
        assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_with_a_token_every_scraper_needs_it(db: None) -> None:
    with override_settings(METRICS_TOKEN="s3cret-token"):
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


def health(**overrides: str) -> tuple[int, dict]:
    with override_settings(**overrides):
        response = Client().get("/healthz")
    return response.status_code, response.json()


def test_healthz_is_200_when_everything_answers(db: None, emulator: EmulatorServer) -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL")
    status, body = health(ORCHESTRATOR_URL=emulator.url)
    assert status == 200
    assert body["status"] == "ok"
    assert {name: c["status"] for name, c in body["checks"].items()} == {
        "database": "up",
        "redis": "up",
        "orchestrator": "up",
    }
    assert body["checks"]["orchestrator"]["detail"].startswith("HTTP ")


def test_healthz_is_503_when_the_orchestrator_is_unreachable(db: None) -> None:
    status, body = health(ORCHESTRATOR_URL=f"http://127.0.0.1:{closed_port()}")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["orchestrator"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "up"


def test_healthz_pings_redis_itself(db: None, emulator: EmulatorServer) -> None:
    # The cache swallows Redis errors; the health check must not.
    status, body = health(
        ORCHESTRATOR_URL=emulator.url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0"
    )
    assert status == 503 and body["checks"]["redis"]["status"] == "down"
    status, body = health(ORCHESTRATOR_URL=emulator.url, REDIS_URL="")
    assert status == 200 and body["checks"]["redis"]["status"] == "not configured"


def test_healthz_needs_no_login_and_is_not_cached(db: None, emulator: EmulatorServer) -> None:
    with override_settings(ORCHESTRATOR_URL=emulator.url, REDIS_URL=""):
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]


def test_the_refresh_task_runs_a_pass(owner: User) -> None:
    from console.tasks import refresh_rollups_task

    make_run(owner)
    result = refresh_rollups_task.apply().get()
    assert result is not None and result["complete"] is True and result["backfilled_days"] >= 1
