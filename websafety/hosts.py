"""The one rule for URLs the service hands to someone else to fetch (training data today,
webhooks next): https to a public host. Decided from the URL's text alone, with no DNS lookup:
the orchestrator fetches, not us, and a lookup at request time would be slow and could be
answered differently later (DNS rebinding) anyway."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

# Names that only resolve inside a network or on the machine itself.
INTERNAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "metadata", "metadata.google.internal"}
)
INTERNAL_SUFFIXES = (
    ".localhost", ".local", ".internal", ".intranet", ".corp", ".home", ".lan", ".localdomain",
    ".home.arpa", ".in-addr.arpa", ".ip6.arpa",
)  # fmt: skip


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Forms that browsers and curl still read as IPv4: 2130706433, 0x7f.1, 0177.0.0.1, 127.1.
    parts = host.split(".")
    if not parts or len(parts) > 4 or not all(parts):
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            numbers.append(
                int(part, 0)
                if part[:2].lower() == "0x"
                else int(part, 8 if len(part) > 1 and part[0] == "0" else 10)
            )
        except ValueError:
            return None
    value = 0
    for number in numbers[:-1]:
        if not 0 <= number <= 255:
            return None
        value = value * 256 + number
    last_bits = 8 * (5 - len(numbers))
    if not 0 <= numbers[-1] < 2**last_bits:
        return None
    return ipaddress.IPv4Address(value * 2**last_bits + numbers[-1])


def _ip_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return _ip_reason(mapped)
        if ip in ipaddress.IPv6Network("fc00::/7"):
            return "a unique-local IPv6 address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "a private address"
    return None


def private_host_reason(url: str) -> str | None:
    """Why `url` may not be handed out for fetching, in words for an error message; None when it
    is https to a public host."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme.lower() != "https":
        return "it must use https"
    if not host:
        return "it has no host"
    reason = host_reason(host)
    return f"its host is {reason}" if reason else None


def host_reason(host: str) -> str | None:
    """Why `host` (a name or a literal address, as in a URL or as DNS answered) is not a public
    host, or None. No DNS lookup. Webhook targets check each resolved address with it too."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host:
        return "no host"
    ip = _as_ip(host)
    if ip is not None:
        return _ip_reason(ip)
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES) or "." not in host:
        return "an internal name"
    return None
