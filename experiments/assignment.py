"""Which arm a user gets: a pure function of the experiment id, the user id and the arms' weights.

sha256 rather than hash(): Python salts str hashes per process, and the same user must land in
the same arm in every web process, every worker and every day of the experiment."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def bucket(experiment_id: int, user_id: int) -> int:
    """A uniform 64-bit number for this user in this experiment (independent across experiments,
    so the same users are not always the treated ones)."""
    digest = hashlib.sha256(f"experiment:{experiment_id}:user:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def assign(experiment_id: int, user_id: int, arms: Sequence[tuple[int, int]]) -> int | None:
    """The id of the arm for this user among (arm id, weight) pairs in their fixed order; None
    when no arm has weight. A point in [0, total) chosen by the bucket falls in one arm's span
    of the cumulative weights, so each arm gets weight/total of the users."""
    total = sum(max(0, w) for _, w in arms)
    if total <= 0:
        return None
    point = bucket(experiment_id, user_id) * total >> 64  # exact: floor(bucket / 2^64 * total)
    cumulative = 0
    for arm_id, weight in arms:
        cumulative += max(0, weight)
        if point < cumulative:
            return arm_id
    raise AssertionError("unreachable: point < total")  # pragma: no cover
