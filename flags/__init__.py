"""Feature flags: the registry, waffle-backed availability, user preferences and the rollout.

`is_feature_active(user, key)` is the one gate every caller uses (DESIGN.md §6)."""

from __future__ import annotations

from typing import Any


def is_feature_active(user: Any, key: str) -> bool:
    from flags.gates import is_feature_active as _gate

    return _gate(user, key)
