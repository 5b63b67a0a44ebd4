"""Signed webhooks (#19.2-#19.5) against a real HTTP receiver on loopback: signatures checked with
the `standardwebhooks` reference package, retries, Retry-After, the events filter, safe targets,
the per-user secret and the delivery log. The run moves through the real lifecycle; the sender
task runs in this process (the worker end to end is in tests/training/test_live_worker.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from tests.conftest import run_body
from training import lifecycle
from training.models import RunStatus, TrainingRun
from training.orchestrator.contracts.base import WorkflowState
from training.webhooks.delivery import webhook_send_task
from training.webhooks.models import WebhookDelivery
from training.webhooks.services import webhook_sweep_task

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver:
    """A webhook receiver: answers each POST with the next scripted (status, headers, delay)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], float]] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status, headers, delay = receiver.script.pop(0) if receiver.script else (204, {}, 0)
                time.sleep(delay)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/training"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["status"] for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def quick_retries(settings: Any) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.01
    settings.WEBHOOK_READ_TIMEOUT = 2


def create(api: APIClient, **hook: Any) -> str:
    response = api.post("/api/v1/training-runs/", run_body(**hook), format="json")
    assert response.status_code == 201, response.content
    TrainingRun.objects.filter(pk=response.json()["id"]).update(
        status=RunStatus.SUBMITTED, workflow_id="wf-1"
    )
    return str(response.json()["id"])


def epoch(n: int) -> dict[str, Any]:
    return {"epochNumber": n, "modelName": f"e{n}.safetensors", "modelUrl": f"https://blob/e{n}",
            "modelSize": 10, "sampleImages": [f"https://blob/e{n}-0.png"]}  # fmt: skip


def workflow_says(run_id: str, status: str, epochs: int = 0) -> None:
    state = WorkflowState(
        status=status,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        epochs=[epoch(n) for n in range(1, epochs + 1)],
    )
    lifecycle.apply_workflow_state(run_id, workflow_id="wf-1", state=state)


def send(run_id: str) -> str:
    return str(webhook_send_task(run_id))


def test_start_output_and_completed_arrive_signed_in_order_as_the_run_api_shows_them(
    client_for: Callable[[User | None], APIClient], owner: User, receiver: Receiver
) -> None:
    api = client_for(owner)
    run_id = create(api, webhook=receiver.url)
    workflow_says(run_id, "processing")
    workflow_says(run_id, "processing", epochs=1)
    workflow_says(run_id, "succeeded", epochs=2)
    assert send(run_id) == "idle"
    secret = api.get("/api/v1/webhooks/secret/").json()["key"]
    assert secret.startswith("whsec_")
    kinds = [d.event for d in WebhookDelivery.objects.filter(run_id=run_id).order_by("seq")]
    assert kinds == ["start", "output", "output", "completed"]
    # the last two come from one read of the workflow: its epoch 2 and its end
    assert receiver.events() == ["processing", "processing", "succeeded", "succeeded"]
    ids = set()
    for headers, body in receiver.received:
        payload = Webhook(secret).verify(body, headers)  # raises on a bad signature
        assert payload["id"] == run_id
        assert headers["webhook-signature"].startswith("v1,")
        ids.add(headers["webhook-id"])
    assert len(ids) == 4
    last = json.loads(receiver.received[-1][1])
    shown = api.get(f"/api/v1/training-runs/{run_id}/").json()
    assert {k: v for k, v in last.items() if k not in ("eta", "elapsedSeconds", "updatedAt")} == {
        k: v for k, v in shown.items() if k not in ("eta", "elapsedSeconds", "updatedAt")
    }
    assert [e["epochNumber"] for e in last["epochs"]] == [1, 2]


