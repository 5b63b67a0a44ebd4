"""The moderator console's charts in Chromium at 1,280 and 390 px: they fill their cards, no two
labels overlap, and no table is cut off (#18 item 8)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from console.rollup import rollup_refresh
from tests.conftest import make_user
from tests.console.helpers import ago, make_run
from tests.e2e.conftest import ARTIFACTS, login
from tests.harness import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# For every visible chart: how much of its card it fills, and any two of its text labels whose
# boxes intersect (legend, axis ticks, bin labels, values).
MEASURE = """() => [...document.querySelectorAll('#training-console svg.chart')]
  .filter(svg => svg.getBoundingClientRect().width > 0 && !svg.closest('.kpi'))
  .map(svg => {
    const card = svg.closest('.card').getBoundingClientRect();
    const box = svg.getBoundingClientRect();
    const texts = [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect())
      .filter(r => r.width > 0);
    const overlaps = [];
    for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
      const a = texts[i], b = texts[j];
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
        overlaps.push([svg.querySelectorAll('text')[i].textContent, svg.querySelectorAll('text')[j].textContent]);
    }
    const outside = texts.filter(r => r.left < box.left - 1 || r.right > box.right + 1).length;
    const fontPx = Math.min(...texts.map(r => r.height));
    return {title: svg.querySelector('title').textContent, fill: box.width / card.width,
            overlaps, outside, fontPx};
  })"""
CLIPPED = """() => [...document.querySelectorAll('#training-console table')]
  .filter(t => { const wrap = t.closest('.table-wrap');
    return t.getBoundingClientRect().right > (wrap || document.body).getBoundingClientRect().right + 1
      && !(wrap && getComputedStyle(wrap).overflowX === 'auto'); }).length"""


def seed() -> None:
    owner = make_user("olivia")
    for day in range(30):
        make_run(owner, engine="kohya", created=ago(days=day, hours=1))
        make_run(owner, engine="ai-toolkit", base_model="flux_dev", created=ago(days=day, hours=2),
                 duration=300 + 200 * (day % 9))  # fmt: skip
        if day % 3 == 0:
            make_run(owner, engine="rapid", base_model="flux_dev", status="failed",
                     error_code="orchestrator_failed_with_a_rather_long_code",
                     created=ago(days=day, hours=3))  # fmt: skip
        if day % 4 == 0:
            make_run(owner, engine="musubi", base_model="wan_2_1_t2v_14b", status="expired",
                     error_code="orchestrator_expired", created=ago(days=day, hours=4))  # fmt: skip
    rollup_refresh(full=True)


@pytest.mark.parametrize("width", [390, 1280])
def test_console_charts_fill_their_cards_without_overlapping_labels(
    stack: Stack, page: Page, width: int
) -> None:
    seed()
    make_user("maude", "mod", is_staff=True)
    page.set_viewport_size({"width": width, "height": 900})
    login(page, stack, "maude")
    page.goto(f"{stack.url}/mod/training/?days=30")
    charts = page.evaluate(MEASURE)
    assert len(charts) == 4, charts  # success over time, duration, cost, failure reasons
    for chart in charts:
        assert chart["fill"] > 0.9, chart
        assert chart["overlaps"] == [], chart
        assert chart["outside"] == 0, chart
        assert chart["fontPx"] >= 9, chart  # legible, not a scaled-down desktop chart
    assert page.evaluate(CLIPPED) == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-console-{width}.png"), full_page=True)
