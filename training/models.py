from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from vocabulary import catalog


class RunStatus(models.TextChoices):
    PENDING = "pending"  # stored, waiting for a worker
    SUBMITTING = "submitting"  # a worker claimed it and is talking to the orchestrator
    SUBMITTED = "submitted"  # the workflow exists (unassigned / preparing / scheduled)
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED, RunStatus.EXPIRED}
)
ACTIVE_STATUSES = frozenset(
    {RunStatus.PENDING, RunStatus.SUBMITTING, RunStatus.SUBMITTED, RunStatus.PROCESSING}
)
# A run counts as finished when it ended on its own; a user's cancel says nothing about the engine.
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.EXPIRED)

ENGINE_CHOICES = [(key, info.label) for key, info in catalog.ENGINES.items()]
BASE_MODEL_CHOICES = [(key, m.label) for key, m in catalog.BASE_MODELS.items()]
PRIORITY_CHOICES = [(p, p) for p in catalog.PRIORITIES]


class TrainingRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_runs"
    )
    base_model = models.CharField(max_length=64, choices=BASE_MODEL_CHOICES)
    custom_model = models.CharField(max_length=500, blank=True, default="")
    engine = models.CharField(max_length=32, choices=ENGINE_CHOICES)
    ecosystem = models.CharField(max_length=32, blank=True, default="")
    model_variant = models.CharField(max_length=32, blank=True, default="")
    params = models.JSONField(default=dict)  # effective, engine-native names, after defaults
    training_data_url = models.URLField(max_length=2000)
    image_count = models.PositiveIntegerField()
    sample_prompts = models.JSONField(default=list)
    negative_prompt = models.TextField(blank=True, default="")
    lora_name = models.CharField(max_length=100)
    priority = models.CharField(max_length=8, choices=PRIORITY_CHOICES, default="normal")
    # The exact workflow body the worker POSTs, built and checked against the contract once, when
    # the run is created; the API and the pages show this one (training/payloads.py).
    payload = models.JSONField(default=dict, blank=True, editable=False)

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    workflow_id = models.CharField(max_length=128, blank=True, default="")
    orchestrator_status = models.CharField(max_length=32, blank=True, default="")
    estimated_cost = models.IntegerField(null=True, blank=True)
    charged_cost = models.IntegerField(null=True, blank=True)
    submit_attempts = models.PositiveIntegerField(default=0)
    outputs = models.JSONField(default=dict, blank=True)  # epochs and samples, from the workflow
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    retried_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    # The A/B experiment on AI Toolkit defaults this run took part in (experiments app) and the
    # user's arm; no arm ("overrode_all") when the user set every parameter the experiment tests,
    # so the arm could not have changed the run. PROTECT: these runs are the experiment's evidence.
    experiment = models.ForeignKey(
        "experiments.Experiment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
    )
    experiment_arm = models.ForeignKey(
        "experiments.Arm", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    experiment_outcome = models.CharField(
        max_length=16,
        blank=True,
        default="",
        choices=[
            ("", "not in an experiment"),
            ("assigned", "assigned"),
            ("overrode_all", "overrode all"),
        ],
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the owner's run list, newest first (cursor pagination)
            models.Index(fields=["owner", "-created_at"], name="run_owner_created"),
            # the active-run cap and status filters per owner
            models.Index(fields=["owner", "status"], name="run_owner_status"),
            # the reconciler: runs in a state, oldest touch first
            models.Index(fields=["status", "updated_at"], name="run_status_updated"),
            # callbacks and admin search by workflow
            models.Index(fields=["workflow_id"], name="run_workflow"),
        ]

    def __str__(self) -> str:
        return f"{self.lora_name} ({self.base_model}, {self.engine}) {self.status}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def base(self) -> catalog.BaseModel:
        return catalog.BASE_MODELS[self.base_model]


class RunEvent(models.Model):
    class Kind(models.TextChoices):
        CREATED = "created"
        STATUS = "status"  # a state transition
        CALLBACK = "callback"  # the orchestrator called back
        SUBMIT_ERROR = "submit_error"
        NOTE = "note"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["run", "created_at"], name="event_run_created")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` on run creation (Stripe's semantics): the first response is
    kept and replayed for the same key and body, at least IDEMPOTENCY_KEY_TTL_HOURS."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)  # null while the first is in flight
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idem_owner_key")]
        indexes = [models.Index(fields=["created_at"], name="idem_created")]

    def __str__(self) -> str:
        return f"{self.owner_id}:{self.key}"


# Webhook delivery models live beside the code that sends them (training/webhooks/).
from training.webhooks import models as _webhook_models  # noqa: E402,F401
