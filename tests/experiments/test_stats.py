"""The statistics against values worked out independently (statistics.NormalDist, by hand)."""

from __future__ import annotations

import math

import pytest

from experiments import stats


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (30, 40, 0.5981, 0.8581),
        (38, 40, 0.8350, 0.9862),
        (81, 100, 0.7222, 0.8749),
    ],
)
def test_wilson_interval_to_four_decimals(successes: int, n: int, low: float, high: float) -> None:
    interval = stats.wilson_interval(successes, n)
    assert interval is not None
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_no_trials_no_interval() -> None:
    assert stats.wilson_interval(0, 0) is None


def test_normal_cdf() -> None:
    assert stats.normal_cdf(0) == 0.5
    assert round(stats.normal_cdf(stats.Z_95), 6) == 0.975
    assert round(stats.normal_cdf(-1), 6) == 0.158655


def test_two_proportion_z_test_significant() -> None:
    # 38/40 against 30/40: pooled 68/80 = 0.85, se = sqrt(0.85·0.15·(1/40 + 1/40)) = 0.079844.
    test = stats.two_proportion_z_test(38, 40, 30, 40)
    assert test is not None
    assert round(test.z, 4) == 2.5049
    assert round(test.p_value, 4) == 0.0122
    assert test.significant


def test_two_proportion_z_test_not_significant_and_symmetric() -> None:
    test = stats.two_proportion_z_test(33, 40, 30, 40)
    assert test is not None
    assert (round(test.z, 4), round(test.p_value, 4)) == (0.8199, 0.4123)
    assert not test.significant
    mirrored = stats.two_proportion_z_test(30, 40, 33, 40)
    assert mirrored is not None
    assert math.isclose(mirrored.z, -test.z) and math.isclose(mirrored.p_value, test.p_value)


def test_unequal_sizes() -> None:
    test = stats.two_proportion_z_test(45, 60, 30, 50)
    assert test is not None
    assert (round(test.z, 4), round(test.p_value, 4)) == (1.6818, 0.0926)


@pytest.mark.parametrize(("s1", "n1", "s2", "n2"), [(0, 0, 3, 5), (5, 5, 9, 9), (0, 7, 0, 3)])
def test_undefined_tests_return_none(s1: int, n1: int, s2: int, n2: int) -> None:
    assert stats.two_proportion_z_test(s1, n1, s2, n2) is None


@pytest.mark.parametrize(
    ("successes", "finished", "reason"),
    [
        (20, 29, "29 finished runs; at least 30 are needed"),
        (4, 40, "4 successes; at least 5 are needed"),
        (36, 40, "4 failures; at least 5 are needed"),
        (35, 40, None),
        (5, 30, None),
    ],
)
def test_small_sample_rule(successes: int, finished: int, reason: str | None) -> None:
    assert stats.too_small(successes, finished) == reason


def test_median() -> None:
    assert stats.median([]) is None
    assert stats.median([3, 1, 2]) == 2.0
    assert stats.median([4, 1, 3, 2]) == 2.5
