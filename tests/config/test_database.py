"""The database connection: server-side binding, so statements a worker repeats get prepared."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection

from tests.harness import ROOT
from training.models import TrainingRun


@pytest.mark.django_db
def test_a_statement_used_often_on_a_connection_is_prepared_by_postgresql() -> None:
    assert connection.features.uses_server_side_binding
    for _ in range(8):  # past psycopg's prepare_threshold (5)
        TrainingRun.objects.filter(status="pending").count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("training_trainingrun" in sql and "COUNT" in sql.upper() for sql in prepared)


def test_an_operator_behind_a_transaction_pooler_can_turn_binding_off() -> None:
    env = {**os.environ, "DATABASE_SERVER_SIDE_BINDING": "false"}
    probe = (
        "import django; django.setup(); from django.db import connection; "
        "print(connection.features.uses_server_side_binding)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
