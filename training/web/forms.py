"""The new-run page's form: Kohya-style names on the page, the API's body underneath.

The page posts Kohya-style parameter names plus an engine. For AI Toolkit the body is mapped with
`params.kohya_to_ai_toolkit` and then validated by the API's own `RunInputSerializer`, so every
message is the API's; each error's field path is mapped back to the page input that caused it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict

from experiments.defaults import effective_defaults
from training import uploads
from training.api.errors import _flatten, _group
from training.api.serializers import RunInputSerializer
from training.orchestrator.contracts import active as active_contract
from training.runspec import FeatureNotActive, RunRejected, RunSpec
from vocabulary import catalog, presets
from vocabulary.catalog import BaseModel, Engine, ParamSpec
from vocabulary.params import kohya_to_ai_toolkit

# AI Toolkit's trainTextEncoder is derived from the text encoder rate by the mapping (0 = off).
DERIVED_ON_PAGE = {"trainTextEncoder": "textEncoderLR"}
ESTIMATE_LORA_NAME = "estimate"  # the name does not change the price
# Stands in for training data not given yet, so the other fields are checked live; never priced.
PLACEHOLDER_DATA = {"url": "https://training-data.invalid/placeholder.zip", "imageCount": 1}


@dataclass(frozen=True)
class FieldError:
    field: str | None  # the API's path, e.g. params.epochs
    input: str | None  # the page input it belongs to, e.g. params.maxTrainEpochs
    code: str
    message: str

    @property
    def input_id(self) -> str | None:
        return input_id(self.input) if self.input else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "input": self.input,
            "code": self.code,
            "message": self.message,
        }


def input_id(name: str) -> str:
    """The element id of a page input (static/js/train.js builds the same)."""
    return "f-" + name.replace(".", "-")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def decorate(rows: list[dict[str, Any]], errors_by_input: dict[str, list[str]]) -> None:
    """What the template needs to draw each row (static/js/train.js draws the same)."""
    for row in rows:
        name = f"params.{row['name']}"
        value = row.get("value", row["default"])
        row["id"] = input_id(name)
        row["input_name"] = name
        row["text"] = _text(value)
        row["checked"] = value is True or str(value).lower() in ("true", "on")
        row["errors"] = errors_by_input.get(name, [])
        if row["locked"]:
            row["display"] = "not used" if value is None else _text(value)
        row["range"] = range_text(row)


def range_text(row: Mapping[str, Any]) -> str:
    """The range and default as the page says them: "3 to 20, default 10"."""
    default = row["default"]
    shown = "auto" if default is None and row.get("computed") else _text(default) or "none"
    if row["type"] == "bool":
        shown = "on" if default is True else "off"
    if row["type"] in ("int", "float") and row["min"] is not None and row["max"] is not None:
        if row["min"] == row["max"]:
            return f"Fixed at {_number(row['min'])}."
        return f"{_number(row['min'])} to {_number(row['max'])}, default {shown}."
    return f"Default {shown}."


def _row(spec: ParamSpec, name: str, help_text: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "apiName": spec.name,
        "label": spec.label,
        "type": spec.kind,
        "default": spec.default,
        "min": spec.minimum,
        "max": spec.maximum,
        "options": list(spec.options),
        "locked": spec.locked,
        "nullable": spec.nullable,
        "step": spec.step,
        "computed": spec.computed,
        "help": help_text or presets.HELP.get(name) or spec.help,
    }


def page_params(
    base_key: str, engine: Engine, defaults: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The parameter rows the page shows for a base model and engine, under Kohya-style names.

    For AI Toolkit these are AI Toolkit's defaults and ranges (the catalog's), renamed with
    catalog.AI_TOOLKIT_TO_KOHYA_NAMES; numRepeats and trainBatchSize are absent because AI Toolkit
    has no such parameters. Which rows apply, their labels and ranges come from the catalog for the
    active contract (beta86: Steps and Checkpoints; beta12: Epochs)."""
    if base_key not in catalog.BASE_MODELS:
        return []
    rows = []
    for spec in catalog.param_specs(base_key, engine, active_contract().name):
        if defaults and spec.name in defaults and not spec.locked:
            # This user's effective default (a promoted override or their experiment arm).
            spec = replace(spec, default=defaults[spec.name])
        if engine != catalog.AI_TOOLKIT:
            rows.append(_row(spec, spec.name))
            continue
        if spec.name in DERIVED_ON_PAGE:
            continue
        name = catalog.AI_TOOLKIT_TO_KOHYA_NAMES.get(spec.name, spec.name)
        rows.append(_row(spec, name))
    return rows


