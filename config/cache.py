"""A Redis cache that degrades to "miss" when Redis is away, instead of failing the request.

Flags, estimates and throttles read the cache on the create path; losing Redis must not turn
accepting a run into a 500 (DESIGN.md §5: accepted runs are committed first, enqueued later)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)  # what "Redis is away" looks like


class _ReusedClients(RedisCacheClient):
    # Django builds a new redis.Redis object around the pool on every operation (~0.4 ms each,
    # several per request); one per pool is enough, and thread-safe.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        base: Any = self  # private helpers of Django's client, absent from its stubs
        index = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = base._client(
                connection_pool=base._get_connection_pool(write)
            )
        return client


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusedClients

    def _safe(self, name: str, default: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(super(), name)(*args, **kwargs)
        except REDIS_DOWN as exc:
            log.warning("cache %s skipped, Redis unavailable: %s", name, exc)
            return default

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._safe("get", default, key, default, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        result: dict[Any, Any] = self._safe("get_many", {}, keys, version)
        return result

    def set(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> None:
        from django.core.cache.backends.base import DEFAULT_TIMEOUT

        self._safe(
            "set", None, key, value, DEFAULT_TIMEOUT if timeout is None else timeout, version
        )

    def add(self, key: Any, value: Any, timeout: Any = None, version: int | None = None) -> bool:
        from django.core.cache.backends.base import DEFAULT_TIMEOUT

        added: bool = self._safe(
            "add", False, key, value, DEFAULT_TIMEOUT if timeout is None else timeout, version
        )
        return added

    def set_many(self, data: Any, timeout: Any = None, version: int | None = None) -> list[Any]:
        from django.core.cache.backends.base import DEFAULT_TIMEOUT

        failed: list[Any] = self._safe(
            "set_many", [], data, DEFAULT_TIMEOUT if timeout is None else timeout, version
        )
        return failed

    def delete(self, key: Any, version: int | None = None) -> bool:
        deleted: bool = self._safe("delete", False, key, version)
        return deleted

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._safe("delete_many", None, keys, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        value: int = self._safe("incr", delta, key, delta, version)
        return value
