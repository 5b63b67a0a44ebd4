"""Quantile sketches: a day's values are kept as they are up to SKETCH_POINTS of them, beyond that
as the SKETCH_POINTS quantiles 0, 2 %, 4 % … 100 %. Merging days' sketches places p50 and p90
within about one percentile rank of the exact value, and stays exact while every day is small."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from itertools import accumulate

SKETCH_POINTS = 51
SKETCH_FRACTIONS = tuple(i / (SKETCH_POINTS - 1) for i in range(SKETCH_POINTS))


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """PostgreSQL's percentile_cont over sorted values: linear interpolation between ranks."""
    if not values:
        return None
    rank = fraction * (len(values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def sketch(values: list[float]) -> list[float]:
    ordered = sorted(values)
    if len(ordered) <= SKETCH_POINTS:
        return ordered
    return [percentile_cont(ordered, f) or 0.0 for f in SKETCH_FRACTIONS]


class Distribution:
    """Several days' sketches merged: each stored point stands for samples/len(points) values.

    Built once per figure, so the work is in the constructor: one sort (of already sorted runs,
    which Timsort merges) and the cumulative weights; each percentile is then a bisection."""

    def __init__(self, parts: Iterable[tuple[int, Sequence[float]]] = ()) -> None:
        values: list[float] = []
        weights: list[float] = []
        samples = 0
        for count, points in parts:
            if not count or not points:
                continue
            samples += count
            values.extend(points)
            weights.extend([count / len(points)] * len(points))
        order = sorted(range(len(values)), key=values.__getitem__)
        self.values = [values[i] for i in order]
        self.cumulative = list(accumulate(weights[i] for i in order))
        self.samples = samples

    @classmethod
    def merge(cls, parts: Iterable[tuple[int, Sequence[float]]]) -> Distribution:
        return cls(parts)

    def _at(self, position: float) -> float:
        """The value at 0-based `position` of the merged values laid out by weight."""
        index = bisect.bisect_right(self.cumulative, position + 1e-9)
        return self.values[min(index, len(self.values) - 1)]

    def percentile(self, fraction: float) -> float | None:
        """percentile_cont over the merged values; exact while every day kept its raw values."""
        if not self.values:
            return None
        total = self.cumulative[-1]
        rank = fraction * (total - 1) if total > 1 else 0.0
        low = math.floor(rank + 1e-9)
        lower, upper = self._at(low), self._at(low + 1)
        return lower + (upper - lower) * max(0.0, rank - low)

    def histogram(self, edges: Sequence[float]) -> list[float]:
        """Estimated counts between consecutive `edges` (the last bin is open-ended)."""
        counts = [0.0] * len(edges)
        previous = 0.0
        for value, cumulative in zip(self.values, self.cumulative, strict=True):
            index = max(0, bisect.bisect_right(edges, value) - 1)
            counts[index] += cumulative - previous
            previous = cumulative
        return counts
