"""The two hot writes, as a user of the service sees them: creating a run within the active-run
cap (training/services.py) and moving one (training/lifecycle.py). Both are plain ORM; the query
budgets keep them from growing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DataError, connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext, override_settings

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conftest import run_body
from training.lifecycle import run_submit, transition
from training.models import RunEvent, TrainingRun
from training.orchestrator import contracts
from training.orchestrator.callbacks import callback_url
from training.orchestrator.client import get_client
from training.payloads import workflow_body
from training.runspec import RunSpec, resolve_run
from training.services import ActiveRunLimit, training_run_create

pytestmark = pytest.mark.django_db


def spec_for(user: User, **overrides: Any) -> RunSpec:
    return resolve_run(user=user, data=run_body(**overrides))


def test_a_created_run_is_stored_with_its_event_and_the_body_it_will_send(owner: User) -> None:
    run = training_run_create(owner=owner, spec=spec_for(owner, negativePrompt="blurry"))
    stored = TrainingRun.objects.get(pk=run.pk)
    assert (stored.status, stored.lora_name, stored.negative_prompt) == (
        "pending", "my-style", "blurry",
    )  # fmt: skip
    assert stored.sample_prompts == ["a portrait in my style"] and stored.params == run.params
    assert stored.created_at == run.created_at and stored.charged_cost is None
    event = RunEvent.objects.get(run=stored)
    assert (event.kind, event.from_status, event.to_status) == ("created", "", "pending")
    # The stored body names this run (tags, callback) and is what the contract builds for it.
    assert stored.payload == contracts.active().build_workflow(
        stored, run_id=str(stored.pk), callback_url=callback_url(stored.pk)
    )
    assert str(stored.pk) in str(stored.payload)


@override_settings(TRAINING_MAX_ACTIVE_RUNS=3)
def test_it_refuses_a_run_past_the_cap_and_writes_nothing(owner: User) -> None:
    for _ in range(3):
        training_run_create(owner=owner, spec=spec_for(owner))
    with pytest.raises(ActiveRunLimit):
        training_run_create(owner=owner, spec=spec_for(owner))
    assert TrainingRun.objects.filter(owner=owner).count() == 3
    assert RunEvent.objects.filter(run__owner=owner).count() == 3


@override_settings(TRAINING_MAX_ACTIVE_RUNS=1)
def test_finished_runs_and_other_users_runs_do_not_count(owner: User, other_user: User) -> None:
    for user, status in ((owner, "succeeded"), (owner, "failed"), (other_user, "pending")):
        run = training_run_create(owner=user, spec=spec_for(user))
        TrainingRun.objects.filter(pk=run.pk).update(status=status)
    assert training_run_create(owner=owner, spec=spec_for(owner)).status == "pending"


def test_a_value_too_long_for_its_column_is_refused_not_cut(owner: User) -> None:
    spec = spec_for(owner)
    spec.lora_name = "x" * 101  # past the column's 100, as a caller skipping the serializer might
    with pytest.raises(DataError):
        training_run_create(owner=owner, spec=spec)
    assert not TrainingRun.objects.filter(owner=owner).exists()
    assert not RunEvent.objects.exists()


def test_a_create_costs_a_fixed_number_of_queries(owner: User) -> None:
    # Lock the owner, count their active runs (capped), insert the run and its event, inside
    # the create's transaction (a savepoint here, in the test's transaction).
    training_run_create(owner=owner, spec=spec_for(owner))  # warm: content types, flags
    spec = spec_for(owner)
    with CaptureQueriesContext(connection) as captured:
        training_run_create(owner=owner, spec=spec)
    assert len(captured) <= 6, [q["sql"] for q in captured]
    assert any("FOR UPDATE" in q["sql"] for q in captured)


def test_a_transition_is_one_update_and_one_event(owner: User) -> None:
    run = training_run_create(owner=owner, spec=spec_for(owner))
    with CaptureQueriesContext(connection) as captured:
        moved = transition(
            run.pk, expected="pending", to="submitting", submit_attempts=F("submit_attempts") + 1
        )
    assert moved
    assert len(captured) <= 2, [q["sql"] for q in captured]
    stored = TrainingRun.objects.get(pk=run.pk)
    assert (stored.status, stored.submit_attempts) == ("submitting", 1)


def test_a_transition_from_a_state_the_run_left_changes_nothing(owner: User) -> None:
    run = training_run_create(owner=owner, spec=spec_for(owner))
    assert transition(run.pk, expected="pending", to="submitting")
    assert transition(run.pk, expected="submitting", to="submitted", workflow_id="wf-1")
    with CaptureQueriesContext(connection) as captured:
        assert not transition(run.pk, expected="submitting", to="failed", error_code="late")
    assert len(captured) == 1  # the refused UPDATE, no event
    stored = TrainingRun.objects.get(pk=run.pk)
    assert (stored.status, stored.workflow_id, stored.error_code) == ("submitted", "wf-1", "")
    kinds = list(RunEvent.objects.filter(run=run).values_list("to_status", flat=True))
    assert kinds == ["pending", "submitting", "submitted"]


@pytest.fixture
def orchestrator() -> Iterator[EmulatorServer]:
    # Callbacks dropped: no web process listens in this test, and none should be reached.
    config = EmulatorConfig(queue_seconds=3600, drop_callbacks=True)
    server = EmulatorServer("127.0.0.1", 0, config)
    server.start()
    get_client.cache_clear()  # one client per process: this test's emulator, not an earlier one
    with override_settings(ORCHESTRATOR_URL=server.url):
        yield server
    get_client.cache_clear()
    server.stop()


def _sent(run: TrainingRun) -> dict[str, Any]:
    run.refresh_from_db()
    assert run.status == "submitted", run.status
    return get_client().get(run.workflow_id)["steps"][0]["input"]


def test_a_submission_sends_the_body_stored_when_the_run_was_accepted(
    owner: User, orchestrator: EmulatorServer
) -> None:
    run = training_run_create(owner=owner, spec=spec_for(owner))
    stored = TrainingRun.objects.get(pk=run.pk).payload
    # Even if the row's parameters changed since, what was accepted is what trains.
    TrainingRun.objects.filter(pk=run.pk).update(params={**run.params, "maxTrainEpochs": 3})
    assert run_submit(run_id=run.pk).status == "submitted"
    assert _sent(run) == stored["steps"][0]["input"]


def test_a_run_stored_before_bodies_were_is_sent_the_body_its_row_gives(
    owner: User, orchestrator: EmulatorServer
) -> None:
    run = training_run_create(owner=owner, spec=spec_for(owner))
    TrainingRun.objects.filter(pk=run.pk).update(payload={})
    legacy = TrainingRun.objects.get(pk=run.pk)
    with CaptureQueriesContext(connection) as captured:
        assert run_submit(run_id=run.pk).status == "submitted"
    expected = workflow_body(legacy, run_id=legacy.pk)["steps"][0]["input"]
    assert _sent(run) == expected
    # The whole row is read once for it, not a field at a time.
    reads = [q for q in captured if q["sql"].startswith("SELECT")]
    assert len(reads) == 2, [q["sql"] for q in reads]
