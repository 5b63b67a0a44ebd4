"""`Idempotency-Key` on run creation, with Stripe's semantics (django-practice.md B.2):

- same key, same body: the first response is replayed (status and body);
- same key, different body: 422;
- same key while the first request is still running: 409;
- a request that fails validation stores nothing, so the client may fix it and retry the key;
- keys are kept IDEMPOTENCY_KEY_TTL_HOURS (at least 24 h), then pruned by the reconciler's beat.

The key is claimed in a short transaction of its own (so a concurrent twin sees it and gets 409
instead of blocking), and its response is written in the same transaction as the run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from training.models import IdempotencyKey

MAX_KEY_LENGTH = 255
# A claim older than this was abandoned by a crashed request and may be taken over.
ABANDONED_AFTER = timedelta(seconds=60)


class KeyConflict(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


def request_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _existing(owner: Any, key: str, digest: str) -> Replay | None:
    row = IdempotencyKey.objects.filter(owner=owner, key=key).first()
    if row is None:
        return None
    if row.request_hash != digest:
        raise KeyConflict(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body; use a new key for a "
            "new request.",
        )
    if row.completed_at is None:
        if timezone.now() - row.created_at < ABANDONED_AFTER:
            raise KeyConflict(
                409,
                "idempotency_key_in_flight",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            )
        row.delete()  # abandoned by a crashed request: let this one take it over
        return None
    assert row.response_status is not None
    return Replay(row.response_status, row.response_body)


def with_idempotency(
    *,
    owner: Any,
    key: str,
    data: Any,
    create: Callable[[], tuple[int, Any, Any]],
) -> Replay:
    """Run `create` (which returns status, body and the run) at most once per (owner, key)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise KeyConflict(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters (a UUID is a good choice).",
        )
    digest = request_hash(data)
    replay = _existing(owner, key, digest)
    if replay:
        return replay
    try:
        with transaction.atomic():
            claim = IdempotencyKey.objects.create(owner=owner, key=key, request_hash=digest)
    except IntegrityError:
        replay = _existing(owner, key, digest)  # a twin claimed it between our read and insert
        if replay:
            return replay
        raise KeyConflict(409, "idempotency_key_in_flight", "Retry shortly.") from None
    try:
        with transaction.atomic():
            status, body, run = create()
            IdempotencyKey.objects.filter(pk=claim.pk).update(
                completed_at=timezone.now(), response_status=status, response_body=body, run=run
            )
    except BaseException:
        # Nothing was created: free the key so a corrected request can use it (Stripe stores
        # nothing for requests that fail validation).
        IdempotencyKey.objects.filter(pk=claim.pk, completed_at__isnull=True).delete()
        raise
    return Replay(status, body)


def idempotency_keys_prune() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
