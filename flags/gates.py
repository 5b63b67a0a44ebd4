"""The one gate: is a feature active for this user (DESIGN.md §6). Every caller asks here.

Order: the environment override (flags.env) if set, else the waffle `Flag` row; then, for a
toggleable feature, the user's own preference (registry default when they never chose).

We decide the pitfalls of django-practice B.5 before asking waffle (a missing row answers True for
superusers or raises, `everyone=False` does not beat groups outside a request (waffle #575),
`superusers` defaults to True, `percent` rolls dice per request), then ask its public
`is_active_for_user` only for the user list and the groups, with `staff` and `superusers` off. Here:

- a missing row is off;
- `everyone` True/False wins over everything else (True includes anonymous visitors);
- then `authenticated`, the row's `users` (keyword `granted`) and its `groups`;
- `superusers`, `staff`, `percent`, `testing` and `languages` are ignored: superusers and staff get
  only what a group or the user list gives them (docs/flags.md).

Queries: the row and its user/group ids come from waffle's cache (the shared Django cache); the
user's groups and preferences cost one query each, loaded only when needed."""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from typing import Any

from waffle.models import Flag

from flags import env
from flags.models import FeaturePreference
from flags.registry import (
    FEATURES,
    GRANTED,
    GROUP_KEYWORDS,
    MEMBER,
    PAID_TIERS,
    PUBLIC,
    USER,
    Feature,
    feature_get,
)


@dataclass(frozen=True)
class FeatureState:
    available: bool  # the availability rules admit this user
    toggleable: bool
    # The user's choice (registry default if none) for an available toggleable feature; None when
    # there is nothing to choose (not toggleable, not available, or anonymous).
    enabled_preference: bool | None
    active: bool  # what callers gate on


class _Viewer:
    """What the gate needs to know about one user, each part loaded on first use, once."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.authenticated = user is not None and bool(user.is_authenticated)
        self._groups: dict[int, str] | None = None
        self._preferences: dict[str, bool] | None = None

    def _load_groups(self) -> dict[int, str]:
        if self._groups is None:
            # Live, never cached: adding someone to a group takes effect on their next request.
            self._groups = dict(self.user.groups.values_list("pk", "name"))
        return self._groups

    def group_names(self) -> set[str]:
        return set(self._load_groups().values())

    def preference(self, feature: Feature) -> bool:
        if self._preferences is None:
            self._preferences = dict(
                FeaturePreference.objects.filter(user=self.user).values_list("key", "enabled")
            )
        return self._preferences.get(feature.key, feature.default)


def _available_by_flag(viewer: _Viewer, feature: Feature) -> bool:
    flag = Flag.get(feature.key)
    if not flag.pk:  # missing row: off (waffle's own lookups would say yes to superusers)
        return False
    if flag.everyone is not None:  # set for everyone wins, also outside a request
        return bool(flag.everyone)
    if not viewer.authenticated:
        return False
    if flag.authenticated:
        return True
    # Waffle's public per-user answer (its user list, then its groups, both from its cache) on a
    # copy with the switches this gate ignores turned off, so staff and superusers get only what
    # the list or a group gives them.
    probe = copy(flag)
    probe.staff = probe.superusers = False
    return bool(probe.is_active_for_user(viewer.user))


def _available_by_keywords(viewer: _Viewer, feature: Feature, keywords: frozenset[str]) -> bool:
    if PUBLIC in keywords:
        return True
    if not viewer.authenticated:
        return False
    if USER in keywords:
        return True
    if GRANTED in keywords:
        flag = Flag.get(feature.key)
        if flag.pk and flag.users.filter(pk=viewer.user.pk).exists():
            return True
    groups = set(keywords & GROUP_KEYWORDS)
    if MEMBER in keywords:
        groups.update(PAID_TIERS)
    return bool(groups) and bool(groups & viewer.group_names())


def _state(viewer: _Viewer, feature: Feature) -> FeatureState:
    if feature.toggleable and not viewer.authenticated:
        # Anonymous visitors have no preference to store, so they never get a toggleable feature.
        return FeatureState(False, True, None, False)
    override = env.override_for(feature.key)
    if override is not None:
        available = _available_by_keywords(viewer, feature, override.keywords)
    else:
        available = _available_by_flag(viewer, feature)
    if not available:
        return FeatureState(False, feature.toggleable, None, False)
    if not feature.toggleable:
        return FeatureState(True, False, None, True)
    enabled = viewer.preference(feature)
    return FeatureState(True, True, enabled, enabled)


def feature_state(user: Any, key: str) -> FeatureState:
    """Raises flags.registry.UnknownFeature for a key the registry does not declare."""
    return _state(_Viewer(user), feature_get(key))


def feature_states(user: Any) -> dict[str, FeatureState]:
    """Every registered feature for one user; the user's groups and preferences load once."""
    viewer = _Viewer(user)
    return {key: _state(viewer, feature) for key, feature in FEATURES.items()}


def is_feature_available(user: Any, key: str) -> bool:
    """The availability rules alone, without the user's preference."""
    return feature_state(user, key).available


def is_feature_active(user: Any, key: str) -> bool:
    return feature_state(user, key).active
