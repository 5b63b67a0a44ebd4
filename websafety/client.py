"""Who is asking: the client address, read the way DRF's throttles read it, so the login
throttle (django-axes) and the API's rates count the same address behind the same proxies."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or with NUM_PROXIES trusted proxies in front, the address the outermost of
    them saw (X-Forwarded-For, counted from the right: entries further left are the client's own
    claims and cannot be trusted)."""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    proxies: Any = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    if proxies and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return remote
