"""Every write to experiments and defaults. Each state change is a compare-and-set on the row or
happens under select_for_update, and drops the defaults snapshot (experiments.defaults)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments.defaults import invalidate, scope_defaults
from experiments.models import (
    Arm,
    DefaultsChange,
    DefaultsOverride,
    Experiment,
    ExperimentStatus,
)
from experiments.values import scope_label, value_problems


class ExperimentError(Exception):
    """The action makes no sense now; the message says why and what to do. Nothing changed."""


def _actor_name(actor: Any) -> str:
    return str(actor.get_username()) if actor is not None else "system"


def _already_running(experiment: Experiment) -> str:
    return (
        f"Another experiment is already running on ecosystem {experiment.ecosystem}; end it "
        "before starting this one (one experiment per ecosystem, so users get one set of defaults)."
    )


def experiment_problems(experiment: Experiment) -> list[str]:
    """What stops this experiment from starting: its arms, their values, its dates."""
    arms = list(experiment.arms.all())
    problems: list[str] = []
    if sum(1 for a in arms if a.is_control) != 1:
        problems.append("It needs exactly one control arm (no overrides).")
    if not any(not a.is_control for a in arms):
        problems.append("It needs at least one arm that overrides a default.")
    for arm in arms:
        if arm.weight <= 0:
            problems.append(f"Arm {arm.name}: give it a weight above 0.")
        try:
            arm.full_clean()  # values against today's catalog and active overrides
        except ValidationError as exc:
            for messages in exc.message_dict.values():
                problems.extend(f"Arm {arm.name}: {m}" for m in messages)
    if experiment.ends_at <= timezone.now():
        problems.append("Its end is in the past; move it later.")
    return problems


@transaction.atomic
def experiment_start(*, actor: Any, experiment: Experiment) -> Experiment:
    # The row lock makes the checks and the change one step against a concurrent start or edit.
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if locked.status != ExperimentStatus.DRAFT:
        raise ExperimentError(f"{locked.name} is {locked.status}; only a draft can start.")
    problems = experiment_problems(locked)
    if problems:
        raise ExperimentError(f"{locked.name} cannot start: " + " ".join(problems))
    if (
        Experiment.objects.filter(ecosystem=locked.ecosystem, status=ExperimentStatus.RUNNING)
        .exclude(pk=locked.pk)
        .exists()
    ):
        raise ExperimentError(_already_running(locked))
    try:
        # The partial unique index is the real guard: it refuses a concurrent start of another
        # experiment on the same ecosystem that passed the check above at the same moment.
        with transaction.atomic():
            changed = Experiment.objects.filter(pk=locked.pk, status=ExperimentStatus.DRAFT).update(
                status=ExperimentStatus.RUNNING, started_at=timezone.now(), started_by=actor
            )
    except IntegrityError as exc:
        raise ExperimentError(_already_running(locked)) from exc
    assert changed == 1  # we hold the row lock
    invalidate()
    locked.refresh_from_db()
    return locked


def experiment_end(*, actor: Any, experiment: Experiment) -> Experiment:
    # Compare-and-set: only a running experiment ends, once.
    changed = Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.RUNNING).update(
        status=ExperimentStatus.ENDED, ended_at=timezone.now(), ended_by=actor
    )
    if not changed:
        experiment.refresh_from_db()
        raise ExperimentError(f"{experiment.name} is {experiment.status}; only a running one ends.")
    invalidate()
    experiment.refresh_from_db()
    return experiment


def _replace_override(
    *,
    actor: Any,
    action: str,
    ecosystem: str,
    base_model: str,
    values: dict[str, Any],
    reason: str,
    experiment: Experiment | None = None,
    arm: Arm | None = None,
) -> DefaultsOverride:
    """Make `values` the active override of the scope, replacing the active one; audited.
    Call inside a transaction."""
    # Lock the scope's active override: two changes of one scope happen one after the other.
    # With none active there is nothing to lock; the partial unique index refuses the second.
    previous = (
        DefaultsOverride.objects.select_for_update()
        .filter(ecosystem=ecosystem, base_model=base_model, active=True)
        .first()
    )
    before = scope_defaults(ecosystem, base_model)
    if previous is not None:
        DefaultsOverride.objects.filter(pk=previous.pk, active=True).update(active=False)
    override = DefaultsOverride(
        ecosystem=ecosystem,
        base_model=base_model,
        values=values,
        active=True,
        replaced=previous,
        created_by=actor,
        source_experiment=experiment,
        source_arm=arm,
        reason=reason,
    )
    try:
        override.full_clean()  # the values again, against today's catalog
    except ValidationError as exc:
        raise ExperimentError(" ".join(m for ms in exc.message_dict.values() for m in ms)) from exc
    try:
        override.save(force_insert=True)
    except IntegrityError as exc:
        raise ExperimentError(
            f"The defaults of {scope_label(ecosystem, base_model)} changed at the same moment; "
            "reload and try again."
        ) from exc
    DefaultsChange.objects.create(
        actor=actor,
        actor_name=_actor_name(actor),
        action=action,
        ecosystem=ecosystem,
        base_model=base_model,
        values_before=before,
        values_after=scope_defaults(ecosystem, base_model),
        override=override,
        experiment=experiment,
        arm=arm,
        reason=reason,
    )
    invalidate()
    return override


@transaction.atomic
def experiment_promote(
    *, actor: Any, experiment: Experiment, arm: Arm, reason: str = ""
) -> DefaultsOverride:
    """The arm's values become the defaults of the experiment's scope; the experiment ends."""
    # Locked so that two moderators promoting at once produce one promotion.
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if arm.experiment_id != locked.pk:
        raise ExperimentError(f"Arm {arm.name} is not an arm of {locked.name}.")
    if arm.is_control:
        raise ExperimentError(
            "The control arm is the current defaults; end the experiment to keep them."
        )
    if locked.status == ExperimentStatus.DRAFT:
        raise ExperimentError(f"{locked.name} never ran; start it and collect results first.")
    if locked.promoted_arm_id is not None:
        raise ExperimentError(f"{locked.name} has already been promoted.")
    values = {
        **_scope_override_values(locked.ecosystem, locked.base_model),
        **arm.overrides,
    }
    override = _replace_override(
        actor=actor,
        action=DefaultsChange.Action.PROMOTE,
        ecosystem=locked.ecosystem,
        base_model=locked.base_model,
        values=values,
        reason=reason,
        experiment=locked,
        arm=arm,
    )
    now = timezone.now()
    updates: dict[str, Any] = {"status": ExperimentStatus.ENDED, "promoted_arm": arm}
    if locked.status == ExperimentStatus.RUNNING:
        updates.update(ended_at=now, ended_by=actor)
    Experiment.objects.filter(pk=locked.pk, promoted_arm__isnull=True).update(**updates)
    invalidate()
    return override


def _scope_override_values(ecosystem: str, base_model: str) -> dict[str, Any]:
    # Only this exact scope's layer: the new override replaces it and keeps what it did not test.
    row = (
        DefaultsOverride.objects.filter(ecosystem=ecosystem, base_model=base_model, active=True)
        .values_list("values", flat=True)
        .first()
    )
    return dict(row or {})


@transaction.atomic
def defaults_override_create(
    *, actor: Any, ecosystem: str, base_model: str, values: dict[str, Any], reason: str = ""
) -> DefaultsOverride:
    """A moderator's own new defaults for a scope (admin), replacing its active override."""
    running = Experiment.objects.filter(ecosystem=ecosystem, status=ExperimentStatus.RUNNING)
    if running.exists():
        raise ExperimentError(
            f"An experiment is running on ecosystem {ecosystem}; changing its defaults now would "
            "change its control arm. End or promote the experiment first."
        )
    return _replace_override(
        actor=actor,
        action=DefaultsChange.Action.MANUAL,
        ecosystem=ecosystem,
        base_model=base_model,
        values=values,
        reason=reason,
    )


