"""Per-run callback URLs. The orchestrator signs nothing, so each run's URL carries its own token:
an HMAC of the run id under CALLBACK_SECRET, checked in constant time (DESIGN.md §5)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

from django.conf import settings


def callback_token(run_id: UUID | str) -> str:
    return hmac.new(
        settings.CALLBACK_SECRET.encode(), str(run_id).encode(), hashlib.sha256
    ).hexdigest()


def callback_token_valid(run_id: UUID | str, token: str | None) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and a fuzzer (or attacker) sends some.
    return bool(token) and hmac.compare_digest(
        callback_token(run_id).encode(), str(token).encode("utf-8", "surrogatepass")
    )


def callback_url(run_id: UUID | str) -> str:
    return (
        f"{settings.PUBLIC_BASE_URL}/api/v1/orchestrator/callbacks/{run_id}/"
        f"?token={callback_token(run_id)}"
    )


REDACTED = "REDACTED"


def callback_tokens_redacted(body: dict[str, Any]) -> dict[str, Any]:
    """The workflow body as a person may see it: each callback URL's token replaced. The token is
    a secret between us and the orchestrator; whoever holds it can post news for the run."""
    callbacks = body.get("callbacks")
    if not isinstance(callbacks, list):
        return body
    shown = []
    for callback in callbacks:
        if isinstance(callback, dict) and isinstance(callback.get("url"), str):
            parts = urlsplit(callback["url"])
            query = urlencode(
                [(k, REDACTED if k == "token" else v) for k, v in parse_qsl(parts.query)]
            )
            callback = {**callback, "url": urlunsplit(parts._replace(query=query))}
        shown.append(callback)
    return {**body, "callbacks": shown}
