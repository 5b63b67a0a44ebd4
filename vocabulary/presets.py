"""The words the new-run page uses for the catalog: a one-line explanation of every setting, the
simple mode's presets ("Character", "Style", "Concept") and the labels of the form's other
fields. Data only, next to the catalog whose ranges and defaults they are read with; the pages
and docs read them from here, never restate them.

Settings are named as the page names them (Kohya-style names; AI Toolkit's own names are mapped
by catalog.AI_TOOLKIT_TO_KOHYA_NAMES), so one explanation serves every engine."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HELP: dict[str, str] = {
    "maxTrainEpochs": "Passes over the whole data set; more learns more, too many copy the images.",
    "epochs": "Passes over the whole data set; more learns more, too many copy the images.",
    "steps": "Training steps in total; more learns more, too many copy the images.",
    "checkpoints": "How many saved versions (with samples) the run keeps along the way.",
    "numRepeats": "How often each image is seen per epoch; empty picks it from the image count.",
    "trainBatchSize": "Images per training step: higher is faster and needs more memory.",
    "resolution": "Images are scaled to about this many pixels on a side for training.",
    "enableBucket": "Keeps each image's shape by grouping images of similar aspect ratio.",
    "shuffleCaption": "Shuffles caption tags every step, so their order is not learned.",
    "keepTokens": "Leading caption tags kept in place when shuffling (put your trigger word first).",
    "clipSkip": "Text encoder layers skipped at the end; 2 suits anime models.",
    "flipAugmentation": "Also trains on mirror images; leave off for text or one-sided subjects.",
    "unetLR": "How fast the image model learns: too high burns the images, too low learns little.",
    "textEncoderLR": "How fast the text encoder learns; 0 leaves it untrained.",
    "trainTextEncoder": "Whether the text encoder learns as well as the image model.",
    "lrScheduler": "How the learning rate changes over the run.",
    "lrSchedulerNumCycles": "Restarts of the learning rate for cosine with restarts.",
    "minSnrGamma": "Evens out learning across noise levels; 5 is safe, 0 turns it off.",
    "networkDim": "The LoRA's capacity: higher holds more detail and makes a larger file.",
    "networkAlpha": "Scales the LoRA's changes; usually half the network dim, or equal to it.",
    "noiseOffset": "Helps the model learn very dark and very bright images.",
    "optimizerType": "The training algorithm; Prodigy finds its own learning rate.",
}

# The form's other fields as the page labels them (errors use these, never the API's names).
FIELD_LABELS: dict[str, str] = {
    "baseModel": "Base model",
    "customModel": "Custom checkpoint",
    "engine": "Engine",
    "loraName": "LoRA name",
    "samplePrompts": "Sample prompts",
    "negativePrompt": "Negative prompt",
    "priority": "Priority",
    "trainingData": "Training data",
    "imageCount": "Number of images",
    "url": "URL of the zip",
    "modelVariant": "Model variant",
    "ecosystem": "Model family",
}

# A rule per setting: ("default",) keeps the catalog default, ("scale", f) multiplies it,
# ("value", v) sets v. Every result is clamped to the setting's range; locked or absent settings
# are left alone, so a preset fits any base model and engine.
Rule = tuple[Any, ...]


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    description: str
    rules: Mapping[str, Rule]


PRESETS: tuple[Preset, ...] = (
    Preset(
        "character",
        "Character",
        "One person, creature or character that should look the same in every picture.",
        {
            "maxTrainEpochs": ("default",),
            "networkDim": ("default",),
            "flipAugmentation": ("value", False),
            "shuffleCaption": ("value", False),
            "keepTokens": ("value", 1),
        },
    ),
    Preset(
        "style",
        "Style",
        "An art style or look to apply to any subject.",
        {
            "maxTrainEpochs": ("scale", 1.5),
            "networkDim": ("scale", 2),
            "networkAlpha": ("scale", 2),
            "flipAugmentation": ("value", True),
            "shuffleCaption": ("value", True),
            "keepTokens": ("value", 0),
        },
    ),
    Preset(
        "concept",
        "Concept",
        "An object, pose, clothing or idea, shown in many settings.",
        {
            "maxTrainEpochs": ("scale", 1.2),
            "networkDim": ("default",),
            "flipAugmentation": ("value", True),
            "shuffleCaption": ("value", True),
            "keepTokens": ("value", 1),
        },
    ),
)
PRESET_KEYS = frozenset(p.key for p in PRESETS)


def _clamp(row: Mapping[str, Any], value: Any) -> Any:
    if row["type"] in ("int", "float") and isinstance(value, int | float):
        if row.get("min") is not None:
            value = max(row["min"], value)
        if row.get("max") is not None:
            value = min(row["max"], value)
        if row["type"] == "int":
            value = math.floor(value)
    return value


def preset_values(preset: Preset, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the preset sets on these rows (the page's rows for one base model and engine):
    name, label and value, within each setting's range."""
    out = []
    for row in rows:
        rule = preset.rules.get(row["name"])
        if rule is None or row["locked"]:
            continue
        default = row["default"]
        if rule[0] == "default":
            value = default
        elif rule[0] == "scale":
            if not isinstance(default, int | float) or isinstance(default, bool):
                continue
            value = default * rule[1]
        else:
            value = rule[1]
            if row["type"] == "bool" and not isinstance(value, bool):
                continue
        out.append({"name": row["name"], "label": row["label"], "value": _clamp(row, value)})
    return out
