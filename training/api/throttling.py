"""DRF's scoped throttle, counted atomically in Redis.

Same scopes, rates, keys and sliding window as `ScopedRateThrottle`, but DRF reads a list of
timestamps from the cache and writes it back: two requests of one user arriving together (two web
processes, or threads) both read the old list and both pass, so a burst can exceed the rate
(tests/training/api/test_limits.py). Here one Lua script drops the old entries, counts, and
records the request only if it is allowed, in one round trip nothing can interleave with. It runs
on the connection django-redis hands out (`get_redis_connection`, its public API), so it shares
the cache's pool and settings. Without a Redis cache DRF's own way is used; with Redis away,
requests pass, as the cache's reads do (DJANGO_REDIS_IGNORE_EXCEPTIONS). docs/decisions.md."""

from __future__ import annotations

import logging
import math
import time
import uuid
from typing import Any

from django.core.cache import caches
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle
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

_registered: list[tuple[Any, Any]] = []  # (client, its registered script): one per process


def _script() -> Any | None:
    if not isinstance(caches["default"], RedisCache):
        return None
    client = get_redis_connection("default")
    for known, script in _registered:
        if known is client:
            return script
    script = client.register_script(SLIDING_WINDOW)
    _registered[:] = [(client, script)]
    return script


class AtomicScopedRateThrottle(ScopedRateThrottle):
    retry_in: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        script = _script()
        if script is None:
            return super().allow_request(request, view)
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            allowed, retry_in = script(
                keys=[caches["default"].make_key(self.key)],
                args=[time.time(), self.duration, self.num_requests, uuid.uuid4().hex],
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("throttle %s skipped, Redis unavailable: %s", self.scope, exc)
            return True
        if int(allowed):
            return True
        self.retry_in = float(retry_in)
        return False

    def wait(self) -> float | None:
        if self.retry_in is None:
            return super().wait()
        return float(max(1, math.ceil(self.retry_in)))
