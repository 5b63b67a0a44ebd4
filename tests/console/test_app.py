"""The console as its own app: its models moved out of `training` without moving any data."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

pytestmark = pytest.mark.django_db


def test_every_model_change_has_its_migration() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_the_console_models_kept_their_tables() -> None:
    tables = set(connection.introspection.table_names())
    for model in apps.get_app_config("console").get_models():
        assert model._meta.db_table.startswith("training_"), model
        assert model._meta.db_table in tables, model


def test_moving_the_models_touched_only_the_migration_state() -> None:
    # State-only on both sides: an existing database keeps its rows, a fresh one gets the tables
    # from training/0003 as before.
    loader = MigrationLoader(connection)
    for key in (("training", "0006_console_models_moved"), ("console", "0001_initial")):
        (operation,) = loader.disk_migrations[key].operations
        assert type(operation).__name__ == "SeparateDatabaseAndState"
        assert operation.database_operations == []
