"""Worker benchmark: N pending runs, K Celery worker processes, time until all are `submitted`
against the emulator, next to a baseline of the same K workers running tasks that only make the
same HTTP POST. Reports runs/s and the ratio (target >= 0.6) in bench/RESULTS.md.

    python bench/worker_throughput.py [--quick] [--runs N] [--workers K]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    PY,
    ROOT,
    free_port,
    median,
    pending_runs,
    submission_env,
    wait_port,
    write_section,
)

DB = "training_bench_worker"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=0)
    args = parser.parse_args()
    n = args.runs or (60 if args.quick else 400)
    k = args.workers or (2 if args.quick else 4)
    rounds = args.rounds or (1 if args.quick else 3)

    port = free_port()
    env = submission_env(DB, port)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.contrib.auth.models import User

    from config.celery import app
    from training.models import TrainingRun
    from training.tasks import bench_post_workflow_task, submit_run_task

    owner = User.objects.create_user("bench")
    emulator = subprocess.Popen(
        [PY, "manage.py", "run_orchestrator_emulator", "--port", str(port)], cwd=ROOT, env=env
    )
    wait_port(port)
    stats_url = f"http://127.0.0.1:{port}/_emulator/stats"
    auth = {"Authorization": "Bearer emulator-token"}

    def submissions() -> int:
        return int(requests.get(stats_url, headers=auth, timeout=10).json()["submissions"])

    def fresh_runs() -> list[TrainingRun]:
        return pending_runs(owner, n)  # type: ignore[return-value]

    def timed(label: str, enqueue: list[tuple[object, object]], done: object) -> float:
        worker = subprocess.Popen(
            [PY, "-m", "celery", "-A", "config", "worker", f"--concurrency={k}",
             "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            app.control.purge()
            time.sleep(3)  # the worker's processes are up before the clock starts
            began = time.perf_counter()
            for task, arg in enqueue:
                task.delay(arg)  # type: ignore[attr-defined]
            while not done():  # type: ignore[operator]
                if time.perf_counter() - began > 600:
                    raise SystemExit(f"{label}: not done within 600 s")
                time.sleep(0.05)
            return n / (time.perf_counter() - began)
        finally:
            worker.terminate()
            worker.wait(30)

    rates: dict[str, list[float]] = {"baseline": [], "submit": []}
    try:
        for _ in range(rounds):
            runs = fresh_runs()
            start = submissions()
            bodies = [(bench_post_workflow_task, r.payload) for r in runs]
            rates["baseline"].append(
                timed("baseline", bodies, lambda s=start: submissions() - s >= n)
            )
            runs = fresh_runs()
            ids = [str(r.pk) for r in runs]
            assert not TrainingRun.objects.filter(status="submitted").exists()
            rates["submit"].append(
                timed(
                    "submit",
                    [(submit_run_task, i) for i in ids],
                    # Only this round's runs can be submitted (the baseline's stay pending), so
                    # the check is one small index count, as cheap as the baseline's stats call.
                    lambda: TrainingRun.objects.filter(status="submitted").count() >= n,
                )
            )
            TrainingRun.objects.all().delete()
    finally:
        emulator.terminate()
        emulator.wait(20)

    base, measured = median(rates["baseline"]), median(rates["submit"])
    ratio = measured / base
    text = f"""
## Worker: submitting runs vs a bare HTTP POST (`bench/worker_throughput.py{" --quick" if args.quick else ""}`)

{n} pending runs, {k} Celery worker processes (prefork, Redis broker), the emulator on loopback;
{rounds} interleaved round(s) (measured {time.strftime("%Y-%m-%d")}, shared 2-core machine).
The baseline tasks POST the same workflow body and nothing else; the measured tasks claim the run
(compare-and-set + event), POST its stored body, and record the workflow (compare-and-set + event).

| tasks | runs/s (median) | rounds |
|---|---|---|
| baseline: POST only | {base:.1f} | {", ".join(f"{r:.1f}" for r in rates["baseline"])} |
| `submit_run_task` | {measured:.1f} | {", ".join(f"{r:.1f}" for r in rates["submit"])} |
| **ratio** | **{ratio:.2f}** (target ≥ 0.6) | |
"""
    print(text)
    if not args.quick:  # quick runs (CI) only prove the benchmark still works
        write_section("worker_throughput", text)
    return 0 if ratio >= 0.6 or args.quick else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