def page_catalog(catalog_data: dict[str, Any]) -> dict[str, Any]:
    """The catalog as `selectors.training_catalog(user=...)` gives it, with each engine's rows
    replaced by the page's (Kohya-style names) for the page's script."""
    models = []
    for model in catalog_data["baseModels"]:
        engines = [
            {
                **e,
                "params": page_params(model["key"], e["key"], _defaults_of(e))
                if e["available"]
                else [],
            }
            for e in model["engines"]
        ]
        models.append({**model, "engines": engines})
    return {**catalog_data, "baseModels": models}


def _defaults_of(engine_entry: Mapping[str, Any]) -> dict[str, Any]:
    return {p["name"]: p["default"] for p in engine_entry.get("params", [])}


def convert_value(kind: str, raw: str) -> Any:
    """Form text to the JSON value the API would get; what does not parse is passed as text so
    that the API's own type message answers it."""
    text = raw.strip()
    if kind == "bool":
        return text.lower() in ("true", "on", "1")
    if kind == "enum":
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if kind == "int" and number.is_integer() and "." not in text and "e" not in text.lower():
        return int(number)
    return number


@dataclass
class RunForm:
    """One POST of the new-run form (or of its live estimate), as typed."""

    base_key: str
    engine_choices: list[str]
    lora_name: str
    custom_model: str
    priority: str
    sample_prompts_text: str
    negative_prompt: str
    data_source: str  # upload | url
    uploaded_name: str
    data_url: str
    image_count: str
    raw_params: dict[str, str] = field(default_factory=dict)
    preset: str = ""  # the simple mode's choice (presets.PRESETS), "" for custom
    applied_preset: str = ""  # the preset whose values the settings were last set to
    # This user's effective defaults (API names), from the catalog: a value equal to its default
    # is not sent, so the server applies the same default and records experiment arms honestly.
    defaults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_post(cls, data: QueryDict) -> RunForm:
        raw_params = {
            key.removeprefix("params."): str(data.getlist(key)[-1])  # checkbox: last one wins
            for key in data
            if key.startswith("params.")
        }
        return cls(
            base_key=str(data.get("baseModel", "")),
            engine_choices=[str(v) for v in data.getlist("engine") if v],
            lora_name=str(data.get("loraName", "")),
            custom_model=str(data.get("customModel", "")).strip(),
            priority=str(data.get("priority", "") or "normal"),
            sample_prompts_text=str(data.get("samplePrompts", "")),
            negative_prompt=str(data.get("negativePrompt", "")),
            data_source="url" if data.get("dataSource") == "url" else "upload",
            uploaded_name=str(data.get("uploadedName", "")),
            data_url=str(data.get("dataUrl", "")).strip(),
            image_count=str(data.get("imageCount", "")).strip(),
            raw_params=raw_params,
            preset=str(data.get("preset", "")),
            applied_preset=str(data.get("appliedPreset", "")),
        )

    @classmethod
    def initial(cls, base_key: str) -> RunForm:
        return cls(base_key, [], "", "", "normal", "", "", "upload", "", "", "")

    def preset_choices(self) -> list[dict[str, Any]]:
        """The simple mode's presets for this base model and engine, with the values each sets."""
        defaults = (
            page_params(self.base_key, self.page_engine, self.defaults)
            if (self.page_engine)
            else []
        )
        return [
            {
                "key": p.key,
                "label": p.label,
                "description": p.description,
                "values": presets.preset_values(p, defaults),
            }
            for p in presets.PRESETS
        ]

    def apply_preset(self) -> None:
        """A newly chosen preset sets its values (what was typed for other settings stays);
        the same preset again changes nothing, so edits made under it are kept."""
        if self.preset not in presets.PRESET_KEYS or self.preset == self.applied_preset:
            return
        for choice in self.preset_choices():
            if choice["key"] == self.preset:
                for value in choice["values"]:
                    self.raw_params[value["name"]] = _text(value["value"])
        self.applied_preset = self.preset

    @property
    def base(self) -> BaseModel | None:
        return catalog.BASE_MODELS.get(self.base_key)

    @property
    def engine(self) -> str | None:
        """The engine asked for, None for the base model's default."""
        return self.engine_choices[0] if len(self.engine_choices) == 1 else None

    @property
    def page_engine(self) -> Engine | None:
        """The engine whose parameter rows the page shows."""
        if self.base is None:
            return None
        if self.engine in self.base.engines:
            return self.engine  # type: ignore[return-value]
        return self.base.default_engine

    @property
    def media_type(self) -> catalog.MediaType:
        return self.base.media_type if self.base else "image"

    @property
    def sample_prompts(self) -> list[str]:
        return [line.strip() for line in self.sample_prompts_text.splitlines() if line.strip()]

    def rows(self) -> list[dict[str, Any]]:
        if self.page_engine is None:
            return []
        rows = page_params(self.base_key, self.page_engine, self.defaults)
        for row in rows:
            raw = self.raw_params.get(row["name"])
            row["value"] = row["default"] if raw is None else raw
        return rows

    def form_problems(self) -> list[FieldError]:
        if len(self.engine_choices) > 1:
            return [
                FieldError(
                    "engine",
                    "engine",
                    "exclusive",
                    "Rapid Training and AI Toolkit Training cannot both be on; choose one.",
                )
            ]
        return []

    def kohya_params(self) -> dict[str, Any]:
        """The editable parameters the user typed, in the page's names; empty ones take the
        catalog default and locked ones are never sent."""
        out: dict[str, Any] = {}
        for row in self.rows():
            raw = self.raw_params.get(row["name"])
            if row["locked"] or raw is None or (raw.strip() == "" and row["type"] != "bool"):
                continue
            value = convert_value(row["type"], raw)
            if value == row["default"] and self.engine == catalog.AI_TOOLKIT:
                continue  # left at the default shown: the server applies the same one
            out[row["name"]] = value
        return out

    def api_body(self, training_data: dict[str, Any] | None) -> dict[str, Any]:
        """The body the API would take for this form."""
        body: dict[str, Any] = {
            "baseModel": self.base_key,
            "loraName": self.lora_name,
            "samplePrompts": self.sample_prompts,
            "negativePrompt": self.negative_prompt,
            "priority": self.priority,
        }
        if self.engine:
            body["engine"] = self.engine
        if self.custom_model:
            body["customModel"] = self.custom_model
        if training_data is not None:
            body["trainingData"] = training_data
        params = self.kohya_params()
        if self.base is not None and self.engine == catalog.AI_TOOLKIT:
            params = kohya_to_ai_toolkit(
                base=self.base, params=params, contract=active_contract().name
            )
        body["params"] = params
        return body

    def input_for(self, path: str | None) -> str | None:
        """The page input an API error path belongs to."""
        if not path:
            return None
        head, _, rest = path.partition(".")
        head = head.split("[", 1)[0]
        if head == "params" and rest:
            name = rest.split(".", 1)[0].split("[", 1)[0]
            if self.engine == catalog.AI_TOOLKIT:
                if name in ("ecosystem", "modelVariant"):
                    return "baseModel"
                name = DERIVED_ON_PAGE.get(name, name)
                name = catalog.AI_TOOLKIT_TO_KOHYA_NAMES.get(name, name)
            shown = {row["name"] for row in self.rows() if not row["locked"]}
            return f"params.{name}" if name in shown else None
        if head == "trainingData":
            if self.data_source == "upload":
                return "trainingZip"
            return "imageCount" if rest == "imageCount" else "dataUrl"
        if head in ("baseModel", "engine", "loraName", "customModel", "samplePrompts"):
            return head
        if head in ("negativePrompt", "priority"):
            return head
        return None


