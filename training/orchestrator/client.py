"""HTTP client for the orchestrator: one pooled session per process, explicit timeouts, a short
list of success codes per call, and typed errors the worker can act on.

- TransientError: 5xx, 429 (with Retry-After), timeouts, refused connections: retry later.
- RejectedError: another 4xx, carrying the orchestrator's problem details: do not retry.
- AuthError: 401/403: our token is wrong; an operator must act.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

WORKFLOWS = "/v2/consumer/workflows"


class OrchestratorError(Exception):
    kind = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientError(OrchestratorError):
    kind = "transient"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RejectedError(OrchestratorError):
    kind = "rejected"

    def __init__(self, message: str, *, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(message, status=status)
        self.problem = dict(problem)


class NotFoundError(RejectedError):
    kind = "not_found"


class AuthError(OrchestratorError):
    kind = "auth"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def problem_message(problem: Mapping[str, Any], fallback: str) -> str:
    """A readable line from ProblemDetails / ValidationProblemDetails."""
    parts = [str(problem.get("detail") or problem.get("title") or fallback)]
    errors = problem.get("errors")
    if isinstance(errors, Mapping):
        for field, messages in errors.items():
            text = (
                "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            )
            parts.append(f"{field}: {text}" if field else text)
    return " — ".join(parts)


class OrchestratorClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        # requests re-reads the proxy variables on every call by scanning the whole environment
        # (twice; about a third of a submission's client CPU, bench/worker_throughput.py). They
        # are read once here instead, for this base URL (NO_PROXY included), and so is the CA
        # bundle; the environment is not expected to change under a running process.
        self.session.proxies = requests.utils.get_environ_proxies(self.base_url)
        if settings.ORCHESTRATOR_CA_BUNDLE:
            self.session.verify = settings.ORCHESTRATOR_CA_BUNDLE
        self.session.trust_env = False

    def _call(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...],
        params: Any = None,
        json: Any = None,
    ) -> requests.Response:
        url = self.base_url + path
        try:
            response = self.session.request(
                method, url, params=params, json=json, timeout=self.timeout
            )
        except requests.Timeout as exc:
            raise TransientError(f"orchestrator timed out: {exc}") from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"orchestrator unreachable: {exc}") from exc
        except requests.RequestException as exc:
            raise TransientError(f"orchestrator request failed: {exc}") from exc
        if response.status_code in ok:
            return response
        problem: Mapping[str, Any] = {}
        try:
            body = response.json()
            if isinstance(body, Mapping):
                problem = body
        except ValueError:
            pass
        message = problem_message(problem, f"HTTP {response.status_code}")
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(
                message,
                status=status,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            raise AuthError(message, status=status)
        if status == 404:
            raise NotFoundError(message, status=status, problem=problem)
        raise RejectedError(message, status=status, problem=problem)

    def submit(self, body: Mapping[str, Any], *, whatif: bool = False) -> dict[str, Any]:
        params = {"whatif": "true"} if whatif else None
        return dict(
            self._call("POST", WORKFLOWS, ok=(200, 201, 202), params=params, json=body).json()
        )

    def get(self, workflow_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"{WORKFLOWS}/{workflow_id}", ok=(200, 202)).json())

    def find_by_tag(self, tag: str) -> list[dict[str, Any]]:
        data = self._call("GET", WORKFLOWS, ok=(200,), params={"tags": tag, "take": 10}).json()
        return list(data.get("items") or [])

    def cancel(self, workflow_id: str) -> None:
        self._call(
            "PUT", f"{WORKFLOWS}/{workflow_id}", ok=(200, 202, 204), json={"status": "canceled"}
        )


@cache
def get_client() -> OrchestratorClient:
    # One pooled session per process (web worker or Celery child).
    return OrchestratorClient(
        base_url=settings.ORCHESTRATOR_URL,
        token=settings.ORCHESTRATOR_TOKEN,
        connect_timeout=settings.ORCHESTRATOR_CONNECT_TIMEOUT,
        read_timeout=settings.ORCHESTRATOR_READ_TIMEOUT,
    )
