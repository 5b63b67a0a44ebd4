"""Orchestrator callbacks (#16.6, #19.1): the token stays secret, replays cost nothing, re-fetches
are coalesced, finished runs ignore callbacks, each run is rate-limited. Real PostgreSQL and the
real Redis broker: re-fetches are counted as the messages actually queued."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import run_body
from training.models import RunEvent, RunStatus, TrainingRun
from training.orchestrator.callbacks import callback_token

pytestmark = pytest.mark.django_db(transaction=True)


def queued(task: str) -> int:
    # The broker is REDIS_URL's Redis (CELERY_BROKER_URL is the same URL in kombu's spelling,
    # which redis-py does not read for a Unix socket: the embedded Redis of `make test`).
    broker = redis.Redis.from_url(settings.REDIS_URL)
    messages = [json.loads(raw) for raw in broker.lrange("celery", 0, -1)]
    return sum(1 for m in messages if m.get("headers", {}).get("task") == task)


REFETCH = "training.progress.refetch_run_task"


def processing_run(client_for: Callable[[User | None], APIClient], owner: User) -> TrainingRun:
    response = client_for(owner).post("/api/v1/training-runs/", run_body(), format="json")
    assert response.status_code == 201, response.content
    TrainingRun.objects.filter(pk=response.json()["id"]).update(
        status=RunStatus.PROCESSING, workflow_id="wf-1"
    )
    return TrainingRun.objects.get(pk=response.json()["id"])


def post_callback(run: TrainingRun, body: dict[str, Any]) -> Any:
    url = f"/api/v1/orchestrator/callbacks/{run.pk}/?token={callback_token(run.pk)}"
    return APIClient().post(url, body, format="json")


def test_the_callback_token_appears_in_no_response_page_or_preview(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    api = client_for(owner)
    created = api.post("/api/v1/training-runs/", run_body(), format="json")
    run_id = created.json()["id"]
    secret = callback_token(run_id)
    detail = api.get(f"/api/v1/training-runs/{run_id}/")
    listing = api.get("/api/v1/training-runs/")
    preview = api.post("/api/v1/training-runs/preview/", run_body(), format="json")
    page = Client()
    page.force_login(owner)
    html = page.get(f"/runs/{run_id}")
    for response in (created, detail, listing, preview, html):
        assert response.status_code in (200, 201)
        assert secret not in response.content.decode()
    callback = created.json()["payload"]["callbacks"][0]["url"]
    assert callback.endswith("token=REDACTED")
    assert "token=REDACTED" in preview.json()["workflow"]["callbacks"][0]["url"]
    assert "token=REDACTED" in html.content.decode()


def test_1500_replays_of_one_callback_write_one_event_and_queue_one_refetch(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    run = processing_run(client_for, owner)
    body = {"workflowId": "wf-1", "status": "processing"}
    codes = [post_callback(run, body).status_code for _ in range(1500)]
    events = RunEvent.objects.filter(run=run, kind="callback").count()
    refetches = queued(REFETCH)
    print(  # the repro's numbers, for the report
        f"[callbacks] 1500 replays: {codes.count(200)} answered 200, {codes.count(429)} answered "
        f"429, events written {events}, re-fetches queued {refetches}"
    )
    assert events == 1
    assert refetches == 1
    # at most the per-run rate in each minute the replays spanned (two, if they straddle one)
    assert (
        settings.CALLBACK_RATE_PER_MINUTE
        <= codes.count(200)
        <= 2 * settings.CALLBACK_RATE_PER_MINUTE
    )
    assert codes.count(200) + codes.count(429) == 1500


def test_news_while_a_refetch_is_queued_is_coalesced_into_it(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    run = processing_run(client_for, owner)
    for epoch in range(1, 4):
        body = {"$type": "job", "workflowId": "wf-1", "status": "processing", "progress": epoch / 4}
        assert post_callback(run, body).json() == {"result": "accepted"}
    assert queued(REFETCH) == 1  # three pieces of news, one fresh read
    # progress is not a timeline event: the epochs themselves show it
    assert not RunEvent.objects.filter(run=run, kind="callback").exists()


def test_a_refetch_that_started_lets_the_next_news_queue_another(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    from django.core.cache import cache

    run = processing_run(client_for, owner)
    post_callback(run, {"$type": "job", "workflowId": "wf-1", "status": "processing",
                        "progress": 0.25})  # fmt: skip
    cache.delete(f"run-refetch:{run.pk}")  # what refetch_run_task does first
    post_callback(run, {"$type": "job", "workflowId": "wf-1", "status": "processing",
                        "progress": 0.5})  # fmt: skip
    assert queued(REFETCH) == 2


def test_callbacks_for_a_finished_run_are_acknowledged_and_ignored(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    run = processing_run(client_for, owner)
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    before = RunEvent.objects.filter(run=run).count()
    for status in ("processing", "failed", "succeeded"):
        response = post_callback(run, {"workflowId": "wf-1", "status": status})
        assert response.status_code == 200 and response.json() == {"result": "finished"}
    assert RunEvent.objects.filter(run=run).count() == before
    assert queued(REFETCH) == 0
