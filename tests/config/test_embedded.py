"""The embedded PostgreSQL and Redis a checkout starts when DATABASE_URL / REDIS_URL are unset
(config/embedded.py), and the settings around them. Real servers from the wheels, in temporary
directories of their own: nothing here touches the servers the tests run on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from config import embedded

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="embedded-test-"))
    yield base
    embedded.stop_postgres(base / "pg")
    embedded.stop_redis(base / "redis")
    shutil.rmtree(base, ignore_errors=True)


def servers_for(path: Path) -> list[psutil.Process]:
    """Server processes (postgres postmasters, redis-servers) whose command line names `path`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        is_server = "redis-server" in cmdline or "/bin/postgres" in cmdline
        if is_server and str(path) in cmdline:
            parent_cmdline = " ".join(psutil.Process(proc.info["ppid"]).cmdline())
            if str(path) not in parent_cmdline:  # postgres's own children name it too
                found.append(proc)
    return found


def start_together(call: str, count: int) -> list[str]:
    """`count` processes that run `call` at the same moment; what each printed."""
    script = f"import sys\nfrom pathlib import Path\nfrom config import embedded\nprint({call})"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * count
    return outputs


def test_processes_starting_redis_at_once_share_one_server(scratch: Path) -> None:
    urls = start_together(f"embedded.redis_url(Path({str(scratch / 'redis')!r}))", 4)
    assert len(set(urls)) == 1 and urls[0].startswith("unix://")
    assert len(servers_for(scratch / "redis")) == 1
    client = redis.Redis.from_url(urls[0])
    assert client.ping()


@pytest.mark.slow
def test_processes_starting_postgres_at_once_share_one_server(scratch: Path) -> None:
    urls = start_together(f"embedded.postgres_url(Path({str(scratch / 'pg')!r}))", 3)
    assert len(set(urls)) == 1
    assert len(servers_for(scratch / "pg")) == 1
    import psycopg

    with psycopg.connect(urls[0]) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row == ("training",)


def test_a_stopped_redis_is_started_again_on_next_use_and_no_port_is_taken(scratch: Path) -> None:
    url = embedded.redis_url(scratch / "redis")
    assert embedded.stop_redis(scratch / "redis")
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    assert embedded.redis_url(scratch / "redis") == url
    assert redis.Redis.from_url(url).ping()
    (server,) = servers_for(scratch / "redis")
    assert [c for c in server.net_connections(kind="inet") if c.status == "LISTEN"] == []


def test_celery_reads_the_embedded_redis_socket_in_its_own_spelling() -> None:
    assert (
        embedded.celery_broker_url("unix:///x/var/redis/redis.sock?db=0")
        == "redis+socket:///x/var/redis/redis.sock?virtual_host=0"
    )
    assert embedded.celery_broker_url("redis://cache:6379/2") == "redis://cache:6379/2"


def test_production_settings_refuse_to_start_embedded_servers() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="example.com")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DATABASE_URL must be set when DEBUG is false" in result.stderr


# Browser tests need neither; they take seconds to import.
NO_SLOW_PLUGINS = ["-p", "no:hypothesispytest", "-p", "no:schemathesis"]


def run_browser_tests(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e", "-q", *NO_SLOW_PLUGINS],
        cwd=ROOT, env={**os.environ, "E2E_CHROMIUM": "/nonexistent/chromium", **env},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_without_chromium_browser_tests_are_skipped_with_one_line_saying_how_to_enable_them() -> (
    None
):
    result = run_browser_tests(CI="")
    assert result.returncode == 0, result.stdout
    assert "skipped" in result.stdout and " passed" not in result.stdout
    hints = [line for line in result.stdout.splitlines() if "playwright install chromium" in line]
    assert len(hints) == 1


def test_in_ci_a_skipped_browser_test_fails_the_run() -> None:
    result = run_browser_tests(CI="true")
    assert result.returncode == 1, result.stdout
    assert "browser test(s) skipped: that fails the run" in result.stdout
