"""The Celery app. Reliability settings follow django-practice.md B.1: late acks for idempotent
tasks, bounded redelivery when a worker dies, fair dispatch, JSON only, time limits well under the
broker's visibility timeout."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("training")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
