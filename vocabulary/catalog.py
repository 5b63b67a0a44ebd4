"""The training vocabulary, once: base models, engines, AI Toolkit ecosystems and variants, and every
parameter's default, range, options and lock per base model and engine (DESIGN.md §3).

Serializers, the mapping, the contracts, the catalog API, the pages and the docs' tables all read
this module; nothing else may restate a mapping from it.

Sources: civitai-trainer-facts.md §5 (AIRs), §6.1-6.2 (Kohya, Rapid and Musubi settings) and the
plan §3.3 (AI Toolkit per ecosystem). Ranges are clamped to what the orchestrator contract accepts
(e.g. Kohya epochs 3-500 in Civitai's UI, 0-20 on the wire: we offer 3-20) so that every run we
accept is valid on the wire; docs/decisions.md lists each such choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal

Engine = Literal["kohya", "rapid", "musubi", "ai-toolkit"]
MediaType = Literal["image", "video"]
ParamKind = Literal["int", "float", "bool", "enum"]
ParamValue = int | float | bool | str | None

KOHYA: Engine = "kohya"
RAPID: Engine = "rapid"
MUSUBI: Engine = "musubi"
AI_TOOLKIT: Engine = "ai-toolkit"

PRIORITIES: tuple[str, ...] = ("low", "normal", "high")
MAX_IMAGES = 1000
MAX_SAMPLE_PROMPTS = 10
MAX_PROMPT_LENGTH = 1000
MAX_STEPS = 10_000  # Civitai's targetSteps ceiling for the legacy engines (facts §8)
REPEAT_TARGET = (
    200  # numRepeats default: ceil(REPEAT_TARGET / images), clamped to its range (facts §6.1)
)

AI_TOOLKIT_FEATURE = "aiToolkitTraining"
SD3_FEATURE = "sd3Training"


@dataclass(frozen=True)
class EngineInfo:
    key: Engine
    label: str
    wire_engine: str  # the orchestrator's `engine` value
    description: str


ENGINES: dict[Engine, EngineInfo] = {
    KOHYA: EngineInfo(KOHYA, "Kohya", "kohya", "The standard LoRA trainer for image models."),
    RAPID: EngineInfo(
        RAPID, "Rapid Training", "flux-dev-fast", "Fast Flux training with fixed settings."
    ),
    MUSUBI: EngineInfo(MUSUBI, "Musubi", "musubi", "The video LoRA trainer (Wan, Hunyuan)."),
    AI_TOOLKIT: EngineInfo(
        AI_TOOLKIT,
        "AI Toolkit",
        "ai-toolkit",
        "Train using the AI Toolkit engine, offering improved quality and flexibility.",
    ),
}


@dataclass(frozen=True)
class BaseModel:
    key: str
    label: str
    family: str  # picker group
    base_type: str  # sd15, sdxl, sd35, flux, chroma, wan, hunyuan
    media_type: MediaType
    air: str
    air_ecosystems: tuple[str, ...]  # AIR ecosystems a custom checkpoint on top of it may name
    ecosystem: str | None  # AI Toolkit ecosystem
    variant: str | None  # AI Toolkit modelVariant, also for custom checkpoints (DESIGN.md §3)
    engines: tuple[Engine, ...]
    required_feature: str | None = None
    ai_toolkit_unavailable: str | None = None  # why AI Toolkit is not offered, if it is not

    @property
    def default_engine(self) -> Engine:
        return MUSUBI if self.media_type == "video" else KOHYA


_SD1_ECOS = ("sd1",)
_SDXL_ECOS = ("sdxl", "pony", "illustrious", "noobai")
_IMAGE_ENGINES: tuple[Engine, ...] = (KOHYA, AI_TOOLKIT)
_HUNYUAN_REASON = (
    "AI Toolkit has no Hunyuan Video support: the plan's mapping would train it as Wan, which needs a "
    "Wan variant Hunyuan cannot have and would produce a useless LoRA. Train Hunyuan Video with Musubi."
)


def _bm(**kwargs: object) -> BaseModel:
    return BaseModel(**kwargs)  # type: ignore[arg-type]


BASE_MODELS: dict[str, BaseModel] = {
    m.key: m
    for m in (
        _bm(key="sd_1_5", label="SD 1.5 (standard)", family="SD 1.5", base_type="sd15",
            media_type="image", air="urn:air:sd1:checkpoint:civitai:127227@139180",
            air_ecosystems=_SD1_ECOS, ecosystem="sd1", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="anime", label="Anime (SD 1.5)", family="SD 1.5", base_type="sd15",
            media_type="image", air="urn:air:sd1:checkpoint:civitai:84586@89927",
            air_ecosystems=_SD1_ECOS, ecosystem="sd1", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="semi", label="Semi-realistic (SD 1.5)", family="SD 1.5", base_type="sd15",
            media_type="image", air="urn:air:sd1:checkpoint:civitai:4384@128713",
            air_ecosystems=_SD1_ECOS, ecosystem="sd1", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="realistic", label="Realistic (SD 1.5)", family="SD 1.5", base_type="sd15",
            media_type="image", air="urn:air:sd1:checkpoint:civitai:81458@132760",
            air_ecosystems=_SD1_ECOS, ecosystem="sd1", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="sdxl", label="SDXL 1.0 (standard)", family="SDXL", base_type="sdxl",
            media_type="image", air="urn:air:sdxl:checkpoint:civitai:101055@128078",
            air_ecosystems=_SDXL_ECOS, ecosystem="sdxl", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="pony", label="Pony (SDXL)", family="SDXL", base_type="sdxl",
            media_type="image", air="urn:air:sdxl:checkpoint:civitai:257749@290640",
            air_ecosystems=_SDXL_ECOS, ecosystem="sdxl", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="illustrious", label="Illustrious (SDXL)", family="SDXL", base_type="sdxl",
            media_type="image", air="urn:air:sdxl:checkpoint:civitai:795765@889818",
            air_ecosystems=_SDXL_ECOS, ecosystem="sdxl", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="sd3_medium", label="SD 3.5 Medium", family="SD 3.5", base_type="sd35",
            media_type="image", air="urn:air:sd3:checkpoint:civitai:896953@1003708",
            air_ecosystems=("sd3",), ecosystem="sd3", variant="medium", engines=_IMAGE_ENGINES,
            required_feature=SD3_FEATURE),
        _bm(key="sd3_large", label="SD 3.5 Large", family="SD 3.5", base_type="sd35",
            media_type="image", air="urn:air:sd3:checkpoint:civitai:878387@983309",
            air_ecosystems=("sd3",), ecosystem="sd3", variant="large", engines=_IMAGE_ENGINES,
            required_feature=SD3_FEATURE),
        _bm(key="flux_dev", label="Flux.1 Dev", family="Flux.1", base_type="flux",
            media_type="image", air="urn:air:flux1:checkpoint:civitai:618692@691639",
            air_ecosystems=("flux1",), ecosystem="flux1", variant="dev",
            engines=(KOHYA, RAPID, AI_TOOLKIT)),
        _bm(key="chroma", label="Chroma", family="Chroma", base_type="chroma",
            media_type="image", air="urn:air:chroma:checkpoint:civitai:1330309@2164239",
            air_ecosystems=("chroma",), ecosystem="chroma", variant=None, engines=_IMAGE_ENGINES),
        _bm(key="wan_2_1_t2v_14b", label="Wan 2.1 T2V 14B", family="Wan Video", base_type="wan",
            media_type="video",
            air="urn:air:wanvideo:vae:huggingface:Wan-AI/Wan2.1-I2V-14B-720P@main/Wan2.1_VAE.pth",
            air_ecosystems=("wanvideo", "wanvideo14b_t2v", "wanvideo14b_i2v_480p",
                            "wanvideo14b_i2v_720p"),
            ecosystem="wan", variant="2.1", engines=(MUSUBI, AI_TOOLKIT)),
        _bm(key="wan_2_1_i2v_14b_720p", label="Wan 2.1 I2V 14B 720p", family="Wan Video",
            base_type="wan", media_type="video",
            air="urn:air:wanvideo:checkpoint:civitai:1329096@1501344",
            air_ecosystems=("wanvideo", "wanvideo14b_t2v", "wanvideo14b_i2v_480p",
                            "wanvideo14b_i2v_720p"),
            ecosystem="wan", variant="2.1", engines=(MUSUBI, AI_TOOLKIT)),
        _bm(key="wan_2_2_t2v_a14b", label="Wan 2.2 T2V A14B", family="Wan Video", base_type="wan",
            media_type="video",
            air="urn:air:wanvideo-22-t2v-a14b:checkpoint:civitai:1817671@2114154",
            air_ecosystems=("wanvideo-22-t2v-a14b", "wanvideo-22-i2v-a14b", "wanvideo-22-ti2v-5b"),
            ecosystem="wan", variant="2.2", engines=(MUSUBI, AI_TOOLKIT)),
        _bm(key="hy_720_fp8", label="Hunyuan Video 720p (fp8)", family="Hunyuan Video",
            base_type="hunyuan", media_type="video",
            air="urn:air:hyv1:vae:huggingface:tencent/HunyuanVideo@main/hunyuan-video-t2v-720p/vae/pytorch_model.pt",
            air_ecosystems=("hyv1",), ecosystem=None, variant=None, engines=(MUSUBI,),
            ai_toolkit_unavailable=_HUNYUAN_REASON),
    )
}  # fmt: skip

# AI Toolkit ecosystems and the variants each requires (plan §1.2, plus Chroma: DESIGN.md §3).
AI_TOOLKIT_VARIANTS: dict[str, tuple[str, ...]] = {
    "sd1": (),
    "sdxl": (),
    "chroma": (),
    "sd3": ("large", "medium"),
    "flux1": ("dev", "schnell"),
    "wan": ("2.1", "2.2"),
}
# Ecosystems whose full-precision Adam/AdamW runs out of GPU memory (a warning on estimates).
LARGE_MODEL_ECOSYSTEMS = frozenset({"flux1", "sd3", "chroma", "wan"})
FULL_PRECISION_OPTIMIZERS = frozenset({"adam", "adamw"})
# Ecosystems whose text encoder AI Toolkit does not train.
NO_TEXT_ENCODER_ECOSYSTEMS = frozenset({"flux1", "sd3", "wan", "chroma"})


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: ParamKind
    label: str
    default: ParamValue
    minimum: float | None = None
    maximum: float | None = None
    options: tuple[str, ...] = ()
    locked: bool = False
    nullable: bool = False
    step: int | None = None  # ints that must be a multiple of this (resolution)
    computed: str | None = None  # when the default depends on the run (numRepeats)
    help: str = ""


def _p(name: str, kind: ParamKind, label: str, default: ParamValue, **kw: object) -> ParamSpec:
    return ParamSpec(name, kind, label, default, **kw)  # type: ignore[arg-type]


KOHYA_SCHEDULERS = ("constant", "cosine", "cosine_with_restarts", "linear")
KOHYA_OPTIMIZERS = ("AdamW8Bit", "Adafactor", "Prodigy")
AI_TOOLKIT_SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "linear", "step")
AI_TOOLKIT_OPTIMIZERS = (
    "adam", "adamw", "adamw8bit", "adam8bit", "lion", "lion8bit", "adafactor", "adagrad",
    "prodigy", "prodigy8bit",
)  # fmt: skip
PRODIGY_OPTIMIZERS = frozenset({"Prodigy", "prodigy", "prodigy8bit"})

# Kohya's base row (facts §6.1), epochs clamped to the wire's 0-20.
_KOHYA_BASE: tuple[ParamSpec, ...] = (
    _p("maxTrainEpochs", "int", "Epochs", 10, minimum=3, maximum=20),
    _p("numRepeats", "int", "Num repeats", None, minimum=1, maximum=5000,
       computed=f"ceil({REPEAT_TARGET} / imageCount), within 1-5000"),
    _p("trainBatchSize", "int", "Train batch size", 6, minimum=1, maximum=9),
    _p("resolution", "int", "Resolution", 512, minimum=512, maximum=1024, step=64),
    _p("enableBucket", "bool", "Enable bucket", True),
    _p("shuffleCaption", "bool", "Shuffle caption", False),
    _p("keepTokens", "int", "Keep tokens", 0, minimum=0, maximum=3),
    _p("clipSkip", "int", "Clip skip", 1, minimum=1, maximum=4),
    _p("flipAugmentation", "bool", "Flip augmentation", False),
    _p("unetLR", "float", "UNet learning rate", 0.0005, minimum=0.000001, maximum=1),
    _p("textEncoderLR", "float", "Text encoder learning rate", 0.00005, minimum=0, maximum=1),
    _p("lrScheduler", "enum", "LR scheduler", "cosine_with_restarts", options=KOHYA_SCHEDULERS),
    _p("lrSchedulerNumCycles", "int", "LR scheduler cycles", 3, minimum=1, maximum=4),
    _p("minSnrGamma", "int", "Min SNR gamma", 5, minimum=0, maximum=20),
    _p("networkDim", "int", "Network dim", 32, minimum=1, maximum=128),
    _p("networkAlpha", "int", "Network alpha", 16, minimum=1, maximum=128),
    _p("noiseOffset", "float", "Noise offset", 0.1, minimum=0, maximum=1),
    _p("optimizerType", "enum", "Optimizer", "AdamW8Bit", options=KOHYA_OPTIMIZERS),
)  # fmt: skip

# Per base model differences for Kohya (facts §6.2). A dict replaces fields of the base row.
_SDXL_KOHYA: dict[str, dict[str, object]] = {
    "maxTrainEpochs": {"minimum": 1},
    "trainBatchSize": {"default": 4, "maximum": 4},
    # Civitai offers 1024-2048; the wire accepts at most 1024.
    "resolution": {"default": 1024, "minimum": 1024, "maximum": 1024},
    "networkDim": {"maximum": 256},
    "networkAlpha": {"maximum": 256},
    "optimizerType": {"default": "Adafactor"},
}
_NO_TE: dict[str, object] = {"default": 0, "locked": True}
_FLUX_LIKE_KOHYA: dict[str, dict[str, object]] = {
    "maxTrainEpochs": {"default": 5},
    "trainBatchSize": {"default": 4, "maximum": 4},
    "shuffleCaption": {"locked": True},
    "keepTokens": {"locked": True},
    "textEncoderLR": _NO_TE,
    "networkDim": {"default": 2},
}
Overrides = dict[str, dict[str, object]]
_KOHYA_OVERRIDES: dict[str, Overrides] = {
    "sd_1_5": {},
    "anime": {
        "clipSkip": {"default": 2},
        "textEncoderLR": {"default": 0.0001},
        "networkDim": {"default": 16},
        "networkAlpha": {"default": 8},
    },
    "semi": {},
    "realistic": {"trainBatchSize": {"default": 2, "maximum": 2}},
    "sdxl": _SDXL_KOHYA,
    "pony": _SDXL_KOHYA
    | {
        "trainBatchSize": {"default": 5, "maximum": 5},
        "lrScheduler": {"default": "cosine"},
        "minSnrGamma": {"default": 0},
        "networkAlpha": {"default": 32, "maximum": 256},
        "noiseOffset": {"default": 0.03},
        "optimizerType": {"default": "Prodigy"},
    },
    "illustrious": _SDXL_KOHYA,
    "flux_dev": _FLUX_LIKE_KOHYA,
    "chroma": _FLUX_LIKE_KOHYA,
    # SD 3.5 never shipped in Civitai's trainer; we use Flux's Kohya row at 1024 px with no text
    # encoder, and its batch limit (no batch above 2 over 512 px).
    "sd3_medium": _FLUX_LIKE_KOHYA
    | {
        "trainBatchSize": {"default": 2, "maximum": 2},
        "resolution": {"default": 1024},
        "networkDim": {"default": 16},
    },
    "sd3_large": _FLUX_LIKE_KOHYA
    | {
        "trainBatchSize": {"default": 2, "maximum": 2},
        "resolution": {"default": 1024},
        "networkDim": {"default": 16},
    },
}
# Kohya on these base types refuses a batch above 2 when the resolution is above 512 (facts §8).
KOHYA_BATCH_LIMITED_BASE_TYPES = frozenset({"flux", "sd35"})

# Musubi's wire input has only these fields (orchestrator-api-beta12.md §2.2); video settings from
# facts §6.2.
_MUSUBI: tuple[ParamSpec, ...] = (
    _p("maxTrainEpochs", "int", "Epochs", 10, minimum=1, maximum=20),
    _p("numRepeats", "int", "Num repeats", None, minimum=1, maximum=5000,
       computed=f"ceil({REPEAT_TARGET} / imageCount), within 1-5000"),
    _p("trainBatchSize", "int", "Train batch size", 2, minimum=1, maximum=4),
    _p("resolution", "int", "Resolution", 960, minimum=512, maximum=1024, step=64, locked=True),
    _p("enableBucket", "bool", "Enable bucket", True),
    _p("unetLR", "float", "UNet learning rate", 0.0002, minimum=0.0001, maximum=0.0006),
    _p("lrScheduler", "enum", "LR scheduler", "constant", options=KOHYA_SCHEDULERS),
    _p("lrSchedulerNumCycles", "int", "LR scheduler cycles", 1, minimum=1, maximum=4),
    _p("networkDim", "int", "Network dim", 32, minimum=1, maximum=256),
    _p("networkAlpha", "int", "Network alpha", 1, minimum=1, maximum=256),
    _p("optimizerType", "enum", "Optimizer", "AdamW8Bit", options=("AdamW8Bit", "Adafactor")),
)  # fmt: skip

# Rapid trains with the orchestrator's fixed settings and sends no parameters; the rows show them.
_RAPID: tuple[ParamSpec, ...] = (
    _p("maxTrainEpochs", "int", "Epochs", 1, minimum=1, maximum=1, locked=True),
)


@dataclass(frozen=True)
class AiToolkitDefaults:
    resolution: int
    epochs: tuple[int, int, int]  # default, min, max
    lr: float
    text_encoder_lr: float | None
    train_text_encoder: bool
    network_dim: tuple[int, int, int]
    network_alpha: tuple[int, int, int]
    noise_offset: float = 0.1
    noise_offset_locked: bool = False
    min_snr_gamma: float | None = None  # None: not used by this ecosystem (locked off)


# The plan §3.3, per ecosystem; Chroma (absent from the plan) follows Flux.1, being Flux-derived.
AI_TOOLKIT_DEFAULTS: dict[str, AiToolkitDefaults] = {
    "sd1": AiToolkitDefaults(512, (5, 5, 20), 0.0001, 0.00005, True, (32, 16, 64), (32, 16, 64),
                             min_snr_gamma=5),
    "sdxl": AiToolkitDefaults(1024, (5, 5, 20), 0.0001, 0.00005, True, (32, 16, 64), (32, 16, 64),
                              min_snr_gamma=5),
    "flux1": AiToolkitDefaults(1024, (5, 5, 20), 0.0001, None, False, (16, 8, 32), (16, 8, 32)),
    "chroma": AiToolkitDefaults(1024, (5, 5, 20), 0.0001, None, False, (16, 8, 32), (16, 8, 32)),
    "sd3": AiToolkitDefaults(1024, (5, 5, 20), 0.0001, None, False, (16, 8, 32), (16, 8, 32)),
    "wan": AiToolkitDefaults(512, (2, 2, 10), 0.0002, None, False, (32, 16, 64), (32, 16, 64),
                             noise_offset=0, noise_offset_locked=True),
}  # fmt: skip
AI_TOOLKIT_DEFAULT_SCHEDULER = "cosine"  # the wire's own default (beta12)
AI_TOOLKIT_DEFAULT_OPTIMIZER = "adamw8bit"  # the wire's own default (beta12)

# --- what each orchestrator contract accepts (the one table; docs/catalog.md) -------------------

BETA12, BETA86 = "beta12", "beta86"
# Training length under beta86 (#17): `steps` is the length and the price, `epochs` the checkpoints
# saved. The default run per ecosystem, with where each number comes from (docs/catalog.md):
# flux1 and chroma: AI Toolkit's example configs (train_lora_flux_24gb.yaml,
# train_lora_chroma_24gb.yaml: `steps: 2000`, "500 - 4000 is a good range"); sd1 and sdxl: Civitai's
# trainer default with steps pricing (facts §2.5, "step default 2000") and the orchestrator's
# "steps" price pages, which price the default run at 2000 steps (facts §7.3).
AI_TOOLKIT_DEFAULT_STEPS: dict[str, int] = {
    "sd1": 2000,
    "sdxl": 2000,
    "flux1": 2000,
    "chroma": 2000,
}
# Checkpoints saved under steps pricing: Civitai's AI_TOOLKIT_EPOCHS {default 10, 1-20} (facts
# §2.5); the wire takes 1-200, the emulator simulates at most 20.
AI_TOOLKIT_CHECKPOINTS = (10, 1, 20)


@dataclass(frozen=True)
class ContractVocabulary:
    """What an orchestrator contract accepts, as far as the catalog offers it. The contract's
    schema module (training/orchestrator/contracts/) is the wire's own word; a test holds this
    table to it (tests/training/test_contract_vocabulary.py)."""

    name: str
    label: str  # how pages and messages name the contract
    ai_toolkit_ecosystems: dict[str, tuple[str, ...]]  # ecosystem -> the variants it takes
    ai_toolkit_optimizers: tuple[str, ...]
    ai_toolkit_schedulers: tuple[str, ...]
    ai_toolkit_int_fields: frozenset[str]  # AI Toolkit numbers the wire wants as integers
    ai_toolkit_model_ecosystems: frozenset[
        str
    ]  # ecosystems that take a `model` (custom checkpoint)
    ai_toolkit_min_snr_ecosystems: frozenset[str]  # ecosystems that take minSnrGamma
    ai_toolkit_steps: tuple[int, int] | None  # the `steps` range, None: no such field
    # Parameters the catalog has for an engine that this contract has no field for: never offered,
    # refused when sent (a 400 naming them), never accepted and dropped.
    not_carried: dict[Engine, frozenset[str]]

    def ai_toolkit_unavailable(self, base: BaseModel) -> str | None:
        """Why this contract cannot train the base model with AI Toolkit, or None if it can."""
        ecosystem = base.ecosystem
        if ecosystem is None:
            return None  # not an AI Toolkit base model at all: the catalog says why
        alternative = ENGINES[base.default_engine].label
        variants = self.ai_toolkit_ecosystems.get(ecosystem)
        if variants is None:
            label = _ECOSYSTEM_LABELS.get(ecosystem, ecosystem)
            return (
                f"{self.label} has no {label} ecosystem for AI Toolkit; "
                f"train {base.label} with {alternative}."
            )
        if variants and base.variant not in variants:
            return (
                f"{self.label} has no {ecosystem} variant {base.variant!r} for AI Toolkit (only "
                f"{', '.join(variants)}); train {base.label} with {alternative}."
            )
        return None


_ECOSYSTEM_LABELS = {"wan": "Wan", "sd3": "SD3"}
CONTRACTS: dict[str, ContractVocabulary] = {
    # beta12's ecosystem, optimizer and scheduler are free strings: the catalog's own lists stand.
    BETA12: ContractVocabulary(
        name=BETA12,
        label="The orchestrator (beta12)",
        ai_toolkit_ecosystems=dict(AI_TOOLKIT_VARIANTS),
        ai_toolkit_optimizers=AI_TOOLKIT_OPTIMIZERS,
        ai_toolkit_schedulers=AI_TOOLKIT_SCHEDULERS,
        ai_toolkit_int_fields=frozenset(),
        ai_toolkit_model_ecosystems=frozenset(AI_TOOLKIT_VARIANTS),
        ai_toolkit_min_snr_ecosystems=frozenset(AI_TOOLKIT_VARIANTS),
        ai_toolkit_steps=None,
        not_carried={},
    ),
    # orchestrator-api-beta86.md §6.2-§6.3, §10.
    BETA86: ContractVocabulary(
        name=BETA86,
        label="Today's orchestrator (beta86)",
        ai_toolkit_ecosystems={"sd1": (), "sdxl": (), "chroma": (), "flux1": ("dev", "schnell")},
        ai_toolkit_optimizers=(
            "adamw",
            "adamw8bit",
            "adam8bit",
            "lion",
            "lion8bit",
            "adafactor",
            "adagrad",
            "prodigy",
            "prodigy8bit",
            "automagic",
        ),
        ai_toolkit_schedulers=AI_TOOLKIT_SCHEDULERS,
        ai_toolkit_int_fields=frozenset({"minSnrGamma"}),
        ai_toolkit_model_ecosystems=frozenset({"sd1", "sdxl"}),
        ai_toolkit_min_snr_ecosystems=frozenset({"sd1", "sdxl"}),
        ai_toolkit_steps=(1, 10_000),  # AIToolkitTrainingInput.steps (§6.2)
        not_carried={
            AI_TOOLKIT: frozenset({"resolution", "numRepeats", "trainBatchSize"}),
            MUSUBI: frozenset({"numRepeats", "trainBatchSize"}),
        },
    ),
}


def contract_vocabulary(contract: str) -> ContractVocabulary:
    return CONTRACTS[contract]


def _ai_toolkit_specs(ecosystem: str, contract: ContractVocabulary) -> tuple[ParamSpec, ...]:
    d = AI_TOOLKIT_DEFAULTS[ecosystem]
    no_te = ecosystem in NO_TEXT_ENCODER_ECOSYSTEMS
    if contract.ai_toolkit_steps is None:
        length: tuple[ParamSpec, ...] = (
            _p("epochs", "int", "Epochs", d.epochs[0], minimum=d.epochs[1], maximum=d.epochs[2]),
        )
    else:
        low, high = contract.ai_toolkit_steps
        checkpoints = AI_TOOLKIT_CHECKPOINTS
        length = (
            _p("steps", "int", "Steps", AI_TOOLKIT_DEFAULT_STEPS[ecosystem], minimum=low,
               maximum=high, help="How long it trains (one image per step); sets the price."),
            _p("epochs", "int", "Checkpoints", checkpoints[0], minimum=checkpoints[1],
               maximum=checkpoints[2], help="How many LoRA files it saves along the way."),
        )  # fmt: skip
    min_snr_kind: ParamKind = "int" if "minSnrGamma" in contract.ai_toolkit_int_fields else "float"
    specs = (
        *length,
        _p("resolution", "int", "Resolution", d.resolution, minimum=d.resolution,
           maximum=d.resolution, locked=True),
        _p("lr", "float", "Learning rate", d.lr, minimum=0.000001, maximum=1),
        _p("textEncoderLr", "float", "Text encoder learning rate", d.text_encoder_lr, minimum=0,
           maximum=1, nullable=True, locked=no_te),
        _p("trainTextEncoder", "bool", "Train text encoder", d.train_text_encoder, locked=no_te),
        _p("lrScheduler", "enum", "LR scheduler", AI_TOOLKIT_DEFAULT_SCHEDULER,
           options=contract.ai_toolkit_schedulers),
        _p("optimizerType", "enum", "Optimizer", AI_TOOLKIT_DEFAULT_OPTIMIZER,
           options=contract.ai_toolkit_optimizers),
        _p("networkDim", "int", "Network dim", d.network_dim[0], minimum=d.network_dim[1],
           maximum=d.network_dim[2]),
        _p("networkAlpha", "int", "Network alpha", d.network_alpha[0], minimum=d.network_alpha[1],
           maximum=d.network_alpha[2]),
        _p("noiseOffset", "float", "Noise offset", d.noise_offset, minimum=0, maximum=1,
           locked=d.noise_offset_locked),
        _p("minSnrGamma", min_snr_kind, "Min SNR gamma", d.min_snr_gamma, minimum=0, maximum=20,
           nullable=True, locked=d.min_snr_gamma is None),
        _p("flipAugmentation", "bool", "Flip augmentation", False),
        _p("shuffleTokens", "bool", "Shuffle tokens", False),
        _p("keepTokens", "int", "Keep tokens", 0, minimum=0, maximum=10),
    )  # fmt: skip
    dropped = contract.not_carried.get(AI_TOOLKIT, frozenset())
    if ecosystem not in contract.ai_toolkit_min_snr_ecosystems:
        dropped |= {"minSnrGamma"}
    return tuple(s for s in specs if s.name not in dropped)


def _apply(
    specs: tuple[ParamSpec, ...], overrides: dict[str, dict[str, object]]
) -> tuple[ParamSpec, ...]:
    return tuple(replace(s, **overrides[s.name]) if s.name in overrides else s for s in specs)  # type: ignore[arg-type]


@cache
def param_specs(base_model: str, engine: Engine, contract: str) -> tuple[ParamSpec, ...]:
    """The parameters a run on this base model and engine takes under this orchestrator contract,
    with its defaults and limits: exactly what the contract can carry, nothing it cannot."""
    base = BASE_MODELS[base_model]
    vocabulary = CONTRACTS[contract]
    if engine not in base.engines:
        return ()
    if engine == KOHYA:
        specs = _apply(_KOHYA_BASE, _KOHYA_OVERRIDES[base_model])
    elif engine == MUSUBI:
        specs = _MUSUBI
    elif engine == RAPID:
        specs = _RAPID
    else:
        if vocabulary.ai_toolkit_unavailable(base) is not None:
            return ()
        assert base.ecosystem is not None
        return _ai_toolkit_specs(base.ecosystem, vocabulary)
    dropped = vocabulary.not_carried.get(engine, frozenset())
    return tuple(s for s in specs if s.name not in dropped)


def param_spec_map(base_model: str, engine: Engine, contract: str) -> dict[str, ParamSpec]:
    return {s.name: s for s in param_specs(base_model, engine, contract)}


def computed_num_repeats(image_count: int) -> int:
    return min(5000, max(1, math.ceil(REPEAT_TARGET / max(1, image_count))))


# Kohya-style names (the pages' state) -> AI Toolkit names (plan §4.1, facts §2.4).
KOHYA_TO_AI_TOOLKIT_NAMES: dict[str, str] = {
    "maxTrainEpochs": "epochs",
    "unetLR": "lr",
    "textEncoderLR": "textEncoderLr",
    "shuffleCaption": "shuffleTokens",
}
AI_TOOLKIT_TO_KOHYA_NAMES: dict[str, str] = {v: k for k, v in KOHYA_TO_AI_TOOLKIT_NAMES.items()}
# Kohya-style parameters AI Toolkit does not use at all.
NOT_USED_BY_AI_TOOLKIT: frozenset[str] = frozenset({"numRepeats", "trainBatchSize"})
# Kohya-only knobs the mapping drops without comment (they have no AI Toolkit counterpart).
KOHYA_ONLY: frozenset[str] = frozenset({"enableBucket", "clipSkip", "lrSchedulerNumCycles"})
SCHEDULER_TO_AI_TOOLKIT: dict[str, str] = {
    "constant": "constant",
    "cosine": "cosine",
    "cosine_with_restarts": "cosine",
    "linear": "linear",
}
OPTIMIZER_TO_AI_TOOLKIT: dict[str, str] = {
    "AdamW8Bit": "adamw8bit",
    "Adafactor": "adafactor",
    "Prodigy": "prodigy",
}
