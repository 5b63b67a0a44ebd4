"""Workflow bodies like the service sends, a callback receiver, and polling."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

TOKEN = "test-token"


def kohya_body(run_id: str = "r1", callback_url: str = "", **inputs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"runId": run_id},
        "tags": ["training", f"run:{run_id}", "engine:kohya"],
        "steps": [
            {
                "$type": "imageResourceTraining",
                "priority": "normal",
                "retries": 2,
                "metadata": {"runId": run_id},
                "input": {
                    "engine": "kohya",
                    "model": "urn:air:sdxl:checkpoint:civitai:101055@128078",
                    "trainingData": "https://example.com/data.zip",
                    "trainingDataImagesCount": 12,
                    "loraName": "my-lora",
                    "samplePrompts": ["a cat"],
                    "maxTrainEpochs": 3,
                    "numRepeats": 17,
                    "trainBatchSize": 4,
                    "resolution": 1024,
                },
            }
        ],
    }
    if callback_url:
        body["callbacks"] = [{"url": callback_url, "type": ["workflow:*"]}]
    body["steps"][0]["input"].update(inputs)
    return body


def ai_toolkit_body(run_id: str = "r2", callback_url: str = "", **inputs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"runId": run_id},
        "tags": ["training", f"run:{run_id}", "engine:ai-toolkit"],
        "steps": [
            {
                "$type": "training",
                "priority": "normal",
                "retries": 2,
                "metadata": {"runId": run_id},
                "input": {
                    "engine": "ai-toolkit",
                    "ecosystem": "flux1",
                    "model": "urn:air:flux1:checkpoint:civitai:618692@691639",
                    "modelVariant": "dev",
                    "trainingData": {
                        "type": "zip",
                        "sourceUrl": "https://example.com/d.zip",
                        "count": 10,
                    },
                    "samples": {"prompts": ["a dog"]},
                    "epochs": 3,
                },
            }
        ],
    }
    if callback_url:
        body["callbacks"] = [{"url": callback_url, "type": ["workflow:*"]}]
    body["steps"][0]["input"].update(inputs)
    return body


def legacy_body(engine: str, images: int, **inputs: Any) -> dict[str, Any]:
    body = kohya_body(trainingDataImagesCount=images)
    step_input = body["steps"][0]["input"]
    for knob in ("maxTrainEpochs", "numRepeats", "trainBatchSize", "resolution"):
        del step_input[knob]
    step_input["engine"] = engine
    step_input.update(inputs)
    return body


def with_priority(body: dict[str, Any], priority: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["steps"][0]["priority"] = priority
    return body


class Api:
    """requests against the emulator with the bearer token."""

    def __init__(self, base_url: str, token: str = TOKEN) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.base_url + path, **kwargs)

    def submit(
        self, body: dict[str, Any], *, timeout: float = 10, **params: Any
    ) -> requests.Response:
        path = "/v2/consumer/workflows"
        return self.request("POST", path, json=body, params=params, timeout=timeout)

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v2/consumer/workflows/{workflow_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stats(self) -> dict[str, Any]:
        return dict(self.request("GET", "/_emulator/stats").json())

    def faults(self, **changes: Any) -> requests.Response:
        return self.request("POST", "/_emulator/faults", json=changes)

    def wait_for_status(
        self, workflow_id: str, *statuses: str, timeout: float = 10
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.workflow(workflow_id))
            return found["status"] in statuses

        wait_for(reached, timeout, f"workflow {workflow_id} never reached {statuses}")
        return found


def wait_for(predicate: Callable[[], bool], timeout: float = 10, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or "condition not met in time")
        time.sleep(0.05)


class Receiver:
    """A callback endpoint: answers the scripted statuses in turn, then 200, and records each try."""

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self.script: deque[int] = deque(statuses)
        self.attempts: list[tuple[int, dict[str, Any]]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length))
                with receiver.lock:
                    status = receiver.script.popleft() if receiver.script else 200
                    receiver.attempts.append((status, payload))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/cb?token=secret"

    @property
    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [payload for status, payload in self.attempts if 200 <= status < 300]

    def statuses(self, workflow_id: str) -> list[str]:
        return [p["status"] for p in self.accepted if p["workflowId"] == workflow_id]

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
