from __future__ import annotations

from django.conf import settings
from django.db import models

EVENTS = ("start", "output", "completed")


class RunWebhook(models.Model):
    """Where a run's events go, and which of them have been turned into deliveries (so each is
    announced once however often the run is looked at)."""

    run = models.OneToOneField(
        "training.TrainingRun", on_delete=models.CASCADE, primary_key=True, related_name="webhook"
    )
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)  # a subset of EVENTS
    started_announced = models.BooleanField(default=False)
    epochs_announced = models.PositiveIntegerField(default=0)
    completed_announced = models.BooleanField(default=False)
    next_seq = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["completed_announced"], name="webhook_open")]

    def __str__(self) -> str:
        return f"{self.run_id} -> {self.url}"


class WebhookSecret(models.Model):
    """A user's signing secret (`whsec_` + base64 of 24 random bytes); rotated on request."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
        related_name="webhook_secret",
    )  # fmt: skip
    key = models.CharField(max_length=64)
    rotated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"webhook secret of {self.user_id}"


class WebhookDelivery(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # a final answer (4xx) or 24 h of retries ran out

    id = models.CharField(max_length=40, primary_key=True)  # the webhook-id header: msg_…
    run = models.ForeignKey(
        "training.TrainingRun", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    seq = models.PositiveIntegerField()  # order within the run
    event = models.CharField(max_length=16, choices=[(e, e) for e in EVENTS])
    url = models.URLField(max_length=2000)
    body = models.TextField()  # the exact bytes signed and sent, the same on every attempt
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="webhook_run_seq")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="webhook_due")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} #{self.seq} of {self.run_id} ({self.state})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"
