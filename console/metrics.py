"""The moderator dashboard's numbers (plan §6.1, "Success Criteria"), read from the daily rollups
(console.rollup) so that a page costs the same handful of queries at any number of runs.

Windows are whole UTC days ending today: 7 days = today and the six before. Two clocks count:
- by the day a run was created: runs started, cost, adoption, parameter usage;
- by the day a run ended: success rate, failure reasons, training duration, queue wait.
A run is finished when it succeeded, failed or expired (training.stats.FINISHED_STATUSES); a
user's cancel says nothing about the engine, so it is shown but not in the success rate.
Exact: every count, rate, cost and distinct-user figure. Percentiles merge daily quantile sketches:
exact while each day has at most 51 values per engine, within about one percentile rank beyond.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.utils import timezone

from console.models import (
    Basis,
    RollupState,
    UserActivityDailyStat,
)
from console.rollup import rollup_ensure_fresh
from console.sketch import Distribution
from console.windows import WINDOWS, rows_for_window
from flags.registry import AI_TOOLKIT_TRAINING
from flags.services import RolloutGuard as Guard
from flags.services import rollout_guard as flags_rollout_guard
from flags.tiers import is_moderator
from training.selectors import ecosystem_of
from training.stats import AI_TOOLKIT_BASES, PARAMS
from vocabulary import catalog

DEFAULT_WINDOW = 30
SUCCESS_TARGET = 0.9  # plan, Post-Launch Metrics: 90 %+ success with AI Toolkit
ADOPTION_TARGET = 0.2  # plan: adoption of 20 %+ within the first month
TOP_FAILURES = 8
TOP_PARAM_VALUES = 8
PARAM_LABELS = {
    "optimizer": "Optimizer",
    "scheduler": "LR scheduler",
    "network_dim": "Network dim",
    "epochs": "Epochs",
}
# Duration histogram bins, in seconds (the last is open-ended).
DURATION_EDGES = (0, 300, 600, 1200, 2400, 4800, 9600, 19200)


def can_view_console(user: Any) -> bool:
    """Moderators (group `mod`) and superusers."""
    return bool(
        user is not None and user.is_authenticated and (user.is_superuser or is_moderator(user))
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class GroupStats:
    """One engine's or one ecosystem's numbers over the window."""

    key: str
    label: str
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    expired: int = 0
    canceled: int = 0
    cost_runs: int = 0
    cost_total: int = 0
    eligible_started: int = 0  # runs on base models that allow AI Toolkit
    ai_toolkit_started: int = 0
    duration: Distribution = field(default_factory=Distribution)
    queue: Distribution = field(default_factory=Distribution)

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.expired

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.finished)

    @property
    def cost_mean(self) -> float | None:
        return self.cost_total / self.cost_runs if self.cost_runs else None

    @property
    def adoption(self) -> float | None:
        return _rate(self.ai_toolkit_started, self.eligible_started)

    @property
    def duration_p50(self) -> float | None:
        return self.duration.percentile(0.5)

    @property
    def duration_p90(self) -> float | None:
        return self.duration.percentile(0.9)

    @property
    def queue_p50(self) -> float | None:
        return self.queue.percentile(0.5)

    @property
    def queue_p90(self) -> float | None:
        return self.queue.percentile(0.9)


@dataclass
class _Reason:
    runs: int = 0
    example: str = ""
    by_engine: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FailureReason:
    code: str
    runs: int
    share: float  # of all failed and expired runs in the window
    example: str
    by_engine: dict[str, int]


@dataclass(frozen=True)
class Adoption:
    """AI Toolkit's share among runs (and users) on base models that allow it."""

    ai_toolkit_runs: int
    eligible_runs: int
    ai_toolkit_users: int
    eligible_users: int
    target: float = ADOPTION_TARGET

    @property
    def run_share(self) -> float | None:
        return _rate(self.ai_toolkit_runs, self.eligible_runs)

    @property
    def user_share(self) -> float | None:
        return _rate(self.ai_toolkit_users, self.eligible_users)


@dataclass(frozen=True)
class ParamValue:
    value: str
    runs: int
    share: float
    succeeded: int
    finished: int

    @property
    def success_rate(self) -> float | None:
        return _rate(self.succeeded, self.finished)


