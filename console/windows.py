"""The dashboard's windows (7, 30, 90 days ending today) summed from the daily rollups, and kept
as snapshots so a page view reads one row per window instead of summing up to 90 days of daily
rows and merging their quantile sketches (bench/RESULTS.md).

A refresh pass writes the snapshots as of its own day; a reader uses a snapshot only when it is
of today, and otherwise sums the daily rollups itself (same rows, same numbers)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import F, Max, Sum

from console.models import (
    Basis,
    RollupWindowSnapshot,
    RunDailyStat,
    RunParamDailyStat,
    RunTimingDailyStat,
)
from console.sketch import SKETCH_FRACTIONS, SKETCH_POINTS, Distribution

WINDOWS = (7, 30, 90)
Timing = tuple[str, str, str, int, list[float]]  # kind, group, metric, samples, points


@dataclass
class WindowRows:
    stats: list[dict[str, Any]]  # per basis, engine, base model and error code
    daily: list[tuple[str, str, int, int]]  # day (ISO), engine, succeeded, finished
    params: list[tuple[str, str, str, int, int, int]]  # engine, param, value, runs, ok, finished
    timings: list[Timing]  # merged over the window; kind "all" sums the engines

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowRows:
        return cls(
            stats=data["stats"],
            daily=[tuple(r) for r in data["daily"]],  # type: ignore[misc]
            params=[tuple(r) for r in data["params"]],  # type: ignore[misc]
            timings=[tuple(r) for r in data["timings"]],  # type: ignore[misc]
        )


def _resketch(parts: list[tuple[int, list[float]]]) -> tuple[int, list[float]]:
    """One sketch for several days': their raw values while few, else the merged quantiles
    (p50 and p90 read back from it exactly: they are points of it)."""
    merged = Distribution(parts)
    if merged.samples <= SKETCH_POINTS:
        return merged.samples, list(merged.values)
    return merged.samples, [merged.percentile(f) or 0.0 for f in SKETCH_FRACTIONS]


def window_rows(first_day: date, last_day: date) -> WindowRows:
    """Four reads of the daily rollups for [first_day, last_day]."""
    days = {"day__gte": first_day, "day__lte": last_day}
    stats = list(
        RunDailyStat.objects.filter(**days)
        .values("basis", "engine", "base_model", "error_code")
        .annotate(
            n=Sum("runs"),
            ok=Sum("succeeded"),
            failed=Sum("failed"),
            expired=Sum("expired"),
            canceled=Sum("canceled"),
            cost_n=Sum("cost_runs"),
            cost=Sum("cost_total"),
            example=Max("error_example"),
        )
        .order_by()
    )
    daily = [
        (day.isoformat(), engine, ok, done)
        for day, engine, ok, done in RunDailyStat.objects.filter(basis=Basis.COMPLETED, **days)
        .values_list("day", "engine")
        .annotate(ok=Sum("succeeded"), done=Sum(F("succeeded") + F("failed") + F("expired")))
        .order_by()
    ]
    params = list(
        RunParamDailyStat.objects.filter(**days)
        .values_list("engine", "param", "value")
        .annotate(n=Sum("runs"), ok=Sum("succeeded"), done=Sum("finished"))
        .order_by()
    )
    parts: dict[tuple[str, str, str], list[tuple[int, list[float]]]] = defaultdict(list)
    for kind, group, metric, samples, points in RunTimingDailyStat.objects.filter(
        **days
    ).values_list("group_kind", "group", "metric", "samples", "points"):
        parts[(kind, group, metric)].append((samples, points))
        if kind == "engine":
            parts[("all", "all", metric)].append((samples, points))
    timings = [(k, g, m, *_resketch(p)) for (k, g, m), p in parts.items()]
    return WindowRows(stats, daily, params, timings)  # type: ignore[arg-type]


def snapshot_windows(today: date) -> None:
    """Write every window's rows as of `today` (called at the end of a refresh pass)."""
    for days in WINDOWS:
        rows = window_rows(today - timedelta(days=days - 1), today)
        RollupWindowSnapshot.objects.update_or_create(
            days=days, defaults={"as_of": today, "rows": rows.as_json()}
        )


def rows_for_window(days: int, today: date) -> WindowRows:
    """The snapshot of this window when it is of `today`; else summed from the daily rollups."""
    snapshot = RollupWindowSnapshot.objects.filter(days=days, as_of=today).first()
    if snapshot is not None:
        return WindowRows.from_json(snapshot.rows)
    return window_rows(today - timedelta(days=days - 1), today)
