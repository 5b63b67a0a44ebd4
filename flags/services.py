"""Every write to flags: syncing the registry into waffle, user preferences, the rollout."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from waffle.models import Flag

from flags import conf
from flags.gates import is_feature_available
from flags.models import FeaturePreference, RolloutChange, RolloutStage, StagedFeature
from flags.registry import (
    FEATURES,
    GROUP_KEYWORDS,
    KEYWORDS,
    MEMBER,
    MOD,
    PAID_TIERS,
    PUBLIC,
    USER,
    Feature,
    feature_get,
)
from flags.stages import (
    GUARDED_AFTER,
    STAGE_KEYWORDS,
    STAGES,
    next_stage,
    previous_stage,
    stage_index,
    stage_label,
    stage_of_flag,
)

MIN_OVERRIDE_REASON = 10  # characters; "ok" or "test" is not a reason

# What group `mod` may do in admin, and nothing more: (app label, model, codename).
MOD_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("waffle", "flag", "view_flag"),
    ("waffle", "flag", "change_flag"),
    ("flags", "rolloutchange", "view_rolloutchange"),
    ("flags", "stagedfeature", "view_stagedfeature"),
    ("flags", "featurepreference", "view_featurepreference"),
    # Moderators view every run and cancel with a reason (training.admin's has_cancel_permission:
    # group `mod`); they never create or retry runs in another user's account.
    ("training", "trainingrun", "view_trainingrun"),
)
# Held by group `mod` before moderator powers were decided (#16 item 2); taken back at sync.
MOD_PERMISSIONS_WITHDRAWN: tuple[tuple[str, str], ...] = (("training", "change_trainingrun"),)


class FeatureNotToggleable(Exception):
    pass


class FeatureNotAvailable(Exception):
    pass


class RolloutError(Exception):
    """A stage change that makes no sense (unknown stage, wrong direction, no staged rollout)."""


class RolloutRefused(RolloutError):
    """The guard said no: too few finished runs or too low a success rate, and no override."""


# --- waffle rows --------------------------------------------------------------------------------


def _flush(flag: Flag) -> None:
    # Now, for this process inside the transaction, and again after commit, because another
    # process may re-cache the old row in between. m2m clear() would not flush at all (B.5).
    flag.flush()
    transaction.on_commit(flag.flush, using=flag._state.db or DEFAULT_DB_ALIAS)


def _group_names_for(keywords: frozenset[str]) -> set[str]:
    names = set(keywords & GROUP_KEYWORDS)
    if MEMBER in keywords:
        names.update(PAID_TIERS)
    return names


def _flag_write_availability(flag: Flag, keywords: frozenset[str], *, using: str) -> None:
    """Make a waffle row express these keywords. `granted` needs nothing: the row's user list is
    always honoured and never touched here."""
    # everyone: True only for `public`; False (off for everyone) when no keyword admits anybody;
    # otherwise None so that authenticated/groups/users decide.
    if PUBLIC in keywords:
        flag.everyone = True
    elif not keywords:
        flag.everyone = False
    else:
        flag.everyone = None
    flag.authenticated = USER in keywords
    # The gate ignores these; written anyway so waffle's own tools tell the same story.
    flag.superusers = False
    flag.staff = False
    flag.percent = None
    flag.save(using=using)
    # set() removes and adds, which waffle's m2m signal flushes; clear() would not.
    flag.groups.set(Group.objects.using(using).filter(name__in=_group_names_for(keywords)))
    _flush(flag)


def flag_set_availability(
    *, key: str, keywords: Iterable[str], using: str = DEFAULT_DB_ALIAS
) -> Flag:
    """Point a feature's waffle row at these availability keywords (creating the row if needed).
    For set-up and scripts; staged features move through rollout_set_stage, which audits."""
    feature = feature_get(key)
    if feature.rollout_engine is not None:
        # The stored stage is the truth for a staged feature; only the rollout service moves it.
        raise RolloutError(f"{feature.display_name} is staged: use rollout_set_stage.")
    wanted = frozenset(keywords)
    unknown = sorted(wanted - KEYWORDS)
    if unknown:
        raise ValueError(f"Unknown availability keyword(s): {', '.join(unknown)}.")
    with transaction.atomic(using=using):
        groups_ensure(using=using)
        Flag.objects.using(using).get_or_create(
            name=key, defaults={"note": feature.description, "superusers": False}
        )
        flag = Flag.objects.using(using).select_for_update().get(name=key)
        # The row now expresses exactly these keywords (its user list is kept).
        _flag_write_availability(flag, wanted, using=using)
    return flag


def groups_ensure(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    # The migration made these groups, but a test-database flush or a hand deletion removes them;
    # the keywords mean nothing without them.
    created = []
    for name in sorted(GROUP_KEYWORDS):
        _group, was_created = Group.objects.using(using).get_or_create(name=name)
        if was_created:
            created.append(name)
    return created


def mod_permissions_grant(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Give group `mod` the MOD_PERMISSIONS it lacks. Creates a permission row if post_migrate
    has not reached that app yet (Django's create_permissions then skips it)."""
    mod = Group.objects.using(using).get(name=MOD)
    have = set(mod.permissions.values_list("content_type__app_label", "codename").using(using))
    granted = []
    for app_label, model_name, codename in MOD_PERMISSIONS:
        if (app_label, codename) in have:
            continue
        try:
            model = global_apps.get_model(app_label, model_name)
        except LookupError:
            continue  # that app is not installed here
        content_type = ContentType.objects.db_manager(using).get_for_model(
            model, for_concrete_model=False
        )
        action = codename.split("_", 1)[0]
        permission, _created = Permission.objects.using(using).get_or_create(
            content_type=content_type,
            codename=codename,
            defaults={"name": f"Can {action} {model._meta.verbose_name_raw}"},
        )
        mod.permissions.add(permission)  # add only: never strips what an admin granted...
        granted.append(f"{app_label}.{codename}")
    # ...except what was decided against: "change" once let moderators retry others' runs.
    for app_label, codename in MOD_PERMISSIONS_WITHDRAWN:
        withdrawn = Permission.objects.using(using).filter(
            content_type__app_label=app_label, codename=codename
        )
        mod.permissions.remove(*withdrawn)
    return granted


