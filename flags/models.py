from __future__ import annotations

from django.conf import settings
from django.db import models


class FeaturePreference(models.Model):
    """A user's own on/off choice for a toggleable feature; absent means the registry default."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feature_preferences"
    )
    key = models.CharField(max_length=100)
    enabled = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="feature_pref_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={'on' if self.enabled else 'off'} for user {self.user_id}"


class RolloutStage(models.TextChoices):
    OFF = "off", "Off"
    MODS = "mods", "Moderators"
    PAID = "paid", "Paid tiers and moderators"
    EVERYONE = "everyone", "Every logged-in user"


class RolloutChange(models.Model):
    """Audit of one rollout stage change, with the numbers the actor saw when making it."""

    class Via(models.TextChoices):
        ADMIN = "admin"
        SHELL = "shell"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rollout_changes",
    )
    # Kept as text too, so the record still says who after the account is gone.
    actor_name = models.CharField(max_length=150)
    via = models.CharField(max_length=8, choices=Via.choices)
    feature_key = models.CharField(max_length=100)
    from_stage = models.CharField(max_length=16, choices=RolloutStage.choices)
    to_stage = models.CharField(max_length=16, choices=RolloutStage.choices)
    reason = models.TextField(blank=True, default="")
    success_rate = models.FloatField(null=True, blank=True)  # None: no finished runs
    succeeded_runs = models.PositiveIntegerField()
    finished_runs = models.PositiveIntegerField()
    window_days = models.PositiveIntegerField()
    override_used = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["feature_key", "-created_at"], name="rollout_key_created")]

    def __str__(self) -> str:
        return f"{self.feature_key}: {self.from_stage} -> {self.to_stage} by {self.actor_name}"


class StagedFeature(models.Model):
    """The rollout stage of one staged feature: the source of truth (DESIGN.md §6). Written only
    by flags.services.rollout_set_stage, which checks the guard, writes the RolloutChange audit in
    the same transaction and then projects the stage onto the feature's waffle row."""

    key = models.CharField(max_length=100, primary_key=True)
    stage = models.CharField(max_length=16, choices=RolloutStage.choices)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    changed_by_name = models.CharField(max_length=150, blank=True, default="")
    reason = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.key}: {self.stage}"
