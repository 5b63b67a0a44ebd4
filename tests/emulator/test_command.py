"""`manage.py run_orchestrator_emulator` starts the same server, configured by EMULATOR_* variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_the_management_command_serves_until_it_is_terminated() -> None:
    env = {**os.environ, "EMULATOR_TOKEN": "cmd-token", "EMULATOR_FAIL_STATUS": "502"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_orchestrator_emulator", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in banner, banner
        url = banner.rsplit(" ", 1)[-1].strip()

        faults = requests.get(
            f"{url}/_emulator/faults", headers={"Authorization": "Bearer cmd-token"}, timeout=5
        )

        assert faults.status_code == 200
        assert faults.json()["fail_status"] == 502
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "stopped" in output
