"""Assignment: deterministic per user and experiment, the same in another process, and true to
the split."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from experiments.assignment import assign, bucket
from experiments.defaults import CACHE_KEY, effective_defaults, snapshot
from experiments.models import Experiment
from experiments.services import defaults_override_create, experiment_end
from tests.experiments.conftest import LONGER, arm_named, make_experiment

ROOT = Path(__file__).resolve().parents[2]
SPLIT = [(11, 50), (12, 30), (13, 20)]


def test_the_same_user_gets_the_same_arm_on_every_call() -> None:
    first = [assign(7, user_id, SPLIT) for user_id in range(1, 200)]
    again = [assign(7, user_id, list(SPLIT)) for user_id in range(1, 200)]
    assert first == again
    assert set(first) == {11, 12, 13}


def test_another_process_with_another_hash_seed_assigns_the_same_arms() -> None:
    users = list(range(1, 60))
    code = (
        "from experiments.assignment import assign;"
        f"print(','.join(str(assign(7, u, {SPLIT!r})) for u in {users!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == ",".join(str(assign(7, u, SPLIT)) for u in users)


@pytest.mark.parametrize("experiment_id", [1, 2, 977])
def test_ten_thousand_users_follow_a_50_30_20_split_within_two_points(experiment_id: int) -> None:
    counts = Counter(assign(experiment_id, user_id, SPLIT) for user_id in range(1, 10_001))
    for arm_id, weight in SPLIT:
        assert abs(counts[arm_id] / 10_000 - weight / 100) <= 0.02, counts


def test_experiments_shuffle_users_independently() -> None:
    # Otherwise the same users would always be the treated ones, experiment after experiment.
    same = sum(bucket(1, u) % 2 == bucket(2, u) % 2 for u in range(1, 2001))
    assert 900 < same < 1100


def test_no_weight_no_arm() -> None:
    assert assign(1, 1, [(1, 0), (2, 0)]) is None


@pytest.mark.django_db
def test_a_user_keeps_their_arm_across_requests_and_cache_rebuilds(
    flux_experiment: Experiment, in_arm: Callable[..., User]
) -> None:
    user = in_arm(flux_experiment, "longer")
    longer = arm_named(flux_experiment, "longer")
    seen = set()
    for _ in range(3):
        chosen = effective_defaults(user=user, base_model="flux_dev")
        seen.add((chosen.experiment_id, chosen.arm_id))
        cache.delete(CACHE_KEY)
    assert seen == {(flux_experiment.pk, longer.pk)}
    assert effective_defaults(user=user, base_model="flux_dev").values == LONGER
    assert effective_defaults(user=user, base_model="sdxl").arm_id is None  # another ecosystem


@pytest.mark.django_db
def test_anonymous_users_get_no_arm(flux_experiment: Experiment) -> None:
    chosen = effective_defaults(user=AnonymousUser(), base_model="flux_dev")
    assert (chosen.experiment_id, chosen.arm_id, chosen.values) == (None, None, {})


@pytest.mark.django_db
def test_the_snapshot_costs_one_query_on_a_miss_and_none_when_cached(
    flux_experiment: Experiment, owner: User
) -> None:
    experiment_end(actor=None, experiment=flux_experiment)
    defaults_override_create(actor=None, ecosystem="sdxl", base_model="", values={"networkDim": 48})
    make_experiment(arms=[("control", 1, {}), ("dim", 1, {"networkDim": 24})], start=True)
    cache.delete(CACHE_KEY)
    with CaptureQueriesContext(connection) as miss:
        snap = snapshot()
    with CaptureQueriesContext(connection) as hit:
        assert snapshot() == snap
    assert (len(miss.captured_queries), len(hit.captured_queries)) == (1, 0)
    assert snap.overrides == {("sdxl", ""): {"networkDim": 48}}
    assert [[a.overrides for a in e.arms] for e in snap.experiments] == [[{}, {"networkDim": 24}]]


@pytest.mark.django_db
def test_an_experiment_outside_its_window_assigns_nobody(
    flux_experiment: Experiment, in_arm: Callable[..., User]
) -> None:
    user = in_arm(flux_experiment, "longer")
    after = flux_experiment.ends_at + timedelta(seconds=1)
    before = flux_experiment.starts_at - timedelta(seconds=1)
    assert effective_defaults(user=user, base_model="flux_dev", now=after).arm_id is None
    assert effective_defaults(user=user, base_model="flux_dev", now=before).arm_id is None
