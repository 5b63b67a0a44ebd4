"""The request schema of `@civitai/client` 0.2.0-beta.86 (orchestrator-api-beta86.md §2-§7).

Written field by field from the reference, the way beta12.py does it: every object forbids
unknown keys (so a field a variant does not list is refused, §6.2), integers must be integers,
`T|null` fields take null, non-nullable ones only take omission, nullable enums refuse null (§6.2),
and readOnly fields (usesStepPricing, defaultSteps, maxBatchSize, storageBuzzPerEpoch,
requiresAgeClassification, targetSteps) are not declared, so sending one is refused too.

The training input is the discriminated hierarchy `engine` -> `ecosystem` -> `modelVariant`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

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
    create_model,
)

from training.orchestrator.contracts.base import WireError, air_regex

_AIR = air_regex(r"a-zA-Z0-9_\-/.=,%+:")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:\S+$")
_DATE_SPAN = re.compile(r"^-?(\d+[.:])?\d{1,2}:\d{2}:\d{2}(\.\d{1,7})?$")  # .NET TimeSpan
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]+$")
CURRENCIES = ("yellow", "blue", "green", "fakeRed")


def _air(value: str) -> str:
    if not _AIR.match(value):
        raise ValueError(
            "must be an AIR (urn:air:<ecosystem>:<type>:<source>:<id>@<version>); a URL with a "
            "query string (a presigned URL) is not one"
        )
    return value


def _uri(value: str) -> str:
    if not _URI.match(value):
        raise ValueError("must be an absolute URI")
    return value


def _date_span(value: str) -> str:
    if not _DATE_SPAN.match(value):
        raise ValueError("must be a TimeSpan such as 00:05:00")
    return value


def _number(value: object) -> object:
    # JSON numbers only: pydantic's lax float would also take "0.5" and true.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


def _no_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null; omit it instead")
    return value


Air = Annotated[StrictStr, AfterValidator(_air)]
Uri = Annotated[StrictStr, AfterValidator(_uri)]
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Number = Annotated[float, BeforeValidator(_number)]
Unit = Annotated[Number, Field(ge=0, le=1)]
NotNull = BeforeValidator(_no_null)
Scalar = StrictStr | StrictBool | StrictInt | Number
Int0To3 = Annotated[StrictInt, Field(ge=0, le=3)]
Int0To20 = Annotated[StrictInt, Field(ge=0, le=20)]
Int1To4 = Annotated[StrictInt, Field(ge=1, le=4)]
Int1To9 = Annotated[StrictInt, Field(ge=1, le=9)]
Int1To256 = Annotated[StrictInt, Field(ge=1, le=256)]
Int1To5000 = Annotated[StrictInt, Field(ge=1, le=5000)]
Int100To10000 = Annotated[StrictInt, Field(ge=100, le=10000)]
Int512To1024 = Annotated[StrictInt, Field(ge=512, le=1024)]


Priority = Literal["high", "normal", "low"]
NsfwLevel = Literal["pg", "pg13", "r", "x", "xxx", "na"]
Currency = Literal["yellow", "blue", "green", "fakeRed"]
CallbackType = Literal[
    "workflow:*", "workflow:unassigned", "workflow:processing", "workflow:succeeded",
    "workflow:failed", "workflow:expired", "workflow:canceled",
    "step:*", "step:unassigned", "step:processing", "step:succeeded", "step:failed",
    "step:expired", "step:canceled",
    "job:*", "job:unassigned", "job:processing", "job:succeeded", "job:failed", "job:expired",
    "job:canceled",
]  # fmt: skip
AiToolkitScheduler = Literal["constant", "constant_with_warmup", "cosine", "linear", "step"]
AiToolkitOptimizer = Literal[
    "adamw", "adamw8bit", "adam8bit", "lion", "lion8bit", "adafactor", "adagrad", "prodigy",
    "prodigy8bit", "automagic",
]  # fmt: skip
KohyaScheduler = Literal["constant", "cosine", "cosine_with_restarts", "linear"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- new step: `training` (§6) ------------------------------------------------------------------


class ZipTrainingData(_Closed):
    type: Literal["zip"]
    sourceUrl: Air
    count: Int32


class TrainingInputSamples(_Closed):
    prompts: Annotated[list[StrictStr] | None, NotNull] = None
    negativePrompt: StrictStr | None = None
    sourceImages: Annotated[list[StrictStr] | None, NotNull] = None
    cfgScale: Number | None = None
    strength: Number | None = None


class _TrainingInput(_Closed):
    trainingData: ZipTrainingData
    samples: Annotated[TrainingInputSamples | None, NotNull] = None
    epochs: Annotated[StrictInt, Field(ge=1, le=200)] | None = None
    steps: Annotated[StrictInt, Field(ge=1, le=10000)] | None = None
    lr: Annotated[Unit | None, NotNull] = 0.0001
    textEncoderLr: Unit | None = None
    trainTextEncoder: StrictBool | None = None
    networkDim: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    networkAlpha: Annotated[StrictInt, Field(ge=1, le=256)] | None = None
    noiseOffset: Unit | None = None
    flipAugmentation: Annotated[StrictBool | None, NotNull] = False
    shuffleTokens: Annotated[StrictBool | None, NotNull] = False
    keepTokens: Annotated[Annotated[StrictInt, Field(ge=0, le=10)] | None, NotNull] = 0
    triggerWord: StrictStr | None = None
    continueFrom: Air | None = None


class _AiToolkit(_TrainingInput):
    engine: Literal["ai-toolkit"]
    # 1..4 in the base; an ecosystem's lower maximum is clamped by the server, not refused (§6.2).
    batchSize: Annotated[StrictInt, Field(ge=1, le=4)] | None = None
    # Nullable enums: the type allows null, the enum does not (§6.2): omit instead.
    lrScheduler: Annotated[AiToolkitScheduler | None, NotNull] = None
    optimizerType: Annotated[AiToolkitOptimizer | None, NotNull] = None


class _WithModel(_AiToolkit):
    model: Annotated[Air | None, NotNull] = None  # optional, the orchestrator has a default


class Sd1Input(_WithModel):
    ecosystem: Literal["sd1"]
    minSnrGamma: Annotated[StrictInt, Field(ge=0, le=20)] | None = None


class SdxlInput(_WithModel):
    ecosystem: Literal["sdxl"]
    minSnrGamma: Annotated[StrictInt, Field(ge=0, le=20)] | None = None


class AnimaInput(_WithModel):
    ecosystem: Literal["anima"]


class Flux1DevInput(_AiToolkit):
    ecosystem: Literal["flux1"]
    modelVariant: Literal["dev"]


class Flux1SchnellInput(_AiToolkit):
    ecosystem: Literal["flux1"]
    modelVariant: Literal["schnell"]


class _Flux2Klein(_AiToolkit):
    ecosystem: Literal["flux2klein"]
    isEditTraining: Annotated[StrictBool | None, NotNull] = False


class Flux2Klein4bInput(_Flux2Klein):
    modelVariant: Literal["4b"]


class Flux2Klein9bInput(_Flux2Klein):
    modelVariant: Literal["9b"]


class QwenInput(_AiToolkit):
    ecosystem: Literal["qwen"]
    version: Annotated[Literal["latest", "2509", "2512"] | None, NotNull] = "latest"


class AceStepSampleOverride(_Closed):
    lyrics: StrictStr | None = None
    timeSignature: StrictStr | None = None
    language: StrictStr | None = None
    key: StrictStr | None = None
    duration: Number | None = None
    instrumentalWeight: Number | None = None
    vocalWeight: Number | None = None
    cfg: Number | None = None
    bpm: Int32 | None = None
    steps: Int32 | None = None


class AceStep15Input(_AiToolkit):
    ecosystem: Literal["ace_step_15"]
    samplesOverrides: Annotated[list[AceStepSampleOverride] | None, NotNull] = None


class _AceStep15Xl(_AiToolkit):
    ecosystem: Literal["ace_step_15_xl"]
    samplesOverrides: Annotated[list[AceStepSampleOverride] | None, NotNull] = None


class AceStep15XlBaseInput(_AceStep15Xl):
    modelVariant: Literal["base"]


class AceStep15XlSftInput(_AceStep15Xl):
    modelVariant: Literal["sft"]


_PLAIN = (
    "chroma", "ernie", "zimageturbo", "zimagebase", "ltx2", "ltx23", "hidream-o1", "boogu",
    "krea2", "mageflow", "minimaxh3",
)  # fmt: skip
# Ecosystems that add nothing to the base (§6.3): one model each, told apart by `ecosystem`.
_PLAIN_MODELS: tuple[type[_AiToolkit], ...] = tuple(
    create_model(
        f"{e.title().replace('-', '').replace('_', '')}Input",
        __base__=_AiToolkit,
        __module__=__name__,
        ecosystem=(Literal[e], ...),  # type: ignore[valid-type,arg-type]
    )
    for e in _PLAIN
)

Flux1Input = Annotated[Flux1DevInput | Flux1SchnellInput, Field(discriminator="modelVariant")]
Flux2KleinInput = Annotated[
    Flux2Klein4bInput | Flux2Klein9bInput, Field(discriminator="modelVariant")
]
AceStep15XlInput = Annotated[
    AceStep15XlBaseInput | AceStep15XlSftInput, Field(discriminator="modelVariant")
]
_ECOSYSTEM_MODELS: tuple[Any, ...] = (
    Sd1Input, SdxlInput, AnimaInput, Flux1Input, Flux2KleinInput, QwenInput, AceStep15Input,
    AceStep15XlInput, *_PLAIN_MODELS,
)  # fmt: skip
AiToolkitInput = Annotated[Union[_ECOSYSTEM_MODELS], Field(discriminator="ecosystem")]  # type: ignore[valid-type]  # noqa: UP007

# Ecosystem -> the modelVariant values it requires (() = takes none), as the union above says.
AI_TOOLKIT_ECOSYSTEMS: dict[str, tuple[str, ...]] = {
    "sd1": (), "sdxl": (), "anima": (), "flux1": ("dev", "schnell"), "flux2klein": ("4b", "9b"),
    "qwen": (), "ace_step_15": (), "ace_step_15_xl": ("base", "sft"),
    **{e: () for e in _PLAIN},
}  # fmt: skip
ECOSYSTEMS_WITH_MODEL = frozenset({"sd1", "sdxl", "anima"})
ECOSYSTEMS_WITH_MIN_SNR = frozenset({"sd1", "sdxl"})


class ComfyInput(_TrainingInput):
    """engine `comfy` (beta.79+). Its extra knobs' types are not in the reference beyond
    "nullable string/bool/int/number", so each takes any JSON scalar or null."""

    engine: Literal["comfy"]
    ecosystem: StrictStr
    batchSize: Annotated[StrictInt, Field(ge=1, le=4)] | None = None
    lrScheduler: Annotated[AiToolkitScheduler | None, NotNull] = None
    optimizerType: Annotated[AiToolkitOptimizer | None, NotNull] = None
    resolution: Annotated[Annotated[StrictInt, Field(ge=256, le=1024)] | None, NotNull] = 1024
    noHalfVae: Annotated[StrictBool | None, NotNull] = False
    minSnrGamma: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    model: Annotated[Air | None, NotNull] = None
    diffusionModel: Air | None = None
    textEncoderModel: Air | None = None
    vaeModel: Air | None = None
    trainingDtype: Scalar | None = None
    loraDtype: Scalar | None = None
    quantizedBackward: Scalar | None = None
    bypassMode: Scalar | None = None
    gradAccumulationSteps: Scalar | None = None
    lossFunction: Scalar | None = None
    algorithm: Scalar | None = None
    checkpointDepth: Scalar | None = None
    offloading: Scalar | None = None
    clipType: Scalar | None = None
    unetWeightDtype: Scalar | None = None
    modelSamplingShift: Scalar | None = None
    datasetCaching: Scalar | None = None


TrainingInput = Annotated[AiToolkitInput | ComfyInput, Field(discriminator="engine")]


# --- legacy step: `imageResourceTraining` (§7) --------------------------------------------------


class _LegacyInput(_Closed):
    model: Air
    trainingData: Uri
    trainingDataImagesCount: Int32
    loraName: Annotated[StrictStr | None, NotNull] = "my-lora"
    samplePrompts: Annotated[list[StrictStr] | None, NotNull] = None
    negativePrompt: StrictStr | None = None


class KohyaInput(_LegacyInput):
    engine: Literal["kohya"]
    maxTrainEpochs: Annotated[Int0To20 | None, NotNull] = 5
    numRepeats: Annotated[Int1To5000 | None, NotNull] = 8
    trainBatchSize: Int1To9 | None = None
    resolution: Int512To1024 | None = None
    enableBucket: Annotated[StrictBool | None, NotNull] = True
    shuffleCaption: Annotated[StrictBool | None, NotNull] = False
    keepTokens: Annotated[Int0To3 | None, NotNull] = 0
    clipSkip: Annotated[Int1To4 | None, NotNull] = 1  # gained its default in beta.86
    flipAugmentation: Annotated[StrictBool | None, NotNull] = False
    unetLR: Annotated[Unit | None, NotNull] = 0.00005
    textEncoderLR: Annotated[Unit | None, NotNull] = 0.00005
    lrScheduler: Annotated[KohyaScheduler | None, NotNull] = None
    lrSchedulerNumCycles: Annotated[Int1To4 | None, NotNull] = 3
    minSnrGamma: Int0To20 | None = None
    networkDim: Int1To256 | None = None
    networkAlpha: Int1To256 | None = None
    noiseOffset: Unit | None = None
    optimizerType: StrictStr | None = None  # a free string here, no enum


class MusubiInput(_LegacyInput):
    engine: Literal["musubi"]
    epochs: Annotated[Int0To20 | None, NotNull] = 5  # was maxTrainEpochs in beta.12
    resolution: Int512To1024 | None = None
    enableBucket: Annotated[StrictBool | None, NotNull] = True
    unetLR: Annotated[Unit | None, NotNull] = 0.00005
    lrScheduler: Annotated[KohyaScheduler | None, NotNull] = None
    lrSchedulerNumCycles: Annotated[Int1To4 | None, NotNull] = 3
    networkDim: Int1To256 | None = None
    networkAlpha: Int1To256 | None = None
    optimizerType: StrictStr | None = None


class FluxDevFastInput(_LegacyInput):
    engine: Literal["flux-dev-fast"]


class Flux2DevInput(_LegacyInput):
    engine: Literal["flux2-dev"]
    steps: Annotated[Int100To10000 | None, NotNull] = 1000
    learningRate: Annotated[Number | None, NotNull] = 0.00005
    defaultCaption: StrictStr | None = None


class Flux2DevEditInput(_LegacyInput):
    engine: Literal["flux2-dev-edit"]
    steps: Annotated[Int100To10000 | None, NotNull] = 1000
    learningRate: Annotated[Number | None, NotNull] = 0.00005
    defaultCaption: StrictStr | None = None
    referenceImageCount: Annotated[Int1To4 | None, NotNull] = 1


LegacyInput = Annotated[
    KohyaInput | MusubiInput | FluxDevFastInput | Flux2DevInput | Flux2DevEditInput,
    Field(discriminator="engine"),
]


# --- workflow (§2, §3, §5) ----------------------------------------------------------------------


class _StepTemplate(_Closed):
    name: StrictStr | None = None
    priority: Annotated[Priority | None, NotNull] = None
    timeout: Annotated[StrictStr, AfterValidator(_date_span)] | None = None
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
    detailed: StrictBool | None = None


class WorkflowTips(_Closed):
    civitai: Annotated[Number, Field(ge=0, le=2)]
    creators: Annotated[Number, Field(ge=0, le=2)]


class WorkflowTemplate(_Closed):
    steps: Annotated[list[StepTemplate], Field(min_length=1)]
    currencies: list[Currency]  # required since beta.86 (§10)
    metadata: dict[str, Any] | None = None
    tags: Annotated[list[StrictStr], Field(max_length=10)] | None = None
    callbacks: list[WorkflowCallback] | None = None
    arguments: dict[str, Any] | None = None
    tips: Annotated[WorkflowTips | None, NotNull] = None
    nsfwLevel: Annotated[NsfwLevel | None, NotNull] = None
    experimental: StrictBool | None = None
    allowMatureContent: StrictBool | None = None
    upgradeMode: Annotated[Literal["manual", "automatic"] | None, NotNull] = None
    ephemeral: StrictBool | None = None
    externalId: (
        Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=EXTERNAL_ID.pattern)]
        | None
    ) = None


# Discriminator values pydantic puts into error locations; they are not field names.
_TAGS = frozenset(
    {"training", "imageResourceTraining", "ai-toolkit", "comfy", "kohya", "musubi",
     "flux-dev-fast", "flux2-dev", "flux2-dev-edit"}
    | set(AI_TOOLKIT_ECOSYSTEMS)
    | {v for variants in AI_TOOLKIT_ECOSYSTEMS.values() for v in variants}
)  # fmt: skip
_UNION_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


def _message(path: str, err: Mapping[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind in _UNION_TAG_ERRORS and path.endswith(".ecosystem"):
        return (
            f"beta86 has no AI Toolkit ecosystem {ctx.get('tag')!r}; it has "
            f"{', '.join(AI_TOOLKIT_ECOSYSTEMS)}"
        )
    if kind == "union_tag_not_found" and path.endswith(".modelVariant"):
        variants = "; ".join(f"{e}: {'/'.join(v)}" for e, v in AI_TOOLKIT_ECOSYSTEMS.items() if v)
        return f"required by this ecosystem ({variants})"
    if kind == "extra_forbidden" and path.endswith(".input.model"):
        return (
            "this ecosystem takes no `model` in beta86 (only sd1, sdxl and anima do): AI Toolkit "
            "trains the ecosystem's own base, so a custom checkpoint cannot be used here"
        )
    if kind == "extra_forbidden" and path.endswith(".input.modelVariant"):
        return "this ecosystem takes no modelVariant in beta86 (only flux1, flux2klein, ace_step_15_xl)"
    if kind == "extra_forbidden" and path.endswith(".input.resolution"):
        return "beta86 AI Toolkit has no resolution (removed in beta.23)"
    return str(err["msg"])


def validate_workflow(body: Mapping[str, Any]) -> list[WireError]:
    problems: list[WireError] = []
    try:
        WorkflowTemplate.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            path = ""
            for part in err["loc"]:
                if isinstance(part, int):
                    path += f"[{part}]"
                elif part not in _TAGS:
                    path += f".{part}" if path else str(part)
            if err["type"] in _UNION_TAG_ERRORS:
                # Name the discriminating field, which pydantic leaves out of the location.
                discriminator = str((err.get("ctx") or {}).get("discriminator", ""))
                name = "$type" if "$type" in discriminator else discriminator.strip("'")
                if name:
                    path += f".{name}" if path else name
            problems.append(WireError(path=path, message=_message(path, err)))
    tags = body.get("tags")
    if isinstance(tags, list) and len({repr(t) for t in tags}) != len(tags):
        problems.append(WireError(path="tags", message="items must be unique"))
    return problems