@dataclass(frozen=True)
class TrainingData:
    body: dict[str, Any] | None  # the API's trainingData, None while not given
    error: FieldError | None = None


def training_data(form: RunForm, *, user: Any, upload: UploadedFile | None) -> TrainingData:
    """The form's training data: a URL and count as typed, or a zip uploaded now or earlier
    (stored and counted by training.uploads)."""
    if form.data_source == "url":
        if not form.data_url and not form.image_count:
            return TrainingData(None)
        body: dict[str, Any] = {"url": form.data_url}
        if form.image_count:
            body["imageCount"] = convert_value("int", form.image_count)
        return TrainingData(body)
    try:
        if upload is not None:
            stored = uploads.training_zip_store(
                user=user, upload=upload, media_type=form.media_type
            )
        elif form.uploaded_name:
            stored = uploads.training_zip_get(
                user=user, name=form.uploaded_name, media_type=form.media_type
            )
        else:
            return TrainingData(None)
    except uploads.UploadRejected as exc:
        if upload is not None:
            form.uploaded_name = ""
        return TrainingData(None, FieldError("trainingData", "trainingZip", exc.code, exc.message))
    form.uploaded_name = stored.name  # kept by the page, so a corrected form needs no new upload
    return TrainingData({"url": stored.url, "imageCount": stored.image_count})


def _errors(form: RunForm, flat: list[dict[str, Any]]) -> list[FieldError]:
    return [
        FieldError(e["field"], form.input_for(e["field"]), e["code"], e["message"]) for e in flat
    ]


@dataclass(frozen=True)
class Checked:
    spec: RunSpec | None
    errors: list[FieldError]
    forbidden: bool = False  # the API would answer 403 (feature not active)
    complete: bool = True  # False: no training data yet (the estimate checked the rest)
    image_count: int | None = None  # of an uploaded zip, to show on the page

    @property
    def status(self) -> int:
        return 403 if self.forbidden else 400


