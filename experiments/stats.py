"""The statistics of the results page, in plain Python (math.erf for the normal CDF).

- Success rate p = s / n over finished runs, with the Wilson score interval at 95 %:
  centre (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
- Arm against control: the two-proportion z-test with the pooled rate, two-sided:
  p̂ = (s1 + s2) / (n1 + n2), z = (p1 - p2) / sqrt(p̂(1-p̂)(1/n1 + 1/n2)),
  p-value = 2·(1 - Φ(|z|)), significant when p-value < α = 0.05.
- Small samples: the normal approximation behind both needs enough of each outcome, so a
  comparison says nothing while either arm has fewer than MIN_FINISHED finished runs or fewer
  than MIN_OUTCOMES successes or failures (the usual n·p ≥ 5 and n·(1-p) ≥ 5 rule, plus a floor)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05
Z_95 = 1.959963984540054  # Φ⁻¹(0.975)
MIN_FINISHED = 30
MIN_OUTCOMES = 5


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = Z_95) -> Interval | None:
    """None without any trial: there is no rate to bound."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def two_proportion_z_test(s1: int, n1: int, s2: int, n2: int, alpha: float = ALPHA) -> ZTest | None:
    """Arm (s1 of n1) against control (s2 of n2). None when undefined: an empty arm, or every
    run of both arms with the same outcome (zero variance, no evidence of a difference)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (s1 + s2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return None
    z = (s1 / n1 - s2 / n2) / math.sqrt(variance)
    p_value = 2.0 * (1.0 - normal_cdf(abs(z)))
    return ZTest(z=z, p_value=min(1.0, max(0.0, p_value)), alpha=alpha)


def too_small(successes: int, finished: int) -> str | None:
    """Why this sample cannot support a comparison yet, or None."""
    failures = finished - successes
    if finished < MIN_FINISHED:
        return f"{_count(finished, 'finished run')}; at least {MIN_FINISHED} are needed"
    if successes < MIN_OUTCOMES:
        return f"{_count(successes, 'success', 'successes')}; at least {MIN_OUTCOMES} are needed"
    if failures < MIN_OUTCOMES:
        return f"{_count(failures, 'failure')}; at least {MIN_OUTCOMES} are needed"
    return None


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None
