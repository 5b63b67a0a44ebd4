"""How the dashboard's numbers read: formatted values, table rows and the SVG charts."""

from __future__ import annotations

from typing import Any

from django.utils.safestring import SafeString

from console import charts
from console.metrics import (
    PARAM_LABELS,
    WINDOWS,
    Dashboard,
    GroupStats,
    ParamUsage,
)
from vocabulary import catalog

DASH = "—"  # no data: never 0, which would read as a measured zero


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f} %"


def number(value: int | float | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def buzz(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f} Buzz"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _edge_label(low: float, high: float | None) -> str:
    if high is None:
        return f"≥ {duration(low)}"
    if low == 0:
        return f"< {duration(high)}"
    return f"{duration(low)}–{duration(high)}"


def group_row(g: GroupStats) -> dict[str, Any]:
    return {
        "key": g.key,
        "label": g.label,
        "started": number(g.started),
        "finished": number(g.finished),
        "succeeded": number(g.succeeded),
        "failed": number(g.failed),
        "expired": number(g.expired),
        "canceled": number(g.canceled),
        "success_rate": pct(g.success_rate),
        "duration_p50": duration(g.duration_p50),
        "duration_p90": duration(g.duration_p90),
        "queue_p50": duration(g.queue_p50),
        "queue_p90": duration(g.queue_p90),
        "cost_mean": buzz(g.cost_mean),
        "cost_total": buzz(g.cost_total if g.cost_runs else None),
        "adoption": pct(g.adoption),
        "color": charts.color_for(g.key),
    }


def _param_table(usage: ParamUsage) -> dict[str, Any]:
    return {
        "label": usage.label,
        "runs": number(usage.runs),
        "rows": [
            {
                "value": v.value,
                "runs": number(v.runs),
                "share": pct(v.share),
                "success_rate": pct(v.success_rate),
                "finished": number(v.finished),
            }
            for v in usage.values
        ],
        "other": number(usage.other_runs) if usage.other_runs else "",
    }


def success_chart(dash: Dashboard) -> SafeString:
    series = []
    for s in dash.daily:
        notes = [
            f"{s.label} {day:%b %d}: "
            + (f"{pct(rate)} ({ok} of {done} finished)" if rate is not None else "no finished runs")
            for day, rate, ok, done in zip(dash.daily_days, s.rates, s.succeeded, s.finished, strict=True)
        ]  # fmt: skip
        series.append(charts.Series(s.label, charts.color_for(s.engine), s.rates, notes))
    if not series:
        return SafeString('<p class="help">No finished runs in this window.</p>')
    return charts.pair(
        lambda width: charts.line_chart(
            dash.daily_days,
            series,
            title="Success rate per day, by engine",
            target=dash.success_target,
            target_label=f"target {dash.success_target:.0%}",
            width=width,
        )
    )


def duration_chart(dash: Dashboard) -> SafeString:
    edges = dash.duration_edges
    bins = [
        _edge_label(lo, edges[i + 1] if i + 1 < len(edges) else None) for i, lo in enumerate(edges)
    ]
    series = []
    for key, counts in dash.duration_histogram.items():
        total = sum(counts) or 1
        label = catalog.ENGINES[key].label if key in catalog.ENGINES else key  # type: ignore[index]
        shares = [c / total for c in counts]
        notes = [
            f"{label} {b}: {pct(s)} of succeeded runs" for b, s in zip(bins, shares, strict=True)
        ]
        series.append(charts.Series(label, charts.color_for(key), shares, notes))
    if not series:
        return SafeString('<p class="help">No succeeded runs in this window.</p>')
    return charts.pair(
        lambda width: charts.histogram_chart(
            bins,
            series,
            title="Training duration of succeeded runs (share of each engine's runs)",
            width=width,
        )
    )


def cost_chart(dash: Dashboard) -> SafeString:
    rows = [
        (g.label, g.cost_mean or 0.0, f"{buzz(g.cost_mean)} mean · {buzz(g.cost_total)} total", charts.color_for(g.key))
        for g in dash.engines
        if g.cost_runs
    ]  # fmt: skip
    if not rows:
        return SafeString('<p class="help">No charged runs.</p>')
    return charts.pair(
        lambda width: charts.bar_chart(rows, title="Mean cost per run, by engine", width=width)
    )


def failure_chart(dash: Dashboard) -> SafeString:
    rows = [
        (f.code, float(f.runs), f"{number(f.runs)} ({pct(f.share)})", "#e15759")
        for f in dash.failures
    ]
    if not rows:
        return SafeString('<p class="help">No failed or expired runs.</p>')
    return charts.pair(lambda width: charts.bar_chart(rows, title="Failure reasons", width=width))


def dashboard_context(dash: Dashboard) -> dict[str, Any]:
    adoption = dash.adoption
    guard = dash.guard
    engine_labels = {k: e.label for k, e in catalog.ENGINES.items()}
    params: dict[str, list[dict[str, Any]]] = {}
    for usage in dash.params:
        params.setdefault(engine_labels.get(usage.engine, usage.engine), []).append(  # type: ignore[call-overload]
            _param_table(usage)
        )
    return {
        "dash": dash,
        "windows": [{"days": d, "current": d == dash.days} for d in WINDOWS],
        "guard": {
            "engine": engine_labels.get(guard.engine, guard.engine),  # type: ignore[call-overload]
            "window_days": guard.window_days,
            "succeeded": number(guard.succeeded),
            "finished": number(guard.finished),
            "rate": pct(guard.rate),
            "min_rate": pct(guard.min_rate),
            "min_runs": guard.min_runs,
            "passes": guard.passes,
        },
        "engines": [group_row(g) for g in dash.engines],
        "ecosystems": [group_row(g) for g in dash.ecosystems],
        "total": group_row(dash.total),
        "failures": [
            {
                "code": f.code,
                "runs": number(f.runs),
                "share": pct(f.share),
                "example": f.example,
                "by_engine": ", ".join(
                    f"{engine_labels.get(e, e)} {number(n)}"  # type: ignore[call-overload]
                    for e, n in f.by_engine.items()
                ),
            }
            for f in dash.failures
        ],
        "failures_total": number(dash.failures_total),
        "adoption": {
            "runs": pct(adoption.run_share),
            "runs_detail": f"{number(adoption.ai_toolkit_runs)} of {number(adoption.eligible_runs)}",
            "users": pct(adoption.user_share),
            "users_detail": f"{number(adoption.ai_toolkit_users)} of {number(adoption.eligible_users)}",
            "target": pct(adoption.target),
            "runs_meter": charts.meter(
                adoption.run_share,
                target=adoption.target,
                title="AI Toolkit share of runs",
                text=pct(adoption.run_share),
            ),
            "users_meter": charts.meter(
                adoption.user_share,
                target=adoption.target,
                title="AI Toolkit share of users",
                text=pct(adoption.user_share),
            ),
        },
        "params": params,
        "param_labels": PARAM_LABELS,
        "charts": {
            "success": success_chart(dash),
            "duration": duration_chart(dash),
            "cost": cost_chart(dash),
            "failures": failure_chart(dash),
        },
    }
