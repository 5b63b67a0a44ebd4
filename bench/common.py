"""Shared pieces of the benchmarks: a private database, environment, result sections."""

from __future__ import annotations

import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
PY = sys.executable
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
# Benchmarks run side by side on a shared server keep to databases of their own.
DB_SUFFIX = os.environ.get("BENCH_DB_SUFFIX", "")


def bench_env(db: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{db}{DB_SUFFIX}",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "DEBUG": "false",
        # The production settings plus the baseline endpoint and the emulator (bench/settings.py).
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "ORCHESTRATOR_TOKEN": "emulator-token",
        "TRAINING_MAX_ACTIVE_RUNS": "100000000",
        "THROTTLE_RUN_CREATE": "100000000/min",
        "THROTTLE_RUN_ESTIMATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    return env


def recreate_database(db: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}{DB_SUFFIX}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}{DB_SUFFIX}"')


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"manage.py {args[0]} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_section(name: str, text: str) -> None:
    """Replace this benchmark's section of bench/RESULTS.md (other sections stay)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    body = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{start}\n{text.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    body = (
        pattern.sub(lambda _: block, body)
        if pattern.search(body)
        else body.rstrip() + "\n\n" + block
    )
    RESULTS.write_text(body.rstrip() + "\n")


def submission_env(db: str, port: int) -> dict[str, str]:
    """A fresh, migrated database for the worker benchmarks, and the environment of their
    processes: the emulator on `port`, its workflows kept queued and its callbacks dropped, so
    only submission is measured."""
    recreate_database(db)
    env = bench_env(
        db,
        REDIS_URL=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11"),
        ORCHESTRATOR_URL=f"http://127.0.0.1:{port}",
        EMULATOR_DROP_CALLBACKS="true",
        EMULATOR_QUEUE_SECONDS="100000",
    )
    manage(env, "migrate", "--noinput")
    return env


def pending_runs(owner: object, n: int) -> list[object]:
    """N pending SDXL runs of `owner`, each with its body stored as a create stores it
    (training/services.py): what the worker benchmarks submit. Call after django.setup()."""
    from training.models import TrainingRun
    from training.payloads import workflow_body

    runs = [
        TrainingRun(
            owner=owner, base_model="sdxl", engine="kohya", lora_name="bench", image_count=24,
            training_data_url="https://data.example.com/set.zip",
            params={"maxTrainEpochs": 10, "numRepeats": 9, "trainBatchSize": 4, "resolution": 1024},
        )
        for _ in range(n)
    ]  # fmt: skip
    for run in runs:
        run.payload = workflow_body(run, run_id=run.pk)
    return list(TrainingRun.objects.bulk_create(runs))
