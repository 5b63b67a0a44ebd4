"""Request handling, independent of the HTTP plumbing: routes, auth, injected faults."""

from __future__ import annotations

import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

from emulator.callbacks import CallbackDispatcher
from emulator.config import ConfigError, EmulatorConfig
from emulator.contracts import get_contract
from emulator.records import JsonObject, WorkflowRecord
from emulator.state import Store

log = logging.getLogger("emulator")

Query = Mapping[str, list[str]]

_PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    413: "https://tools.ietf.org/html/rfc9110#section-15.5.14",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc9110#section-15.6.1",
    502: "https://tools.ietf.org/html/rfc9110#section-15.6.3",
    503: "https://tools.ietf.org/html/rfc9110#section-15.6.4",
    504: "https://tools.ietf.org/html/rfc9110#section-15.6.5",
}
VALIDATION_TITLE = "One or more validation errors occurred."
PROBLEM_JSON = "application/problem+json; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: object = None  # JSON-serialisable, raw bytes, or None for no body
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class Problem(Exception):
    def __init__(self, status: int, detail: str = "", errors: dict[str, list[str]] | None = None):
        super().__init__(detail)
        self.reply = problem(status, detail, errors)


def problem(status: int, detail: str = "", errors: dict[str, list[str]] | None = None) -> Reply:
    body: JsonObject = {
        "type": _PROBLEM_TYPES.get(status, "about:blank"),
        "title": VALIDATION_TITLE if errors is not None else _phrase(status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status in (429, 503):
        headers["Retry-After"] = "1"
    return Reply(status, body, PROBLEM_JSON, headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def invalid(errors: dict[str, list[str]]) -> Problem:
    return Problem(400, errors=errors)


class App:
    def __init__(
        self, config: EmulatorConfig, base_url: Callable[[], str], stopping: threading.Event
    ) -> None:
        self.initial = config
        self.config = config
        self.contract = get_contract(config.contract)
        self._base_url = base_url
        self._stopping = stopping
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self.injected = 0
        self.rejected = 0
        self.callbacks = CallbackDispatcher(lambda: self.config, stopping)
        self.store = Store(self.contract, self._emit)

    def _emit(
        self, wf: WorkflowRecord, status: str, timestamp: str, *, progress: float | None = None
    ) -> None:
        callbacks = wf.template.get("callbacks")
        if wf.id is not None and isinstance(callbacks, list):
            entries = [c for c in callbacks if isinstance(c, Mapping)]
            if progress is not None:  # a job event: how far training is
                self.callbacks.enqueue(wf.id, entries, status, timestamp, progress=progress)
                return
            details = self.contract.event_details(wf)
            self.callbacks.enqueue(wf.id, entries, status, timestamp, details=details)

    def tick(self, now: float) -> None:
        self.store.tick(self.config, now)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            hit = self._rng.random() < rate
            self.injected += hit
            return hit

    # --- routing --------------------------------------------------------------------------------

    def handle(
        self, method: str, parts: list[str], query: Query, body: bytes, authorization: str
    ) -> Reply:
        try:
            if method == "GET" and len(parts) == 3 and parts[0] == "blobs":
                return self._blob(parts[1], parts[2], query)
            if parts[:1] == ["_emulator"]:
                self._authorize(authorization)
                return self._ops(method, parts[1:], body)
            if parts[:3] == ["v2", "consumer", "workflows"] and len(parts) <= 4:
                fault = self._inject_faults()
                if fault is not None:
                    return fault
                self._authorize(authorization)
                if len(parts) == 3:
                    return self._collection(method, query, body)
                return self._item(method, parts[3], body)
            raise Problem(404, f"No route for {method} /{'/'.join(parts)}.")
        except Problem as exc:
            return exc.reply

    def _authorize(self, authorization: str) -> None:
        expected = f"Bearer {self.config.token}"
        if not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise Problem(401, "A valid bearer token is required.")

    def _inject_faults(self) -> Reply | None:
        config = self.config
        self._sleep(config.latency_ms / 1000)
        if self._draw(config.fail_rate):
            return problem(config.fail_status, "Injected failure (fail_rate).")
        if self._draw(config.timeout_rate):
            self._sleep(config.hang_seconds)  # the client's read timeout should fire first
            return problem(504, "Injected timeout (timeout_rate).")
        return None

    def _collection(self, method: str, query: Query, body: bytes) -> Reply:
        if method == "POST":
            return self._submit(query, body)
        if method == "GET":
            take = _int_param(query, "take", 100)
            ascending = _bool_param(query, "ascending", False)
            found = self.store.query(query.get("tags", []), take, ascending=ascending)
            items = [self.store.render(wf, self.config, self._base_url()) for wf in found]
            return Reply(200, {"next": "", "items": items})
        raise Problem(405, f"{method} is not allowed here.")

    def _item(self, method: str, workflow_id: str, body: bytes) -> Reply:
        if method == "GET":
            wf = self.store.get(workflow_id)
            if wf is None:
                raise Problem(404, f"Workflow {workflow_id} was not found.")
            return Reply(200, self.store.render(wf, self.config, self._base_url()))
        if method == "DELETE":
            if not self.store.cancel(workflow_id):
                raise Problem(404, f"Workflow {workflow_id} was not found.")
            return Reply(204)
        if method == "PUT":
            return self._update(workflow_id, _json_object(body))
        raise Problem(405, f"{method} is not allowed here.")

    def _submit(self, query: Query, raw: bytes) -> Reply:
        whatif = _bool_param(query, "whatif", False)
        wait = _int_param(query, "wait", 0)
        body = _json_object(raw)
        errors: dict[str, list[str]] = {}
        for error in self.contract.validate(body):
            errors.setdefault(error.path, []).append(error.message)
        if errors:
            raise invalid(errors)
        steps = body.get("steps")
        if isinstance(steps, list) and len(steps) != 1:
            raise invalid({"steps": ["The emulator runs workflows of exactly one step."]})
        config = self.config
        # beta86 idempotency: a known externalId answers with the workflow it first made.
        known = self.store.by_external_id(_text_field(body, "externalId"))
        if whatif:
            self.store.note_whatif()
            estimate = known or self.store.new_record(body, stored=False)
            return Reply(200, self.store.render(estimate, config, self._base_url()))
        if known is not None:
            log.info("externalId %s is workflow %s already", known.external_id, known.id)
            return Reply(200, self.store.render(known, config, self._base_url()))
        if config.reject_all:
            with self._lock:
                self.rejected += 1
            raise invalid({"": [config.reject_all]})
        wf = self.store.new_record(body, stored=True, moderation=config.moderation)
        if self.store.add(wf) is not wf:  # a concurrent submit with the same externalId won
            known = self.store.by_external_id(wf.external_id)
            assert known is not None
            return Reply(200, self.store.render(known, config, self._base_url()))
        log.info("accepted workflow %s (%s, %d Buzz)", wf.id, wf.plan.family, wf.cost)
        # The lost-response fault: the workflow exists, but the answer comes too late.
        self._sleep(config.submit_hang_after_accept_seconds)
        status = 200
        if wait > 0 and wf.id is not None:
            done = self.store.wait_terminal(wf.id, wait, abort=self._stopping.is_set)
            status = 200 if done else 202
        return Reply(status, self.store.render(wf, self.config, self._base_url()))

    def _update(self, workflow_id: str, body: JsonObject) -> Reply:
        unknown = sorted(set(body) - {"status", "metadata", "tags", "allowMatureContent"})
        if unknown:
            raise invalid({key: ["Unknown field."] for key in unknown})
        status = body.get("status")
        if status is not None and status != "canceled":
            raise invalid({"status": ["The only status a client may set is 'canceled'."]})
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise invalid({"metadata": ["Must be an object."]})
        tags = body.get("tags")
        if tags is not None and not (
            isinstance(tags, list) and all(isinstance(t, str) for t in tags) and len(tags) <= 10
        ):
            raise invalid({"tags": ["Must be a list of at most 10 strings."]})
        if self.store.get(workflow_id) is None:
            raise Problem(404, f"Workflow {workflow_id} was not found.")
        self.store.update(
            workflow_id,
            metadata=metadata,
            tags=[str(t) for t in tags] if isinstance(tags, list) else None,
        )
        if status == "canceled":
            self.store.cancel(workflow_id)
        return Reply(204)

    def _blob(self, workflow_id: str, file: str, query: Query) -> Reply:
        # beta86 links are "signed" with their expiry; like a presigned URL they stop working.
        expires = query.get("expires")
        if expires and (not expires[-1].isdigit() or int(expires[-1]) < time.time()):
            raise Problem(403, "The signed URL has expired; GET the workflow for a fresh one.")
        found = self.store.blob(workflow_id, file)
        if found is None:
            raise Problem(404, "No such blob.")
        content, content_type = found
        return Reply(200, content, content_type, {"Cache-Control": "public, max-age=3600"})

    # --- test and ops endpoints -------------------------------------------------------------------

    def _ops(self, method: str, parts: list[str], raw: bytes) -> Reply:
        if parts == ["stats"] and method == "GET":
            return Reply(200, self.stats())
        if parts == ["faults"] and method == "GET":
            return Reply(200, self.config.faults())
        if parts == ["faults"] and method == "POST":
            try:
                config = self.update_faults(_json_object(raw))
            except ConfigError as exc:
                raise invalid({key: [msg] for key, msg in exc.problems.items()}) from None
            return Reply(200, config.faults())
        if parts == ["reset"] and method == "POST":
            self.reset()
            return Reply(200, self.stats())
        if len(parts) == 3 and parts[::2] == ["workflows", "moderation"] and method == "POST":
            return self._moderate(parts[1], _json_object(raw))
        raise Problem(404, "Unknown emulator endpoint.")

    def _moderate(self, workflow_id: str, body: JsonObject) -> Reply:
        decision = body.get("status")
        if decision not in ("approved", "rejected"):
            raise invalid({"status": ["Must be 'approved' or 'rejected'."]})
        due = time.monotonic() + self.config.seconds_per_epoch
        if not self.store.moderate(workflow_id, str(decision), next_epoch_due=due):
            raise Problem(404, f"Workflow {workflow_id} was not found.")
        wf = self.store.get(workflow_id)
        assert wf is not None
        return Reply(200, self.store.render(wf, self.config, self._base_url()))

    def update_faults(self, changes: Mapping[str, object]) -> EmulatorConfig:
        with self._lock:  # two concurrent updates must not lose one another
            self.config = self.config.with_changes(changes, runtime=True)
        log.info("faults now %s", self.config.faults())
        return self.config

    def stats(self) -> JsonObject:
        with self._lock:
            extra: JsonObject = {"injectedFailures": self.injected, "rejected": self.rejected}
        return {
            **self.store.stats(),
            **self.callbacks.counts(),
            "callbacksPending": self.callbacks.pending(),
            **extra,
        }

    def reset(self) -> None:
        self.store.reset()
        self.callbacks.reset()
        with self._lock:
            self.config = self.initial
            self._rng = random.Random(self.initial.seed)
            self.injected = self.rejected = 0

    def wake_waiters(self) -> None:
        with self.store.lock:
            self.store.lock.notify_all()


def _json_object(raw: bytes) -> JsonObject:
    try:
        value = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid({"": [f"The request body is not valid JSON: {exc}"]}) from None
    if not isinstance(value, dict):
        raise invalid({"": ["The request body must be a JSON object."]})
    return value


def _text_field(body: JsonObject, name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


def _int_param(query: Query, name: str, default: int) -> int:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    try:
        number = int(values[-1])
    except ValueError:
        raise invalid({name: [f"The value '{values[-1]}' is not valid."]}) from None
    if number < 0:
        raise invalid({name: ["Must not be negative."]})
    return number


def _bool_param(query: Query, name: str, default: bool) -> bool:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    lowered = values[-1].lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise invalid({name: [f"The value '{values[-1]}' is not valid."]})
