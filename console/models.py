"""Rollup tables for the moderator console and /metrics (docs/console.md); filled by
console.rollup, read by console.metrics.

The tables were made by migration training/0003 when the console lived inside `training`; they
keep their names (db_table) so moving the models here moved no data (console/0001, state only).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Basis(models.TextChoices):
    CREATED = "created"  # counted on the day the run was created ("runs started")
    COMPLETED = "completed"  # counted on the day the run ended


class RunDailyStat(models.Model):
    """Runs per UTC day, engine, base model and error code, counted twice: on the day they were
    created (`runs`, costs; outcome columns and error code unused) and on the day they ended
    (`runs` = all that ended; outcomes; failed/expired split by error code)."""

    day = models.DateField()
    basis = models.CharField(max_length=9, choices=Basis.choices)
    engine = models.CharField(max_length=32)
    base_model = models.CharField(max_length=64)
    error_code = models.CharField(max_length=64, blank=True, default="")
    runs = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    expired = models.PositiveIntegerField(default=0)
    canceled = models.PositiveIntegerField(default=0)
    cost_runs = models.PositiveIntegerField(default=0)  # runs with a charged cost
    cost_total = models.BigIntegerField(default=0)
    error_example = models.TextField(blank=True, default="")  # one message with this code

    class Meta:
        db_table = "training_rundailystat"
        constraints = [
            models.UniqueConstraint(
                fields=["basis", "day", "engine", "base_model", "error_code"],
                name="rollup_run_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.basis} {self.engine} {self.base_model}: {self.runs}"


class RunParamDailyStat(models.Model):
    """Runs created per day by engine and parameter value, and how those that ended did."""

    day = models.DateField()
    engine = models.CharField(max_length=32)
    param = models.CharField(max_length=16)
    value = models.CharField(max_length=64, blank=True, default="")
    runs = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    finished = models.PositiveIntegerField(default=0)  # succeeded + failed + expired

    class Meta:
        db_table = "training_runparamdailystat"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "engine", "param", "value"], name="rollup_param_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.engine} {self.param}={self.value}: {self.runs}"


class RunTimingDailyStat(models.Model):
    """A day's training durations (succeeded runs) or queue waits (finished runs), by the day the
    run ended, per engine or per ecosystem: the values themselves or their quantiles (seconds)."""

    day = models.DateField()
    group_kind = models.CharField(max_length=9)  # "engine" | "ecosystem"
    group = models.CharField(max_length=32)
    metric = models.CharField(max_length=8)  # "duration" | "queue"
    samples = models.PositiveIntegerField()
    points = models.JSONField(default=list)

    class Meta:
        db_table = "training_runtimingdailystat"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "group_kind", "group", "metric"], name="rollup_timing_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.group_kind}={self.group} {self.metric}: {self.samples}"


class RunEventDailyStat(models.Model):
    """Orchestrator callbacks and submission errors (by kind: transient, auth, rejected) per day."""

    day = models.DateField()
    kind = models.CharField(max_length=16)
    label = models.CharField(max_length=16, blank=True, default="")
    events = models.PositiveIntegerField()

    class Meta:
        db_table = "training_runeventdailystat"
        constraints = [
            models.UniqueConstraint(fields=["day", "kind", "label"], name="rollup_event_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.label}: {self.events}"


class UserTrainingActivity(models.Model):
    """Each user's latest run on a base model that allows AI Toolkit, and latest AI Toolkit run."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_eligible_at = models.DateTimeField(null=True, blank=True)
    last_ai_toolkit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "training_usertrainingactivity"

    def __str__(self) -> str:
        return f"user {self.owner_id}"


class UserActivityDailyStat(models.Model):
    """Users whose latest eligible (AI Toolkit) run was on `day`: the distinct users of a window
    ending today are the sum over its days, a few rows at any number of users."""

    day = models.DateField(primary_key=True)
    eligible_users = models.PositiveIntegerField(default=0)
    ai_toolkit_users = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "training_useractivitydailystat"

    def __str__(self) -> str:
        return f"{self.day}: {self.ai_toolkit_users} of {self.eligible_users}"


class RollupWindowSnapshot(models.Model):
    """A dashboard window's sums (console.windows.WindowRows) as of `as_of`."""

    days = models.PositiveSmallIntegerField(primary_key=True)
    as_of = models.DateField()
    rows = models.JSONField(default=dict)

    class Meta:
        db_table = "training_rollupwindowsnapshot"

    def __str__(self) -> str:
        return f"{self.days} days as of {self.as_of}"


class RollupState(models.Model):
    """Where the rollups stand: days from `built_from` on are complete as of `refreshed_at`; older
    days (down to `history_start`) are still being backfilled, a chunk per pass."""

    key = models.CharField(max_length=16, primary_key=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    changes_since = models.DateTimeField(null=True, blank=True)  # the next pass looks from here
    built_from = models.DateField(null=True, blank=True)  # None: nothing built yet
    history_start = models.DateField(null=True, blank=True)  # the day of the oldest run
    last_duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "training_rollupstate"

    def __str__(self) -> str:
        return f"{self.key} refreshed {self.refreshed_at}"

    @property
    def complete(self) -> bool:
        return self.built_from is not None and (
            self.history_start is None or self.built_from <= self.history_start
        )
