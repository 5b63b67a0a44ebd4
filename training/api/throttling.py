"""DRF's scoped throttle, counted atomically in Redis.

Same scopes, rates, keys and sliding window as `ScopedRateThrottle`, but DRF reads a list of
timestamps from the cache and writes it back: two round trips, and two requests of one user
arriving together (two web processes) both read the old list and both pass, so a burst can exceed
the rate. Here one Lua script drops the old entries, counts, and records the request only if it
is allowed, in one round trip that nothing can interleave with. Without Redis (the embedded
defaults' file cache) DRF's own way is used; with Redis away, requests pass, as reads of the
degraded cache do (config/cache.py)."""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError as REDIS_DOWN
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle
from rest_framework.views import APIView

log = logging.getLogger(__name__)

# KEYS[1] the window's sorted set; ARGV: now, window (s), limit, a unique member.
# Returns {1, 0} when allowed (and recorded), {0, seconds until the oldest entry leaves} when not.
SLIDING_WINDOW = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window * 1000))
  return {1, '0'}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, tostring(tonumber(oldest[2]) + window - now)}
"""

_scripts: dict[int, Any] = {}


def _script() -> Any | None:
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    django_client: Any = backend._cache  # type: ignore[attr-defined]  # private, not in the stubs
    client = django_client.get_client(None, write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(SLIDING_WINDOW)
    return script


class AtomicScopedRateThrottle(ScopedRateThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        script = _script()
        if script is None:
            return SimpleRateThrottle.allow_request(self, request, view)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.retry_in: float | None = None
        try:
            allowed, retry_in = script(
                keys=[caches["default"].make_key(self.key)],
                args=[time.time(), self.duration, self.num_requests, uuid.uuid4().hex],
            )
        except REDIS_DOWN as exc:
            log.warning("throttle %s skipped, Redis unavailable: %s", self.scope, exc)
            return True
        if int(allowed):
            return True
        self.retry_in = float(retry_in)
        return False

    def wait(self) -> float | None:
        retry_in = getattr(self, "retry_in", None)
        if retry_in is None:
            return super().wait()
        return float(max(1, math.ceil(retry_in)))
