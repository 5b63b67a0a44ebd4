from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import run_body
from training.models import IdempotencyKey, TrainingRun

URL = "/api/v1/training-runs/"
Client = Callable[[User | None], APIClient]
RATES = {"run_create": "3/min", "run_estimate": "2/min", "auth_token": "2/min"}


@pytest.fixture
def tight_throttles() -> Iterator[None]:
    # DRF reads the rates once, at import: swap them in and back out around the test.
    from rest_framework.throttling import SimpleRateThrottle

    saved = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = RATES
    yield
    SimpleRateThrottle.THROTTLE_RATES = saved


def concurrent_creates(owner: User, count: int) -> list[int]:
    """`count` creates by `owner`, released together from as many threads; their status codes."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=owner).key
    codes: list[int] = []
    start = threading.Barrier(count)

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        start.wait()
        codes.append(client.post(URL, run_body(), format="json").status_code)
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(codes)


@pytest.mark.django_db
def test_creating_too_fast_answers_429_with_retry_after(
    owner: User, client_for: Client, tight_throttles: None
) -> None:
    api = client_for(owner)
    codes = [api.post(URL, run_body(), format="json").status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    last = api.post(URL, run_body(), format="json")
    assert last.status_code == 429 and int(last["Retry-After"]) > 0
    assert "throttled" in last.json()["message"].lower()
    assert api.get(URL).status_code == 200  # reading is not throttled
    assert TrainingRun.objects.count() == 3


@pytest.mark.django_db
def test_estimates_and_token_requests_are_throttled_too(
    owner: User, client_for: Client, tight_throttles: None
) -> None:
    api = client_for(owner)
    codes = [
        api.post(URL + "estimate/", run_body(baseModel="nope"), format="json").status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]
    anonymous = client_for(None)
    login = {"username": "olivia", "password": "wrong"}
    codes = [
        anonymous.post("/api/v1/auth/token/", login, format="json").status_code for _ in range(3)
    ]
    assert codes == [401, 401, 429]


@pytest.mark.django_db(transaction=True)
@override_settings(TRAINING_MAX_ACTIVE_RUNS=100)
def test_the_create_throttle_holds_under_concurrent_creates(
    owner: User, tight_throttles: None
) -> None:
    # Counted atomically in Redis: a burst of one user's requests cannot slip past the rate.
    assert concurrent_creates(owner, 8) == [201] * 3 + [429] * 5
    assert TrainingRun.objects.filter(owner=owner).count() == 3


@pytest.mark.django_db
def test_without_redis_the_throttle_lets_requests_through(
    owner: User, client_for: Client, tight_throttles: None, settings: Any
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: Redis is away
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    api = client_for(owner)
    with override_settings(CACHES=away):
        codes = [api.post(URL, run_body(), format="json").status_code for _ in range(4)]
    assert codes == [201] * 4


@pytest.mark.django_db
@override_settings(TRAINING_MAX_ACTIVE_RUNS=2)
def test_the_active_run_cap_answers_429_and_stores_nothing(owner: User, client_for: Client) -> None:
    api = client_for(owner)
    assert [api.post(URL, run_body(), format="json").status_code for _ in range(2)] == [201, 201]
    refused = api.post(URL, run_body(), format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_active_runs"
    assert "2 runs" in refused.json()["message"]
    assert TrainingRun.objects.filter(owner=owner).count() == 2
    # A finished run frees a slot.
    TrainingRun.objects.filter(owner=owner).update(status="succeeded")
    assert api.post(URL, run_body(), format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
@override_settings(TRAINING_MAX_ACTIVE_RUNS=3)
def test_the_cap_holds_under_concurrent_creates(owner: User) -> None:
    assert concurrent_creates(owner, 8) == [201] * 3 + [429] * 5
    assert TrainingRun.objects.filter(owner=owner).count() == 3


@pytest.mark.django_db
def test_the_same_idempotency_key_and_body_replays_the_first_response(
    owner: User, client_for: Client
) -> None:
    api = client_for(owner)
    first = api.post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert TrainingRun.objects.count() == 1
    assert IdempotencyKey.objects.get(key="k-1").run_id == TrainingRun.objects.get().pk


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422(owner: User, client_for: Client) -> None:
    api = client_for(owner)
    api.post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    other = api.post(URL, run_body(loraName="other"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert TrainingRun.objects.count() == 1


@pytest.mark.django_db
def test_a_key_still_in_flight_is_a_409(owner: User, client_for: Client) -> None:
    from training.idempotency import request_hash

    IdempotencyKey.objects.create(owner=owner, key="k-3", request_hash=request_hash(run_body()))
    response = client_for(owner).post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert response.status_code == 409
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_a_rejected_request_keeps_nothing_so_the_key_can_be_reused(
    owner: User, client_for: Client
) -> None:
    api = client_for(owner)
    bad = api.post(URL, run_body(baseModel="nope"), format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert bad.status_code == 400
    good = api.post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    assert good.status_code == 201


@pytest.mark.django_db
def test_keys_are_per_user(owner: User, other_user: User, client_for: Client) -> None:
    a = client_for(owner).post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = client_for(other_user).post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_keys_older_than_the_ttl_are_pruned(owner: User, client_for: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from training.idempotency import idempotency_keys_prune

    client_for(owner).post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="old")
    client_for(owner).post(URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=49))
    IdempotencyKey.objects.filter(key="new").update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_prune() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_an_overlong_key_is_a_400(owner: User, client_for: Client) -> None:
    response = client_for(owner).post(
        URL, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
