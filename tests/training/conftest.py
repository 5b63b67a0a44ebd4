"""The worker stack the worker tests share: the orchestrator emulator in process, and a private
Redis, gunicorn and a Celery worker as subprocesses against the test database (tests/harness.py).
A module sets its own pace and settings by overriding `emulator_config` and `stack_env`; a test
that needs beat asks for `beat`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conftest import make_user
from tests.harness import Redis, Stack


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Epochs of 0.3 s, callbacks retried quickly: a run finishes in a few seconds."""
    return EmulatorConfig(queue_seconds=0.3, seconds_per_epoch=0.3, callback_backoff=0.1)


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Settings of the web, worker and beat processes beyond the harness's own."""
    return {}


@pytest.fixture
def emulator(emulator_config: EmulatorConfig) -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", 0, emulator_config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(emulator: EmulatorServer, stack_env: dict[str, str]) -> Iterator[Stack]:
    redis = Redis()
    redis.start()
    s = Stack(orchestrator_url=emulator.url, redis=redis, **stack_env)
    try:
        s.start_web()
        s.start_worker()
        yield s
    finally:
        s.stop()
        redis.stop()


@pytest.fixture
def beat(stack: Stack) -> Stack:
    """Celery beat beside the worker from the start: the reconciler and the webhook sweep."""
    stack.start_beat()
    return stack


@pytest.fixture
def owner_api(stack: Stack) -> requests.Session:
    """Olivia, signed in to the stack's web process the way API clients are (a token)."""
    make_user("olivia")
    return stack.session("olivia", "pw-olivia")