def check(form: RunForm, *, request: Any, body_data: dict[str, Any] | None) -> Checked:
    """Validate the form exactly as the API validates its body; errors carry the API's paths and
    messages plus the page input each belongs to."""
    if form.engine == catalog.AI_TOOLKIT and form.base_key in catalog.BASE_MODELS:
        form.defaults = dict(effective_defaults(user=request.user, base_model=form.base_key).values)
    serializer = RunInputSerializer(data=form.api_body(body_data), context={"request": request})
    try:
        if serializer.is_valid():
            return Checked(serializer.validated_data["spec"], [])
        flat = _flatten(serializer.errors)
    except RunRejected as exc:  # raised by resolve_run inside validate(); the API's handler
        flat = _flatten(_group({}, exc.problems))  # turns it into a 400 the same way
    except FeatureNotActive as exc:
        error = FieldError("engine", "engine", "feature_not_active", exc.message)
        return Checked(None, [error], forbidden=True)
    return Checked(None, _errors(form, flat))


def _without_training_data(errors: list[FieldError]) -> list[FieldError]:
    return [e for e in errors if not (e.field or "").startswith("trainingData")]


def check_submission(form: RunForm, *, request: Any, upload: UploadedFile | None) -> Checked:
    """The whole form, for creating the run: every problem at once."""
    data = training_data(form, user=request.user, upload=upload)
    checked = check(form, request=request, body_data=data.body)
    errors = form.form_problems() + checked.errors
    if data.body is None:
        missing = data.error or FieldError(
            "trainingData",
            "trainingZip" if form.data_source == "upload" else "dataUrl",
            "required",
            "Add your training data: upload a zip, or give its URL and image count.",
        )
        errors = [missing, *_without_training_data(errors)]
    count = data.body.get("imageCount") if data.body and form.uploaded_name else None
    spec = checked.spec if not errors else None
    return Checked(spec, errors, checked.forbidden, image_count=count)


def check_for_estimate(form: RunForm, *, request: Any) -> Checked:
    """The form as it stands while being filled in: a missing name or missing training data is
    not a problem yet (a placeholder stands in, never priced), so the rest is checked live."""
    if not form.lora_name.strip():
        form.lora_name = ESTIMATE_LORA_NAME
    data = training_data(form, user=request.user, upload=None)
    checked = check(form, request=request, body_data=data.body or PLACEHOLDER_DATA)
    errors = form.form_problems() + checked.errors
    if data.body is None:
        errors = _without_training_data(errors) + ([data.error] if data.error else [])
    spec = checked.spec if not errors else None
    return Checked(spec, errors, checked.forbidden, complete=data.body is not None)


# --- the steps ------------------------------------------------------------------------------------

STEPS: tuple[str, ...] = ("model", "data", "settings", "review")
STEP_LABELS: dict[str, str] = {
    "model": "Model",
    "data": "Data",
    "settings": "Settings",
    "review": "Review & start",
}
_STEP_OF_INPUT: dict[str, str] = {
    "baseModel": "model",
    "customModel": "model",
    "engine": "model",
    "trainingZip": "data",
    "dataUrl": "data",
    "imageCount": "data",
}


def step_of(error: FieldError) -> str:
    """The step whose fields an error belongs to (errors of no field are shown on the review)."""
    if error.input is None:
        return "review"
    return _STEP_OF_INPUT.get(error.input, "settings")


def _labels(form: RunForm) -> dict[str, str]:
    labels: dict[str, str] = {}
    if form.base is not None:
        for engine in form.base.engines:
            for spec in catalog.param_specs(form.base_key, engine, active_contract().name):
                labels.setdefault(spec.name, spec.label)
    for row in form.rows():
        labels[row["name"]] = row["label"]
        labels.setdefault(row["apiName"], row["label"])
    for kohya, ai_toolkit in catalog.KOHYA_TO_AI_TOOLKIT_NAMES.items():
        if kohya in labels:
            labels.setdefault(ai_toolkit, labels[kohya])
    labels.update(presets.FIELD_LABELS)
    return labels


def in_words(form: RunForm, errors: list[FieldError]) -> list[FieldError]:
    """The API's messages with its field names replaced by the page's labels ("maxTrainEpochs
    must be between 3 and 20" -> "Epochs must be between 3 and 20"). A name that is also a plain
    word (epochs, resolution, engine) is replaced only where it opens the message."""
    labels = _labels(form)
    out = []
    for error in errors:
        message = error.message
        for name in sorted(labels, key=len, reverse=True):
            label = labels[name]
            if name.islower():
                if message.startswith(name + " "):
                    message = label + message[len(name) :]
                continue
            message = re.sub(rf"(?<![\w.])(?:params\.|trainingData\.)?{name}\b", label, message)
        out.append(replace(error, message=message))
    return out
