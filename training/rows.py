"""Hand-written statements for the two hot paths: creating a run (the API) and moving one (the
worker). Each runs on Django's connection, in its transaction, with its error wrapping and its
query log, but through a server-binding psycopg cursor as a prepared statement: planning these
statements (a table with many indexes and foreign keys) cost PostgreSQL more than executing them,
and Django's own cursors quote every parameter into the SQL text on the client
(bench/submit_api.py, bench/worker_throughput.py). Elsewhere the ORM is the rule.

DATABASE_PREPARED_STATEMENTS=false (settings) turns preparing off, for a transaction-pooling proxy
that cannot keep prepared statements; the statements stay the same."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import psycopg
from django.contrib.auth import get_user_model
from django.db import connection

from training.models import ACTIVE_STATUSES, RunEvent, RunStatus, TrainingRun


@contextmanager
def _logged(sql: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - began:.3f}"})


def fetch_one(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """One statement, prepared (a no-op when the setting is off); its first row."""
    connection.ensure_connection()
    with (
        _logged(sql),
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
    ):
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def _unbounded(db_type: str) -> str:
    # An explicit cast to varchar(n) cuts a longer value silently; the column's own assignment
    # cast refuses it, as an ORM insert would.
    return re.sub(r"^varchar\(\d+\)$", "varchar", db_type)


@cache
def _insert_sql(vendor: str) -> tuple[str, str]:
    # Built once per process (the model's columns and their types do not change under it).
    q = connection.ops.quote_name
    run_meta, event_meta = TrainingRun._meta, RunEvent._meta
    user_meta = get_user_model()._meta
    fields: list[Any] = list(run_meta.concrete_fields)
    # Each value is cast to its column's type: in INSERT … SELECT an untyped parameter would
    # otherwise be read as text. (Casts to the unbounded type: a value too long for its column
    # is refused, never cut.)
    values = ", ".join(f"%s::{_unbounded(f.cast_db_type(connection))}" for f in fields)
    columns = ", ".join(q(f.column) for f in fields)
    event_columns = ", ".join(
        q(c)
        for c in ("run_id", "created_at", "kind", "from_status", "to_status", "message", "data")
    )
    # Only model metadata (table and column names, quoted; column types) is interpolated.
    return (
        f"WITH mine AS (SELECT COUNT(*) AS active FROM (SELECT 1 FROM {q(run_meta.db_table)} "  # noqa: S608
        f"WHERE {q('owner_id')} = %s AND {q('status')} = ANY(%s) LIMIT %s) AS capped), "
        f"created AS (INSERT INTO {q(run_meta.db_table)} ({columns}) "
        f"SELECT {values} FROM mine WHERE active < %s RETURNING {q('id')}), "
        f"logged AS (INSERT INTO {q(event_meta.db_table)} ({event_columns}) "
        f"SELECT {q('id')}, %s, %s, %s, %s, %s, %s FROM created) "
        f"SELECT (SELECT active FROM mine), (SELECT COUNT(*) FROM created)"
    ), (
        f"SELECT 1 FROM {q(user_meta.db_table)} "  # noqa: S608
        f"WHERE {q(user_meta.pk.column)} = %s FOR UPDATE"
    )


def run_insert_within_cap(run: TrainingRun, *, cap: int) -> bool:
    """Insert `run` (a new, unsaved instance) and its `created` event unless its owner already
    has `cap` runs pending or training; False, and nothing written, when they have.

    The cap is enforced in the database: the owner's row is locked first, so two creates by one
    user are counted one after the other, and the count runs in the next statement, whose
    snapshot is taken after the lock is held (in one statement it would be taken before, and
    miss a run committed while we waited). Must run inside a transaction (the lock lasts until
    it ends). The count stops at `cap`: its cost never grows with a user's runs."""
    assert connection.in_atomic_block, "run_insert_within_cap needs a transaction"
    active_statuses = sorted(ACTIVE_STATUSES)
    if connection.vendor != "postgresql":
        get_user_model().objects.select_for_update().filter(pk=run.owner_id).values_list(
            "pk"
        ).first()
        mine = TrainingRun.objects.filter(owner_id=run.owner_id, status__in=active_statuses)
        if mine[:cap].count() >= cap:
            return False
        run.save(force_insert=True)
        RunEvent.objects.create(run=run, kind=RunEvent.Kind.CREATED, to_status=RunStatus.PENDING)
        return True
    insert_sql, lock_sql = _insert_sql(connection.vendor)
    fields: list[Any] = list(TrainingRun._meta.concrete_fields)
    # What Model.save would write: pre_save fills created_at/updated_at on the instance.
    values = [f.get_db_prep_save(f.pre_save(run, add=True), connection) for f in fields]
    data_field: Any = RunEvent._meta.get_field("data")
    params = [
        run.owner_id, active_statuses, cap,  # mine
        *values, cap,  # created
        run.created_at, RunEvent.Kind.CREATED.value, "", RunStatus.PENDING.value, "",  # logged
        data_field.get_db_prep_save({}, connection),
    ]  # fmt: skip
    connection.ensure_connection()
    raw = connection.connection
    # Both statements leave in one round trip (with the transaction's BEGIN); the server still
    # runs them one after the other.
    with (
        _logged(f"{lock_sql}; {insert_sql}"),
        connection.wrap_database_errors,
        raw.pipeline(),
        psycopg.Cursor(raw) as lock,
        psycopg.Cursor(raw) as insert,
    ):
        lock.execute(lock_sql, [run.owner_id], prepare=True)
        insert.execute(insert_sql, params, prepare=True)
        row = insert.fetchone()  # waits for both
    assert row is not None
    if not row[1]:
        return False
    run._state.adding = False
    run._state.db = connection.alias
    return True