def test_the_sweep_announces_a_run_whose_announcement_was_lost(
    client_for: Callable[[User | None], APIClient], owner: User, receiver: Receiver
) -> None:
    api = client_for(owner)
    run_id = create(api, webhook=receiver.url)
    # The run trained and finished, but no run_changed reached the receiver (the process died
    # between the commit and its on_commit hooks): nothing was announced.
    now = timezone.now()
    TrainingRun.objects.filter(pk=run_id).update(
        status=RunStatus.SUCCEEDED, started_at=now, completed_at=now
    )
    assert not WebhookDelivery.objects.filter(run_id=run_id).exists()
    webhook_sweep_task()
    webhook_sweep_task()  # each event once, however often the sweep comes by
    kinds = [d.event for d in WebhookDelivery.objects.filter(run_id=run_id).order_by("seq")]
    assert kinds == ["start", "completed"]
    assert send(run_id) == "idle"
    assert receiver.events() == ["succeeded", "succeeded"]
    shown = api.get(f"/api/v1/training-runs/{run_id}/").json()
    assert json.loads(receiver.received[-1][1])["events"] == shown["events"]


def test_a_receiver_answering_500_then_204_gets_it_once_with_the_same_webhook_id(
    client_for: Callable[[User | None], APIClient],
    owner: User,
    receiver: Receiver,
    quick_retries: None,
) -> None:
    api = client_for(owner)
    run_id = create(api, webhook=receiver.url, webhookEventsFilter=["completed"])
    receiver.script = [(500, {}, 0), (204, {}, 0)]
    workflow_says(run_id, "failed")
    assert send(run_id) == "retrying"
    time.sleep(0.1)
    assert send(run_id) == "idle"
    assert len(receiver.received) == 2
    assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]
    delivery = WebhookDelivery.objects.get(run_id=run_id)
    assert delivery.state == "delivered" and delivery.attempts == 2
    log = api.get(f"/api/v1/training-runs/{run_id}/webhook-deliveries/").json()
    assert [(a["event"], a["attempt"], a["statusCode"]) for a in log] == [
        ("completed", 1, 500),
        ("completed", 2, 204),
    ]


def test_the_events_filter_is_honoured(
    client_for: Callable[[User | None], APIClient], owner: User, receiver: Receiver
) -> None:
    run_id = create(client_for(owner), webhook=receiver.url, webhookEventsFilter=["completed"])
    workflow_says(run_id, "processing", epochs=1)
    workflow_says(run_id, "succeeded", epochs=2)
    send(run_id)
    assert receiver.events() == ["succeeded"]


def test_retry_after_is_honoured_and_later_events_wait_their_turn(
    client_for: Callable[[User | None], APIClient],
    owner: User,
    receiver: Receiver,
    quick_retries: None,
) -> None:
    run_id = create(client_for(owner), webhook=receiver.url)
    receiver.script = [(429, {"Retry-After": "120"}, 0)]
    workflow_says(run_id, "processing")
    workflow_says(run_id, "succeeded", epochs=1)
    assert send(run_id) == "retrying"
    first = WebhookDelivery.objects.get(run_id=run_id, seq=1)
    assert first.next_attempt_at >= timezone.now() + timedelta(seconds=118)
    assert len(receiver.received) == 1  # in order: nothing after `start` went out
    assert send(run_id) == "waiting"
    assert len(receiver.received) == 1


def test_a_final_4xx_is_not_retried_and_the_next_event_still_goes(
    client_for: Callable[[User | None], APIClient], owner: User, receiver: Receiver
) -> None:
    run_id = create(client_for(owner), webhook=receiver.url)
    receiver.script = [(410, {}, 0)]
    workflow_says(run_id, "processing")
    workflow_says(run_id, "succeeded")
    send(run_id)
    states = list(WebhookDelivery.objects.filter(run_id=run_id).order_by("seq").values_list(
        "event", "state"))  # fmt: skip
    assert states == [("start", "failed"), ("completed", "delivered")]


