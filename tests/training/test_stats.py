"""training.stats: the operator-wide reads the console builds its rollups from, as plain rows.
Olivia's and Bob's runs are crafted with exact timestamps (tests/console/helpers.py)."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.contrib.auth.models import User

from tests.conftest import make_user
from tests.console.helpers import ago, event, make_run
from training import stats


def test_only_the_asked_days_are_counted_even_when_they_are_not_consecutive(owner: User) -> None:
    for days_ago in (1, 2, 3):
        make_run(owner, created=ago(days=days_ago), cost=100)
    today = ago().astimezone(UTC).date()
    asked = {today - timedelta(days=1), today - timedelta(days=3)}
    rows = stats.run_counts_created_per_day(asked)
    assert {r.day for r in rows} <= asked
    assert sum(r.runs for r in rows) == 2 and sum(r.cost_total for r in rows) == 200


def test_parameter_counts_say_how_many_of_the_runs_finished_and_succeeded(owner: User) -> None:
    params = {"optimizerType": "AdamW8Bit", "maxTrainEpochs": 10}
    created = ago(days=1)
    for status in ("succeeded", "failed", "canceled", "processing"):
        make_run(owner, status=status, created=created, params=params)
    (row,) = stats.param_counts_per_day({created.astimezone(UTC).date()})
    assert (row.runs, row.finished, row.succeeded) == (4, 2, 1)
    assert row.values["optimizer"] == "AdamW8Bit" and row.values["epochs"] == "10"
    assert row.values["scheduler"] is None


def test_submission_errors_are_labelled_by_their_kind_and_callbacks_are_not(owner: User) -> None:
    run = make_run(owner, status="processing", duration=None)
    when = ago(hours=1)
    event(run, "submit_error", "transient: 503 from the orchestrator", at=when)
    event(run, "submit_error", "something nobody classified", at=when)
    event(run, "callback", at=when)
    event(run, "note", "not counted", at=when)
    rows = stats.events_per_day({when.astimezone(UTC).date()})
    assert {(r.kind, r.label, r.events) for r in rows} == {
        ("submit_error", "transient", 1),
        ("submit_error", "other", 1),
        ("callback", "", 1),
    }


def test_active_runs_are_counted_by_engine_and_status_with_the_oldest_pending(
    owner: User,
) -> None:
    bob = make_user("bob")
    oldest = ago(hours=3)
    make_run(owner, status="pending", created=oldest, submit_after=None)
    make_run(bob, status="pending", created=ago(hours=1), submit_after=None)
    make_run(bob, engine="ai-toolkit", base_model="flux_dev", status="processing", duration=None)
    make_run(owner, status="succeeded")
    live = stats.active_runs()
    assert live.counts == {("kohya", "pending"): 2, ("ai-toolkit", "processing"): 1}
    assert live.oldest_pending == oldest


def test_the_latest_runs_per_owner_count_only_base_models_that_allow_ai_toolkit(
    owner: User,
) -> None:
    bob = make_user("bob")
    day = ago(days=1)
    make_run(owner, engine="ai-toolkit", base_model="flux_dev", created=day)
    make_run(owner, created=day - timedelta(hours=1))
    make_run(bob, engine="musubi", base_model="hy_720_fp8", created=day)  # no AI Toolkit there
    rows = stats.latest_runs_created_on({day.astimezone(UTC).date(), ago().astimezone(UTC).date()})
    assert rows == [stats.LatestRuns(owner.pk, day, day)]
