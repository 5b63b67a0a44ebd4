"""Server-side SVG charts for the console: no script, no CDN, readable offline and in a screen
reader (each chart has a title and description, and the page shows the numbers in tables too)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

ENGINE_COLORS = {
    "kohya": "#4269d0",
    "ai-toolkit": "#ff725c",
    "rapid": "#3ca951",
    "musubi": "#a463f2",
}
FALLBACK_COLOR = "#6b7280"
GRID = "#d1d5db"
INK = "#374151"
_ids = count(1)
# Each chart is drawn twice, for the width it will be shown at (1:1 text, no overlaps): the
# dashboard's cards at 1,280 px and wider, and phones (390 px). CSS shows one (console.css).
WIDE, NARROW = 1100, 400
CHAR_W = 7.0  # px per character of 12 px system-ui, generous


def pair(render: Callable[[int], SafeString]) -> SafeString:
    return mark_safe(  # noqa: S308 - both parts are built escaped
        f'<div class="chart-wide">{render(WIDE)}</div>'
        f'<div class="chart-narrow">{render(NARROW)}</div>'
    )


def color_for(key: str) -> str:
    return ENGINE_COLORS.get(key, FALLBACK_COLOR)


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    values: Sequence[float | None]
    notes: Sequence[str] = ()  # one tooltip per value


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, desc: str) -> tuple[list[str], str]:
    ident = f"chart-{next(_ids)}"
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{ident}-t {ident}-d" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(desc)}</desc>',
    ]
    return head, ident


def _legend_rows(series: Sequence[Series], width: int, left: float) -> int:
    rows, x = 1, left
    for s in series:
        w = 28 + CHAR_W * len(s.label)
        if x + w > width and x > left:
            rows, x = rows + 1, left
        x += w
    return rows


def _legend(parts: list[str], series: Sequence[Series], y: float, left: float, width: int) -> None:
    x = left
    for s in series:
        w = 28 + CHAR_W * len(s.label)
        if x + w > width and x > left:  # wrap instead of running off the card
            x, y = left, y + 18
        parts.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(y - 9)}" width="12" height="12" fill="{s.color}"/>'
        )
        parts.append(
            f'<text x="{_fmt(x + 16)}" y="{_fmt(y + 1)}" fill="{INK}">{escape(s.label)}</text>'
        )
        x += w


def line_chart(
    days: Sequence[date],
    series: Sequence[Series],
    *,
    title: str,
    target: float | None = None,
    target_label: str = "",
    width: int = WIDE,
) -> SafeString:
    """Rates (0-1) per day; a gap where a day has no value; a dashed line at `target`."""
    left, right, top = 48, 16, 14
    legend_rows = _legend_rows(series, width - right, 8)
    plot_h = 200 if width > NARROW else 170
    bottom = 48 + 18 * legend_rows  # day labels clear of the 0 % tick, then the legend
    height = top + plot_h + bottom
    plot_w = width - left - right
    parts, _ = _open(width, height, title, f"{title}, {len(days)} days, {len(series)} series.")

    def x_at(i: int) -> float:
        return left + (plot_w * i / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h * (1 - v)

    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_at(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{_fmt(y + 4)}" text-anchor="end" fill="{INK}">{int(tick * 100)} %</text>'
        )
    # As many day labels as fit side by side ("Dec 01" plus a gap), never overlapping.
    fits = max(1, int(plot_w // (CHAR_W * 6 + 14)))
    step = max(1, math.ceil(len(days) / fits))
    for i, day in enumerate(days):
        if i % step == 0:
            parts.append(
                f'<text x="{_fmt(x_at(i))}" y="{top + plot_h + 24}" text-anchor="middle" '
                f'fill="{INK}">{day.strftime("%b %d")}</text>'
            )
    if target is not None:
        y = y_at(target)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{INK}" '
            f'stroke-dasharray="5 4"/>'
        )
        parts.append(
            f'<text x="{width - right}" y="{_fmt(y - 4)}" text-anchor="end" fill="{INK}">'
            f"{escape(target_label)}</text>"
        )
    for s in series:
        path: list[str] = []
        pen_down = False
        for i, v in enumerate(s.values):
            if v is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{_fmt(x_at(i))} {_fmt(y_at(v))}")
            pen_down = True
        if path:
            parts.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{s.color}" stroke-width="2"/>'
            )
        for i, v in enumerate(s.values):
            if v is None:
                continue
            note = s.notes[i] if i < len(s.notes) else f"{s.label}: {v:.0%}"
            parts.append(
                f'<circle cx="{_fmt(x_at(i))}" cy="{_fmt(y_at(v))}" r="2.5" fill="{s.color}">'
                f"<title>{escape(note)}</title></circle>"
            )
    _legend(parts, series, top + plot_h + 52, 8, width - right)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart(
    rows: Sequence[tuple[str, float, str, str]],
    *,
    title: str,
    empty: str = "No data.",
    width: int = WIDE,
) -> SafeString:
    """Horizontal bars: (label, value, value text, color) per row, scaled to the largest. Narrow:
    the label above its bar and the value text under it, so nothing is squeezed."""
    if not rows:
        return mark_safe(f'<p class="help">{escape(empty)}</p>')  # noqa: S308
    largest = max((r[1] for r in rows), default=0) or 1
    if width <= NARROW:
        return _stacked_bars(rows, title=title, width=width, largest=largest)
    row_h, label_w = 26, 240
    value_w = int(max(CHAR_W * len(r[2]) for r in rows)) + 16
    height = row_h * len(rows) + 8
    parts, _ = _open(width, height, title, f"{title}: {len(rows)} bars.")
    bar_w = width - label_w - value_w
    for i, (label, value, text, color) in enumerate(rows):
        y = 4 + i * row_h
        short = label if len(label) <= 32 else label[:31] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" fill="{INK}">'
            f"<title>{escape(label)}</title>{escape(short)}</text>"
        )
        w = max(1.0, bar_w * value / largest) if value else 0
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{_fmt(w)}" height="16" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{_fmt(label_w + w + 6)}" y="{y + 16}" fill="{INK}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def _stacked_bars(
    rows: Sequence[tuple[str, float, str, str]], *, title: str, width: int, largest: float
) -> SafeString:
    row_h, pad = 50, 8
    height = row_h * len(rows) + 4
    parts, _ = _open(width, height, title, f"{title}: {len(rows)} bars.")
    bar_w = width - 2 * pad
    limit = int(bar_w // CHAR_W)
    for i, (label, value, text, color) in enumerate(rows):
        y = 2 + i * row_h
        short = label if len(label) <= limit else label[: limit - 1] + "…"
        parts.append(
            f'<text x="{pad}" y="{y + 12}" fill="{INK}"><title>{escape(label)}</title>'
            f"{escape(short)}</text>"
        )
        w = max(1.0, bar_w * value / largest) if value else 0
        parts.append(f'<rect x="{pad}" y="{y + 17}" width="{_fmt(w)}" height="12" fill="{color}"/>')
        parts.append(f'<text x="{pad}" y="{y + 43}" fill="{INK}">{escape(text)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def histogram_chart(
    bins: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    empty: str = "No data.",
    width: int = WIDE,
) -> SafeString:
    """Grouped vertical bars: for each bin, one bar per series (values are shares, 0-1)."""
    if not series:
        return mark_safe(f'<p class="help">{escape(empty)}</p>')  # noqa: S308
    left, right, top = 48, 16, 14
    plot_w = width - left - right
    group_w = plot_w / max(1, len(bins))
    # Bin labels side by side when they fit; upright (and given room) when they would touch.
    longest = max((len(b) for b in bins), default=0) * CHAR_W
    slanted = longest + 6 > group_w
    label_h = int(longest) + 16 if slanted else 30
    plot_h = 190 if width > NARROW else 160
    bottom = label_h + 14 + 18 * _legend_rows(series, width - right, 8)
    height = top + plot_h + bottom
    parts, _ = _open(width, height, title, f"{title}: {len(bins)} bins, {len(series)} series.")
    largest = max((v or 0 for s in series for v in s.values), default=0) or 1
    ceiling = min(1.0, (int(largest * 10) + 1) / 10)
    for k in range(5):
        tick = ceiling * k / 4
        y = top + plot_h * (1 - tick / ceiling)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" stroke="{GRID}"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{_fmt(y + 4)}" text-anchor="end" fill="{INK}">{round(tick * 100)} %</text>')  # fmt: skip
    bar_w = (group_w - 10) / len(series)
    for b, label in enumerate(bins):
        gx = left + b * group_w + 5
        for j, s in enumerate(series):
            v = s.values[b] or 0
            h = plot_h * v / ceiling
            note = s.notes[b] if b < len(s.notes) else f"{s.label} {label}: {v:.0%}"
            parts.append(
                f'<rect x="{_fmt(gx + j * bar_w)}" y="{_fmt(top + plot_h - h)}" width="{_fmt(bar_w - 1)}" '
                f'height="{_fmt(h)}" fill="{s.color}"><title>{escape(note)}</title></rect>'
            )
        lx, ly = gx + (group_w - 10) / 2, top + plot_h + 24
        if slanted:
            parts.append(
                f'<text x="{_fmt(lx + 4)}" y="{_fmt(ly - 14)}" text-anchor="end" fill="{INK}" '
                f'transform="rotate(-90 {_fmt(lx + 4)} {_fmt(ly - 14)})">{escape(label)}</text>'
            )
        else:
            parts.append(
                f'<text x="{_fmt(lx)}" y="{_fmt(ly)}" text-anchor="middle" fill="{INK}">'
                f"{escape(label)}</text>"
            )
    _legend(parts, series, top + plot_h + label_h + 18, 8, width - right)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def meter(value: float | None, *, target: float, title: str, text: str) -> SafeString:
    """A 0-100 % bar filled to `value`, with the target marked."""
    width, height = 360, 40
    parts, _ = _open(width, height, title, f"{title}: {text}; target {target:.0%}.")
    bar = width - 20
    parts.append(f'<rect x="10" y="8" width="{bar}" height="16" fill="#f3f4f6" stroke="{GRID}"/>')
    if value is not None:
        fill = color_for("ai-toolkit") if value < target else "#3ca951"
        parts.append(
            f'<rect x="10" y="8" width="{_fmt(bar * min(1.0, value))}" height="16" fill="{fill}"/>'
        )
    tx = 10 + bar * target
    parts.append(
        f'<line x1="{_fmt(tx)}" x2="{_fmt(tx)}" y1="4" y2="28" stroke="{INK}" stroke-width="2"/>'
    )
    parts.append(
        f'<text x="{_fmt(tx)}" y="38" text-anchor="middle" fill="{INK}" font-size="10">'
        f"target {target:.0%}</text>"
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
