"""Where a submission's time goes: N runs submitted one after another in this process
(`lifecycle.run_submit`, as `submit_run_task` calls it) next to N bare POSTs of the same bodies
(the worker benchmark's baseline task), against the emulator over loopback HTTP.

Prints, per submission: wall time, this process's CPU, the whole machine's CPU, time waiting on PostgreSQL (every
statement timed through Django's documented `connection.execute_wrapper`), statements, and the
heaviest functions by CPU (cProfile on `time.process_time`). bench/RESULTS.md quotes it.

    python bench/profile_worker.py [--runs N] [--top K]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    PY,
    ROOT,
    free_port,
    pending_runs,
    submission_env,
    wait_port,
)

DB = "training_bench_profile"


class StatementClock:
    """Django's documented hook around every statement: how many, and the time spent in them."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.kinds: Counter[str] = Counter()

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - began
            self.kinds[sql.split(None, 1)[0].upper()] += 1


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (every process: this one, PostgreSQL, the emulator,
    and whatever else runs; read on a quiet machine), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    n = args.runs

    port = free_port()
    env = submission_env(DB, port)
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from training import lifecycle
    from training.models import TrainingRun
    from training.orchestrator.client import get_client

    owner = User.objects.create_user("bench")
    emulator = subprocess.Popen(
        [PY, "manage.py", "run_orchestrator_emulator", "--port", str(port)], cwd=ROOT, env=env
    )
    wait_port(port)

    def fresh_runs() -> list[TrainingRun]:
        return pending_runs(owner, n)  # type: ignore[return-value]

    def measure(label: str, calls: list[Callable[[], Any]]) -> tuple[dict[str, float], str]:
        clock = StatementClock()
        profile = cProfile.Profile(time.process_time)
        calls[0]()  # connections and imports warm before the clock starts
        # The first half is timed without the profiler (its overhead grows with the number of
        # Python calls, so it would inflate the ORM's share); the second half is profiled.
        half = len(calls) // 2
        wall0, cpu0, busy0 = time.perf_counter(), time.process_time(), machine_busy_seconds()
        with connection.execute_wrapper(clock):
            for call in calls[1:half]:
                call()
        count = half - 1
        numbers = {
            "wall_ms": (time.perf_counter() - wall0) * 1000 / count,
            "cpu_ms": (time.process_time() - cpu0) * 1000 / count,
            "machine_cpu_ms": (machine_busy_seconds() - busy0) * 1000 / count,
            "db_ms": clock.seconds * 1000 / count,
            "statements": sum(clock.kinds.values()) / count,
        }
        profile.enable()
        for call in calls[half:]:
            call()
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        kinds = ", ".join(f"{k} {v / count:.1f}" for k, v in sorted(clock.kinds.items()))
        print(f"\n### {label}: {numbers} ({kinds})\n{out.getvalue()}")
        return numbers, kinds

    try:
        client = get_client()
        bodies = [run.payload for run in fresh_runs()]
        base, _ = measure("bare POST", [lambda b=b: client.submit(b) for b in bodies])
        ids = [str(run.pk) for run in fresh_runs()]
        sub, kinds = measure(
            "run_submit", [lambda i=i: lifecycle.run_submit(run_id=i) for i in ids]
        )
    finally:
        emulator.terminate()
        emulator.wait(20)
    print("\n| per submission | bare POST | `run_submit` |\n|---|---|---|")
    for key in ("wall_ms", "cpu_ms", "machine_cpu_ms", "db_ms", "statements"):
        print(f"| {key} | {base[key]:.2f} | {sub[key]:.2f} |")
    print(f"\nstatements of a submission: {kinds}")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
