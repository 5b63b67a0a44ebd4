"""The emulator speaking beta86: its schema, its shapes, steps pricing, externalId, expiring
links, moderation and detailed callbacks (fast timings: queued 0.1 s, 0.2 s per epoch)."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from emulator import pricing
from emulator.config import EmulatorConfig
from emulator.contracts import get_contract
from emulator.server import EmulatorServer
from tests.emulator.conftest import FAST
from tests.emulator.helpers import Api, Receiver, kohya_body, wait_for

contract = get_contract("beta86")


@pytest.fixture
def config() -> EmulatorConfig:
    return replace(FAST, contract="beta86")


def training_body(run_id: str = "r86", callback_url: str = "", **inputs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"runId": run_id},
        "tags": ["training", f"run:{run_id}", "engine:ai-toolkit"],
        "currencies": [],
        "externalId": run_id,
        "steps": [
            {
                "$type": "training",
                "priority": "normal",
                "retries": 2,
                "metadata": {"runId": run_id},
                "input": {
                    "engine": "ai-toolkit",
                    "ecosystem": "sdxl",
                    "model": "urn:air:sdxl:checkpoint:civitai:101055@128078",
                    "trainingData": {
                        "type": "zip",
                        "sourceUrl": "https://example.com/d.zip",
                        "count": 10,
                    },
                    "samples": {"prompts": ["a dog", "a cat"]},
                    "steps": 30,
                    "epochs": 3,
                    "batchSize": 1,
                },
            }
        ],
    }
    if callback_url:
        body["callbacks"] = [{"url": callback_url, "type": ["workflow:*"], "detailed": False}]
    body["steps"][0]["input"].update(inputs)
    return body


def legacy86(engine: str = "musubi", **inputs: Any) -> dict[str, Any]:
    body = kohya_body("r-legacy")
    body["currencies"] = ["blue"]
    step_input = body["steps"][0]["input"]
    for knob in ("maxTrainEpochs", "numRepeats", "trainBatchSize", "resolution"):
        del step_input[knob]
    step_input.update(engine=engine, **inputs)
    return body


def submit_ok(api: Api, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = api.submit(body, **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def cost(body: dict[str, Any]) -> int:
    assert contract.validate(body) == []
    return pricing.price(contract.plan(body))


# --- validation ---------------------------------------------------------------------------------


def test_a_beta12_training_body_is_refused_field_by_field(api: Api) -> None:
    body = training_body(resolution=1024, numRepeats=8)
    del body["currencies"]
    body["steps"][0]["input"]["ecosystem"] = "sdxl"

    response = api.submit(body)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "currencies",
        "steps[0].input.resolution",
        "steps[0].input.numRepeats",
    }
    assert api.stats()["submissions"] == 0


def test_wan_is_not_an_ai_toolkit_ecosystem_any_more(api: Api) -> None:
    body = training_body(ecosystem="wan", modelVariant="2.1")
    del body["steps"][0]["input"]["model"]

    errors = api.submit(body).json()["errors"]

    assert list(errors) == ["steps[0].input.ecosystem"]
    assert "no AI Toolkit ecosystem 'wan'" in errors["steps[0].input.ecosystem"][0]


# --- shapes and lifecycle -----------------------------------------------------------------------


def test_an_ai_toolkit_workflow_succeeds_with_blob_epochs_whose_links_work(api: Api) -> None:
    workflow = submit_ok(api, training_body())
    assert workflow["externalId"] == "1-r86" and workflow["forceRefunded"] is False
    assert workflow["steps"][0]["jobs"][0]["queuePosition"]["completeAt"]

    done = api.wait_for_status(str(workflow["id"]), "succeeded")

    output = done["steps"][0]["output"]
    assert set(output) == {"moderationStatus", "epochs"}
    assert output["moderationStatus"] == "approved"
    assert [e["epochNumber"] for e in output["epochs"]] == [1, 2, 3]
    last = output["epochs"][-1]
    assert set(last) == {"epochNumber", "model", "samples"}
    assert last["model"]["type"] == "model" and last["model"]["available"] is True
    assert [s["type"] for s in last["samples"]] == ["image", "image"]
    for blob in (last["model"], *last["samples"]):
        assert re.search(r"\?expires=\d+$", blob["url"]) and blob["urlExpiresAt"].endswith("Z")
    assert requests.get(last["model"]["url"], timeout=5).content[8:9] == b"{"  # safetensors
    assert requests.get(last["samples"][0]["url"], timeout=5).content.startswith(b"\x89PNG")


def test_an_expired_link_is_refused_like_a_presigned_url(api: Api) -> None:
    workflow_id = str(submit_ok(api, training_body(epochs=1))["id"])
    url = api.wait_for_status(workflow_id, "succeeded")["steps"][0]["output"]["epochs"][0]["model"][
        "url"
    ]

    expired = requests.get(re.sub(r"expires=\d+", "expires=1", url), timeout=5)

    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]
    assert requests.get(url, timeout=5).status_code == 200


def test_musubi_trains_its_epochs_field_and_answers_in_the_legacy_shape(api: Api) -> None:
    workflow_id = str(submit_ok(api, legacy86("musubi", epochs=2))["id"])

    output = api.wait_for_status(workflow_id, "succeeded")["steps"][0]["output"]

    assert [e["epochNumber"] for e in output["epochs"]] == [1, 2]
    assert output["moderationStatus"] == "approved" and "blobUrl" in output["epochs"][0]
    assert api.submit(legacy86("musubi", maxTrainEpochs=2)).status_code == 400


# --- externalId ---------------------------------------------------------------------------------


def test_a_repeated_external_id_returns_the_first_workflow_and_counts_once(api: Api) -> None:
    first = submit_ok(api, training_body("same"))
    changed = training_body("same", epochs=9)

    again = submit_ok(api, changed)
    estimate = submit_ok(api, changed, whatif="true")
    other = submit_ok(api, training_body("other"))

    assert again["id"] == first["id"] == estimate["id"]
    assert again["steps"][0]["input"]["epochs"] == 3  # the first submission's, not the new one
    assert other["id"] != first["id"]
    stats = api.stats()
    assert (stats["submissions"], stats["workflows"]) == (2, 2)
    assert stats["byTag"]["run:same"] == 1


# --- moderation ---------------------------------------------------------------------------------


def test_a_held_workflow_trains_nothing_until_a_moderator_approves_it(api: Api) -> None:
    assert api.faults(moderation="underReview").status_code == 200
    workflow_id = str(submit_ok(api, training_body(epochs=1))["id"])
    api.wait_for_status(workflow_id, "processing")
    time.sleep(0.6)  # three epochs' time: a released workflow would have finished by now
    held = api.workflow(workflow_id)

    assert held["status"] == "processing"
    assert held["steps"][0]["output"] == {"moderationStatus": "underReview", "epochs": []}
    decided = api.request(
        "POST", f"/_emulator/workflows/{workflow_id}/moderation", json={"status": "approved"}
    )
    assert decided.status_code == 200
    done = api.wait_for_status(workflow_id, "succeeded")
    assert done["steps"][0]["output"]["moderationStatus"] == "approved"
    assert len(done["steps"][0]["output"]["epochs"]) == 1


def test_a_rejected_workflow_fails_without_epochs(api: Api) -> None:
    api.faults(moderation="rejected")
    workflow_id = str(submit_ok(api, training_body(epochs=2))["id"])

    failed = api.wait_for_status(workflow_id, "failed")

    assert failed["steps"][0]["output"] == {"moderationStatus": "rejected", "epochs": []}


def test_a_moderation_decision_needs_a_known_workflow_and_a_valid_status(api: Api) -> None:
    workflow_id = str(submit_ok(api, training_body())["id"])
    path = f"/_emulator/workflows/{workflow_id}/moderation"

    assert api.request("POST", path, json={"status": "maybe"}).status_code == 400
    assert api.request("POST", "/_emulator/workflows/nope/moderation",
                       json={"status": "approved"}).status_code == 404  # fmt: skip


def test_beta12_ignores_the_moderation_fault() -> None:
    with EmulatorServer("127.0.0.1", 0, replace(FAST, moderation="underReview")) as server:
        api = Api(server.url)
        workflow_id = str(submit_ok(api, kohya_body(maxTrainEpochs=1))["id"])
        assert api.wait_for_status(workflow_id, "succeeded")["status"] == "succeeded"


# --- callbacks ----------------------------------------------------------------------------------


def test_events_carry_type_and_details_only_for_detailed_callbacks(api: Api) -> None:
    plain, detailed = Receiver().start(), Receiver().start()
    try:
        body = training_body(epochs=1)
        body["callbacks"] = [
            {"url": plain.url, "type": ["workflow:*"], "detailed": False},
            {"url": detailed.url, "type": ["workflow:succeeded"], "detailed": True},
        ]
        workflow_id = str(submit_ok(api, body)["id"])
        wait_for(lambda: detailed.statuses(workflow_id) == ["succeeded"])
        wait_for(lambda: plain.statuses(workflow_id)[-1:] == ["succeeded"])
    finally:
        plain.stop()
        detailed.stop()
    assert plain.statuses(workflow_id) == ["unassigned", "processing", "succeeded"]
    assert all(set(p) == {"$type", "workflowId", "status", "timestamp"} for p in plain.accepted)
    [event] = detailed.accepted
    assert event["$type"] == "workflow"
    step = event["details"]["steps"][0]
    assert (step["name"], step["status"], step["metadata"]) == ("0", "succeeded", {"runId": "r86"})


# --- pricing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ecosystem", "steps", "expected"),
    [("sd1", 2000, 500), ("sdxl", 120, 30), ("flux1", 72, 72), ("chroma", 2000, 2000),
     ("qwen", 1000, 1000), ("zimageturbo", 2000, 1000), ("ltx2", 3000, 2750), ("boogu", 3, 2)],
)  # fmt: skip
def test_ai_toolkit_is_priced_by_steps_in_proportion_to_the_published_default_run(
    ecosystem: str, steps: int, expected: int
) -> None:
    body = training_body(steps=steps)
    step_input = body["steps"][0]["input"]
    step_input["ecosystem"] = ecosystem
    if ecosystem not in ("sd1", "sdxl"):
        del step_input["model"]
    if ecosystem == "flux1":
        step_input["modelVariant"] = "dev"
    assert cost(body) == expected


def test_epochs_without_steps_keep_the_per_epoch_price_and_neither_means_default_steps() -> None:
    epochs_only = training_body(epochs=4)
    del epochs_only["steps"][0]["input"]["steps"]
    neither = copy.deepcopy(epochs_only)
    del neither["steps"][0]["input"]["epochs"]

    assert cost(epochs_only) == 4 * 50
    assert cost(neither) == 500  # sdxl's 2000 default steps
    assert contract.plan(neither).epochs == 20  # ceil(2000 / 10 images), at most 20
    assert cost(legacy86("musubi", epochs=3)) == 1000
    assert cost(legacy86("flux-dev-fast")) == 4000
