"""The one rule for hosts we must never be made to talk to (private, loopback, link-local,
unique-local, internal names). The security work on `trainingData.url` (#16.8) has the same
intent; the two are to become this one function."""

from __future__ import annotations

import ipaddress

INTERNAL_NAMES = ("localhost", "metadata.google.internal")
INTERNAL_SUFFIXES = (".internal", ".local", ".localhost", ".localdomain")


def private_host_reason(host: str) -> str | None:
    """Why `host` (a name or a literal address) is not a public host, or None. No DNS lookup."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host:
        return "no host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES) or "." not in host:
            return "an internal name"
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_multicast:
        return "a private address"
    if address.is_unspecified or not address.is_global:
        return "not a public address"
    return None
