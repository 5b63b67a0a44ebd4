"""Every dashboard number on crafted runs, with the values worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import override_settings

from console.metrics import Dashboard, GroupStats, training_dashboard, window_days
from console.models import RollupState, RunDailyStat, RunTimingDailyStat, UserTrainingActivity
from console.rollup import rollup_refresh
from console.sketch import Distribution, percentile_cont, sketch
from tests.conftest import make_user
from tests.console.helpers import MIN, ago, make_run, refreshed
from training.models import TrainingRun
from training.selectors import engine_success_rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(db: None) -> User:
    return make_user("boss", is_superuser=True, is_staff=True)


def dashboard(user: User, days: int = 30) -> Dashboard:
    refreshed()
    return training_dashboard(user=user, days=days)


def by_key(groups: list[GroupStats]) -> dict[str, GroupStats]:
    return {g.key: g for g in groups}


def test_counts_and_success_rate_per_engine_and_ecosystem(owner: User, boss: User) -> None:
    for _ in range(3):
        make_run(owner, engine="kohya", status="succeeded")
    make_run(owner, engine="kohya", status="failed", error_code="orchestrator_failed")
    make_run(owner, engine="kohya", status="canceled")
    make_run(owner, engine="ai-toolkit", status="succeeded")
    make_run(owner, engine="ai-toolkit", status="succeeded")
    make_run(owner, engine="ai-toolkit", status="expired", error_code="orchestrator_expired")
    make_run(owner, engine="rapid", base_model="flux_dev", status="pending", submit_after=None)
    make_run(owner, engine="kohya", status="succeeded", created=ago(days=40))  # outside 30 days

    dash = dashboard(boss)
    engines = by_key(dash.engines)
    kohya, ai, rapid, musubi = (engines[k] for k in ("kohya", "ai-toolkit", "rapid", "musubi"))
    assert (kohya.started, kohya.finished, kohya.succeeded, kohya.failed, kohya.canceled) == (
        5, 4, 3, 1, 1,
    )  # fmt: skip
    assert kohya.success_rate == 0.75  # canceled left out
    assert (ai.started, ai.finished, ai.succeeded, ai.expired) == (3, 3, 2, 1)
    assert ai.success_rate == pytest.approx(2 / 3)
    assert (rapid.started, rapid.finished, rapid.success_rate) == (1, 0, None)
    assert (musubi.started, musubi.finished, musubi.success_rate) == (0, 0, None)
    assert (dash.total.started, dash.total.finished, dash.total.succeeded) == (9, 7, 5)

    ecos = by_key(dash.ecosystems)
    assert set(ecos) == {"sdxl", "flux1"}  # families without runs are not listed
    assert (ecos["sdxl"].started, ecos["sdxl"].finished, ecos["sdxl"].succeeded) == (8, 7, 5)
    assert (ecos["flux1"].started, ecos["flux1"].success_rate) == (1, None)

    wide = training_dashboard(user=boss, days=90)
    assert by_key(wide.engines)["kohya"].started == 6
    assert by_key(wide.engines)["kohya"].success_rate == 0.8


def test_success_counts_by_the_day_runs_ended(owner: User, boss: User) -> None:
    # Created 40 days ago, ended a day ago: not started in the window, but finished in it.
    make_run(owner, status="succeeded", created=ago(days=40), queue=39 * 86400.0)
    dash = dashboard(boss)
    kohya = by_key(dash.engines)["kohya"]
    assert (kohya.started, kohya.finished, kohya.succeeded) == (0, 1, 1)


def test_failure_reasons_with_counts_shares_and_an_example(owner: User, boss: User) -> None:
    make_run(owner, status="failed", error_code="submit_exhausted", error_message="no answer",
             submit_after=None)  # fmt: skip
    make_run(owner, engine="ai-toolkit", status="failed", error_code="submit_exhausted",
             error_message="no answer", submit_after=None)  # fmt: skip
    make_run(owner, status="failed", error_code="orchestrator_failed",
             error_message="CUDA out of memory at epoch 3")  # fmt: skip
    make_run(owner, engine="ai-toolkit", status="expired", error_code="orchestrator_expired",
             error_message="The workflow expired.")  # fmt: skip
    make_run(owner, status="succeeded")

    dash = dashboard(boss)
    assert dash.failures_total == 4
    assert [(f.code, f.runs, f.share) for f in dash.failures] == [
        ("submit_exhausted", 2, 0.5),
        ("orchestrator_expired", 1, 0.25),
        ("orchestrator_failed", 1, 0.25),
    ]
    exhausted, expired, failed = dash.failures
    assert exhausted.by_engine == {"kohya": 1, "ai-toolkit": 1}
    assert failed.example == "CUDA out of memory at epoch 3"
    assert expired.example == "The workflow expired."


def test_duration_and_queue_percentiles_are_percentile_cont(owner: User, boss: User) -> None:
    # Succeeded kohya runs on two different days: 10, 20 | 30, 40 minutes of training and
    # 60, 120 | 180, 240 seconds of queue. One failed run: queue 600 s, no duration counted.
    for day, minutes, queue in ((3, 10, 60), (3, 20, 120), (2, 30, 180), (2, 40, 240)):
        make_run(owner, created=ago(days=day), queue=queue, duration=minutes * MIN)
    make_run(owner, status="failed", error_code="orchestrator_failed", queue=600, duration=100)

    dash = dashboard(boss)
    kohya = by_key(dash.engines)["kohya"]
    assert kohya.duration_p50 == pytest.approx(25 * MIN)
    assert kohya.duration_p90 == pytest.approx(37 * MIN)  # rank 2.7: 30 + 0.7 x 10
    assert kohya.queue_p50 == pytest.approx(180)
    assert kohya.queue_p90 == pytest.approx(456)  # rank 3.6: 240 + 0.6 x 360
    assert dash.total.duration_p50 == pytest.approx(25 * MIN)
    sdxl = by_key(dash.ecosystems)["sdxl"]
    assert sdxl.duration_p90 == pytest.approx(37 * MIN)
    ai = by_key(dash.engines)["ai-toolkit"]
    assert (ai.duration_p50, ai.queue_p90) == (None, None)
    # The duration histogram counts the same four runs.
    assert sum(dash.duration_histogram["kohya"]) == pytest.approx(4)
    assert "ai-toolkit" not in dash.duration_histogram


def test_percentiles_of_a_busy_day_stay_exact(owner: User, boss: User) -> None:
    # 200 runs on one day are kept as a 51-point sketch; p50 and p90 are points of it.
    base = datetime.combine(ago(days=2).date(), time(1, 0), tzinfo=UTC)
    TrainingRun.objects.bulk_create(
        [
            TrainingRun(
                owner=owner, base_model="sdxl", engine="kohya", training_data_url="https://x.io/a",
                image_count=1, lora_name="busy", status="succeeded", submitted_at=base,
                started_at=base, completed_at=base + timedelta(minutes=m),
            )
            for m in range(1, 201)
        ]
    )  # fmt: skip
    dash = dashboard(boss)
    kohya = by_key(dash.engines)["kohya"]
    exact = [m * MIN for m in range(1, 201)]
    assert kohya.duration.samples == 200
    assert kohya.duration_p50 == pytest.approx(percentile_cont(exact, 0.5))
    assert kohya.duration_p90 == pytest.approx(percentile_cont(exact, 0.9))


def test_merged_sketches_stay_within_a_percentile_rank() -> None:
    days = [[float(v) for v in range(d, 3000 + d, 7)] for d in range(5)]
    merged = Distribution((len(values), sketch(values)) for values in days)
    exact = sorted(v for values in days for v in values)
    for fraction in (0.5, 0.9):
        value = merged.percentile(fraction)
        truth = percentile_cont(exact, fraction)
        assert value is not None and truth is not None
        assert abs(value - truth) <= 0.01 * (exact[-1] - exact[0])


def test_cost_mean_and_total(owner: User, boss: User) -> None:
    make_run(owner, cost=100)
    make_run(owner, cost=200)
    make_run(owner, status="failed", error_code="orchestrator_failed", cost=300)
    make_run(owner, status="pending", submit_after=None, cost=None)  # not charged: not in mean
    make_run(owner, engine="ai-toolkit", cost=1000)

    dash = dashboard(boss)
    kohya = by_key(dash.engines)["kohya"]
    assert (kohya.cost_runs, kohya.cost_total, kohya.cost_mean) == (3, 600, 200)
    assert by_key(dash.engines)["rapid"].cost_mean is None
    assert (dash.total.cost_total, dash.total.cost_mean) == (1600, 400)


def test_adoption_of_runs_and_distinct_users(owner: User, boss: User) -> None:
    a, b, c, d, e = (make_user(n) for n in ("ann", "bob", "cat", "dan", "eve"))
    make_run(a, engine="kohya", base_model="sdxl")
    make_run(b, engine="ai-toolkit", base_model="sdxl")
    make_run(b, engine="ai-toolkit", base_model="flux_dev")
    make_run(c, engine="musubi", base_model="hy_720_fp8")  # Hunyuan: no AI Toolkit, not counted
    make_run(d, engine="musubi", base_model="wan_2_1_t2v_14b")
    make_run(d, engine="kohya", base_model="sdxl", created=ago(days=20))
    make_run(e, engine="ai-toolkit", base_model="sdxl", created=ago(days=40))

    dash = dashboard(boss)
    adoption = dash.adoption
    assert (adoption.ai_toolkit_runs, adoption.eligible_runs) == (2, 5)
    assert adoption.run_share == pytest.approx(0.4)
    assert (adoption.ai_toolkit_users, adoption.eligible_users) == (1, 3)  # ann, bob, dan
    assert adoption.user_share == pytest.approx(1 / 3)
    ecos = by_key(dash.ecosystems)
    assert ecos["sdxl"].adoption == pytest.approx(1 / 3)  # bob's of ann, bob, dan(20 days ago)
    assert ecos["flux1"].adoption == 1.0
    assert ecos["hunyuan"].adoption is None
    week = training_dashboard(user=boss, days=7)
    assert (week.adoption.ai_toolkit_users, week.adoption.eligible_users) == (1, 3)
    wide = training_dashboard(user=boss, days=90)
    assert (wide.adoption.ai_toolkit_users, wide.adoption.eligible_users) == (2, 4)


def test_parameter_usage_and_success_by_value(owner: User, boss: User) -> None:
    kohya = {"optimizerType": "AdamW8Bit", "lrScheduler": "cosine", "networkDim": 32,
             "maxTrainEpochs": 10}  # fmt: skip
    make_run(owner, params=kohya)
    make_run(owner, params=kohya)
    make_run(owner, params={**kohya, "optimizerType": "Prodigy"}, status="failed",
             error_code="orchestrator_failed")  # fmt: skip
    make_run(owner, engine="ai-toolkit", params={"optimizerType": "adamw8bit", "epochs": 5,
             "networkDim": 16, "lrScheduler": "constant"})  # fmt: skip
    make_run(owner, engine="rapid", base_model="flux_dev", params={})

    dash = dashboard(boss)
    usage = {(u.engine, u.param): u for u in dash.params}
    optimizer = usage[("kohya", "optimizer")]
    assert optimizer.runs == 3
    assert [(v.value, v.runs, v.succeeded, v.finished) for v in optimizer.values] == [
        ("AdamW8Bit", 2, 2, 2),
        ("Prodigy", 1, 0, 1),
    ]
    assert optimizer.values[1].success_rate == 0.0
    assert [(v.value, v.runs) for v in usage[("kohya", "epochs")].values] == [("10", 3)]
    assert [(v.value, v.runs) for v in usage[("ai-toolkit", "epochs")].values] == [("5", 1)]
    assert [(v.value, v.runs) for v in usage[("ai-toolkit", "network_dim")].values] == [("16", 1)]
    assert not any(engine == "rapid" for engine, _ in usage)  # Rapid sends no parameters


def test_daily_success_rate_per_engine(owner: User, boss: User) -> None:
    make_run(owner, engine="ai-toolkit", created=ago(days=3), duration=60)
    make_run(owner, engine="ai-toolkit", created=ago(days=3), duration=60, status="failed",
             error_code="orchestrator_failed")  # fmt: skip
    make_run(owner, engine="ai-toolkit", created=ago(days=1), duration=60)

    dash = dashboard(boss, days=7)
    assert len(dash.daily_days) == 7 and dash.daily_days[-1] == dash.last_day
    (series,) = dash.daily
    assert series.engine == "ai-toolkit"
    by_day = dict(zip(dash.daily_days, series.rates, strict=True))
    day3 = TrainingRun.objects.get(status="failed").completed_at
    day1 = TrainingRun.objects.order_by("-completed_at")[0].completed_at
    assert day3 is not None and day1 is not None
    assert by_day[day3.date()] == 0.5
    assert by_day[day1.date()] == 1.0
    assert sum(rate is not None for rate in series.rates) == 2  # no finished runs: None, not 0


def test_an_empty_window_has_no_rates_and_no_crash(boss: User, owner: User) -> None:
    make_run(owner, created=ago(days=60))  # only outside the window
    dash = dashboard(boss, days=7)
    assert dash.total.started == 0
    assert dash.total.success_rate is None
    assert all(g.success_rate is None and g.duration_p50 is None for g in dash.engines)
    assert dash.total.cost_mean is None
    assert dash.adoption.run_share is None and dash.adoption.user_share is None
    assert dash.failures == [] and dash.failures_total == 0
    assert dash.params == [] and dash.daily == [] and dash.ecosystems == []
    assert dash.guard.rate is None and not dash.guard.passes


def test_the_guard_is_the_selectors_number(owner: User, boss: User) -> None:
    make_run(owner, engine="ai-toolkit", created=ago(days=13))
    make_run(owner, engine="ai-toolkit", created=ago(days=13), status="failed",
             error_code="orchestrator_failed")  # fmt: skip
    make_run(owner, engine="ai-toolkit", created=ago(days=15))  # outside 14 x 24 h
    dash = dashboard(boss)
    numbers = engine_success_rate(engine="ai-toolkit", days=14)
    assert (dash.guard.succeeded, dash.guard.finished) == (numbers.succeeded, numbers.finished)
    assert (dash.guard.succeeded, dash.guard.finished, dash.guard.window_days) == (1, 2, 14)
    assert by_key(dash.engines)["ai-toolkit"].finished == 3  # the dashboard's own 30 days


def test_incremental_passes_follow_new_and_changed_runs(owner: User, boss: User) -> None:
    pending = make_run(owner, status="processing", duration=None)
    refreshed()
    assert by_key(training_dashboard(user=boss, days=7).engines)["kohya"].finished == 0

    make_run(owner, engine="ai-toolkit")
    now = ago()
    TrainingRun.objects.filter(pk=pending.pk).update(
        status="succeeded", completed_at=now, updated_at=now
    )
    report = rollup_refresh()
    assert report is not None and report.touched_days >= 1 and report.backfilled_days == 0
    dash = training_dashboard(user=boss, days=7)
    engines = by_key(dash.engines)
    assert (engines["kohya"].finished, engines["kohya"].succeeded) == (1, 1)
    assert engines["ai-toolkit"].started == 1
    assert dash.adoption.ai_toolkit_users == 1


def test_history_is_built_a_week_per_step(owner: User, boss: User) -> None:
    for day in (1, 9, 16, 25):
        make_run(owner, created=ago(days=day))
    first = rollup_refresh(budget=0)  # one step: the newest week
    assert first is not None and first.backfilled_days == 7 and not first.complete
    assert TrainingRun.objects.count() == 4
    with override_settings(TRAINING_ROLLUP_REQUEST_BUDGET_SECONDS=0):
        partial = training_dashboard(user=boss, days=30)  # a reader's pass: one more week
    assert partial.partial and partial.total.started == 2
    rollup_refresh(budget=None)
    state = RollupState.objects.get()
    assert state.complete
    assert training_dashboard(user=boss, days=30).total.started == 4


def test_a_days_timings_are_stored_per_engine_and_ecosystem(owner: User) -> None:
    # Kohya runs of 5, 7, 11 minutes after queues of 5, 7, 11 seconds; a failed AI Toolkit run
    # waited 42 s (its training time is not a duration). All finish on the same UTC day.
    noon = datetime.combine(ago(days=2).date(), time(12, 0), tzinfo=UTC)
    for minutes in (5, 7, 11):
        make_run(owner, created=noon, duration=minutes * MIN, queue=minutes)
    make_run(owner, engine="ai-toolkit", base_model="flux_dev", status="failed", created=noon,
             error_code="orchestrator_failed", queue=42)  # fmt: skip
    refreshed()
    rows = {
        (t.day, t.group_kind, t.group, t.metric): (t.samples, [round(p, 6) for p in t.points])
        for t in RunTimingDailyStat.objects.all()
    }
    day = noon.date()
    assert rows == {
        (day, "engine", "kohya", "duration"): (3, [300.0, 420.0, 660.0]),
        (day, "ecosystem", "sdxl", "duration"): (3, [300.0, 420.0, 660.0]),
        (day, "engine", "kohya", "queue"): (3, [5.0, 7.0, 11.0]),
        (day, "ecosystem", "sdxl", "queue"): (3, [5.0, 7.0, 11.0]),
        (day, "engine", "ai-toolkit", "queue"): (1, [42.0]),
        (day, "ecosystem", "flux1", "queue"): (1, [42.0]),
    }


def test_a_backfill_never_moves_a_users_latest_run_back(owner: User) -> None:
    recent = make_run(owner, created=ago(days=1))  # Kohya on SDXL: eligible, not AI Toolkit
    older = make_run(owner, engine="ai-toolkit", created=ago(days=20))
    rollup_refresh(budget=0)  # the newest week only
    activity = UserTrainingActivity.objects.get(owner=owner)
    assert (activity.last_eligible_at, activity.last_ai_toolkit_at) == (recent.created_at, None)
    rollup_refresh(budget=None)  # older weeks: older news for the same user
    activity.refresh_from_db()
    assert activity.last_eligible_at == recent.created_at
    assert activity.last_ai_toolkit_at == older.created_at


def test_only_moderators_and_superusers_read_it(owner: User, mod: User, boss: User) -> None:
    with pytest.raises(PermissionDenied):
        training_dashboard(user=owner, days=30)
    assert training_dashboard(user=mod, days=30).days == 30
    assert training_dashboard(user=boss, days=7).days == 7


def test_window_days_accepts_only_the_offered_windows() -> None:
    assert [window_days(v) for v in ("7", "30", "90", 90)] == [7, 30, 90, 90]
    assert [window_days(v) for v in (None, "", "abc", "14", "-7")] == [30, 30, 30, 30, 30]


def test_rollup_rows_are_few_and_daily(owner: User) -> None:
    for _ in range(20):
        make_run(owner)
    refreshed()
    # Twenty identical runs: one "created" row and one "completed" row, not twenty.
    assert RunDailyStat.objects.filter(engine="kohya").count() == 2


def test_a_snapshot_and_the_daily_rollups_give_the_same_numbers(owner: User, boss: User) -> None:
    from console.models import RollupWindowSnapshot

    for day, minutes in ((1, 12), (3, 30), (5, 48), (20, 7)):
        make_run(owner, created=ago(days=day), duration=minutes * MIN, params={"networkDim": day})
    make_run(owner, engine="ai-toolkit", status="failed", error_code="orchestrator_failed")
    fresh = dashboard(boss)
    assert RollupWindowSnapshot.objects.filter(days=30, as_of=fresh.last_day).exists()
    RollupWindowSnapshot.objects.update(as_of=fresh.last_day - timedelta(days=1))  # yesterday's
    live = training_dashboard(user=boss, days=30)

    def numbers(d: Dashboard) -> list[object]:
        return [
            [(g.key, g.started, g.succeeded, g.failed, g.cost_total, g.duration_p50,
              g.duration_p90, g.queue_p50) for g in (*d.engines, *d.ecosystems, d.total)],
            [(f.code, f.runs, f.example) for f in d.failures],
            [(u.engine, u.param, [(v.value, v.runs) for v in u.values]) for u in d.params],
            [(s.engine, s.succeeded, s.finished) for s in d.daily],
        ]  # fmt: skip

    assert numbers(live) == numbers(fresh)
