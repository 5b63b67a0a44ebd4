"""Reads for the moderator's rollout panel and the `rollout` command."""

from __future__ import annotations

from dataclasses import dataclass

from waffle.models import Flag

from flags import env
from flags.env import Availability
from flags.models import RolloutChange
from flags.registry import MOD, PAID_TIERS, Feature
from flags.services import RolloutGuard, rollout_feature, rollout_guard, rollout_stage
from flags.stages import (
    GUARDED_AFTER,
    next_stage,
    previous_stage,
    stage_index,
    stage_label,
)


@dataclass(frozen=True)
class RolloutStatus:
    feature: Feature
    stage: str
    stage_label: str
    next_stage: str | None
    previous_stage: str | None
    audience: str  # who can use it now, in words
    group_names: list[str]
    granted_users: list[str]
    guard: RolloutGuard
    env_override: Availability | None
    recent_changes: list[RolloutChange]

    @property
    def next_stage_label(self) -> str:
        return stage_label(self.next_stage) if self.next_stage else ""

    @property
    def previous_stage_label(self) -> str:
        return stage_label(self.previous_stage) if self.previous_stage else ""

    @property
    def next_needs_guard(self) -> bool:
        return self.next_stage is not None and stage_index(self.next_stage) > stage_index(
            GUARDED_AFTER
        )


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def audience_in_words(flag: Flag | None, group_names: set[str], granted: list[str]) -> str:
    """Mirror of the gate's reading of a waffle row (flags.gates._available_by_flag)."""
    if flag is None or not flag.pk:
        return "Nobody: the flag row does not exist."
    if flag.everyone is False:
        return "Nobody: switched off for everyone."
    if flag.everyone is True:
        return "Everyone, including visitors who are not logged in."
    if flag.authenticated:
        return "Every logged-in user."
    parts: list[str] = []
    if MOD in group_names:
        parts.append("moderators")
    tiers = [t for t in PAID_TIERS if t in group_names]
    if tiers == list(PAID_TIERS):
        parts.append("all paid members: bronze, silver and gold")
    elif tiers:
        parts.append(_join(tiers) + " members")
    others = sorted(group_names - {MOD, *PAID_TIERS})
    if others:
        parts.append("members of group " + _join(others))
    if granted:
        parts.append(f"{len(granted)} individually granted user(s)")
    if not parts:
        return "Nobody: no groups and no users are listed."
    sentence = _join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def rollout_status(*, key: str, recent: int = 10) -> RolloutStatus:
    feature = rollout_feature(key)
    # From the database, not waffle's cache: a moderator deciding should see the committed row.
    flag = Flag.objects.filter(name=key).prefetch_related("groups", "users").first()
    group_names = {g.name for g in flag.groups.all()} if flag else set()
    granted = sorted(u.get_username() for u in flag.users.all()) if flag else []
    stage = rollout_stage(key=key)  # the stored stage; the waffle row is its projection
    return RolloutStatus(
        feature=feature,
        stage=stage,
        stage_label=stage_label(stage),
        next_stage=next_stage(stage),
        previous_stage=previous_stage(stage),
        audience=audience_in_words(flag, group_names, granted),
        group_names=sorted(group_names),
        granted_users=granted,
        guard=rollout_guard(key=key),
        env_override=env.override_for(key),
        recent_changes=list(RolloutChange.objects.filter(feature_key=key)[:recent]),
    )
