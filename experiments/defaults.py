"""The effective AI Toolkit defaults for a user: catalog <- active overrides <- the user's arm.

Read on every catalog request and every AI Toolkit run, so it costs one cache.get: a snapshot of
the running experiments (with their arms) and the active overrides lives in the shared cache,
dropped whenever one of those rows changes (experiments.signals, experiments.services) and
rebuilt by one query on a miss. Whether an experiment is in effect (start <= now < end) is
decided at read time, so the snapshot never goes stale by the clock alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import models, transaction
from django.db.models import Value
from django.utils import timezone

from experiments.assignment import assign
from experiments.models import Arm, DefaultsOverride, ExperimentStatus
from experiments.values import scope_specs, valid_only
from vocabulary import catalog
from vocabulary.catalog import ParamValue

CACHE_KEY = "experiments:snapshot:v1"  # bump the version when the snapshot's shape changes
# A safety net only: every change drops the key; this bounds a rebuild that raced a change.
CACHE_SECONDS = 120


@dataclass(frozen=True)
class ArmSnap:
    id: int
    weight: int
    overrides: dict[str, ParamValue]


@dataclass(frozen=True)
class ExperimentSnap:
    id: int
    ecosystem: str
    base_model: str
    starts_at: datetime
    ends_at: datetime
    arms: tuple[ArmSnap, ...]

    @property
    def tested(self) -> frozenset[str]:
        return frozenset(name for arm in self.arms for name in arm.overrides)

    def covers(self, base: catalog.BaseModel, moment: datetime) -> bool:
        return (
            self.ecosystem == base.ecosystem
            and self.base_model in ("", base.key)
            and self.starts_at <= moment < self.ends_at
        )


@dataclass(frozen=True)
class Snapshot:
    experiments: tuple[ExperimentSnap, ...] = ()
    # (ecosystem, base model or "") -> values of the active override
    overrides: dict[tuple[str, str], dict[str, ParamValue]] = field(default_factory=dict)


@dataclass(frozen=True)
class EffectiveDefaults:
    values: dict[str, ParamValue]  # only what differs from the catalog's own defaults
    experiment_id: int | None = None
    arm_id: int | None = None
    tested: frozenset[str] = frozenset()


def _build() -> Snapshot:
    # One query: the running experiments' arms and the active overrides, as one UNION ALL.
    null_time = Value(None, output_field=models.DateTimeField())
    arms = (
        Arm.objects.filter(experiment__status=ExperimentStatus.RUNNING)
        .order_by()
        .values_list(
            Value("arm"), "id", "experiment_id", "experiment__ecosystem",
            "experiment__base_model", "experiment__starts_at", "experiment__ends_at", "weight",
            "position", "overrides",
        )
    )  # fmt: skip
    overrides = (
        DefaultsOverride.objects.filter(active=True)
        .order_by()
        .values_list(
            Value("override"), "id", Value(None, output_field=models.BigIntegerField()),
            "ecosystem", "base_model", null_time, null_time, Value(0), Value(0), "values",
        )
    )  # fmt: skip
    rows = list(arms.union(overrides, all=True))
    by_experiment: dict[int, list[tuple[Any, ...]]] = {}
    found: dict[tuple[str, str], dict[str, ParamValue]] = {}
    for kind, pk, exp_id, eco, base_model, starts, ends, weight, position, values in rows:
        if kind == "override":
            found[(eco, base_model)] = valid_only(
                ecosystem=eco, base_model=base_model, values=values or {}
            )
        else:
            by_experiment.setdefault(exp_id, []).append(
                (position, pk, eco, base_model, starts, ends, weight, values)
            )
    experiments = []
    for exp_id, arm_rows in sorted(by_experiment.items()):
        arm_rows.sort(key=lambda r: (r[0], r[1]))  # the arms' fixed order (Arm.Meta.ordering)
        _, _, eco, base_model, starts, ends, _, _ = arm_rows[0]
        arm_snaps = tuple(
            ArmSnap(
                pk,
                weight,
                valid_only(ecosystem=eco, base_model=base_model, values=values or {}),
            )
            for _, pk, _, _, _, _, weight, values in arm_rows
        )
        experiments.append(ExperimentSnap(exp_id, eco, base_model, starts, ends, arm_snaps))
    return Snapshot(tuple(experiments), found)


def snapshot() -> Snapshot:
    snap = cache.get(CACHE_KEY)
    if isinstance(snap, Snapshot):
        return snap
    snap = _build()
    cache.set(CACHE_KEY, snap, CACHE_SECONDS)
    return snap


def invalidate() -> None:
    # Now, so this process (and a test inside one transaction) sees the change at once; and again
    # after commit, because another process may have rebuilt from the old rows in between.
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


def effective_defaults(
    *,
    user: Any,
    base_model: str,
    snap: Snapshot | None = None,
    now: datetime | None = None,
) -> EffectiveDefaults:
    """What a run on this base model with AI Toolkit gets for each parameter it omits, as
    replacements of the catalog's defaults; with the experiment and arm that chose them."""
    base = catalog.BASE_MODELS.get(base_model)
    if base is None or not base.ecosystem:
        return EffectiveDefaults({})
    snap = snap if snap is not None else snapshot()
    values: dict[str, ParamValue] = {
        **snap.overrides.get((base.ecosystem, ""), {}),
        **snap.overrides.get((base.ecosystem, base.key), {}),
    }
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    if user_id is None or not snap.experiments:
        return EffectiveDefaults(values)
    moment = now or timezone.now()
    for experiment in snap.experiments:
        if not experiment.covers(base, moment):
            continue
        arm_id = assign(experiment.id, user_id, [(a.id, a.weight) for a in experiment.arms])
        arm = next((a for a in experiment.arms if a.id == arm_id), None)
        if arm is None:
            break
        return EffectiveDefaults(
            {**values, **arm.overrides}, experiment.id, arm.id, experiment.tested
        )
    return EffectiveDefaults(values)


def scope_defaults(ecosystem: str, base_model: str = "") -> dict[str, ParamValue]:
    """Every editable default of a scope as runs get it now (catalog <- overrides), for audit."""
    specs = scope_specs(ecosystem, base_model)
    merged = {name: s.default for name, s in specs.items() if not s.locked}
    merged.update(DefaultsOverride.active_values(ecosystem, base_model))
    return merged
