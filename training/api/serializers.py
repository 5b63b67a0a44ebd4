"""The one set of serializers for the API and the pages. JSON is camelCase."""

from __future__ import annotations

import copy
from typing import Any

from django.core.validators import URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from training import catalog
from training.models import ENGINE_CHOICES, RunEvent, TrainingRun
from training.orchestrator.callbacks import callback_tokens_redacted
from training.payloads import workflow_body
from training.progress import run_timing
from training.runspec import resolve_run


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only: no "12", no 12.5, no true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _fresh_field(prototype: serializers.Field[Any, Any, Any, Any]) -> Any:
    # A field with a child field (lists, dicts) binds the child to itself: copied deeply, as DRF
    # does. Any other unbound prototype shares nothing that validation changes (binding writes
    # name, parent, label and source on the copy), so a shallow copy is a fresh field.
    if hasattr(prototype, "child"):
        return copy.deepcopy(prototype)
    return copy.copy(prototype)


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses keys it does not know, naming them, instead of silently dropping them."""

    def get_fields(self) -> dict[str, Any]:
        # DRF deep-copies every declared field (and its validators, choices and messages) for
        # each serializer it makes: two thirds of validating a create, which the API and pages
        # do on every submission (bench/submit_api.py). The declared fields are never bound
        # themselves, so a shallow copy of each serves as well.
        return {name: _fresh_field(field) for name, field in self._declared_fields.items()}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        key: [
                            serializers.ErrorDetail(
                                f"{key} is not a field here. Allowed: {', '.join(self.fields)}.",
                                code="unknown",
                            )
                        ]
                        for key in unknown
                    }
                )
        return super().to_internal_value(data)


class TrainingDataSerializer(StrictSerializer):
    url = StrictCharField(
        max_length=2000,
        validators=[URLValidator(schemes=["http", "https"], message="Enter an http(s) URL.")],
        help_text="Where the orchestrator downloads the training zip (http or https).",
    )
    imageCount = StrictIntegerField(
        min_value=1,
        max_value=catalog.MAX_IMAGES,
        help_text=f"Images in the zip, 1-{catalog.MAX_IMAGES}.",
    )


class RunInputSerializer(StrictSerializer):
    baseModel = serializers.ChoiceField(
        choices=list(catalog.BASE_MODELS),
        error_messages={
            "invalid_choice": '"{input}" is not a base model; GET /api/v1/training-catalog/ '
            "lists them."
        },
    )
    customModel = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="Optional AIR of a checkpoint to train on top of the base model.",
    )
    engine = serializers.ChoiceField(
        choices=ENGINE_CHOICES,
        required=False,
        error_messages={"invalid_choice": '"{input}" is not an engine; use kohya, rapid, musubi '
                        "or ai-toolkit."},
        help_text="Defaults to the base model's default engine.",
    )  # fmt: skip
    loraName = StrictCharField(max_length=100, trim_whitespace=True)
    trainingData = TrainingDataSerializer()
    samplePrompts = serializers.ListField(
        child=StrictCharField(max_length=catalog.MAX_PROMPT_LENGTH),
        required=False,
        max_length=catalog.MAX_SAMPLE_PROMPTS,
    )
    negativePrompt = StrictCharField(
        required=False, allow_blank=True, max_length=catalog.MAX_PROMPT_LENGTH
    )
    priority = serializers.ChoiceField(choices=list(catalog.PRIORITIES), default="normal")
    params = serializers.DictField(
        required=False,
        help_text="Engine-native parameter names; omitted ones take the catalog default.",
    )

    webhook = StrictCharField(
        required=False,
        max_length=2000,
        help_text="An https URL that receives the run's JSON, signed (see docs/api.md, Webhooks).",
    )
    webhookEventsFilter = serializers.ListField(
        child=serializers.ChoiceField(choices=["start", "output", "completed"]),
        required=False,
        allow_empty=False,
        max_length=3,
        help_text="Which events to send; all three when omitted.",
    )

    def validate_webhook(self, value: str) -> str:
        from training.webhooks.targets import webhook_url_problem

        problem = webhook_url_problem(value)
        if problem:
            raise serializers.ValidationError(problem, code="unsafe_webhook")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = self.context["request"].user
        hook = {"url": attrs.pop("webhook", None), "events": attrs.pop("webhookEventsFilter", None)}
        return {"spec": resolve_run(user=user, data=attrs), "webhook": hook}


class RunEventSerializer(serializers.ModelSerializer[RunEvent]):
    at = serializers.DateTimeField(source="created_at")
    fromStatus = serializers.CharField(source="from_status")
    toStatus = serializers.CharField(source="to_status")

    class Meta:
        model = RunEvent
        fields = ["at", "kind", "fromStatus", "toStatus", "message"]


class TrainingDataOutSerializer(serializers.Serializer[Any]):
    url = serializers.CharField(source="training_data_url")
    imageCount = serializers.IntegerField(source="image_count")


class EpochSerializer(serializers.Serializer[Any]):
    epochNumber = serializers.IntegerField()
    modelName = serializers.CharField(allow_null=True)
    modelUrl = serializers.CharField(allow_null=True, help_text="Download link (may expire).")
    modelSize = serializers.IntegerField(allow_null=True)
    sampleImages = serializers.ListField(child=serializers.CharField())


class RunErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(source="error_code")
    message = serializers.CharField(source="error_message")


class EtaSerializer(serializers.Serializer[Any]):
    at = serializers.DateTimeField(allow_null=True, help_text="When the run should finish.")
    basis = serializers.ChoiceField(
        choices=["pace", "orchestrator"],
        allow_null=True,
        help_text="pace: from its finished epochs; orchestrator: the orchestrator's estimate.",
    )
    computedAt = serializers.DateTimeField(help_text="When this ETA was computed.")


class RunSerializer(serializers.ModelSerializer[TrainingRun]):
    baseModel = serializers.CharField(source="base_model")
    customModel = serializers.CharField(source="custom_model")
    modelVariant = serializers.CharField(source="model_variant")
    loraName = serializers.CharField(source="lora_name")
    trainingData = TrainingDataOutSerializer(source="*")
    samplePrompts = serializers.ListField(source="sample_prompts", child=serializers.CharField())
    negativePrompt = serializers.CharField(source="negative_prompt")
    params = serializers.DictField()
    workflowId = serializers.CharField(source="workflow_id")
    estimatedCost = serializers.IntegerField(source="estimated_cost", allow_null=True)
    chargedCost = serializers.IntegerField(source="charged_cost", allow_null=True)
    error = serializers.SerializerMethodField()
    epochs = serializers.SerializerMethodField()
    moderation = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    submittedAt = serializers.DateTimeField(source="submitted_at", allow_null=True)
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)
    elapsedSeconds = serializers.IntegerField(
        read_only=True, help_text="Since the run was created; until it finished, once it has."
    )
    eta = EtaSerializer(read_only=True, help_text="Null `at` when there is nothing to go on.")

    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "baseModel", "customModel", "engine", "ecosystem", "modelVariant",
            "loraName", "trainingData", "samplePrompts", "negativePrompt", "priority", "params",
            "workflowId", "estimatedCost", "chargedCost", "error", "epochs", "moderation",
            "createdAt", "updatedAt", "submittedAt", "startedAt", "completedAt",
            "elapsedSeconds", "eta",
        ]  # fmt: skip

    @extend_schema_field(RunErrorSerializer(allow_null=True))
    def get_error(self, run: TrainingRun) -> dict[str, str] | None:
        if not run.error_code:
            return None
        return {"code": run.error_code, "message": run.error_message}

    @extend_schema_field(EpochSerializer(many=True))
    def get_epochs(self, run: TrainingRun) -> list[dict[str, Any]]:
        return list((run.outputs or {}).get("epochs", []))

    @extend_schema_field(
        serializers.ChoiceField(
            choices=["evaluating", "underReview", "approved", "rejected"], allow_null=True
        )
    )
    def get_moderation(self, run: TrainingRun) -> str | None:
        # Set only once the orchestrator's moderation had something to say: "underReview" (the
        # run is held until a moderator decides), "rejected", or "approved" after a hold.
        moderation = (run.outputs or {}).get("moderation")
        return moderation if isinstance(moderation, str) else None


def _dt(value: Any) -> str | None:
    # DRF's ISO 8601 output, without building a DateTimeField per call.
    if value is None:
        return None
    text: str = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def run_representation(serializer: RunSerializer, run: TrainingRun) -> dict[str, Any]:
    """The declared fields, written out: building DRF fields per run costs more than the whole
    rest of a create (bench/submit_api.py). The fuzz test holds it to the schema."""
    return {
        "id": str(run.id),
        "status": run.status,
        "baseModel": run.base_model,
        "customModel": run.custom_model,
        "engine": run.engine,
        "ecosystem": run.ecosystem,
        "modelVariant": run.model_variant,
        "loraName": run.lora_name,
        "trainingData": {"url": run.training_data_url, "imageCount": run.image_count},
        "samplePrompts": list(run.sample_prompts),
        "negativePrompt": run.negative_prompt,
        "priority": run.priority,
        "params": dict(run.params),
        "workflowId": run.workflow_id,
        "estimatedCost": run.estimated_cost,
        "chargedCost": run.charged_cost,
        "error": serializer.get_error(run),
        "epochs": serializer.get_epochs(run),
        "moderation": serializer.get_moderation(run),
        "createdAt": _dt(run.created_at),
        "updatedAt": _dt(run.updated_at),
        "submittedAt": _dt(run.submitted_at),
        "startedAt": _dt(run.started_at),
        "completedAt": _dt(run.completed_at),
        **run_timing(run),
    }


RunSerializer.to_representation = run_representation  # type: ignore[method-assign,assignment]


class RunCreatedSerializer(RunSerializer):
    """The new run and the exact body it will send (its timeline is one event: created)."""

    payload = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "payload"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, run: TrainingRun) -> dict[str, Any]:
        return callback_tokens_redacted(workflow_body(run, run_id=run.id))

    def to_representation(self, run: TrainingRun) -> dict[str, Any]:
        return {**run_representation(self, run), "payload": self.get_payload(run)}


class RunDetailSerializer(RunCreatedSerializer):
    events = RunEventSerializer(many=True, read_only=True)

    class Meta(RunCreatedSerializer.Meta):
        fields = [*RunCreatedSerializer.Meta.fields, "events"]

    def to_representation(self, run: TrainingRun) -> dict[str, Any]:
        events = RunEventSerializer(run.events.all(), many=True).data
        return {**super().to_representation(run), "events": events}


class PreviewSerializer(serializers.Serializer[Any]):
    workflow = serializers.DictField(help_text="The exact body POSTed to /v2/consumer/workflows.")
    params = serializers.DictField(help_text="Effective parameters after defaults.")
    engine = serializers.CharField()
    ecosystem = serializers.CharField()
    modelVariant = serializers.CharField()


class TokenRequestSerializer(StrictSerializer):
    username = StrictCharField()
    password = StrictCharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()


class ParamSpecSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    type = serializers.CharField(source="kind")
    default = serializers.JSONField(allow_null=True)
    min = serializers.FloatField(source="minimum", allow_null=True)
    max = serializers.FloatField(source="maximum", allow_null=True)
    options = serializers.ListField(child=serializers.CharField())
    locked = serializers.BooleanField()
    nullable = serializers.BooleanField()
    step = serializers.IntegerField(allow_null=True)
    computed = serializers.CharField(allow_null=True)


class CatalogEngineSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    available = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True)
    default = serializers.BooleanField()
    params = ParamSpecSerializer(many=True)


class CatalogBaseModelSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    family = serializers.CharField()
    baseType = serializers.CharField()
    mediaType = serializers.CharField()
    air = serializers.CharField()
    ecosystem = serializers.CharField(allow_null=True)
    modelVariant = serializers.CharField(allow_null=True)
    defaultEngine = serializers.CharField()
    engines = CatalogEngineSerializer(many=True)


class CatalogSerializer(serializers.Serializer[Any]):
    baseModels = CatalogBaseModelSerializer(many=True)
    engines = serializers.ListField(child=serializers.DictField())


class RunPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = RunSerializer(many=True)
