"""The Celery app. Reliability settings follow django-practice.md B.1: late acks for idempotent
tasks, bounded redelivery when a worker dies, fair dispatch, JSON only, time limits well under the
broker's visibility timeout."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("training")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Celery's Django fix-up closes the database connection before and after every task unless
# DB_REUSE_MAX is set, so each task paid for a new PostgreSQL connection (a server process forked
# per task: more CPU than the submission itself, bench/worker_throughput.py). Instead the worker
# treats a task like Django treats a request: `close_old_connections` before and after it keeps the
# connection for CONN_MAX_AGE and drops one that broke or outlived it. The fix-up's own recycling
# (every DB_REUSE_MAX tasks) stays as a bound on how long one connection lives.
app.conf.CELERY_DB_REUSE_MAX = 1000


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: object = None, **_: object) -> None:
    # Not for a task run eagerly (apply(), CELERY_TASK_ALWAYS_EAGER): it runs inside its
    # caller's request or transaction, whose connection is not ours to close (the fix-up agrees).
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()
