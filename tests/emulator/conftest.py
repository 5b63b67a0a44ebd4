from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.emulator.helpers import TOKEN, Api, Receiver

# Fast timings: queued 0.1 s, then 0.2 s per epoch.
FAST = EmulatorConfig(
    token=TOKEN, queue_seconds=0.1, seconds_per_epoch=0.2, tick_seconds=0.02, callback_backoff=0.2
)


@pytest.fixture
def config() -> EmulatorConfig:
    return FAST


@pytest.fixture
def emulator(config: EmulatorConfig) -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", port=0, config=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(emulator: EmulatorServer) -> Api:
    return Api(emulator.url)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()
