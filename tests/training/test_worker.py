"""The worker end to end: real web and Celery processes, a private Redis, the emulator over HTTP
(the stack and Olivia's API session: tests/training/conftest.py)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection

from emulator.server import EmulatorServer
from tests.conftest import make_user, run_body
from tests.harness import Stack, wait_until
from training.models import RunEvent, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def create(stack: Stack, api: requests.Session, **overrides: Any) -> dict[str, Any]:
    body = run_body(params={"maxTrainEpochs": 3}, **overrides)
    response = api.post(f"{stack.url}/api/v1/training-runs/", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return dict(response.json())


def status_of(run_id: str) -> str:
    return str(TrainingRun.objects.values_list("status", flat=True).get(pk=run_id))


def submissions(emulator: EmulatorServer, run_id: str) -> int:
    by_tag: dict[str, int] = emulator.stats()["byTag"]  # type: ignore[assignment]
    return by_tag.get(f"run:{run_id}", 0)


def test_a_run_reaches_succeeded_with_its_epochs_and_samples(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    run = create(stack, owner_api)
    wait_until(lambda: status_of(run["id"]) == "succeeded", timeout=60)
    detail = owner_api.get(f"{stack.url}/api/v1/training-runs/{run['id']}/", timeout=10).json()
    assert [e["epochNumber"] for e in detail["epochs"]] == [1, 2, 3]
    assert requests.get(detail["epochs"][-1]["modelUrl"], timeout=10).status_code == 200
    png = requests.get(detail["epochs"][0]["sampleImages"][0], timeout=10)
    assert png.content.startswith(b"\x89PNG")
    assert detail["workflowId"] and detail["chargedCost"] is not None
    assert submissions(emulator, run["id"]) == 1
    # The callbacks came in and were recorded; the state came from fresh GETs.
    assert RunEvent.objects.filter(run_id=run["id"], kind="callback").exists()
    steps = [e["toStatus"] for e in detail["events"] if e["kind"] == "status"]
    assert steps[:2] == ["submitting", "submitted"] and steps[-1] == "succeeded"


def database_sessions() -> int:
    # Sessions ever opened on the test database, read on a connection of its own (which counts
    # itself) so no statistics snapshot of ours goes stale.
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
        dbname=settings["NAME"], autocommit=True,
    ) as conn:  # fmt: skip
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_worker_keeps_its_database_connection_across_tasks(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    # Celery's Django fix-up would open a new connection for every task; each of these runs
    # takes a submission and several refreshes (one per callback).
    before = database_sessions()
    runs: list[dict[str, Any]] = []
    for _ in range(3):  # three batches of five: the active-run cap
        batch = [create(stack, owner_api) for _ in range(5)]
        wait_until(lambda: all(status_of(r["id"]) == "succeeded" for r in batch), timeout=60)  # noqa: B023
        runs += batch
    time.sleep(1.5)  # the statistics of sessions that ended are flushed
    events = RunEvent.objects.filter(run_id__in=[r["id"] for r in runs]).count()
    opened = database_sessions() - before - 1  # the reading's own
    assert events >= 45  # each the work of a task: a claim, a submission, a refresh
    # The web and worker processes open theirs once; the count must not follow the tasks.
    assert opened <= 12, f"{opened} new database sessions for {events} events"


def test_an_orchestrator_failing_with_5xx_for_a_while_then_healthy_submits_exactly_once(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    emulator.update_faults(fail_rate=1.0, fail_status=503)
    run = create(stack, owner_api)
    wait_until(
        lambda: RunEvent.objects.filter(run_id=run["id"], kind="submit_error").count() >= 3,
        timeout=30,
    )
    assert status_of(run["id"]) == "submitting"
    emulator.update_faults(fail_rate=0.0)
    wait_until(lambda: status_of(run["id"]) == "succeeded", timeout=60)
    assert submissions(emulator, run["id"]) == 1


def test_a_400_from_the_orchestrator_fails_the_run_with_its_message(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    emulator.update_faults(reject_all="trainingData host is not on the allow list")
    run = create(stack, owner_api)
    wait_until(lambda: status_of(run["id"]) == "failed", timeout=30)
    stored = TrainingRun.objects.get(pk=run["id"])
    assert stored.error_code == "orchestrator_rejected"
    assert "allow list" in stored.error_message


def test_a_lost_response_is_adopted_by_tag_and_never_submitted_twice(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    # Accepted, then the answer takes longer than the worker's 3 s read timeout.
    emulator.update_faults(submit_hang_after_accept_seconds=5)
    run = create(stack, owner_api)
    wait_until(lambda: submissions(emulator, run["id"]) == 1, timeout=20)
    emulator.update_faults(submit_hang_after_accept_seconds=0)
    wait_until(lambda: status_of(run["id"]) == "succeeded", timeout=60)
    assert submissions(emulator, run["id"]) == 1
    messages = list(RunEvent.objects.filter(run_id=run["id"]).values_list("message", flat=True))
    assert any("found the workflow" in m for m in messages)


def test_the_reconciler_adopts_a_run_whose_worker_died_mid_submission(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    # The workflow exists at the orchestrator, our row still says submitting: a worker died
    # between the POST and recording it. The reconciler must adopt it, not submit again.
    stack.kill("worker")
    run = create(stack, owner_api)
    stored = TrainingRun.objects.get(pk=run["id"])
    from training.payloads import workflow_body

    accepted = requests.post(
        f"{emulator.url}/v2/consumer/workflows",
        json=workflow_body(stored, run_id=stored.pk),
        headers={"Authorization": "Bearer emulator-token"},
        timeout=10,
    )
    assert accepted.status_code == 200
    TrainingRun.objects.filter(pk=stored.pk).update(status="submitting", submit_attempts=1)
    stack.start_worker()
    stack.start_beat()
    wait_until(lambda: status_of(run["id"]) == "succeeded", timeout=60)
    assert submissions(emulator, run["id"]) == 1
    assert RunEvent.objects.filter(
        run_id=run["id"], message__contains="reconciler adopted"
    ).exists()


def test_runs_accepted_while_redis_is_down_are_submitted_when_it_returns(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    stack.redis.stop()
    runs = [create(stack, owner_api, loraName=f"offline-{i}") for i in range(3)]
    assert {status_of(r["id"]) for r in runs} == {"pending"}
    stack.redis.start()
    stack.start_beat()  # the reconciler re-enqueues pending runs nobody took
    for r in runs:
        wait_until(lambda r=r: status_of(r["id"]) == "succeeded", timeout=90)
        assert submissions(emulator, r["id"]) == 1


def test_a_forged_callback_token_is_refused_and_changes_nothing(
    stack: Stack, owner_api: requests.Session
) -> None:
    stack.kill("worker")
    run = create(stack, owner_api)
    url = f"{stack.url}/api/v1/orchestrator/callbacks/{run['id']}/"
    body = {"workflowId": "wf-x", "status": "succeeded"}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    assert requests.post(url + "?token=" + "0" * 64, json=body, timeout=10).status_code == 401
    assert status_of(run["id"]) == "pending"
    assert not RunEvent.objects.filter(run_id=run["id"], kind="callback").exists()


def test_replayed_and_out_of_order_callbacks_never_move_a_run_backwards(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    from training.orchestrator.callbacks import callback_url

    run = create(stack, owner_api)
    wait_until(lambda: status_of(run["id"]) == "succeeded", timeout=60)
    stored = TrainingRun.objects.get(pk=run["id"])
    url = callback_url(stored.pk).replace("http://127.0.0.1:8000", stack.url)
    for status in ("processing", "unassigned", "succeeded", "processing", "failed"):
        response = requests.post(url, json={"workflowId": stored.workflow_id, "status": status,
                                            "extra": {"ignored": True}}, timeout=10)  # fmt: skip
        assert response.status_code == 200
    foreign = requests.post(
        url, json={"workflowId": "someone-else", "status": "failed"}, timeout=10
    )
    assert foreign.json() == {"result": "foreign_workflow"}
    stored.refresh_from_db()
    assert stored.status == "succeeded" and not stored.error_code


def test_cancel_works_in_each_state(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    api = f"{stack.url}/api/v1/training-runs/"
    # pending: canceled here, never submitted
    stack.kill("worker")
    pending = create(stack, owner_api)
    assert (
        owner_api.post(f"{api}{pending['id']}/cancel/", timeout=10).json()["status"] == "canceled"
    )
    # processing: canceled at the orchestrator too
    stack.start_worker()
    emulator.update_faults(seconds_per_epoch=5)
    running = create(stack, owner_api)
    wait_until(lambda: status_of(running["id"]) == "processing", timeout=30)
    assert (
        owner_api.post(f"{api}{running['id']}/cancel/", timeout=10).json()["status"] == "canceled"
    )
    wf = requests.get(
        f"{emulator.url}/v2/consumer/workflows/{TrainingRun.objects.get(pk=running['id']).workflow_id}",
        headers={"Authorization": "Bearer emulator-token"},
        timeout=10,
    ).json()
    assert wf["status"] == "canceled"
    # finished: 409, and the canceled run can be retried as a new run
    again = owner_api.post(f"{api}{running['id']}/cancel/", timeout=10)
    assert again.status_code == 409
    retry = owner_api.post(f"{api}{running['id']}/retry/", timeout=10)
    assert retry.status_code == 201 and retry.json()["id"] != running["id"]
    assert submissions(emulator, pending["id"]) == 0


def test_someone_elses_run_cannot_be_canceled_or_retried(
    stack: Stack, owner_api: requests.Session
) -> None:
    stack.kill("worker")
    run = create(stack, owner_api)
    make_user("mallory")
    other = stack.session("mallory", "pw-mallory")
    for action in ("cancel", "retry"):
        url = f"{stack.url}/api/v1/training-runs/{run['id']}/{action}/"
        assert other.post(url, timeout=10).status_code == 404
    assert status_of(run["id"]) == "pending"


def test_the_estimate_is_the_orchestrators_whatif_for_the_exact_body(
    stack: Stack, emulator: EmulatorServer, owner_api: requests.Session
) -> None:
    body = run_body(params={"maxTrainEpochs": 3})
    url = f"{stack.url}/api/v1/training-runs/estimate/"
    first = owner_api.post(url, json=body, timeout=10).json()
    assert first["cost"]["total"] > 0 and first["jobsAhead"] is not None
    assert first["workflow"]["steps"][0]["input"]["maxTrainEpochs"] == 3
    second = owner_api.post(url, json=body, timeout=10).json()
    assert second["cached"] is True and second["cost"] == first["cost"]
    assert emulator.stats()["whatif"] == 1
    # The run remembers the price it was created with.
    run = create(stack, owner_api)
    assert TrainingRun.objects.get(pk=run["id"]).estimated_cost == first["cost"]["total"]
