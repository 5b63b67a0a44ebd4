"""The rollout of aiToolkitTraining: stages, the promotion guard, rollback, the audit log, the
shell command, and sync_features."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from waffle.models import Flag

from flags.models import RolloutChange, StagedFeature
from flags.registry import SD3_TRAINING
from flags.services import (
    RolloutError,
    RolloutRefused,
    flag_set_availability,
    rollout_promote,
    rollout_rollback,
    rollout_set_stage,
    rollout_stage,
)
from flags.stages import stage_of_flag
from tests.flags.helpers import AI, at_stage, make_runs

pytestmark = pytest.mark.django_db

REASON = "Kohya queue is down, AI Toolkit is the only way to train today"


def _groups(key: str = AI) -> set[str]:
    return set(Flag.objects.get(name=key).groups.values_list("name", flat=True))


def test_the_migration_leaves_ai_toolkit_at_stage_mods_with_superusers_off() -> None:
    flag = Flag.objects.get(name=AI)
    assert rollout_stage(key=AI) == "mods"
    assert flag.superusers is False
    assert flag.everyone is None
    assert _groups() == {"mod"}


def test_each_stage_writes_the_waffle_row_it_reads_back() -> None:
    expected = {
        "off": (False, False, set()),
        "mods": (None, False, {"mod"}),
        "paid": (None, False, {"mod", "bronze", "silver", "gold"}),
        "everyone": (None, True, set()),
    }
    for stage, (everyone, authenticated, groups) in expected.items():
        at_stage(stage)
        flag = Flag.objects.get(name=AI)
        assert (flag.everyone, flag.authenticated, _groups()) == (everyone, authenticated, groups)
        assert (flag.superusers, flag.staff, flag.percent) == (False, False, None)
        assert stage_of_flag(flag) == stage


def test_promoting_from_off_to_mods_needs_no_numbers(moderator: Any) -> None:
    at_stage("off")
    change = rollout_promote(actor=moderator, key=AI, to_stage="mods")
    assert (change.from_stage, change.to_stage, change.override_used) == ("off", "mods", False)


def test_promoting_past_mods_with_too_few_finished_runs_is_refused(moderator: Any) -> None:
    make_runs(moderator, succeeded=19, failed=0)  # 100 %, but one run short of 20
    with pytest.raises(RolloutRefused, match="19 of 19 finished runs succeeded"):
        rollout_promote(actor=moderator, key=AI, to_stage="paid")
    assert rollout_stage(key=AI) == "mods"
    assert not RolloutChange.objects.exists()


def test_promoting_past_mods_with_a_low_success_rate_is_refused(moderator: Any) -> None:
    make_runs(moderator, succeeded=18, failed=7)  # 72 %
    with pytest.raises(RolloutRefused, match=r"18 of 25 finished runs succeeded \(72%\)"):
        rollout_promote(actor=moderator, key=AI)
    assert rollout_stage(key=AI) == "mods"


def test_promoting_past_mods_with_good_numbers_needs_no_reason(moderator: Any) -> None:
    make_runs(moderator, succeeded=19, failed=1)  # 95 % of 20
    change = rollout_promote(actor=moderator, key=AI)
    assert (change.to_stage, change.override_used) == ("paid", False)
    assert _groups() == {"mod", "bronze", "silver", "gold"}


def test_a_written_reason_overrides_the_guard_and_is_recorded(moderator: Any) -> None:
    make_runs(moderator, succeeded=3, failed=2)
    change = rollout_promote(actor=moderator, key=AI, to_stage="paid", reason=REASON)
    assert change.override_used is True
    assert change.reason == REASON
    assert rollout_stage(key=AI) == "paid"


def test_a_reason_too_short_to_explain_anything_does_not_override(moderator: Any) -> None:
    with pytest.raises(RolloutRefused, match="at least 10 characters"):
        rollout_promote(actor=moderator, key=AI, reason="  ok then ")


def test_runs_outside_the_window_or_of_another_engine_do_not_count(moderator: Any) -> None:
    make_runs(moderator, succeeded=25, failed=0, days_ago=15)
    make_runs(moderator, succeeded=25, failed=0, engine="kohya")
    with pytest.raises(RolloutRefused, match="no finished runs"):
        rollout_promote(actor=moderator, key=AI)


@override_settings(
    ROLLOUT_MIN_SUCCESS_RATE=0.5, ROLLOUT_MIN_FINISHED_RUNS=4, ROLLOUT_WINDOW_DAYS=30
)
def test_the_guard_thresholds_come_from_settings(moderator: Any) -> None:
    make_runs(moderator, succeeded=2, failed=2, days_ago=20)
    assert rollout_promote(actor=moderator, key=AI).to_stage == "paid"


def test_promoting_from_paid_to_everyone_is_guarded_too(moderator: Any) -> None:
    at_stage("paid")
    with pytest.raises(RolloutRefused):
        rollout_promote(actor=moderator, key=AI)
    make_runs(moderator, succeeded=20, failed=0)
    assert rollout_promote(actor=moderator, key=AI).to_stage == "everyone"


@pytest.mark.parametrize("start", ["everyone", "paid", "mods"])
def test_rolling_back_always_works_at_once_without_numbers(moderator: Any, start: str) -> None:
    at_stage(start)
    make_runs(moderator, succeeded=0, failed=30)  # a disaster: 0 %
    change = rollout_rollback(actor=moderator, key=AI)
    assert change.from_stage == start
    assert rollout_stage(key=AI) == change.to_stage
    assert change.override_used is False


def test_rolling_back_straight_to_off_is_one_step(moderator: Any) -> None:
    at_stage("everyone")
    rollout_set_stage(actor=moderator, key=AI, to_stage="off")
    assert rollout_stage(key=AI) == "off"
    assert Flag.objects.get(name=AI).everyone is False


def test_the_audit_log_records_who_from_to_reason_and_numbers(moderator: Any) -> None:
    make_runs(moderator, succeeded=9, failed=1)
    rollout_promote(actor=moderator, key=AI, reason=REASON)
    rollout_rollback(actor=moderator, key=AI, reason="too many support tickets")
    back, forth = RolloutChange.objects.all()  # newest first
    assert (forth.actor, forth.actor_name, forth.via) == (moderator, "maude", "admin")
    assert (forth.feature_key, forth.from_stage, forth.to_stage) == (AI, "mods", "paid")
    assert (forth.succeeded_runs, forth.finished_runs, forth.success_rate) == (9, 10, 0.9)
    assert (forth.window_days, forth.override_used, forth.reason) == (14, True, REASON)
    assert (back.from_stage, back.to_stage, back.reason) == (
        "paid",
        "mods",
        "too many support tickets",
    )
    assert back.override_used is False


def test_nonsense_stage_changes_are_errors(moderator: Any) -> None:
    with pytest.raises(RolloutError, match="already at stage"):
        rollout_set_stage(actor=moderator, key=AI, to_stage="mods")
    with pytest.raises(RolloutError, match="roll back instead"):
        rollout_promote(actor=moderator, key=AI, to_stage="off")
    with pytest.raises(RolloutError, match="promote instead"):
        rollout_rollback(actor=moderator, key=AI, to_stage="paid")
    with pytest.raises(RolloutError, match="Unknown stage"):
        rollout_set_stage(actor=moderator, key=AI, to_stage="gold")
    with pytest.raises(RolloutError, match="no staged rollout"):
        rollout_promote(actor=moderator, key=SD3_TRAINING)
    at_stage("off")
    with pytest.raises(RolloutError, match="Already off"):
        rollout_rollback(actor=moderator, key=AI)


def test_the_stored_stage_is_the_truth_and_sync_puts_a_lost_waffle_row_back() -> None:
    assert StagedFeature.objects.get(key=AI).stage == "mods"
    Flag.objects.filter(name=AI).delete()  # outside admin, e.g. a shell
    assert rollout_stage(key=AI) == "mods"
    call_command("sync_features")
    flag = Flag.objects.get(name=AI)
    assert (flag.everyone, flag.authenticated, _groups(), flag.superusers) == (
        None,
        False,
        {"mod"},
        False,
    )


def test_a_hand_edited_staged_row_is_projected_back_by_sync(plain_user: Any) -> None:
    flag = Flag.objects.get(name=AI)
    flag.authenticated = True
    flag.save()
    flag.users.add(plain_user)
    call_command("sync_features")
    flag.refresh_from_db()
    assert (flag.authenticated, _groups(), list(flag.users.all())) == (False, {"mod"}, [])


def test_every_stage_change_stores_the_stage_with_who_and_why(moderator: Any) -> None:
    rollout_set_stage(actor=moderator, key=AI, to_stage="paid", reason=REASON)
    stored = StagedFeature.objects.get(key=AI)
    assert (stored.stage, stored.changed_by, stored.changed_by_name, stored.reason) == (
        "paid",
        moderator,
        "maude",
        REASON,
    )
    assert RolloutChange.objects.get().to_stage == "paid"


def test_only_the_rollout_service_moves_a_staged_feature() -> None:
    with pytest.raises(RolloutError, match="staged"):
        flag_set_availability(key=AI, keywords=["user"])
    assert rollout_stage(key=AI) == "mods"


def test_the_shell_command_moves_the_stage_and_audits_it(moderator: Any, capsys: Any) -> None:
    call_command("rollout", AI, "--stage", "paid", "--reason", REASON, "--actor", "maude")
    assert rollout_stage(key=AI) == "paid"
    change = RolloutChange.objects.get()
    assert (change.actor, change.via, change.override_used) == (moderator, "shell", True)
    out = capsys.readouterr().out
    assert "mods -> paid (guard overridden)" in out
    assert "stage: paid" in out


def test_the_shell_command_refuses_a_failing_guard_without_a_reason(moderator: Any) -> None:
    with pytest.raises(CommandError, match="Not promoted"):
        call_command("rollout", AI, "--stage", "everyone")
    with pytest.raises(CommandError, match="No user"):
        call_command("rollout", AI, "--stage", "off", "--actor", "nobody")
    call_command("rollout", AI, "--stage", "off")
    assert RolloutChange.objects.get().actor_name.startswith("shell:")


def test_sync_features_creates_a_missing_flag_from_the_registry() -> None:
    Flag.objects.filter(name=SD3_TRAINING).delete()
    call_command("sync_features")
    flag = Flag.objects.get(name=SD3_TRAINING)
    assert (flag.everyone, flag.authenticated, flag.superusers, flag.staff) == (
        None,
        False,
        False,
        False,
    )
    assert _groups(SD3_TRAINING) == {"mod"}


def test_sync_features_never_overwrites_a_moderators_change() -> None:
    flag = Flag.objects.get(name=SD3_TRAINING)
    flag.groups.set([Group.objects.get(name="gold")])
    flag.everyone = False
    flag.note = "paused while we look at failures"
    flag.save()
    call_command("sync_features")
    flag.refresh_from_db()
    assert (flag.everyone, flag.note, _groups(SD3_TRAINING)) == (
        False,
        "paused while we look at failures",
        {"gold"},
    )


def test_moderators_hold_exactly_the_admin_permissions_they_need() -> None:
    call_command("sync_features")
    mod = Group.objects.get(name="mod")
    held = {f"{p.content_type.app_label}.{p.codename}" for p in mod.permissions.all()}
    assert held == {
        "waffle.view_flag",
        "waffle.change_flag",
        "flags.view_rolloutchange",
        "flags.view_stagedfeature",
        "flags.view_featurepreference",
        "training.view_trainingrun",
    }
    assert not Group.objects.get(name="gold").permissions.exists()
