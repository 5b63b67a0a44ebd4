"""The orchestrator contract of `@civitai/client` 0.2.0-beta.12, the plan's contract.

The schema below is written from orchestrator-api-beta12.md §2 field by field: objects forbid
unknown keys unless the spec leaves them open (the inline `trainingData` and `samples`), integers
must be integers, non-nullable fields reject null (so builders omit them instead), and nullable
enums reject null too (§4.8). Every workflow the builders make is checked against it, and the
emulator validates incoming requests with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from training.orchestrator.contracts.base import (
    RunLike,
    WireError,
    WorkflowState,
    air_regex,
    training_step,
    wire_errors,
    workflow_state,
)
from vocabulary import catalog
from vocabulary.catalog import BaseModel as CatalogBaseModel

NAME = "beta12"
AI_TOOLKIT_EPOCHS = (1, 20)  # TrainingInput.epochs (§2.1)

_AIR = air_regex(r"a-zA-Z0-9_\-/.=,")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:\S+$")


def _air(value: str) -> str:
    if not _AIR.match(value):
        raise ValueError("must be an AIR (urn:air:<ecosystem>:<type>:<source>:<id>@<version>)")
    return value


def _uri(value: str) -> str:
    if not _URI.match(value):
        raise ValueError("must be an absolute URI")
    return value


Air = Annotated[StrictStr, AfterValidator(_air)]
Uri = Annotated[StrictStr, AfterValidator(_uri)]
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]


def _number(value: object) -> object:
    # JSON numbers only: pydantic's lax float would also take "0.5" and true.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


Number = Annotated[float, BeforeValidator(_number)]


def _no_null(value: object) -> object:
    # Optional in the spec but not nullable: omitting it is fine, an explicit null is not.
    if value is None:
        raise ValueError("may not be null; omit it instead")
    return value


NotNull = BeforeValidator(_no_null)
Priority = Literal["high", "normal", "low"]
Status = Literal[
    "unassigned",
    "preparing",
    "scheduled",
    "processing",
    "succeeded",
    "failed",
    "expired",
    "canceled",
]
CallbackType = Literal[
    "workflow:*", "workflow:unassigned", "workflow:processing", "workflow:succeeded",
    "workflow:failed", "workflow:expired", "workflow:canceled",
    "step:*", "step:unassigned", "step:processing", "step:succeeded", "step:failed",
    "step:expired", "step:canceled",
    "job:*", "job:unassigned", "job:processing", "job:succeeded", "job:failed", "job:expired",
    "job:canceled",
]  # fmt: skip


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- new step: `training` with the flat TrainingInput (§2.1) ---------------------------------


class TrainingData(_Open):
    type: StrictStr
    sourceUrl: Uri
    count: Int32


class Samples(_Open):
    prompts: list[StrictStr]


class TrainingInput(_Closed):
    engine: Literal["ai-toolkit"]
    ecosystem: StrictStr
    model: Air
    modelVariant: StrictStr | None = None
    trainingData: TrainingData
    samples: Samples
    epochs: Annotated[StrictInt, Field(ge=1, le=20)] = 5
    numRepeats: Annotated[StrictInt, Field(ge=1, le=5000)] = 8
    trainBatchSize: Annotated[StrictInt, Field(ge=1, le=9)] | None = None
    resolution: Int32 | None = None
    lr: Annotated[Number, Field(ge=0, le=1)] = 0.0001
    textEncoderLr: Annotated[Number, Field(ge=0, le=1)] | None = None
    trainTextEncoder: StrictBool = False
    lrScheduler: StrictStr = "cosine"
    optimizerType: StrictStr = "adamw8bit"
    networkDim: Annotated[StrictInt, Field(ge=1, le=128)] = 32
    networkAlpha: Annotated[StrictInt, Field(ge=1, le=128)] = 32
    noiseOffset: Annotated[Number, Field(ge=0, le=1)] = 0
    minSnrGamma: Number | None = None
    flipAugmentation: StrictBool = False
    shuffleTokens: StrictBool = False
    keepTokens: Annotated[StrictInt, Field(ge=0, le=10)] = 0


# --- legacy step: `imageResourceTraining`, dispatched on engine (§2.2) -----------------------

KohyaScheduler = Literal["constant", "cosine", "cosine_with_restarts", "linear"]


class _LegacyInput(_Closed):
    model: Air
    trainingData: Uri
    trainingDataImagesCount: Int32
    loraName: StrictStr = "my-lora"
    samplePrompts: list[StrictStr] = Field(default_factory=list)
    negativePrompt: StrictStr | None = None


class KohyaInput(_LegacyInput):
    engine: Literal["kohya"]
    maxTrainEpochs: Annotated[StrictInt, Field(ge=0, le=20)] = 5
    numRepeats: Annotated[StrictInt, Field(ge=1, le=5000)] = 8
    trainBatchSize: Annotated[StrictInt, Field(ge=1, le=9)] | None = None
    resolution: Annotated[StrictInt, Field(ge=512, le=1024)] | None = None
    enableBucket: StrictBool = True
    shuffleCaption: StrictBool = False
    keepTokens: Annotated[StrictInt, Field(ge=0, le=3)] = 0
    clipSkip: Annotated[StrictInt, Field(ge=1, le=4)] | None = (
        None  # required-less, no default in b12
    )
    flipAugmentation: StrictBool = False
    unetLR: Annotated[Number, Field(ge=0, le=1)] = 0.00005
    textEncoderLR: Annotated[Number, Field(ge=0, le=1)] = 0.00005
    # Nullable in the spec, but an enum, which rejects null (§4.8): omitted is fine, null is not.
    lrScheduler: Annotated[KohyaScheduler | None, NotNull] = None
    lrSchedulerNumCycles: Annotated[StrictInt, Field(ge=1, le=4)] = 3
    minSnrGamma: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    networkDim: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    networkAlpha: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    noiseOffset: Annotated[Number, Field(ge=0, le=1)] | None = None
    optimizerType: StrictStr | None = None


class MusubiInput(_LegacyInput):
    engine: Literal["musubi"]
    maxTrainEpochs: Annotated[StrictInt, Field(ge=0, le=20)] = 5
    numRepeats: Annotated[StrictInt, Field(ge=1, le=5000)] = 8
    trainBatchSize: Annotated[StrictInt, Field(ge=1, le=9)] | None = None
    resolution: Annotated[StrictInt, Field(ge=512, le=1024)] | None = None
    enableBucket: StrictBool = True
    unetLR: Annotated[Number, Field(ge=0, le=1)] = 0.00005
    lrScheduler: Annotated[KohyaScheduler | None, NotNull] = None
    lrSchedulerNumCycles: Annotated[StrictInt, Field(ge=1, le=4)] = 3
    networkDim: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    networkAlpha: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    optimizerType: StrictStr | None = None


class FluxDevFastInput(_LegacyInput):
    engine: Literal["flux-dev-fast"]


class LegacyAiToolkitInput(_LegacyInput):
    """Present in beta.12 (removed in beta.15); we never send it, the emulator accepts it."""

    engine: Literal["ai-toolkit"]
    maxTrainEpochs: Annotated[StrictInt, Field(ge=0, le=20)] = 5
    numRepeats: Annotated[StrictInt, Field(ge=1, le=5000)] = 8
    trainBatchSize: Annotated[StrictInt, Field(ge=1, le=9)] | None = None
    resolution: Annotated[StrictInt, Field(ge=512, le=1024)] | None = None
    lr: Annotated[Number, Field(ge=0, le=1)] = 0.0001
    textEncoderLr: Annotated[Number, Field(ge=0, le=1)] | None = None
    trainTextEncoder: StrictBool | None = None
    lrScheduler: Annotated[
        Literal["constant", "constant_with_warmup", "cosine", "linear", "step"] | None, NotNull
    ] = None
    optimizerType: Annotated[
        Literal["adam", "adamw", "adamw8bit", "adam8bit", "lion", "lion8bit", "adafactor",
                "adagrad", "prodigy", "prodigy8bit"] | None,
        NotNull,
    ] = None  # fmt: skip
    networkDim: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    networkAlpha: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    noiseOffset: Annotated[Number, Field(ge=0, le=1)] | None = None
    minSnrGamma: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    flipAugmentation: StrictBool = False
    shuffleTokens: StrictBool = False
    keepTokens: Annotated[StrictInt, Field(ge=0, le=10)] = 0


LegacyInput = Annotated[
    KohyaInput | MusubiInput | FluxDevFastInput | LegacyAiToolkitInput,
    Field(discriminator="engine"),
]


class _StepTemplate(_Closed):
    name: StrictStr | None = None
    priority: Annotated[Priority | None, NotNull] = None
    timeout: StrictStr | None = None
    retries: Int32 | None = None
    metadata: dict[str, Any] | None = None


class TrainingStepTemplate(_StepTemplate):
    type_: Literal["training"] = Field(alias="$type")
    input: TrainingInput


class ImageResourceTrainingStepTemplate(_StepTemplate):
    type_: Literal["imageResourceTraining"] = Field(alias="$type")
    input: LegacyInput


StepTemplate = Annotated[
    TrainingStepTemplate | ImageResourceTrainingStepTemplate, Field(discriminator="type_")
]


class WorkflowCallback(_Closed):
    url: Uri
    type: list[CallbackType]


class WorkflowTips(_Closed):
    civitai: Number
    creators: Number


class WorkflowTemplate(_Closed):
    steps: Annotated[list[StepTemplate], Field(min_length=1)]
    metadata: dict[str, Any] | None = None
    tags: Annotated[list[StrictStr], Field(max_length=10)] | None = None
    callbacks: list[WorkflowCallback] | None = None
    tips: Annotated[WorkflowTips | None, NotNull] = None
    arguments: dict[str, Any] | None = None
    nsfwLevel: Annotated[Literal["pg", "pG13", "r", "x", "xxx", "na"] | None, NotNull] = None
    experimental: StrictBool | None = None
    allowMatureContent: StrictBool | None = None
    upgradeMode: Annotated[Literal["manual", "automatic"] | None, NotNull] = None
    currencies: Annotated[list[Literal["yellow", "blue", "green", "fakeRed"]] | None, NotNull] = (
        None
    )


_TAGS = ("training", "imageResourceTraining", "kohya", "musubi", "flux-dev-fast", "ai-toolkit")


def validate_workflow(body: Mapping[str, Any]) -> list[WireError]:
    problems: list[WireError] = []
    try:
        WorkflowTemplate.model_validate(body)
    except ValidationError as exc:
        problems = wire_errors(exc, skip=_TAGS)
    tags = body.get("tags")
    if isinstance(tags, list) and len({repr(t) for t in tags}) != len(tags):
        problems.append(WireError(path="tags", message="items must be unique"))
    return problems


# --- builders ---------------------------------------------------------------------------------

# Our AI Toolkit parameters that beta12 declares nullable: None is sent as null.
_AI_TOOLKIT_NULLABLE = frozenset({"textEncoderLr", "minSnrGamma", "resolution"})


def _model_air(run: RunLike) -> str:
    return run.custom_model or catalog.BASE_MODELS[run.base_model].air


def _legacy_input(run: RunLike) -> dict[str, Any]:
    info = catalog.ENGINES[run.engine]  # type: ignore[index]
    body: dict[str, Any] = {
        "engine": info.wire_engine,
        "model": _model_air(run),
        "trainingData": run.training_data_url,
        "trainingDataImagesCount": run.image_count,
        "loraName": run.lora_name,
        "samplePrompts": list(run.sample_prompts),
    }
    if run.negative_prompt:
        body["negativePrompt"] = run.negative_prompt
    if run.engine != catalog.RAPID:  # Rapid sends no training parameters at all
        for name, value in run.params.items():
            if value is not None:  # every legacy knob we send is non-null; omit rather than null
                body[name] = value
    return body


def _ai_toolkit_input(run: RunLike) -> dict[str, Any]:
    body: dict[str, Any] = {
        "engine": "ai-toolkit",
        "ecosystem": run.ecosystem,
        "model": _model_air(run),
    }
    if run.model_variant:
        body["modelVariant"] = run.model_variant
    body["trainingData"] = {
        "type": "zip",
        "sourceUrl": run.training_data_url,
        "count": run.image_count,
    }
    body["samples"] = {"prompts": list(run.sample_prompts)}
    for name, value in run.params.items():
        if value is None and name not in _AI_TOOLKIT_NULLABLE:
            continue  # non-nullable in beta12: omit instead of sending null
        body[name] = value
    return body


def build_step(run: RunLike, *, run_id: str) -> dict[str, Any]:
    return training_step(
        run, run_id=run_id, new_input=_ai_toolkit_input, legacy_input=_legacy_input
    )


def build_workflow(run: RunLike, *, run_id: str, callback_url: str) -> dict[str, Any]:
    return {
        "metadata": {"runId": run_id},
        "tags": ["training", f"run:{run_id}", f"engine:{run.engine}"],
        "callbacks": [{"url": callback_url, "type": ["workflow:*", "job:processing"]}],
        "steps": [build_step(run, run_id=run_id)],
    }


def ai_toolkit_unavailable(base: CatalogBaseModel) -> str | None:
    # beta12's ecosystem is a free string: every catalog ecosystem is accepted on the wire.
    return catalog.contract_vocabulary(NAME).ai_toolkit_unavailable(base)


def _epochs(output: Mapping[str, Any]) -> list[dict[str, Any]]:
    """beta12 reports epochs in the legacy EpochResult shape on both step types."""
    epochs = []
    for item in output.get("epochs") or []:
        if not isinstance(item, Mapping):
            continue
        epochs.append(
            {
                "epochNumber": item.get("epochNumber"),
                "modelName": item.get("blobName"),
                "modelUrl": item.get("blobUrl"),
                "modelSize": item.get("blobSize"),
                "sampleImages": [u for u in item.get("sampleImages") or [] if isinstance(u, str)],
            }
        )
    return sorted(epochs, key=lambda e: e["epochNumber"] or 0)


def _eta_minutes(output: Mapping[str, Any], job: Mapping[str, Any]) -> float | None:
    eta = output.get("eta")
    return float(eta) if isinstance(eta, int | float) else None


def parse_workflow(workflow: Mapping[str, Any]) -> WorkflowState:
    return workflow_state(workflow, epochs=_epochs, eta_minutes=_eta_minutes)


class Beta12:
    name = NAME

    def build_workflow(self, run: RunLike, *, run_id: str, callback_url: str) -> dict[str, Any]:
        return build_workflow(run, run_id=run_id, callback_url=callback_url)

    def validate_workflow(self, body: Mapping[str, Any]) -> list[WireError]:
        return validate_workflow(body)

    def ai_toolkit_unavailable(self, base: CatalogBaseModel) -> str | None:
        return ai_toolkit_unavailable(base)

    def parse_workflow(self, workflow: Mapping[str, Any]) -> WorkflowState:
        return parse_workflow(workflow)

    def ai_toolkit_epochs_range(self) -> tuple[int, int]:
        return AI_TOOLKIT_EPOCHS

    def ai_toolkit_steps(self, run: RunLike) -> int | None:
        return None  # beta12's training input has no `steps`: epochs x repeats set the length

    def params_not_sent(self, run: RunLike) -> frozenset[str]:
        if run.engine == catalog.RAPID:
            return frozenset(run.params)
        return frozenset()