def test_a_receiver_that_is_down_never_holds_up_the_run(
    client_for: Callable[[User | None], APIClient], owner: User, quick_retries: None
) -> None:
    from tests.harness import free_port

    run_id = create(client_for(owner), webhook=f"http://127.0.0.1:{free_port()}/gone")
    workflow_says(run_id, "succeeded", epochs=1)  # no HTTP in the transition itself
    assert TrainingRun.objects.get(pk=run_id).status == "succeeded"
    assert send(run_id) == "retrying"
    delivery = WebhookDelivery.objects.filter(run_id=run_id).order_by("seq").first()
    assert delivery is not None and delivery.state == "pending"
    assert delivery.log.get().error == "could not connect"


def test_a_user_over_the_per_minute_cap_waits_without_spending_attempts(
    client_for: Callable[[User | None], APIClient],
    owner: User,
    receiver: Receiver,
    settings: Any,
) -> None:
    settings.WEBHOOK_DELIVERIES_PER_MINUTE = 1
    run_id = create(client_for(owner), webhook=receiver.url)
    workflow_says(run_id, "processing")
    workflow_says(run_id, "succeeded")
    assert send(run_id) == "capped"
    assert len(receiver.received) == 1
    held = WebhookDelivery.objects.get(run_id=run_id, event="completed")
    assert held.attempts == 0 and held.next_attempt_at > timezone.now()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://hooks.example.com/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://metadata.google.internal/x",
        "https://receiver.internal/x",
        "https://localhost/x",
        "ftp://hooks.example.com/x",
    ],
)
def test_with_debug_off_only_https_to_public_hosts_is_accepted(
    client_for: Callable[[User | None], APIClient], owner: User, settings: Any, url: str
) -> None:
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    api = client_for(owner)
    response = api.post("/api/v1/training-runs/", run_body(webhook=url), format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["webhook"]
    assert not TrainingRun.objects.exists()
    ok = api.post("/api/v1/training-runs/", run_body(webhook="https://hooks.example.com/x"),
                  format="json")  # fmt: skip
    assert ok.status_code == 201


def test_an_unknown_event_in_the_filter_is_a_field_error(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    response = client_for(owner).post(
        "/api/v1/training-runs/",
        run_body(webhook="https://hooks.example.com/x", webhookEventsFilter=["finished"]),
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"].startswith("webhookEventsFilter")


def test_the_signing_secret_is_per_user_stable_and_rotatable(
    client_for: Callable[[User | None], APIClient], owner: User, other_user: User
) -> None:
    mine, theirs = client_for(owner), client_for(other_user)
    first = mine.get("/api/v1/webhooks/secret/").json()["key"]
    assert mine.get("/api/v1/webhooks/secret/").json()["key"] == first
    assert theirs.get("/api/v1/webhooks/secret/").json()["key"] != first
    rotated = mine.post("/api/v1/webhooks/secret/rotate/").json()["key"]
    assert rotated.startswith("whsec_") and rotated != first
    assert mine.get("/api/v1/webhooks/secret/").json()["key"] == rotated
    assert client_for(None).get("/api/v1/webhooks/secret/").status_code == 401


def test_another_users_delivery_log_is_a_404(
    client_for: Callable[[User | None], APIClient], owner: User, other_user: User
) -> None:
    run_id = create(client_for(owner), webhook="https://hooks.example.com/x")
    response = client_for(other_user).get(f"/api/v1/training-runs/{run_id}/webhook-deliveries/")
    assert response.status_code == 404


def test_a_moderator_reads_a_runs_delivery_log_in_admin(
    client_for: Callable[[User | None], APIClient], owner: User, receiver: Receiver
) -> None:
    from django.core.management import call_command
    from django.test import Client

    from tests.conftest import make_user

    run_id = create(client_for(owner), webhook=receiver.url, webhookEventsFilter=["completed"])
    receiver.script = [(503, {}, 0)]
    workflow_says(run_id, "failed")
    send(run_id)
    call_command("sync_features")  # grants group `mod` its admin permissions
    browser = Client()
    browser.force_login(make_user("maude", "mod", is_staff=True))
    html = browser.get(f"/admin/training/trainingrun/{run_id}/change/").content.decode()
    assert "Webhook deliveries" in html
    assert "#1 503" in html and "pending" in html