@transaction.atomic
def defaults_override_rollback(
    *, actor: Any, override: DefaultsOverride, reason: str = ""
) -> DefaultsOverride | None:
    """Deactivate the active override and re-activate the one it replaced (None: the catalog's
    defaults apply again). Returns the override now active for the scope."""
    # Locked: a rollback and a promotion (or a second rollback) of one scope never interleave.
    current = DefaultsOverride.objects.select_for_update().get(pk=override.pk)
    if not current.active:
        raise ExperimentError(
            f"Override #{current.pk} is not active; only the active override can be rolled back."
        )
    before = scope_defaults(current.ecosystem, current.base_model)
    DefaultsOverride.objects.filter(pk=current.pk, active=True).update(active=False)
    restored: DefaultsOverride | None = None
    if current.replaced_id is not None:
        restored = DefaultsOverride.objects.select_for_update().get(pk=current.replaced_id)
        layered = (
            DefaultsOverride.active_values(current.ecosystem, "") if current.base_model else {}
        )
        problems = value_problems(
            ecosystem=restored.ecosystem,
            base_model=restored.base_model,
            values=restored.values,
            layered_on=layered,
        )
        if problems:
            raise ExperimentError(
                f"The override it replaced (#{restored.pk}) no longer fits the catalog: "
                + " ".join(problems)
                + " Create new defaults instead."
            )
        DefaultsOverride.objects.filter(pk=restored.pk, active=False).update(active=True)
    DefaultsChange.objects.create(
        actor=actor,
        actor_name=_actor_name(actor),
        action=DefaultsChange.Action.ROLLBACK,
        ecosystem=current.ecosystem,
        base_model=current.base_model,
        values_before=before,
        values_after=scope_defaults(current.ecosystem, current.base_model),
        override=current,
        experiment=current.source_experiment,
        arm=current.source_arm,
        reason=reason,
    )
    invalidate()
    if restored is not None:
        restored.refresh_from_db()
    return restored
