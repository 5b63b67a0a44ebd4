"""Tiers and moderators are auth groups (`mod`, `bronze`, `silver`, `gold`), assigned in admin."""

from __future__ import annotations

from typing import Any

from flags.registry import MOD, PAID_TIERS

FREE = "free"


def user_group_names(user: Any) -> set[str]:
    if user is None or not user.is_authenticated:
        return set()
    return set(user.groups.values_list("name", flat=True))


def user_tier(user: Any) -> str:
    """The highest paid tier group the user is in: "gold", "silver", "bronze", else "free"."""
    names = user_group_names(user)
    for tier in reversed(PAID_TIERS):  # highest first
        if tier in names:
            return tier
    return FREE


def is_moderator(user: Any) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return bool(user.groups.filter(name=MOD).exists())


def can_moderate(user: Any) -> bool:
    """Moderators' pages and admin: the `mod` group, or a superuser."""
    return bool(user.is_authenticated and (user.is_superuser or is_moderator(user)))