@dataclass
class SyncReport:
    created_groups: list[str] = field(default_factory=list)
    created_flags: list[str] = field(default_factory=list)
    granted_permissions: list[str] = field(default_factory=list)


def features_sync(*, using: str = DEFAULT_DB_ALIAS) -> SyncReport:
    """Create what the registry declares and the database lacks. An existing flag row is never
    changed: its availability is the moderators' to edit."""
    report = SyncReport()
    with transaction.atomic(using=using):
        report.created_groups = groups_ensure(using=using)
        for key, feature in FEATURES.items():
            flag, created = Flag.objects.using(using).get_or_create(
                name=key, defaults={"note": feature.description, "superusers": False}
            )
            if feature.rollout_engine is not None:
                # A staged feature's row is a projection of its stored stage: (re)write it, so a
                # row edited or deleted outside the rollout service is put back.
                _stage_store_initial(feature, flag if not created else None, using=using)
                stage_project(key=key, using=using)
            elif created:
                # A new row starts at the registry's availability.
                _flag_write_availability(flag, frozenset(feature.availability), using=using)
            if created:
                report.created_flags.append(key)
        report.granted_permissions = mod_permissions_grant(using=using)
    return report


def _stage_store_initial(feature: Feature, flag: Flag | None, *, using: str) -> None:
    """The first stored stage: what an existing waffle row expresses, else the registry's."""
    if flag is not None:
        stage = stage_of_flag(flag)
    else:
        wanted = frozenset(feature.availability)
        stage = next((s for s in STAGES if STAGE_KEYWORDS[s] == wanted), RolloutStage.OFF)
    StagedFeature.objects.using(using).get_or_create(
        key=feature.key,
        defaults={
            "stage": stage,
            "changed_at": timezone.now(),
            "changed_by_name": "sync_features",
            "reason": "initial stage",
        },
    )


