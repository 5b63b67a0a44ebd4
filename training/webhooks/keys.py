"""A user's webhook signing secret (Standard Webhooks `whsec_` keys): read by the writes and by the
sender, so it sits below both."""

from __future__ import annotations

import base64
import secrets

from training.webhooks.models import WebhookSecret


def new_key() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def webhook_signing_key(*, user_id: int) -> str:
    secret, _ = WebhookSecret.objects.get_or_create(user_id=user_id, defaults={"key": new_key()})
    return secret.key
