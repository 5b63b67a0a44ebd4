"""Runs every benchmark (`make bench`); `--quick` runs each with a small N, as CI does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["worker_throughput.py", "submit_api.py", "dashboard_scale.py"]


def main() -> int:
    extra = sys.argv[1:]
    failed = []
    for name in BENCHES:
        if not (HERE / name).exists():
            continue
        print(f"\n=== {name} {' '.join(extra)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / name), *extra], cwd=HERE.parent).returncode:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that failed or missed their target: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
