"""Live progress and webhooks with the real parts: gunicorn, Celery worker and beat processes, a
private Redis, the emulator over HTTP training at a few seconds an epoch, a real receiver (the
stack and Olivia's API session: tests/training/conftest.py)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from emulator.config import EmulatorConfig
from tests.conftest import run_body
from tests.harness import Stack, wait_until
from tests.training.test_webhooks import Receiver
from training.webhooks.models import WebhookDelivery

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("beat"),
]

EPOCH_SECONDS = 3.0


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(queue_seconds=0.3, seconds_per_epoch=EPOCH_SECONDS, callback_backoff=0.1)


@pytest.fixture
def stack_env() -> dict[str, str]:
    # The reconciler is slowed right down, so only callbacks can bring epochs in quickly.
    return {
        "RECONCILE_QUIET_SECONDS": "600",
        "WEBHOOK_SWEEP_EVERY_SECONDS": "1",
        "WEBHOOK_READ_TIMEOUT": "4",
        "WEBHOOK_CONNECT_TIMEOUT": "1",
        "WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    }


def test_epochs_arrive_one_by_one_through_the_api_as_the_emulator_trains(
    stack: Stack, owner_api: requests.Session
) -> None:
    body = run_body(params={"maxTrainEpochs": 4})
    run = owner_api.post(f"{stack.url}/api/v1/training-runs/", json=body, timeout=10).json()
    url = f"{stack.url}/api/v1/training-runs/{run['id']}/"
    seen: list[tuple[float, int]] = []  # (seconds since start, epochs shown)
    start = time.monotonic()
    while time.monotonic() - start < 60:
        shown = owner_api.get(url, timeout=10).json()
        count = len(shown["epochs"])
        if not seen or seen[-1][1] != count:
            seen.append((round(time.monotonic() - start, 1), count))
            assert shown["elapsedSeconds"] >= 0 and shown["eta"]["computedAt"]
        if shown["status"] == "succeeded":
            break
        time.sleep(0.25)
    print(f"[live] epochs shown over time (s, epochs): {seen}")
    counts = [c for _, c in seen]
    assert counts[-1] == 4
    # each epoch appeared by itself (1, 2, 3 seen before the end), not all at once at the end
    assert {1, 2, 3} <= set(counts)
    # the emulator finishes an epoch every 3 s; with the reconciler slowed to 10 minutes, only
    # the callbacks can bring them in: the whole run shows within a few epochs' time.
    assert seen[-1][0] < 4 * EPOCH_SECONDS + 15


def test_a_webhook_delivery_survives_a_worker_killed_mid_delivery(
    stack: Stack, owner_api: requests.Session
) -> None:
    receiver = Receiver()
    try:
        # The first delivery hangs long enough for the worker to be killed while it waits.
        receiver.script = [(204, {}, 3.0)]
        body = run_body(
            params={"maxTrainEpochs": 1}, webhook=receiver.url, webhookEventsFilter=["completed"]
        )
        run = owner_api.post(f"{stack.url}/api/v1/training-runs/", json=body, timeout=10).json()
        wait_until(lambda: receiver.received, timeout=60)
        stack.kill("worker")  # SIGKILL mid-request: no answer was read, nothing recorded
        delivery = WebhookDelivery.objects.get(run_id=run["id"])
        assert delivery.state == "pending"
        stack.start_worker()
        wait_until(
            lambda: WebhookDelivery.objects.get(run_id=run["id"]).state == "delivered", timeout=60
        )
        ids = {headers["webhook-id"] for headers, _ in receiver.received}
        assert ids == {delivery.id}  # at least once, always the same webhook-id
        secret = owner_api.get(f"{stack.url}/api/v1/webhooks/secret/", timeout=10).json()["key"]
        from standardwebhooks import Webhook

        headers, payload = receiver.received[-1]
        assert Webhook(secret).verify(payload, headers)["status"] == "succeeded"
        assert json.loads(payload)["id"] == run["id"]
    finally:
        receiver.server.shutdown()
