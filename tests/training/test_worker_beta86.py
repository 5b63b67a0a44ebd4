"""A run's life under beta86: moderation, expiring output links, beta86 callback events, and end
to end with real web and Celery processes against the emulator speaking beta86."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conftest import make_user, opt_in, run_body
from tests.harness import Stack, wait_until
from training import lifecycle
from training.models import RunEvent, TrainingRun
from training.orchestrator.callbacks import callback_url
from training.orchestrator.client import get_client
from training.orchestrator.contracts.base import WorkflowState
from training.payloads import workflow_body

URL = "/api/v1/training-runs/"
Client = Callable[[User | None], APIClient]
STALE = "2001-01-01T00:00:00+00:00"


def a_run(owner: User, **fields: Any) -> TrainingRun:
    values: dict[str, Any] = {
        "owner": owner, "base_model": "sdxl", "engine": "ai-toolkit", "ecosystem": "sdxl",
        "params": {"epochs": 5}, "training_data_url": "https://data.example.com/set.zip",
        "image_count": 4, "sample_prompts": ["a portrait"], "lora_name": "held",
        "status": "processing", "workflow_id": "wf-1",
    }  # fmt: skip
    values.update(fields)
    return TrainingRun.objects.create(**values)


def apply(run: TrainingRun, status: str, moderation: str | None, **extra: Any) -> str:
    state = WorkflowState(status=status, moderation=moderation, **extra)
    return lifecycle.apply_workflow_state(run.pk, workflow_id="wf-1", state=state)


EPOCH = {"epochNumber": 1, "modelName": "e1", "modelUrl": "https://b.example/e1",
         "modelSize": None, "sampleImages": []}  # fmt: skip


# --- moderation ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_under_review_holds_the_run_notes_it_once_and_shows_it(
    owner: User, client_for: Client
) -> None:
    run = a_run(owner)
    for _ in range(3):
        assert apply(run, "processing", "underReview") == "processing"
    # A held workflow that says succeeded does not finish the run: its model is under review.
    assert apply(run, "succeeded", "underReview", epochs=[EPOCH]) == "processing"
    run.refresh_from_db()
    assert run.outputs == {"epochs": [EPOCH], "moderation": "underReview"}
    notes = RunEvent.objects.filter(run=run, kind="note")
    assert [n.message.split(";")[0] for n in notes] == [
        "held for review by the orchestrator's moderation"
    ]
    detail = client_for(owner).get(f"{URL}{run.pk}/").json()
    assert (detail["status"], detail["moderation"]) == ("processing", "underReview")

    assert apply(run, "succeeded", "approved", epochs=[EPOCH]) == "succeeded"
    detail = client_for(owner).get(f"{URL}{run.pk}/").json()
    assert (detail["status"], detail["moderation"], detail["error"]) == (
        "succeeded",
        "approved",
        None,
    )
    assert [n.message for n in notes.all()][1:] == ["released from review (moderation: approved)"]


@pytest.mark.django_db
def test_rejected_fails_the_run_with_its_own_code(owner: User, client_for: Client) -> None:
    run = a_run(owner, status="submitted")

    assert apply(run, "processing", "rejected") == "failed"

    detail = client_for(owner).get(f"{URL}{run.pk}/").json()
    assert detail["moderation"] == "rejected"
    assert detail["error"]["code"] == "moderation_rejected"
    assert "moderation rejected this run's training data" in detail["error"]["message"]
    assert apply(run, "succeeded", "approved") == "failed"  # terminal stays terminal


@pytest.mark.django_db
def test_a_plain_approval_is_not_news_and_beta12_runs_look_as_before(
    owner: User, client_for: Client
) -> None:
    run = a_run(owner)
    assert apply(run, "processing", "approved", epochs=[EPOCH]) == "processing"
    run.refresh_from_db()
    assert run.outputs == {"epochs": [EPOCH]}
    assert client_for(owner).get(f"{URL}{run.pk}/").json()["moderation"] is None


# --- callbacks ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_beta86_events_with_type_timestamp_details_and_name_are_accepted(owner: User) -> None:
    run = a_run(owner)
    url = urlsplit(callback_url(run.pk))
    path = f"{url.path}?{url.query}"
    events = [
        {"$type": "workflow", "workflowId": "wf-1", "status": "processing",
         "timestamp": "2026-11-29T06:36:58.078Z",
         "details": {"createdAt": "2026-11-29T06:36:57Z", "steps": [
             {"name": "0", "status": "processing", "input": {}, "output": None}]}},
        {"$type": "step", "workflowId": "wf-1", "name": "0", "status": "processing",
         "details": {"retries": 0, "metadata": None}},
    ]  # fmt: skip
    for event in events:
        response = APIClient().post(path, event, format="json")
        assert response.status_code == 200, response.content
        assert response.json() == {"result": "accepted"}
    assert RunEvent.objects.filter(run=run, kind="callback").count() == 2


# --- expiring links -----------------------------------------------------------------------------


@pytest.fixture
def beta86_orchestrator(settings: Any) -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        "127.0.0.1",
        0,
        EmulatorConfig(
            contract="beta86", queue_seconds=0, seconds_per_epoch=0.05, tick_seconds=0.02
        ),
    )
    server.start()
    settings.ORCHESTRATOR_URL = server.url
    settings.ORCHESTRATOR_TOKEN = "emulator-token"
    settings.ORCHESTRATOR_CONTRACT = "beta86"
    get_client.cache_clear()
    yield server
    get_client.cache_clear()
    server.stop()


@pytest.mark.django_db
def test_expiring_links_are_fetched_again_when_the_run_is_shown(
    owner: User, client_for: Client, beta86_orchestrator: EmulatorServer
) -> None:
    run = a_run(owner, params={"epochs": 1}, workflow_id="")
    workflow = get_client().submit(workflow_body(run, run_id=run.pk))
    wait_until(lambda: get_client().get(workflow["id"])["status"] == "succeeded", timeout=10)
    stale = {**EPOCH, "modelUrl": "https://gone.example/e1", "urlExpiresAt": STALE}
    TrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded", workflow_id=workflow["id"], outputs={"epochs": [stale]}
    )

    [epoch] = client_for(owner).get(f"{URL}{run.pk}/").json()["epochs"]

    assert epoch["modelUrl"].startswith(beta86_orchestrator.url)
    assert datetime.fromisoformat(epoch["urlExpiresAt"]) > datetime.now(UTC)
    assert requests.get(epoch["modelUrl"], timeout=5).status_code == 200
    assert TrainingRun.objects.get(pk=run.pk).outputs["epochs"] == [epoch]


@pytest.mark.django_db
def test_links_without_an_expiry_are_never_fetched(
    owner: User, client_for: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_client() -> None:
        raise AssertionError("the orchestrator was asked")

    monkeypatch.setattr(lifecycle, "get_client", no_client)
    run = a_run(owner, status="succeeded", outputs={"epochs": [EPOCH]})
    assert client_for(owner).get(f"{URL}{run.pk}/").json()["epochs"] == [EPOCH]


@pytest.mark.django_db
def test_an_unreachable_orchestrator_leaves_the_stored_links_in_place(
    owner: User, client_for: Client, settings: Any
) -> None:
    settings.ORCHESTRATOR_URL = "http://127.0.0.1:9"  # discard: nothing listens
    get_client.cache_clear()
    stale = {**EPOCH, "urlExpiresAt": STALE}
    try:
        run = a_run(owner, status="succeeded", outputs={"epochs": [stale]})
        response = client_for(owner).get(f"{URL}{run.pk}/")
    finally:
        get_client.cache_clear()
    assert response.status_code == 200 and response.json()["epochs"] == [stale]


# --- end to end ---------------------------------------------------------------------------------


# The stack of tests/training/conftest.py, with the emulator and the processes speaking beta86.
@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        contract="beta86", queue_seconds=0.2, seconds_per_epoch=0.15, callback_backoff=0.1
    )


@pytest.fixture
def stack_env() -> dict[str, str]:
    return {"ORCHESTRATOR_CONTRACT": "beta86", "ORCHESTRATOR_CURRENCIES": "blue"}


@pytest.fixture
def mod_api(stack: Stack) -> requests.Session:
    from waffle.models import Flag

    user = opt_in(make_user("maude", "mod"))
    flag, _ = Flag.objects.get_or_create(name="aiToolkitTraining", defaults={"superusers": False})
    flag.groups.add(Group.objects.get(name="mod"))
    assert user.groups.filter(name="mod").exists()
    return stack.session("maude", "pw-maude")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ai_toolkit_runs_succeed_end_to_end_under_beta86(
    stack: Stack, emulator: EmulatorServer, mod_api: requests.Session
) -> None:
    runs = {}
    for base in ("sdxl", "flux_dev", "chroma"):
        body = run_body(baseModel=base, engine="ai-toolkit", loraName=f"e2e-{base}")
        response = mod_api.post(f"{stack.url}{URL}", json=body, timeout=10)
        assert response.status_code == 201, response.text
        runs[base] = response.json()
    wan = mod_api.post(
        f"{stack.url}{URL}", json=run_body(baseModel="wan_2_1_t2v_14b", engine="ai-toolkit"),
        timeout=10,
    )  # fmt: skip
    assert wan.status_code == 400 and "no Wan ecosystem" in wan.json()["errors"][0]["message"]

    for base, run in runs.items():
        wait_until(
            lambda run=run: TrainingRun.objects.get(pk=run["id"]).status == "succeeded", timeout=60
        )
        detail = mod_api.get(f"{stack.url}{URL}{run['id']}/", timeout=10).json()
        # The default run (#17): 2000 steps, 10 checkpoints, priced by its steps.
        assert [e["epochNumber"] for e in detail["epochs"]] == list(range(1, 11)), base
        assert all(e["urlExpiresAt"] for e in detail["epochs"])
        assert requests.get(detail["epochs"][-1]["modelUrl"], timeout=10).status_code == 200
        payload = detail["payload"]
        assert payload["externalId"] == run["id"] and payload["currencies"] == ["blue"]
        assert payload["steps"][0]["input"]["steps"] == 2000
        assert detail["chargedCost"] == {"sdxl": 500, "flux_dev": 2000, "chroma": 2000}[base]
        assert emulator.stats()["byTag"][f"run:{run['id']}"] == 1  # type: ignore[index]
    assert emulator.stats()["submissions"] == 3
