"""Where a webhook may point. With DEBUG off: https to a public host only. With DEBUG on (the
embedded default) loopback http is allowed too, so a developer can receive on their machine."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from websafety.hosts import host_reason


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def webhook_url_problem(url: str) -> str | None:
    """Why this URL cannot receive webhooks, or None. No DNS lookup: that happens at send time
    (webhook_address_problem), when the answer is the one the request will use."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return "Enter an https URL."
    if settings.WEBHOOK_ALLOW_LOOPBACK and _loopback(host):
        return None
    if parts.scheme != "https":
        return "Webhooks are sent to https URLs only."
    if parts.username or parts.password:
        return "Put no credentials in the webhook URL; verify the signature instead."
    reason = host_reason(host)
    if reason:
        return f"Webhooks are sent to public hosts only ({reason})."
    return None


def webhook_address_problem(url: str) -> str | None:
    """At send time: the host must still resolve to public addresses only (a name that now points
    inside our network is refused), except loopback where it is allowed."""
    host = (urlsplit(url).hostname or "").lower()
    if settings.WEBHOOK_ALLOW_LOOPBACK and _loopback(host):
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {host}: {exc.strerror or exc}"
    for info in infos:
        reason = host_reason(str(info[4][0]))
        if reason:
            return f"{host} resolves to a private address ({reason})"
    return None
