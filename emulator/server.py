"""A local Civitai orchestrator: the beta12 HTTP API over the standard library's threaded server.

    srv = EmulatorServer("127.0.0.1", port=0, config=EmulatorConfig(queue_seconds=0.1))
    srv.start(); srv.url; ...; srv.stop()

docs/emulator.md describes the endpoints, the simulated lifecycle, the cost model and the faults.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from emulator.app import App, Reply, problem
from emulator.config import EmulatorConfig

log = logging.getLogger("emulator")

MAX_BODY_BYTES = 10 * 1024 * 1024
# A server bound to every interface is still reached (and links to its blobs) through loopback.
_WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hanging request must not keep the process alive

    def __init__(self, host: str, port: int, emulator: EmulatorServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.emulator = emulator
        super().__init__((host, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a client's connection pool expects
    server_version = "OrchestratorEmulator/1.0"
    timeout = 120  # seconds an idle keep-alive connection may hold a thread
    wbufsize = -1  # buffered: headers and body leave in one segment (no Nagle/delayed-ACK stall)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(part) for part in url.path.split("/") if part]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(problem(413, "The request body is too large or its length is invalid."))
            return
        body = self.rfile.read(length) if length else b""
        query = parse_qs(url.query, keep_blank_values=True)
        authorization = self.headers.get("Authorization") or ""
        try:
            reply = self.server.emulator.app.handle(method, parts, query, body, authorization)
        except Exception:
            log.exception("%s %s failed", method, self.path)
            reply = problem(500, "The emulator failed; see its log.")
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.status != 204:
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (a timeout fault, usually); nothing to tell it
            self.close_connection = True


class EmulatorServer:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, config: EmulatorConfig | None = None
    ) -> None:
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self.app = App(config or EmulatorConfig.from_env(), self.public_url, self._stopping)
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def config(self) -> EmulatorConfig:
        return self.app.config

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the emulator is not started")
        host = _WILDCARD_TO_LOOPBACK.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def update_faults(self, **changes: object) -> EmulatorConfig:
        """What POST /_emulator/faults does, for in-process callers (snake_case names)."""
        return self.app.update_faults(changes)

    def stats(self) -> dict[str, object]:
        return self.app.stats()

    def reset(self) -> None:
        self.app.reset()

    def public_url(self) -> str:
        """Where blob URLs point: EMULATOR_PUBLIC_URL, or the server itself."""
        return self.app.config.public_url or self.url

    def start(self) -> None:
        self._stopping.clear()
        self._httpd = _HTTPServer(self.host, self.port, self)
        self.port = self._httpd.server_address[1]
        self._threads = [
            threading.Thread(target=self._serve, name="emulator-http", daemon=True),
            threading.Thread(target=self._tick, name="emulator-lifecycle", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("orchestrator emulator (%s) on %s", self.app.contract.name, self.url)

    def _serve(self) -> None:
        assert self._httpd is not None
        self._httpd.serve_forever(poll_interval=0.1)

    def _tick(self) -> None:
        while not self._stopping.wait(self.app.config.tick_seconds):
            try:
                self.app.tick(time.monotonic())
            except Exception:  # one bad tick must not end the simulation
                log.exception("lifecycle tick failed")

    def _track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self.app.wake_waiters()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:  # idle keep-alive and hanging requests end now
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
