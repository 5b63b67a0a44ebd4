"""The fault suite: real processes (web, Celery workers, beat, a private Redis) and the emulator,
faults injected on cue; each scenario prints how many runs it sent, lost and duplicated.

A run is lost when it does not reach `succeeded`; duplicated when the orchestrator saw its
workflow submitted more than once. FAULT_OUTAGE_SECONDS sets how long outages last (CI: short)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conftest import make_user, run_body
from tests.harness import Redis, Stack, wait_until
from training.models import RunEvent, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.faults, pytest.mark.slow]

N = int(os.environ.get("FAULT_RUNS", "8"))
OUTAGE = float(os.environ.get("FAULT_OUTAGE_SECONDS", "15"))
FAST = {"queue_seconds": 0.2, "seconds_per_epoch": 0.2, "callback_backoff": 0.1}


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", 0, EmulatorConfig(**FAST))  # type: ignore[arg-type]
    server.start()
    yield server
    server.stop()


def _stack(orchestrator_url: str) -> tuple[Stack, Redis]:
    redis = Redis()
    redis.start()
    stack = Stack(
        orchestrator_url=orchestrator_url,
        redis=redis,
        TRAINING_MAX_ACTIVE_RUNS="100",
        THROTTLE_RUN_CREATE="1000/min",
        CELERY_VISIBILITY_TIMEOUT="60",
        CELERY_TASK_TIME_LIMIT="40",
        CELERY_TASK_SOFT_TIME_LIMIT="30",
    )
    stack.start_web()
    return stack, redis


@pytest.fixture
def stack(emulator: EmulatorServer) -> Iterator[Stack]:
    s, redis = _stack(emulator.url)
    yield s
    s.stop()
    redis.stop()


def api_for(stack: Stack) -> requests.Session:
    make_user("olivia")
    session = requests.Session()
    session.headers["Authorization"] = "Token " + stack.token("olivia", "pw-olivia")
    return session


def create_runs(stack: Stack, api: requests.Session, n: int = N) -> list[str]:
    ids = []
    for i in range(n):
        body = run_body(loraName=f"fault-{i}", params={"maxTrainEpochs": 3})
        response = api.post(f"{stack.url}/api/v1/training-runs/", json=body, timeout=20)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


_capture: list[Any] = []


@pytest.fixture(autouse=True)
def _report_to_terminal(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    _capture.append(capsys)
    yield
    _capture.pop()


def report(line: str) -> None:
    # Shown in every run's output (CI's too), not only when a test fails.
    with _capture[-1].disabled():
        print("\n" + line, flush=True)


def tally(scenario: str, emulator: EmulatorServer, ids: list[str], timeout: float = 120) -> None:
    try:
        wait_until(
            lambda: TrainingRun.objects.filter(pk__in=ids, status="succeeded").count() == len(ids),
            timeout=timeout,
            every=0.5,
        )
    except TimeoutError:
        pass
    by_tag: dict[str, int] = emulator.stats()["byTag"]  # type: ignore[assignment]
    lost = len(ids) - TrainingRun.objects.filter(pk__in=ids, status="succeeded").count()
    duplicated = sum(1 for i in ids if by_tag.get(f"run:{i}", 0) > 1)
    report(f"[faults] {scenario}: {len(ids)} runs, lost {lost}, duplicated {duplicated}")
    assert (lost, duplicated) == (0, 0), dict(
        TrainingRun.objects.filter(pk__in=ids).values_list("pk", "status")
    )


def test_sigkill_of_the_worker_mid_submission_submits_every_run_exactly_once(
    stack: Stack, emulator: EmulatorServer
) -> None:
    api = api_for(stack)
    emulator.update_faults(latency_ms=1500)  # every POST is slow: the kill lands mid-request
    stack.start_worker(concurrency=4)
    ids = create_runs(stack, api)
    wait_until(
        lambda: TrainingRun.objects.filter(pk__in=ids, status="submitting").exists(), timeout=30
    )
    stack.kill("worker", signal.SIGKILL)
    emulator.update_faults(latency_ms=0)
    stack.start_worker(concurrency=2)
    stack.start_beat()
    tally("worker SIGKILLed mid-submission", emulator, ids)


def test_runs_accepted_while_redis_is_stopped_are_all_submitted_after_it_returns(
    stack: Stack, emulator: EmulatorServer
) -> None:
    api = api_for(stack)
    stack.start_worker()
    stack.redis.stop()
    ids = create_runs(stack, api)
    assert set(TrainingRun.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "pending"
    }
    stack.redis.start()
    stack.start_beat()
    tally("Redis stopped while runs were accepted", emulator, ids)


@pytest.mark.parametrize("mode", ["5xx", "timeouts", "refused"])
def test_an_orchestrator_outage_loses_and_duplicates_nothing(
    mode: str, emulator: EmulatorServer
) -> None:
    port = emulator.port
    stack, redis = _stack(emulator.url)
    try:
        api = api_for(stack)
        stack.start_worker(concurrency=2)
        stack.start_beat()
        server = emulator
        if mode == "5xx":
            emulator.update_faults(fail_rate=1.0, fail_status=502)
        elif mode == "timeouts":
            emulator.update_faults(timeout_rate=1.0, hang_seconds=5)  # > the 3 s read timeout
        else:
            emulator.stop()  # the port refuses connections
        ids = create_runs(stack, api)
        time.sleep(OUTAGE)
        if mode == "refused":
            server = EmulatorServer("127.0.0.1", port, EmulatorConfig(**FAST))  # type: ignore[arg-type]
            server.start()
        else:
            emulator.update_faults(fail_rate=0.0, timeout_rate=0.0)
        tally(f"orchestrator {mode} for {OUTAGE:.0f}s", server, ids)
        if mode == "refused":
            server.stop()
    finally:
        stack.stop()
        redis.stop()


def test_with_every_callback_dropped_the_reconciler_still_finishes_every_run(
    stack: Stack, emulator: EmulatorServer
) -> None:
    api = api_for(stack)
    emulator.update_faults(drop_callbacks=True)
    stack.start_worker()
    stack.start_beat()
    ids = create_runs(stack, api)
    tally("every callback dropped", emulator, ids)
    assert not RunEvent.objects.filter(run_id__in=ids, kind="callback").exists()


def test_duplicate_replayed_and_out_of_order_callbacks_change_nothing(
    stack: Stack, emulator: EmulatorServer
) -> None:
    from training.orchestrator.callbacks import callback_url

    api = api_for(stack)
    stack.start_worker()
    ids = create_runs(stack, api)
    tally("normal run before the storm", emulator, ids)
    runs = list(TrainingRun.objects.filter(pk__in=ids))
    events: list[tuple[str, dict[str, Any]]] = []
    for run in runs:
        url = callback_url(run.pk).replace("http://127.0.0.1:8000", stack.url)
        for status in ("unassigned", "processing", "processing", "succeeded", "failed", "canceled"):
            events.extend([(url, {"workflowId": run.workflow_id, "status": status})] * 2)
    random.Random(7).shuffle(events)

    def send(chunk: list[tuple[str, dict[str, Any]]]) -> None:
        for url, body in chunk:
            assert requests.post(url, json=body, timeout=20).status_code == 200

    threads = [threading.Thread(target=send, args=(events[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2)  # let the refreshes the storm enqueued run
    regressed = TrainingRun.objects.filter(pk__in=ids).exclude(status="succeeded").count()
    report(
        f"[faults] callback storm ({len(events)} events): {len(ids)} runs, regressed {regressed}"
    )
    assert regressed == 0
    tally("after the callback storm", emulator, ids)
