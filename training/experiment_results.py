"""Reads for the results pages: experiments, and per arm the numbers a decision needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet

from experiments import stats
from experiments.models import Arm, DefaultsChange, DefaultsOverride, Experiment
from experiments.values import scope_label
from training.models import FINISHED_STATUSES, RunStatus, TrainingRun

ASSIGNED = "assigned"
OVERRODE_ALL = "overrode_all"


def experiment_list() -> QuerySet[Experiment]:
    return Experiment.objects.prefetch_related("arms").order_by("-created_at", "-id")


def experiment_get(*, experiment_id: int) -> Experiment:
    return Experiment.objects.prefetch_related("arms").get(pk=experiment_id)


@dataclass
class ArmResult:
    arm: Arm
    expected_share: float  # weight / total weight
    runs: int = 0
    finished: int = 0
    succeeded: int = 0
    durations: list[float] = field(default_factory=list, repr=False)  # seconds, succeeded runs
    costs: list[float] = field(default_factory=list, repr=False)  # charged, succeeded runs
    observed_share: float | None = None
    interval: stats.Interval | None = None
    duration_median: float | None = None
    cost_median: float | None = None
    versus_control: stats.ZTest | None = None
    too_small: str | None = None  # why this arm's numbers cannot support a comparison yet

    @property
    def rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None

    @property
    def failed(self) -> int:
        return self.finished - self.succeeded

    @property
    def verdict(self) -> str:
        """Against the control, in words; the control has none."""
        if self.arm.is_control:
            return ""
        if self.too_small:
            return "too early to tell"
        if self.versus_control is None:
            return "no difference measurable"
        if not self.versus_control.significant:
            return "no significant difference"
        better = self.versus_control.z > 0
        return "significantly better" if better else "significantly worse"


@dataclass
class ExperimentResults:
    experiment: Experiment
    arms: list[ArmResult]
    assigned_runs: int
    overrode_all: int
    scope: str
    active_override: DefaultsOverride | None
    changes: list[DefaultsChange]
    alpha: float = stats.ALPHA
    min_finished: int = stats.MIN_FINISHED
    min_outcomes: int = stats.MIN_OUTCOMES

    @property
    def control(self) -> ArmResult | None:
        return next((a for a in self.arms if a.arm.is_control), None)

    @property
    def too_small(self) -> bool:
        return any(a.too_small for a in self.arms)


def experiment_results(*, experiment: Experiment) -> ExperimentResults:
    arms = list(experiment.arms.all())
    total_weight = sum(a.weight for a in arms) or 1
    by_arm = {a.pk: ArmResult(a, a.weight / total_weight) for a in arms}
    overrode_all = 0
    rows = (
        TrainingRun.objects.filter(experiment=experiment)
        .order_by()
        .values_list(
            "experiment_arm_id", "experiment_outcome", "status", "started_at", "completed_at",
            "charged_cost",
        )
    )  # fmt: skip
    for arm_id, outcome, status, started, completed, cost in rows.iterator(chunk_size=5000):
        if outcome == OVERRODE_ALL or arm_id not in by_arm:
            overrode_all += outcome == OVERRODE_ALL
            continue
        result = by_arm[arm_id]
        result.runs += 1
        if status in FINISHED_STATUSES:
            result.finished += 1
        if status == RunStatus.SUCCEEDED:
            result.succeeded += 1
            if started and completed:
                result.durations.append((completed - started).total_seconds())
            if cost is not None:
                result.costs.append(float(cost))
    results = list(by_arm.values())
    assigned = sum(r.runs for r in results)
    control = next((r for r in results if r.arm.is_control), None)
    for r in results:
        r.observed_share = r.runs / assigned if assigned else None
        r.interval = stats.wilson_interval(r.succeeded, r.finished)
        r.duration_median = stats.median(r.durations)
        r.cost_median = stats.median(r.costs)
        r.too_small = stats.too_small(r.succeeded, r.finished)
    for r in results:
        if control is not None and r is not control:
            r.versus_control = stats.two_proportion_z_test(
                r.succeeded, r.finished, control.succeeded, control.finished
            )
            if control.too_small and not r.too_small:
                r.too_small = f"the control is too small ({control.too_small})"
    active = (
        DefaultsOverride.objects.filter(
            ecosystem=experiment.ecosystem, base_model=experiment.base_model, active=True
        )
        .select_related("source_experiment", "source_arm")
        .first()
    )
    changes = list(
        DefaultsChange.objects.filter(
            ecosystem=experiment.ecosystem, base_model=experiment.base_model
        ).order_by("-created_at", "-id")[:10]
    )
    return ExperimentResults(
        experiment=experiment,
        arms=results,
        assigned_runs=assigned,
        overrode_all=overrode_all,
        scope=scope_label(experiment.ecosystem, experiment.base_model),
        active_override=active,
        changes=changes,
    )


def experiment_summaries() -> list[dict[str, Any]]:
    """The list page: each experiment with its run counts, one grouped query for all."""
    counts = {
        row["experiment_id"]: row
        for row in TrainingRun.objects.filter(experiment__isnull=False)
        .order_by()
        .values("experiment_id")
        .annotate(
            runs=Count("pk", filter=Q(experiment_outcome=ASSIGNED)),
            finished=Count(
                "pk", filter=Q(experiment_outcome=ASSIGNED, status__in=FINISHED_STATUSES)
            ),
        )
    }
    return [
        {
            "experiment": e,
            "scope": scope_label(e.ecosystem, e.base_model),
            "runs": counts.get(e.pk, {}).get("runs", 0),
            "finished": counts.get(e.pk, {}).get("finished", 0),
        }
        for e in experiment_list()
    ]
