"""Rollout stages and how each maps onto availability keywords and a waffle row."""

from __future__ import annotations

from waffle.models import Flag

from flags.models import RolloutStage
from flags.registry import MOD, PAID_TIERS, USER

STAGES: tuple[str, ...] = (
    RolloutStage.OFF,
    RolloutStage.MODS,
    RolloutStage.PAID,
    RolloutStage.EVERYONE,
)
# ai-toolkit-plan §2.1 "Rollout Strategy"; paid keeps the moderators who tested it.
STAGE_KEYWORDS: dict[str, frozenset[str]] = {
    RolloutStage.OFF: frozenset(),
    RolloutStage.MODS: frozenset({MOD}),
    RolloutStage.PAID: frozenset({MOD, *PAID_TIERS}),
    RolloutStage.EVERYONE: frozenset({USER}),
}
# Promotion to a stage after this one needs the success-rate guard (or an override reason).
GUARDED_AFTER = RolloutStage.MODS


def stage_index(stage: str) -> int:
    return STAGES.index(stage)


def stage_label(stage: str) -> str:
    return str(RolloutStage(stage).label)


def next_stage(stage: str) -> str | None:
    i = stage_index(stage)
    return STAGES[i + 1] if i + 1 < len(STAGES) else None


def previous_stage(stage: str) -> str | None:
    i = stage_index(stage)
    return STAGES[i - 1] if i > 0 else None


def stage_of_flag(flag: Flag | None, group_names: set[str] | None = None) -> str:
    """The stage a waffle row is at. Rows edited by hand land on the highest stage they match:
    everyone=False or no row -> off; everyone=True or authenticated -> everyone; groups including
    every paid tier -> paid; group mod -> mods; anything else -> off."""
    if flag is None or not flag.pk or flag.everyone is False:
        return RolloutStage.OFF
    if flag.everyone is True or flag.authenticated:
        return RolloutStage.EVERYONE
    names = (
        group_names if group_names is not None else set(flag.groups.values_list("name", flat=True))
    )
    if set(PAID_TIERS) <= names:
        return RolloutStage.PAID
    if MOD in names:
        return RolloutStage.MODS
    return RolloutStage.OFF
