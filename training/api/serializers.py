"""The one set of serializers for the API and the pages. JSON is camelCase."""

from __future__ import annotations

from typing import Any

from django.core.validators import URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from training import uploads
from training.models import ENGINE_CHOICES, PRIORITY_CHOICES, RunEvent, RunStatus, TrainingRun
from training.orchestrator.callbacks import callback_tokens_redacted
from training.payloads import stored_workflow_body
from training.progress import run_timing
from training.runspec import resolve_run, uri_problem
from training.webhooks.targets import webhook_url_problem
from vocabulary import catalog
from websafety.hosts import private_host_reason


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


class StrictSerializer(serializers.Serializer[Any]):
    """Refuses keys it does not know, naming them, instead of silently dropping them."""

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


_HTTP_URL = URLValidator(schemes=["http", "https"], message="Enter an http(s) URL.")


def http_uri(value: str) -> None:
    """An http(s) URL that is also an RFC 3986 URI, as the orchestrator's `format: uri` wants
    (#17); one message, saying which character to encode when that is the problem."""
    problem = uri_problem(value)
    if problem:
        raise serializers.ValidationError(problem, code="not_a_uri")
    _HTTP_URL(value)


def refuse_private_training_data_url(url: str) -> None:
    """The orchestrator fetches this URL: https to a public host only (websafety.hosts), except
    the zips this service stored itself (the pages' uploads, on PUBLIC_BASE_URL)."""
    if url.startswith(uploads.public_url(f"{uploads.UPLOAD_DIR}/")):
        return
    reason = private_host_reason(url)
    if reason is not None:
        raise serializers.ValidationError(
            f"The training data URL must be https to a public host: {reason}.", code="private_host"
        )


class TrainingDataSerializer(StrictSerializer):
    url = StrictCharField(
        max_length=2000,
        validators=[http_uri, refuse_private_training_data_url],
        help_text="Where the orchestrator downloads the training zip: https to a public host.",
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


class RunSerializer(serializers.Serializer[Any]):
    # A plain Serializer with every field declared (read-only output): a ModelSerializer would
    # introspect the model and build the undeclared fields again for every instance.
    id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices)
    baseModel = serializers.CharField(source="base_model")
    customModel = serializers.CharField(source="custom_model")
    engine = serializers.ChoiceField(choices=ENGINE_CHOICES)
    ecosystem = serializers.CharField()
    modelVariant = serializers.CharField(source="model_variant")
    loraName = serializers.CharField(source="lora_name")
    trainingData = TrainingDataOutSerializer(source="*")
    samplePrompts = serializers.ListField(source="sample_prompts", child=serializers.CharField())
    negativePrompt = serializers.CharField(source="negative_prompt")
    priority = serializers.ChoiceField(choices=PRIORITY_CHOICES)
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
    elapsedSeconds = serializers.SerializerMethodField(
        help_text="Since the run was created; until it finished, once it has."
    )
    eta = serializers.SerializerMethodField(help_text="Null `at` when there is nothing to go on.")

    def _timing(self, run: TrainingRun) -> dict[str, Any]:
        # Both fields come from one reading of the clock and the run's pace.
        timings: dict[Any, dict[str, Any]] = self.context.setdefault("_timings", {})
        if run.pk not in timings:
            timings[run.pk] = run_timing(run)
        return timings[run.pk]

    @extend_schema_field(serializers.IntegerField())
    def get_elapsedSeconds(self, run: TrainingRun) -> int:
        return int(self._timing(run)["elapsedSeconds"])

    @extend_schema_field(EtaSerializer())
    def get_eta(self, run: TrainingRun) -> dict[str, Any]:
        eta: dict[str, Any] = self._timing(run)["eta"]
        return eta

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


class RunCreatedSerializer(RunSerializer):
    """The new run and the exact body it will send (its timeline is one event: created)."""

    payload = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, run: TrainingRun) -> dict[str, Any]:
        return callback_tokens_redacted(stored_workflow_body(run))


class RunDetailSerializer(RunCreatedSerializer):
    events = RunEventSerializer(many=True, read_only=True)


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
    help = serializers.CharField(allow_blank=True)


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
    contract = serializers.ChoiceField(
        choices=["beta12", "beta86"],
        help_text="The orchestrator contract in effect: every option and range below is what it "
        "accepts (docs/contracts.md).",
    )
    baseModels = CatalogBaseModelSerializer(many=True)
    engines = serializers.ListField(child=serializers.DictField())


class RunPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = RunSerializer(many=True)