def stage_project(*, key: str, using: str = DEFAULT_DB_ALIAS) -> Flag:
    """Write the stored stage onto the feature's waffle row (creating the row if needed). The row
    is what the gate reads (flags.gates); this is the only code that writes a staged one."""
    feature = rollout_feature(key)
    with transaction.atomic(using=using):
        stored = StagedFeature.objects.using(using).get(key=key)
        Flag.objects.using(using).get_or_create(
            name=key, defaults={"note": feature.description, "everyone": False, "superusers": False}
        )
        flag = Flag.objects.using(using).select_for_update().get(name=key)
        _flag_write_availability(flag, STAGE_KEYWORDS[stored.stage], using=using)
        # The per-user grant list would let people past the stage: a staged row has none.
        flag.users.clear()
    return flag


def features_sync_after_migrate(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    tables = set(connections[using].introspection.table_names())
    needed = {Flag._meta.db_table, Group._meta.db_table, Permission._meta.db_table}
    if needed <= tables:  # a partial migrate (e.g. `migrate auth`) may not have made them yet
        features_sync(using=using)


# --- preferences --------------------------------------------------------------------------------


def preference_set(*, user: Any, key: str, enabled: bool) -> FeaturePreference:
    """Raises UnknownFeature, FeatureNotToggleable or FeatureNotAvailable."""
    feature = feature_get(key)
    if not feature.toggleable:
        raise FeatureNotToggleable(f"{feature.display_name} cannot be switched on or off.")
    if not is_feature_available(user, key):
        raise FeatureNotAvailable(f"{feature.display_name} is not available to you yet.")
    # One row per (user, key); the gate reads it on the user's next check.
    preference, _created = FeaturePreference.objects.update_or_create(
        user=user, key=key, defaults={"enabled": enabled}
    )
    return preference


# --- rollout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuccessRate:
    succeeded: int
    finished: int

    @property
    def rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None


# The evidence the guard reads: succeeded and finished runs of an engine over the last `days`
# days. Runs live above flags, so the app that knows them registers the counter at start-up
# (console.apps); flags never imports them. Without one the guard sees no runs and refuses.
EvidenceSource = Callable[..., SuccessRate]
_evidence: dict[str, EvidenceSource] = {}


def rollout_evidence_register(source: EvidenceSource) -> None:
    _evidence["runs"] = source


def _success_rate(*, engine: str, days: int) -> SuccessRate:
    source = _evidence.get("runs")
    if source is None:
        return SuccessRate(0, 0)
    return source(engine=engine, days=days)


@dataclass(frozen=True)
class RolloutGuard:
    """The one guard: promotion past moderators needs at least `min_rate` success on at least
    `min_runs` finished runs of the feature's engine in the last `window_days` days. The rollout
    service, the admin panel, the `rollout` command, the dashboard and /metrics all read it."""

    engine: str
    numbers: SuccessRate
    window_days: int
    min_rate: float
    min_runs: int

    @property
    def succeeded(self) -> int:
        return self.numbers.succeeded

    @property
    def finished(self) -> int:
        return self.numbers.finished

    @property
    def rate(self) -> float | None:
        return self.numbers.rate

    @property
    def passes(self) -> bool:
        rate = self.numbers.rate
        return self.numbers.finished >= self.min_runs and rate is not None and rate >= self.min_rate

    def explain(self) -> str:
        n = self.numbers
        seen = (
            f"{n.succeeded} of {n.finished} finished runs succeeded ({n.rate:.0%})"
            if n.rate is not None
            else "no finished runs"
        )
        return (
            f"{seen} in the last {self.window_days} days; promotion past moderators needs at "
            f"least {self.min_rate:.0%} on at least {self.min_runs} finished runs."
        )


def rollout_feature(key: str) -> Feature:
    feature = feature_get(key)
    if feature.rollout_engine is None:
        raise RolloutError(f"{feature.display_name} has no staged rollout.")
    return feature


def rollout_guard(*, key: str) -> RolloutGuard:
    feature = rollout_feature(key)
    assert feature.rollout_engine is not None
    days = conf.rollout_window_days()
    return RolloutGuard(
        engine=feature.rollout_engine,
        numbers=_success_rate(engine=feature.rollout_engine, days=days),
        window_days=days,
        min_rate=conf.rollout_min_success_rate(),
        min_runs=conf.rollout_min_finished_runs(),
    )


def rollout_stage(*, key: str) -> str:
    """The stored stage (off when the feature was never staged here)."""
    rollout_feature(key)
    stored = StagedFeature.objects.filter(key=key).values_list("stage", flat=True).first()
    return stored or RolloutStage.OFF


def rollout_set_stage(
    *,
    actor: Any,
    key: str,
    to_stage: str,
    reason: str = "",
    via: str = RolloutChange.Via.ADMIN,
    actor_name: str = "",
) -> RolloutChange:
    """Move a feature to any stage. Forward past `mods` needs the guard to pass or an override
    reason; backward always works at once. Raises RolloutError / RolloutRefused."""
    feature = rollout_feature(key)
    if to_stage not in STAGES:
        raise RolloutError(f"Unknown stage {to_stage!r}; use one of {', '.join(STAGES)}.")
    reason = reason.strip()
    with transaction.atomic():
        groups_ensure()
        StagedFeature.objects.get_or_create(
            key=key,
            defaults={"stage": RolloutStage.OFF, "changed_at": timezone.now()},
        )
        # Row lock on the stored stage: two moderators clicking at once serialise, and
        # from_stage is the stage we change.
        stored = StagedFeature.objects.select_for_update().get(key=key)
        from_stage = stored.stage
        if to_stage == from_stage:
            raise RolloutError(
                f"{feature.display_name} is already at stage {stage_label(to_stage)}."
            )
        guard = rollout_guard(key=key)
        override_used = False
        forward = stage_index(to_stage) > stage_index(from_stage)
        if forward and stage_index(to_stage) > stage_index(GUARDED_AFTER) and not guard.passes:
            if len(reason) < MIN_OVERRIDE_REASON:
                raise RolloutRefused(
                    f"Not promoted: {guard.explain()} To promote anyway, write a reason of at "
                    f"least {MIN_OVERRIDE_REASON} characters."
                )
            override_used = True
        who = actor.get_username() if actor is not None else (actor_name or "unknown")
        # The stage change itself, on the stored row (the source of truth)...
        stored.stage = to_stage
        stored.changed_at = timezone.now()
        stored.changed_by = actor if actor is not None and actor.is_authenticated else None
        stored.changed_by_name = who
        stored.reason = reason
        stored.save()
        # ...then onto waffle's row, which the gate reads: it now admits exactly this audience.
        stage_project(key=key)
        # The audit record, with the numbers as they were when the change was made.
        return RolloutChange.objects.create(
            actor=actor if actor is not None and actor.is_authenticated else None,
            actor_name=who,
            via=via,
            feature_key=key,
            from_stage=from_stage,
            to_stage=to_stage,
            reason=reason,
            success_rate=guard.numbers.rate,
            succeeded_runs=guard.numbers.succeeded,
            finished_runs=guard.numbers.finished,
            window_days=guard.window_days,
            override_used=override_used,
        )


def rollout_promote(
    *,
    actor: Any,
    key: str,
    to_stage: str | None = None,
    reason: str = "",
    via: str = RolloutChange.Via.ADMIN,
    actor_name: str = "",
) -> RolloutChange:
    """Forward only; to_stage defaults to the next stage."""
    current = rollout_stage(key=key)
    target = to_stage or next_stage(current)
    if target is None:
        raise RolloutError("Already at the last stage.")
    if target in STAGES and stage_index(target) <= stage_index(current):
        raise RolloutError(
            f"{stage_label(target)} is not after {stage_label(current)}; roll back instead."
        )
    return rollout_set_stage(
        actor=actor, key=key, to_stage=target, reason=reason, via=via, actor_name=actor_name
    )


def rollout_rollback(
    *,
    actor: Any,
    key: str,
    to_stage: str | None = None,
    reason: str = "",
    via: str = RolloutChange.Via.ADMIN,
    actor_name: str = "",
) -> RolloutChange:
    """Backward only, never guarded; to_stage defaults to the previous stage."""
    current = rollout_stage(key=key)
    target = to_stage or previous_stage(current)
    if target is None:
        raise RolloutError("Already off.")
    if target in STAGES and stage_index(target) >= stage_index(current):
        raise RolloutError(
            f"{stage_label(target)} is not before {stage_label(current)}; promote instead."
        )
    return rollout_set_stage(
        actor=actor, key=key, to_stage=target, reason=reason, via=via, actor_name=actor_name
    )
