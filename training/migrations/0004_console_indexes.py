# Written by hand (makemigrations cannot see indexes that training/models.py does not declare).

from django.db import migrations, models

# Indexes on the runs and events tables for the console's reads (docs/console.md, bench/RESULTS.md).
# Database-only: training/models.py is not changed, so Django's model state does not list them and
# makemigrations stays quiet. To move them into TrainingRun.Meta.indexes later, declare them there
# with a migration that repeats these AddIndex operations as state_operations only.
INDEXES = [
    # admin changelist order (-created_at, -pk: keyset-friendly) and the rollup's "created" days
    ("trainingrun", models.Index(fields=["created_at", "id"], name="run_created_id")),
    # the rollup's change detection
    ("trainingrun", models.Index(fields=["updated_at"], name="run_updated")),
    # the rollup's "completed" days
    ("trainingrun", models.Index(fields=["completed_at"], name="run_completed")),
    # selectors.engine_success_rate (the rollout guard): an index-only COUNT(id); without the
    # trailing id PostgreSQL reads the heap and takes 10x longer at a million runs
    ("trainingrun", models.Index(fields=["engine", "status", "completed_at", "id"], name="run_engine_status_done")),
    # callbacks and submit errors per day for /metrics
    ("runevent", models.Index(fields=["kind", "created_at"], name="event_kind_created")),
]


class AddIndexOnline(migrations.AddIndex):
    """CREATE INDEX CONCURRENTLY, so a million-row table keeps taking writes while the index builds."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    atomic = False  # CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("training", "0003_console_rollups"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[AddIndexOnline(model, index) for model, index in INDEXES],
            state_operations=[],
        ),
    ]
