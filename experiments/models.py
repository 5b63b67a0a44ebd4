"""A/B experiments on AI Toolkit defaults, the defaults overrides they promote, and the audit.

Layering, lowest first: the catalog's defaults (vocabulary/catalog.py, which also keeps every range
and lock) <- the active DefaultsOverride for the ecosystem <- the one for the base model <- the
arm the user is assigned to while an experiment is in effect <- what the user sends."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from experiments.values import (
    BASE_MODEL_CHOICES,
    ECOSYSTEM_CHOICES,
    scope_problems,
    value_problems,
)


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft"
    RUNNING = "running"
    ENDED = "ended"


class Experiment(models.Model):
    name = models.CharField(max_length=120)
    hypothesis = models.TextField(
        blank=True, default="", help_text="What you expect to change, and why."
    )
    ecosystem = models.CharField(max_length=32, choices=ECOSYSTEM_CHOICES)
    base_model = models.CharField(
        max_length=64,
        choices=BASE_MODEL_CHOICES,
        blank=True,
        default="",
        help_text="Leave empty to test every base model of the ecosystem.",
    )
    status = models.CharField(
        max_length=8, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT
    )
    starts_at = models.DateTimeField(help_text="Users are assigned from this moment…")
    ends_at = models.DateTimeField(help_text="…until this one (or until it is ended).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_arm = models.ForeignKey(
        "Arm", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two experiments on one ecosystem would fight over the same users' defaults.
            models.UniqueConstraint(
                fields=["ecosystem"],
                condition=Q(status="running"),
                name="experiment_one_running_per_ecosystem",
                violation_error_message=(
                    "Another experiment is already running on this ecosystem; end it first."
                ),
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")),
                name="experiment_ends_after_start",
                violation_error_message="The end must be after the start.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.ecosystem}{'/' + self.base_model if self.base_model else ''})"

    def clean(self) -> None:
        problems = scope_problems(self.ecosystem, self.base_model)
        if problems:
            raise ValidationError({"base_model": problems})

    def in_effect_at(self, moment: Any) -> bool:
        return bool(
            self.status == ExperimentStatus.RUNNING and self.starts_at <= moment < self.ends_at
        )


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=64)
    is_control = models.BooleanField(default=False, help_text="The current defaults: no overrides.")
    weight = models.PositiveIntegerField(
        default=1, help_text="Share of traffic: this weight over the sum of the arms' weights."
    )
    overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text='Defaults this arm tests, AI Toolkit names, e.g. {"lr": 0.0002, "epochs": 8}.',
    )
    # Users map onto the arms' cumulative weights in this order; it must not change while running.
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_unique_name"),
            models.UniqueConstraint(
                fields=["experiment"],
                condition=Q(is_control=True),
                name="arm_one_control",
                violation_error_message="An experiment has exactly one control arm.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (control)' if self.is_control else ''}"

    def clean(self) -> None:
        if self.is_control:
            if self.overrides:
                raise ValidationError(
                    {"overrides": "The control arm keeps the current defaults; leave it empty."}
                )
            return
        if not self.overrides:
            raise ValidationError({"overrides": "A test arm overrides at least one default."})
        try:
            # In an admin inline this is the (maybe still unsaved) experiment being edited.
            experiment = self.experiment
        except Experiment.DoesNotExist:
            return  # checked again when the experiment starts
        problems = value_problems(
            ecosystem=experiment.ecosystem,
            base_model=experiment.base_model,
            values=self.overrides,
            layered_on=DefaultsOverride.active_values(experiment.ecosystem, experiment.base_model),
        )
        if problems:
            raise ValidationError({"overrides": problems})


class DefaultsOverride(models.Model):
    """New defaults for an ecosystem (or one of its base models), layered on the catalog."""

    ecosystem = models.CharField(max_length=32, choices=ECOSYSTEM_CHOICES)
    base_model = models.CharField(max_length=64, choices=BASE_MODEL_CHOICES, blank=True, default="")
    values = models.JSONField(
        default=dict, help_text='AI Toolkit names and default values, e.g. {"lr": 0.0002}.'
    )
    active = models.BooleanField(default=True)
    replaced = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The override that was active before this one; a rollback re-activates it.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    source_experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source_arm = models.ForeignKey(
        Arm, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ecosystem", "base_model"],
                condition=Q(active=True),
                name="override_one_active_per_scope",
                violation_error_message="Another override is active for this scope.",
            )
        ]

    def __str__(self) -> str:
        scope = self.ecosystem + (f"/{self.base_model}" if self.base_model else "")
        return f"{scope} #{self.pk}{' (active)' if self.active else ''}"

    @property
    def scope(self) -> str:
        return self.ecosystem + (f"/{self.base_model}" if self.base_model else "")

    @classmethod
    def active_values(cls, ecosystem: str, base_model: str = "") -> dict[str, Any]:
        """The active overrides of a scope, layered (ecosystem, then base model), from the
        database: for validating a new arm or override against what it will sit on."""
        rows = cls.objects.filter(
            active=True, ecosystem=ecosystem, base_model__in={"", base_model}
        ).values_list("base_model", "values")
        layers = sorted(rows, key=lambda r: r[0] != "")  # ecosystem first, base model on top
        out: dict[str, Any] = {}
        for _, values in layers:
            out.update(values or {})
        return out

    def clean(self) -> None:
        layered: dict[str, Any] = {}
        if self.base_model:
            # A base model's override sits on its ecosystem's; check the combination.
            layered = DefaultsOverride.active_values(self.ecosystem, "")
        problems = value_problems(
            ecosystem=self.ecosystem,
            base_model=self.base_model,
            values=self.values,
            layered_on=layered,
        )
        if problems:
            raise ValidationError({"values": problems})


class DefaultsChange(models.Model):
    """Audit of one change of the defaults: who, when, what before and after, and why."""

    class Action(models.TextChoices):
        PROMOTE = "promote"
        ROLLBACK = "rollback"
        MANUAL = "manual"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the record still says who after the account is gone.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=8, choices=Action.choices)
    ecosystem = models.CharField(max_length=32)
    base_model = models.CharField(max_length=64, blank=True, default="")
    # The scope's effective defaults (catalog <- overrides), so the record reads on its own.
    values_before = models.JSONField(default=dict)
    values_after = models.JSONField(default=dict)
    override = models.ForeignKey(
        DefaultsOverride, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    arm = models.ForeignKey(Arm, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        scope = self.ecosystem + (f"/{self.base_model}" if self.base_model else "")
        return f"{self.action} {scope} by {self.actor_name}"

    @property
    def changed(self) -> dict[str, tuple[Any, Any]]:
        keys = set(self.values_before) | set(self.values_after)
        return {
            k: (self.values_before.get(k), self.values_after.get(k))
            for k in sorted(keys)
            if self.values_before.get(k) != self.values_after.get(k)
        }
