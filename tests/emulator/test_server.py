"""The emulator over real HTTP, with fast timings (queued 0.1 s, 0.2 s per epoch)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
import requests

from emulator.blobs import PNG_SIGNATURE
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.emulator.conftest import FAST
from tests.emulator.helpers import Api, Receiver, ai_toolkit_body, kohya_body, wait_for

WORKFLOWS = "/v2/consumer/workflows"
VALIDATION_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"


def submit_ok(api: Api, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = api.submit(body, **params)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- auth and validation ------------------------------------------------------------------------


def test_it_answers_401_without_a_token(emulator: EmulatorServer) -> None:
    response = requests.get(emulator.url + WORKFLOWS, timeout=5)

    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"
    assert response.json()["status"] == 401
    assert response.json()["detail"]


def test_it_answers_401_with_a_wrong_token(emulator: EmulatorServer) -> None:
    response = Api(emulator.url, token="nope").submit(kohya_body())

    assert response.status_code == 401
    assert Api(emulator.url, token="nope").stats() == {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.2",
        "title": "Unauthorized",
        "status": 401,
        "detail": "A valid bearer token is required.",
    }


def test_it_rejects_epochs_out_of_range_with_the_field_path(api: Api) -> None:
    response = api.submit(ai_toolkit_body(epochs=50))

    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == VALIDATION_TYPE
    assert problem["title"] == "One or more validation errors occurred."
    assert problem["status"] == 400
    assert list(problem["errors"]) == ["steps[0].input.epochs"]


def test_it_rejects_a_workflow_with_an_unknown_field(api: Api) -> None:
    response = api.submit(kohya_body(learningRate=0.1))

    assert response.status_code == 400
    assert "steps[0].input.learningRate" in response.json()["errors"]


def test_it_rejects_null_for_a_non_nullable_field(api: Api) -> None:
    response = api.submit(ai_toolkit_body(networkDim=None))

    assert response.status_code == 400
    assert "steps[0].input.networkDim" in response.json()["errors"]


def test_it_rejects_a_body_that_is_not_json(api: Api) -> None:
    response = api.request("POST", WORKFLOWS, data=b"{not json", headers={"Content-Type": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][""]


def test_it_stores_nothing_it_rejected(api: Api) -> None:
    api.submit(kohya_body(maxTrainEpochs=99))

    assert api.stats()["submissions"] == 0
    assert api.stats()["workflows"] == 0


# --- whatif and submit ----------------------------------------------------------------------------


def test_whatif_returns_cost_queue_position_and_eta_and_stores_nothing(api: Api) -> None:
    submit_ok(api, kohya_body("queued"))  # one workflow ahead in the queue

    estimate = submit_ok(api, ai_toolkit_body(), whatif="true")

    assert estimate["id"] is None
    assert estimate["status"] == "unassigned"
    assert estimate["cost"] == {"base": 600, "total": 600, "tips": {"civitai": 0, "creators": 0}}
    step = estimate["steps"][0]
    assert step["jobs"][0]["queuePosition"] == {"support": "available", "precedingJobs": 1}
    assert step["output"]["eta"] == pytest.approx((3 * 0.2 + 0.1) / 60)
    stats = api.stats()
    assert (stats["whatif"], stats["submissions"], stats["workflows"]) == (1, 1, 1)


def test_a_real_submit_costs_what_whatif_said(api: Api) -> None:
    body = kohya_body(trainingDataImagesCount=100, numRepeats=10, maxTrainEpochs=10)

    estimate = submit_ok(api, body, whatif="true")
    workflow = submit_ok(api, body)

    assert workflow["cost"] == estimate["cost"]
    assert workflow["cost"]["total"] == 2500
    assert workflow["transactions"] == {
        "list": [{"type": "debit", "amount": 2500, "accountType": "yellow"}]
    }
    assert workflow["steps"][0]["jobs"][0]["cost"] == 2500


def test_a_submitted_workflow_comes_back_unassigned_in_the_orchestrators_shape(api: Api) -> None:
    body = kohya_body()

    workflow = submit_ok(api, body)

    assert workflow["status"] == "unassigned"
    assert isinstance(workflow["id"], str) and workflow["createdAt"]
    assert workflow["startedAt"] is None and workflow["completedAt"] is None
    assert workflow["tags"] == body["tags"]
    assert workflow["metadata"] == {"runId": "r1"}
    assert workflow["upgradeMode"] == "manual"
    assert workflow["currencies"] == []
    assert workflow["tips"] == {"civitai": 0, "creators": 0}
    step = workflow["steps"][0]
    assert step["$type"] == "imageResourceTraining"
    assert step["name"] == "0"
    assert step["input"] == body["steps"][0]["input"]
    assert step["metadata"] == {"runId": "r1"}
    assert step["output"]["epochs"] == []
    assert step["output"]["moderationStatus"] == "approved"


# --- lifecycle ------------------------------------------------------------------------------------


def test_a_kohya_workflow_succeeds_with_its_epochs_and_its_blobs_download(api: Api) -> None:
    workflow_id = str(submit_ok(api, kohya_body(samplePrompts=["a cat", "a hat"]))["id"])

    done = api.wait_for_status(workflow_id, "succeeded")

    assert done["startedAt"] and done["completedAt"]
    output = done["steps"][0]["output"]
    assert [e["epochNumber"] for e in output["epochs"]] == [1, 2, 3]
    assert output["sampleImagesPrompts"] == ["a cat", "a hat"]
    assert output["eta"] == 0
    last = output["epochs"][-1]
    assert last["blobName"] == "my-lora_e3.safetensors"
    model = requests.get(last["blobUrl"], timeout=5)
    assert model.status_code == 200
    assert len(model.content) == last["blobSize"]
    assert len(last["sampleImages"]) == 2
    for url in last["sampleImages"]:
        image = requests.get(url, timeout=5)
        assert image.headers["Content-Type"] == "image/png"
        assert image.content.startswith(PNG_SIGNATURE)


def test_an_ai_toolkit_workflow_succeeds_with_its_epochs_and_samples(api: Api) -> None:
    workflow_id = str(submit_ok(api, ai_toolkit_body(epochs=2))["id"])

    done = api.wait_for_status(workflow_id, "succeeded")

    step = done["steps"][0]
    assert step["$type"] == "training"
    assert step["status"] == "succeeded"
    assert step["jobs"][0]["status"] == "succeeded"
    output = step["output"]
    assert output["status"] == "succeeded"
    assert [e["epochNumber"] for e in output["epochs"]] == [1, 2]
    assert [s["prompt"] for s in output["samples"]] == ["a dog"]
    blob = output["samples"][0]["blob"]
    assert (blob["type"], blob["available"]) == ("image", True)
    assert requests.get(blob["url"], timeout=5).content.startswith(PNG_SIGNATURE)
    assert requests.get(output["epochs"][0]["blobUrl"], timeout=5).status_code == 200


def test_a_workflow_is_processing_between_queue_and_completion(api: Api) -> None:
    workflow_id = str(submit_ok(api, ai_toolkit_body(epochs=20))["id"])

    running = api.wait_for_status(workflow_id, "processing")

    assert running["startedAt"] and running["completedAt"] is None
    assert running["steps"][0]["output"]["eta"] > 0


def test_blobs_of_unknown_workflows_or_files_answer_404(emulator: EmulatorServer) -> None:
    assert requests.get(f"{emulator.url}/blobs/nope/x.png", timeout=5).status_code == 404


def test_submit_with_wait_answers_with_the_finished_workflow(api: Api) -> None:
    response = api.submit(ai_toolkit_body(epochs=1), wait=5)

    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


# --- query and cancel -----------------------------------------------------------------------------


def test_workflows_are_found_by_all_of_their_tags_newest_first(api: Api) -> None:
    first = submit_ok(api, kohya_body("a"))["id"]
    second = submit_ok(api, ai_toolkit_body("b"))["id"]
    third = submit_ok(api, kohya_body("c"))["id"]

    def ids(params: dict[str, Any]) -> list[str]:
        response = api.request("GET", WORKFLOWS, params=params)
        assert response.status_code == 200
        assert response.json()["next"] == ""
        return [item["id"] for item in response.json()["items"]]

    assert ids({"tags": ["training"]}) == [third, second, first]
    assert ids({"tags": ["training", "engine:kohya"]}) == [third, first]
    assert ids({"tags": ["run:b", "engine:ai-toolkit"]}) == [second]
    assert ids({"tags": ["run:b", "engine:kohya"]}) == []
    assert ids({"tags": ["training"], "take": 1}) == [third]


def test_canceling_a_workflow_stops_it_for_good(api: Api) -> None:
    workflow_id = submit_ok(api, ai_toolkit_body(epochs=20))["id"]
    api.wait_for_status(str(workflow_id), "processing")

    response = api.request("PUT", f"{WORKFLOWS}/{workflow_id}", json={"status": "canceled"})

    assert response.status_code == 204
    canceled = api.workflow(str(workflow_id))
    assert canceled["status"] == "canceled" and canceled["completedAt"]
    epochs = len(canceled["steps"][0]["output"]["epochs"])
    time.sleep(0.5)  # two more epochs' worth of lifecycle ticks
    later = api.workflow(str(workflow_id))
    assert later["status"] == "canceled"
    assert len(later["steps"][0]["output"]["epochs"]) == epochs


def test_a_terminal_workflow_stays_as_it_is_when_canceled(api: Api) -> None:
    workflow_id = str(submit_ok(api, ai_toolkit_body(epochs=1))["id"])
    api.wait_for_status(workflow_id, "succeeded")

    put = api.request("PUT", f"{WORKFLOWS}/{workflow_id}", json={"status": "canceled"})
    delete = api.request("DELETE", f"{WORKFLOWS}/{workflow_id}")

    assert (put.status_code, delete.status_code) == (204, 204)
    assert api.workflow(workflow_id)["status"] == "succeeded"


def test_delete_cancels_a_workflow(api: Api) -> None:
    workflow_id = str(submit_ok(api, kohya_body())["id"])

    assert api.request("DELETE", f"{WORKFLOWS}/{workflow_id}").status_code == 204
    assert api.workflow(workflow_id)["status"] == "canceled"


def test_unknown_workflow_ids_answer_404(api: Api) -> None:
    for method in ("GET", "DELETE"):
        response = api.request(method, f"{WORKFLOWS}/nope")
        assert response.status_code == 404
        assert response.json()["status"] == 404
    put = api.request("PUT", f"{WORKFLOWS}/nope", json={"status": "canceled"})
    assert put.status_code == 404


# --- callbacks ------------------------------------------------------------------------------------


def test_callbacks_arrive_in_order(api: Api, receiver: Receiver) -> None:
    workflow_id = str(submit_ok(api, kohya_body(callback_url=receiver.url))["id"])

    api.wait_for_status(workflow_id, "succeeded")
    wait_for(lambda: len(receiver.accepted) == 3, message=str(receiver.attempts))

    assert receiver.statuses(workflow_id) == ["unassigned", "processing", "succeeded"]
    event = receiver.accepted[-1]
    assert event["$type"] == "workflow" and event["timestamp"].endswith("Z")
    assert api.stats()["callbacksDelivered"] == 3


def test_a_receiver_answering_500_twice_still_gets_each_event_once_in_order(api: Api) -> None:
    receiver = Receiver(statuses=[500, 500]).start()
    try:
        workflow_id = str(submit_ok(api, ai_toolkit_body(callback_url=receiver.url))["id"])
        wait_for(lambda: len(receiver.accepted) == 3, message=str(receiver.attempts))
    finally:
        receiver.stop()

    assert receiver.statuses(workflow_id) == ["unassigned", "processing", "succeeded"]
    assert [status for status, _ in receiver.attempts] == [500, 500, 200, 200, 200]
    stats = api.stats()
    assert (stats["callbacksDelivered"], stats["callbackRetries"]) == (3, 2)


def test_a_callback_that_never_succeeds_is_dropped_after_its_retries(api: Api) -> None:
    api.faults(callback_retries=1)
    receiver = Receiver(statuses=[503] * 10).start()
    try:
        submit_ok(api, kohya_body(callback_url=receiver.url, maxTrainEpochs=1))
        wait_for(lambda: api.stats()["callbacksFailed"] == 3, message=str(api.stats()))
    finally:
        receiver.stop()

    assert len(receiver.attempts) == 6  # each of the three events: one try and one retry
    assert api.stats()["callbacksDelivered"] == 0


def test_callbacks_filter_on_the_statuses_a_callback_asks_for(api: Api, receiver: Receiver) -> None:
    body = ai_toolkit_body(epochs=1)
    body["callbacks"] = [{"url": receiver.url, "type": ["workflow:succeeded", "job:*"]}]

    workflow_id = str(submit_ok(api, body)["id"])
    api.wait_for_status(workflow_id, "succeeded")
    wait_for(lambda: len(receiver.accepted) == 1)

    assert receiver.statuses(workflow_id) == ["succeeded"]


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [replace(FAST, fail_at_epoch=2)])
def test_a_workflow_fails_when_it_reaches_the_fail_at_epoch(
    api: Api, receiver: Receiver, config: EmulatorConfig
) -> None:
    workflow_id = str(submit_ok(api, kohya_body(callback_url=receiver.url))["id"])

    failed = api.wait_for_status(workflow_id, "failed", "succeeded")

    assert failed["status"] == "failed" and failed["completedAt"]
    assert [e["epochNumber"] for e in failed["steps"][0]["output"]["epochs"]] == [1]
    wait_for(lambda: receiver.statuses(workflow_id)[-1:] == ["failed"])


def test_a_fail_rate_of_one_answers_503_until_the_faults_endpoint_heals_it(api: Api) -> None:
    assert api.faults(fail_rate=1.0).status_code == 200

    broken = api.submit(kohya_body())
    listing = api.request("GET", WORKFLOWS)

    assert (broken.status_code, listing.status_code) == (503, 503)
    assert broken.json()["status"] == 503
    assert api.stats()["submissions"] == 0
    healed = api.faults(fail_rate=0)
    assert healed.json()["fail_rate"] == 0
    assert api.submit(kohya_body()).status_code == 200


def test_the_failure_status_is_configurable(api: Api) -> None:
    api.faults(fail_rate=1, fail_status=502)

    assert api.submit(kohya_body()).status_code == 502


@pytest.mark.parametrize("config", [replace(FAST, fail_rate=0.5, seed=7)])
def test_a_partial_fail_rate_is_repeatable_from_its_seed(api: Api, config: EmulatorConfig) -> None:
    def outcomes() -> list[int]:
        return [api.request("GET", WORKFLOWS).status_code for _ in range(20)]

    first = outcomes()
    api.request("POST", "/_emulator/reset")  # reseeds the dice

    assert outcomes() == first
    assert set(first) == {200, 503}


def test_a_submit_that_hangs_after_accept_is_stored_although_the_client_timed_out(
    api: Api,
) -> None:
    api.faults(submit_hang_after_accept_seconds=2)

    with pytest.raises(requests.ReadTimeout):
        api.submit(kohya_body("lost"), timeout=0.5)

    found = api.request("GET", WORKFLOWS, params={"tags": "run:lost"}).json()["items"]
    assert len(found) == 1
    assert api.stats()["submissions"] == 1


def test_a_timeout_fault_makes_the_client_time_out_and_stores_nothing(api: Api) -> None:
    api.faults(timeout_rate=1, hang_seconds=2)

    with pytest.raises(requests.ReadTimeout):
        api.submit(kohya_body(), timeout=0.5)

    api.faults(timeout_rate=0)
    assert api.stats()["workflows"] == 0


def test_reject_all_refuses_every_real_submit_with_its_message(api: Api) -> None:
    api.faults(reject_all="Insufficient Buzz")

    rejected = api.submit(kohya_body())
    estimate = api.submit(kohya_body(), whatif="true")

    assert rejected.status_code == 400
    assert rejected.json()["errors"] == {"": ["Insufficient Buzz"]}
    assert estimate.status_code == 200
    assert api.stats()["workflows"] == 0


def test_dropped_callbacks_are_never_sent(api: Api, receiver: Receiver) -> None:
    api.faults(drop_callbacks=True)

    workflow_id = str(submit_ok(api, ai_toolkit_body(epochs=1, callback_url=receiver.url))["id"])
    api.wait_for_status(workflow_id, "succeeded")

    assert receiver.attempts == []


def test_the_faults_endpoint_refuses_unknown_and_ill_typed_settings(api: Api) -> None:
    response = api.faults(fail_rate=2, token="x", latency="slow", failRate=0.1)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"fail_rate", "token", "latency", "failRate"}
    assert api.request("GET", "/_emulator/faults").json()["fail_rate"] == 0


def test_the_test_endpoints_need_the_token_too(emulator: EmulatorServer) -> None:
    assert requests.get(f"{emulator.url}/_emulator/stats", timeout=5).status_code == 401


# --- stats and reset ------------------------------------------------------------------------------


def test_stats_count_submissions_by_tag(api: Api) -> None:
    submit_ok(api, kohya_body("r1"))
    submit_ok(api, kohya_body("r1"))
    submit_ok(api, ai_toolkit_body("r2"))
    submit_ok(api, ai_toolkit_body("r3"), whatif="true")

    stats = api.stats()

    assert stats["submissions"] == 3
    assert stats["whatif"] == 1
    assert stats["workflows"] == 3
    assert stats["byTag"] == {
        "training": 3,
        "run:r1": 2,
        "run:r2": 1,
        "engine:kohya": 2,
        "engine:ai-toolkit": 1,
    }


def test_reset_clears_workflows_counters_and_faults(api: Api) -> None:
    workflow_id = str(submit_ok(api, kohya_body())["id"])
    api.faults(latency_ms=1)

    assert api.request("POST", "/_emulator/reset").status_code == 200

    stats = api.stats()
    assert (stats["workflows"], stats["submissions"], stats["byTag"]) == (0, 0, {})
    assert api.request("GET", f"{WORKFLOWS}/{workflow_id}").status_code == 404
    assert api.request("GET", "/_emulator/faults").json()["latency_ms"] == 0


@pytest.mark.parametrize("config", [replace(FAST, public_url="http://emulator.test:9")])
def test_blob_urls_use_the_configured_public_url(api: Api, config: EmulatorConfig) -> None:
    workflow_id = str(submit_ok(api, ai_toolkit_body(epochs=1))["id"])

    done = api.wait_for_status(workflow_id, "succeeded")

    url = done["steps"][0]["output"]["epochs"][0]["blobUrl"]
    assert url == f"http://emulator.test:9/blobs/{workflow_id}/lora_e1.safetensors"


def test_in_process_callers_change_faults_and_read_stats_directly(
    emulator: EmulatorServer, api: Api
) -> None:
    emulator.update_faults(fail_rate=1.0)

    assert api.submit(kohya_body()).status_code == 503
    assert emulator.stats()["injectedFailures"] == 1
    emulator.reset()
    assert emulator.config.fail_rate == 0
