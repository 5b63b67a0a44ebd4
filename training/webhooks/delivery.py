"""Sending deliveries: Celery only, never in a request or a run's transition. One sender per run
at a time (a Redis lock) walks the run's pending deliveries in order, so a run's events arrive in
order; a failed attempt holds the later ones back until it is retried. At least once: a delivery
whose sender died (worker killed mid-request) is picked up again by the sweep on beat."""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from standardwebhooks import Webhook

from training.webhooks.keys import webhook_signing_key
from training.webhooks.models import WebhookAttempt, WebhookDelivery
from training.webhooks.targets import webhook_address_problem

log = logging.getLogger(__name__)

SUCCESS = range(200, 300)
USER_AGENT = "training-service-webhooks/1"
_session = requests.Session()
_session.trust_env = False  # no proxies from the environment: the target is checked as given


def _lock_key(run_id: str) -> str:
    return f"webhook-sending:{run_id}"


def _lock_seconds() -> int:
    # Longer than one attempt can take, so a live sender never loses its lock mid-request.
    return int(settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_READ_TIMEOUT) + 5


def _user_within_cap(user_id: int) -> bool:
    key = f"webhook-rate:{user_id}:{int(time.time() // 60)}"
    cache.add(key, 0, 120)
    try:
        count = int(cache.incr(key))
    except ValueError:
        cache.add(key, 1, 120)
        count = 1
    return count <= settings.WEBHOOK_DELIVERIES_PER_MINUTE


def backoff_seconds(attempt: int, *, retry_after: float | None = None) -> float:
    """Exponential with jitter (half fixed, half random), capped below the broker's visibility
    timeout; a receiver's Retry-After is a floor."""
    ceiling = settings.WEBHOOK_RETRY_MAX_SECONDS
    step = min(ceiling, settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    delay = step / 2 + random.uniform(0, step / 2)
    return min(ceiling, max(delay, retry_after or 0.0))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - timezone.now()).total_seconds())


def _attempt(delivery: WebhookDelivery, owner_id: int) -> tuple[str, float | None]:
    """One POST. Returns ("delivered" | "retry" | "failed", retry_after)."""
    number = delivery.attempts + 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=number)
    started = time.monotonic()
    code: int | None = None
    error = ""
    retry_after: float | None = None
    problem = webhook_address_problem(delivery.url)
    if problem:
        outcome, error = "failed", problem
    else:
        sent_at = timezone.now()
        key = webhook_signing_key(user_id=owner_id)
        headers = {
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(key).sign(delivery.id, sent_at, delivery.body),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            response = _session.post(
                delivery.url,
                data=delivery.body.encode(),
                headers=headers,
                timeout=(settings.WEBHOOK_CONNECT_TIMEOUT, settings.WEBHOOK_READ_TIMEOUT),
                allow_redirects=False,  # a redirect could lead anywhere; it is not a delivery
            )
        except requests.Timeout:
            outcome, error = "retry", "timed out"
        except requests.ConnectionError:
            outcome, error = "retry", "could not connect"
        else:
            code = response.status_code
            response.close()
            if code in SUCCESS:
                outcome = "delivered"
            elif code == 429 or code >= 500:
                outcome, retry_after = "retry", _retry_after(response)
            else:
                outcome, error = "failed", f"the receiver answered {code}; not retried"
    WebhookAttempt.objects.create(
        delivery=delivery, number=number, status_code=code, error=error[:300],
        duration_ms=int((time.monotonic() - started) * 1000),
    )  # fmt: skip
    return outcome, retry_after


def _finish(delivery: WebhookDelivery, state: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, state=WebhookDelivery.State.PENDING).update(
        state=state, finished_at=timezone.now()
    )


def _later(run_id: str, at: datetime) -> None:
    countdown = max(0.0, (at - timezone.now()).total_seconds())
    webhook_send_task.apply_async((run_id,), countdown=countdown)


@shared_task(acks_late=True, ignore_result=True, max_retries=0)
def webhook_send_task(run_id: str) -> str:
    if not cache.add(_lock_key(run_id), 1, _lock_seconds()):
        return "busy"  # another sender has this run and walks its queue
    try:
        return _send_due(run_id)
    finally:
        cache.delete(_lock_key(run_id))


def _send_due(run_id: str) -> str:
    while True:
        delivery = (
            WebhookDelivery.objects.filter(run__pk=run_id, state=WebhookDelivery.State.PENDING)
            .select_related("run")
            .order_by("seq")
            .first()
        )
        if delivery is None:
            return "idle"
        now = timezone.now()
        if delivery.next_attempt_at > now:
            _later(run_id, delivery.next_attempt_at)
            return "waiting"
        owner_id = delivery.run.owner_id
        if not _user_within_cap(owner_id):
            # Over the user's per-minute cap: try again next minute, counting no attempt.
            moment = now + timedelta(seconds=60 - time.time() % 60 + random.uniform(0, 5))
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=moment)
            _later(run_id, moment)
            return "capped"
        outcome, retry_after = _attempt(delivery, owner_id)
        if outcome == "delivered":
            _finish(delivery, WebhookDelivery.State.DELIVERED)
            continue
        if outcome == "failed":
            _finish(delivery, WebhookDelivery.State.FAILED)
            continue  # a final answer: the next event is still sent
        wait = backoff_seconds(delivery.attempts + 1, retry_after=retry_after)
        moment = timezone.now() + timedelta(seconds=wait)
        if moment > delivery.created_at + timedelta(hours=settings.WEBHOOK_RETRY_HOURS):
            _finish(delivery, WebhookDelivery.State.FAILED)
            log.warning("webhook %s for run %s: gave up after %s attempts", delivery.pk,
                        run_id, delivery.attempts + 1)  # fmt: skip
            continue
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=moment)
        _later(run_id, moment)
        return "retrying"
