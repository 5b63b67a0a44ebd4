"""A stage change made here is seen by another process (a web worker, a Celery worker) at once:
both read waffle's rows through the shared cache, and every change flushes it after commit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from waffle.models import Flag

from flags.services import rollout_promote, rollout_rollback
from tests.flags.helpers import AI, opt_in
from tests.harness import database_url

ROOT = Path(__file__).resolve().parents[2]

# Reads the gate for one user each time a line arrives on stdin.
READER = """
import sys
import django

django.setup()
from django.contrib.auth.models import User
from flags.gates import is_feature_active

user = User.objects.get(pk=int(sys.argv[1]))
print("ready", flush=True)
for _line in sys.stdin:
    print(is_feature_active(user, "aiToolkitTraining"), flush=True)
"""


class Reader:
    def __init__(self, user_id: int) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_FLAG_")}
        environ.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=database_url())
        self.process = subprocess.Popen(
            [sys.executable, "-c", READER, str(user_id)],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def gate(self) -> bool:
        assert self.process.stdin is not None
        self.process.stdin.write("?\n")
        self.process.stdin.flush()
        return {"True": True, "False": False}[self._line()]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_another_process_sees_a_promotion_and_a_rollback_at_once(
    gold_member: Any, moderator: Any
) -> None:
    opt_in(gold_member)
    reader = Reader(gold_member.pk)
    try:
        assert reader.gate() is False  # stage mods
        # The other process filled the shared cache; a stale entry is what could go wrong next.
        assert cache.get(Flag._cache_key(AI)) is not None

        rollout_promote(actor=moderator, key=AI, to_stage="paid", reason="cross-process test")
        assert reader.gate() is True

        rollout_rollback(actor=moderator, key=AI)
        assert reader.gate() is False
    finally:
        reader.close()