@dataclass(frozen=True)
class ParamUsage:
    engine: str
    param: str
    label: str
    runs: int
    values: list[ParamValue]
    other_runs: int  # runs with values beyond the top ones


@dataclass(frozen=True)
class DailySeries:
    engine: str
    label: str
    succeeded: list[int]
    finished: list[int]

    @property
    def rates(self) -> list[float | None]:
        return [_rate(s, f) for s, f in zip(self.succeeded, self.finished, strict=True)]


@dataclass(frozen=True)
class Freshness:
    refreshed_at: datetime | None
    built_from: date | None  # rollups exist from this day on
    complete: bool


@dataclass
class Dashboard:
    days: int
    first_day: date
    last_day: date
    engines: list[GroupStats]
    ecosystems: list[GroupStats]
    total: GroupStats
    daily_days: list[date]
    daily: list[DailySeries]
    failures: list[FailureReason]
    failures_total: int
    adoption: Adoption
    params: list[ParamUsage]
    duration_edges: tuple[int, ...]
    duration_histogram: dict[str, list[float]]  # engine -> estimated runs per bin
    guard: Guard
    freshness: Freshness
    success_target: float = SUCCESS_TARGET

    @property
    def partial(self) -> bool:
        """History before the window's first day is still being built."""
        built = self.freshness.built_from
        return built is None or built > self.first_day


def window_days(value: Any) -> int:
    """The window a request asked for, or the default when it named none we offer."""
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_WINDOW
    return days if days in WINDOWS else DEFAULT_WINDOW


def _engine_groups() -> dict[str, GroupStats]:
    return {key: GroupStats(key, info.label) for key, info in catalog.ENGINES.items()}


def _ecosystem_groups() -> dict[str, GroupStats]:
    groups: dict[str, GroupStats] = {}
    for key, base in catalog.BASE_MODELS.items():
        eco = ecosystem_of(key)
        groups.setdefault(eco, GroupStats(eco, base.family))
    return groups


def _group(groups: dict[str, GroupStats], key: str) -> GroupStats:
    if key not in groups:  # a value the catalog no longer lists (an old run)
        groups[key] = GroupStats(key, key)
    return groups[key]


def rollout_guard() -> Guard:
    """The rollout guard itself (flags.services.rollout_guard): the dashboard shows the number
    the rollout service gates on, never a second count."""
    return flags_rollout_guard(key=AI_TOOLKIT_TRAINING)


