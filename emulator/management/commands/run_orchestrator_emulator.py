"""python manage.py run_orchestrator_emulator --port 8765 [--host 127.0.0.1]"""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from types import FrameType

from django.core.management.base import BaseCommand, CommandError

from emulator.config import ConfigError, EmulatorConfig
from emulator.server import EmulatorServer

DEFAULT_PORT = 8765  # settings.ORCHESTRATOR_URL's default


class Command(BaseCommand):
    help = (
        "Run the local orchestrator emulator (docs/emulator.md); EMULATOR_* variables configure it."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")

    def handle(self, *args: object, **options: object) -> None:
        host = str(options["host"])
        port = options["port"]
        assert isinstance(port, int)
        try:
            config = EmulatorConfig.from_env()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        server = EmulatorServer(host, port, config)
        try:
            server.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        self.stdout.write(f"Orchestrator emulator ({config.contract}) listening on {server.url}")
        self.stdout.flush()
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
            self.stdout.write("Orchestrator emulator stopped.")
