"""Celery task that keeps the console's rollups current (docs/console.md). Readers refresh
stale rollups themselves, so the task is optional; with it on beat, no page view or scrape waits
for a refresh pass."""

from __future__ import annotations

from celery import shared_task

from console.rollup import rollup_refresh

TASK_BUDGET_SECONDS = 60.0  # backfill per run, well under CELERY_TASK_SOFT_TIME_LIMIT


@shared_task(ignore_result=True, acks_late=False, max_retries=0)
def refresh_rollups_task() -> dict[str, int | bool] | None:
    report = rollup_refresh(budget=TASK_BUDGET_SECONDS)
    if report is None:
        return None  # another process is refreshing
    return {
        "touched_days": report.touched_days,
        "backfilled_days": report.backfilled_days,
        "complete": report.complete,
        "duration_ms": report.duration_ms,
    }
