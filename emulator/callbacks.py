"""Callback delivery: in order per workflow and receiver, each event retried before the next one.

One short-lived sender thread per (workflow, callback URL) queue, so a dead receiver delays only its
own events and never another workflow's.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO

from emulator.config import EmulatorConfig

log = logging.getLogger("emulator.callbacks")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET; a callback answered 3xx is not delivered.
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> None:
        return None


# No proxies: callbacks go to whatever URL the client gave, usually on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass(frozen=True)
class Event:
    url: str
    body: bytes
    workflow_id: str
    status: str


def wants(callback: Mapping[str, object], status: str, source: str = "workflow") -> bool:
    types = callback.get("type")
    return isinstance(types, list) and (f"{source}:*" in types or f"{source}:{status}" in types)


class CallbackDispatcher:
    def __init__(self, settings: Callable[[], EmulatorConfig], stopping: threading.Event) -> None:
        self._settings = settings
        self._stopping = stopping
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], deque[Event]] = {}
        self._generation = 0  # bumped by reset(): senders of an older generation give up
        self.delivered = 0
        self.failed = 0
        self.retried = 0

    def enqueue(
        self,
        workflow_id: str,
        callbacks: Sequence[Mapping[str, object]],
        status: str,
        timestamp: str,
        *,
        details: Mapping[str, object] | None = None,
        progress: float | None = None,
    ) -> None:
        if self._settings().drop_callbacks:
            return
        # With a progress, a WorkflowStepJobEvent (beta86 §5) of the one training step's job.
        source = "workflow" if progress is None else "job"
        payload: dict[str, object] = {
            "$type": source,
            "workflowId": workflow_id,
            "status": status,
            "timestamp": timestamp,
        }
        if progress is not None:
            payload.update(stepName="0", jobId=f"{workflow_id}-job-0", progress=progress)
        body = json.dumps(payload).encode()
        # beta86: a callback with `detailed: true` also gets the event's details.
        detailed = json.dumps({**payload, "details": details}).encode() if details else body
        for callback in callbacks:
            url = callback.get("url")
            if isinstance(url, str) and wants(callback, status, source):
                chosen = detailed if callback.get("detailed") is True else body
                self._put(Event(url, chosen, workflow_id, status))

    def _put(self, event: Event) -> None:
        key = (event.workflow_id, event.url)
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None:  # its sender is running and will get to it
                queue.append(event)
                return
            self._queues[key] = deque([event])
            generation = self._generation
        name = f"callbacks-{event.workflow_id}"
        threading.Thread(target=self._drain, args=(key, generation), name=name, daemon=True).start()

    def _drain(self, key: tuple[str, str], generation: int) -> None:
        while True:
            with self._lock:
                queue = self._queues.get(key)
                if generation != self._generation or queue is None:
                    return
                if not queue:
                    del self._queues[key]  # the next event starts a new sender
                    return
                event = queue[0]
            self._deliver(event, generation)
            with self._lock:
                if generation == self._generation and queue:
                    queue.popleft()

    def _deliver(self, event: Event, generation: int) -> None:
        config = self._settings()
        for attempt in range(config.callback_retries + 1):
            if self._stopping.is_set() or generation != self._generation:
                return
            if self._post(event, config.callback_timeout):
                with self._lock:
                    self.delivered += 1
                return
            if attempt < config.callback_retries:
                with self._lock:
                    self.retried += 1
                if self._stopping.wait(config.callback_backoff * 2**attempt):
                    return
        log.warning("dropping %s callback for %s to %s", event.status, event.workflow_id, event.url)
        with self._lock:
            self.failed += 1

    def _post(self, event: Event, timeout: float) -> bool:
        if not event.url.lower().startswith(("http://", "https://")):
            log.info("callback %s: %s is not an http(s) URL", event.status, event.url)
            return False
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked just above)
            event.url,
            data=event.body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "orchestrator-emulator"},
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read()
                ok = 200 <= response.status < 300
        except urllib.error.HTTPError as exc:
            exc.close()
            log.info("callback %s to %s answered %s", event.status, event.url, exc.code)
            return False
        except Exception as exc:  # refused, timed out, garbled answer: all just a failed attempt
            log.info("callback %s to %s failed: %s", event.status, event.url, exc)
            return False
        return ok

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "callbacksDelivered": self.delivered,
                "callbacksFailed": self.failed,
                "callbackRetries": self.retried,
            }

    def pending(self) -> int:
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._queues.clear()
            self.delivered = self.failed = self.retried = 0