def training_dashboard(*, user: Any, days: int, today: date | None = None) -> Dashboard:
    """Every number on the moderator dashboard for the `days`-day window ending today (UTC).

    Four queries at any number of runs: the rollups' freshness (plus a refresh pass when they
    are older than a minute), the window's snapshot (console.windows), distinct users,
    and the rollout guard's own count."""
    if not can_view_console(user):
        raise PermissionDenied("The training console is for moderators.")
    days = window_days(days)
    state = rollup_ensure_fresh()
    last_day = today or timezone.now().astimezone(UTC).date()
    first_day = last_day - timedelta(days=days - 1)
    rows = rows_for_window(days, last_day)

    engines = _engine_groups()
    ecosystems = _ecosystem_groups()
    total = GroupStats("all", "All engines")
    failures: dict[str, _Reason] = {}
    for row in rows.stats:
        groups = (
            _group(engines, row["engine"]),
            _group(ecosystems, ecosystem_of(row["base_model"])),
            total,
        )
        if row["basis"] == Basis.CREATED:
            runs = row["n"]
            eligible = row["base_model"] in AI_TOOLKIT_BASES
            ai_toolkit = eligible and row["engine"] == catalog.AI_TOOLKIT
            for g in groups:
                g.started += runs
                g.cost_runs += row["cost_n"]
                g.cost_total += row["cost"]
                g.eligible_started += runs if eligible else 0
                g.ai_toolkit_started += runs if ai_toolkit else 0
            continue
        for g in groups:
            g.succeeded += row["ok"]
            g.failed += row["failed"]
            g.expired += row["expired"]
            g.canceled += row["canceled"]
        failed = row["failed"] + row["expired"]
        if failed:
            code = row["error_code"] or "(no code)"
            reason = failures.setdefault(code, _Reason())
            reason.runs += failed
            reason.example = reason.example or row["example"] or ""
            reason.by_engine[row["engine"]] = reason.by_engine.get(row["engine"], 0) + failed

    failures_total = total.failed + total.expired
    top = sorted(failures.items(), key=lambda item: (-item[1].runs, item[0]))[:TOP_FAILURES]
    reasons = [
        FailureReason(
            code=code,
            runs=r.runs,
            share=r.runs / failures_total if failures_total else 0.0,
            example=r.example,
            by_engine=dict(sorted(r.by_engine.items(), key=lambda kv: -kv[1])),
        )
        for code, r in top
    ]

    daily_days = [first_day + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(daily_days)}
    succeeded: dict[str, list[int]] = {e: [0] * days for e in engines}
    finished: dict[str, list[int]] = {e: [0] * days for e in engines}
    for day_iso, engine, ok, done in rows.daily:
        if engine not in finished:
            succeeded[engine], finished[engine] = [0] * days, [0] * days
        i = index[date.fromisoformat(day_iso)]
        finished[engine][i] += done
        succeeded[engine][i] += ok
    daily = [
        DailySeries(e, _group(engines, e).label, succeeded[e], finished[e])
        for e in finished
        if any(finished[e])
    ]

    by_kind = {"engine": engines, "ecosystem": ecosystems}
    for kind, group, metric, samples, points in rows.timings:
        target = total if kind == "all" else _group(by_kind[kind], group)
        setattr(target, metric, Distribution([(samples, points)]))

    users = UserActivityDailyStat.objects.filter(day__gte=first_day).aggregate(
        eligible=Sum("eligible_users"), ai=Sum("ai_toolkit_users")
    )
    adoption = Adoption(
        ai_toolkit_runs=total.ai_toolkit_started,
        eligible_runs=total.eligible_started,
        ai_toolkit_users=users["ai"] or 0,
        eligible_users=users["eligible"] or 0,
    )

    return Dashboard(
        days=days,
        first_day=first_day,
        last_day=last_day,
        engines=list(engines.values()),
        ecosystems=[g for g in ecosystems.values() if g.started or g.finished or g.canceled],
        total=total,
        daily_days=daily_days,
        daily=daily,
        failures=reasons,
        failures_total=failures_total,
        adoption=adoption,
        params=_param_usage(rows.params),
        duration_edges=DURATION_EDGES,
        duration_histogram={
            g.key: g.duration.histogram(DURATION_EDGES)
            for g in engines.values()
            if g.duration.samples
        },
        guard=rollout_guard(),
        freshness=_freshness(state),
    )


def _freshness(state: RollupState | None) -> Freshness:
    if state is None:
        return Freshness(None, None, False)
    return Freshness(state.refreshed_at, state.built_from, state.complete)


def _param_usage(rows: list[tuple[str, str, str, int, int, int]]) -> list[ParamUsage]:
    counts: dict[tuple[str, str], dict[str, tuple[int, int, int]]] = defaultdict(dict)
    for engine, param, value, n, ok, done in rows:
        counts[(engine, param)][value] = (n, ok, done)
    usage: list[ParamUsage] = []
    for engine in catalog.ENGINES:
        for param in PARAMS:
            values = counts.get((engine, param))
            if not values or set(values) == {""}:
                continue  # the engine sends no such parameter (Rapid's fixed settings)
            runs = sum(v[0] for v in values.values())
            ordered = sorted(values.items(), key=lambda kv: (-kv[1][0], _numeric_key(kv[0])))
            shown = [
                ParamValue(value or "(not set)", n, n / runs, ok, done)
                for value, (n, ok, done) in ordered[:TOP_PARAM_VALUES]
            ]
            usage.append(
                ParamUsage(
                    engine=engine,
                    param=param,
                    label=PARAM_LABELS[param],
                    runs=runs,
                    values=shown,
                    other_runs=runs - sum(v.runs for v in shown),
                )
            )
    return usage


def _numeric_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)
