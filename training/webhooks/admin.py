"""The run's webhook deliveries in admin, read-only, for whoever may view the run (moderators)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from training.models import TrainingRun
from training.webhooks.models import WebhookDelivery


class WebhookDeliveryInline(admin.TabularInline[WebhookDelivery, TrainingRun]):
    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ("seq", "event", "state", "attempts", "attempt_log", "created_at", "finished_at")
    readonly_fields = fields
    verbose_name_plural = "Webhook deliveries"

    @admin.display(description="Attempts (status code or error, time)")
    def attempt_log(self, delivery: WebhookDelivery) -> str:
        return "; ".join(
            f"#{a.number} {a.status_code or a.error} at {a.at:%H:%M:%S}" for a in delivery.log.all()
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The log belongs to the run: whoever may view the run may read it.
        return request.user.has_perm("training.view_trainingrun")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
