"""The hand-written statements of the two hot paths (training/rows.py): creating a run within the
cap, and moving one. They must behave exactly as the ORM code they replace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.conftest import make_user
from training.api.serializers import RunInputSerializer
from training.lifecycle import INCREMENT, transition, transition_row
from training.models import RunEvent, TrainingRun
from training.rows import run_insert_within_cap

pytestmark = pytest.mark.django_db


def new_run(owner: User, **fields: object) -> TrainingRun:
    values: dict[str, object] = {
        "owner": owner, "base_model": "sdxl", "engine": "kohya", "lora_name": "rows",
        "image_count": 12, "training_data_url": "https://data.example.com/set.zip",
        "params": {"maxTrainEpochs": 5}, "sample_prompts": ["a cat"],
    }  # fmt: skip
    values.update(fields)
    return TrainingRun(**values)


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def without_prepared_statements() -> Iterator[None]:
    # What DATABASE_PREPARED_STATEMENTS=false sets on the connection (config/settings.py).
    connection.ensure_connection()
    raw = connection.connection
    before = raw.prepare_threshold
    raw.prepare_threshold = None
    yield
    raw.prepare_threshold = before


def test_a_created_run_is_stored_as_the_orm_would_store_it(owner: User) -> None:
    run = new_run(owner, estimated_cost=42, negative_prompt="blurry")
    with transaction.atomic():
        assert run_insert_within_cap(run, cap=5)
    stored = TrainingRun.objects.get(pk=run.pk)
    assert run._state.adding is False
    assert (stored.status, stored.params, stored.sample_prompts, stored.estimated_cost) == (
        "pending", {"maxTrainEpochs": 5}, ["a cat"], 42,
    )  # fmt: skip
    assert stored.negative_prompt == "blurry" and stored.created_at == run.created_at
    assert stored.charged_cost is None and stored.retried_from_id is None
    event = RunEvent.objects.get(run=stored)
    assert (event.kind, event.to_status, event.created_at) == ("created", "pending", run.created_at)


def test_it_refuses_the_run_past_the_cap_and_writes_nothing(owner: User) -> None:
    for _ in range(3):
        with transaction.atomic():
            assert run_insert_within_cap(new_run(owner), cap=3)
    with transaction.atomic():
        assert not run_insert_within_cap(new_run(owner), cap=3)
    assert TrainingRun.objects.filter(owner=owner).count() == 3
    assert RunEvent.objects.filter(run__owner=owner).count() == 3


def test_finished_runs_and_other_users_runs_do_not_count(owner: User, other_user: User) -> None:
    TrainingRun.objects.bulk_create([new_run(owner, status="succeeded") for _ in range(4)])
    TrainingRun.objects.bulk_create([new_run(other_user) for _ in range(4)])
    with transaction.atomic():
        assert run_insert_within_cap(new_run(owner), cap=1)


def test_a_value_too_long_for_its_column_is_refused_not_cut(owner: User) -> None:
    from django.db import DataError

    with pytest.raises(DataError), transaction.atomic():
        run_insert_within_cap(new_run(owner, lora_name="x" * 101), cap=5)
    assert not TrainingRun.objects.filter(owner=owner).exists()


def test_the_create_statements_are_logged_like_any_query(owner: User) -> None:
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        run_insert_within_cap(new_run(owner), cap=5)
    assert any("FOR UPDATE" in q["sql"] and "INSERT INTO" in q["sql"] for q in captured)


def test_transitions_are_prepared_once_and_reused(owner: User) -> None:
    runs = TrainingRun.objects.bulk_create([new_run(owner) for _ in range(3)])
    for run in runs:
        moved = transition_row(
            run.pk, expected="pending", to="submitting", submit_attempts=INCREMENT
        )
        assert moved is not None and moved.submit_attempts == 1 and moved.status == "submitting"
    claims = [s for s in prepared_statements() if '"submit_attempts" + 1' in s]
    assert len(claims) == 1


def test_transitions_work_the_same_without_prepared_statements(
    owner: User, without_prepared_statements: None
) -> None:
    run = TrainingRun.objects.create(owner=owner, **_plain())
    moved = transition_row(run.pk, expected="pending", to="submitting", submit_attempts=INCREMENT)
    assert moved is not None and moved.params == {"maxTrainEpochs": 5}
    assert transition(run.pk, expected="submitting", to="submitted", workflow_id="wf-1")
    assert not transition(run.pk, expected="submitting", to="failed")
    assert TrainingRun.objects.get(pk=run.pk).workflow_id == "wf-1"
    assert prepared_statements() == []


def _plain() -> dict[str, object]:
    return {
        "base_model": "sdxl", "engine": "kohya", "lora_name": "rows", "image_count": 12,
        "training_data_url": "https://data.example.com/set.zip", "params": {"maxTrainEpochs": 5},
    }  # fmt: skip


def test_each_validation_gets_fields_of_its_own(db: None) -> None:
    make_user("olivia")
    first = RunInputSerializer(data={"baseModel": "nope"})
    second = RunInputSerializer(data={"baseModel": "sdxl"})
    assert not first.is_valid()
    assert first.fields["baseModel"] is not second.fields["baseModel"]
    nested = second.fields["trainingData"]
    assert nested is not first.fields["trainingData"] and nested.parent is second
    assert nested.fields["url"].parent is nested
    prompts = second.fields["samplePrompts"]
    assert prompts.child is not first.fields["samplePrompts"].child
    assert prompts.child.parent is prompts
