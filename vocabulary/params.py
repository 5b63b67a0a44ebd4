"""Per-engine parameter validation, and the Kohya-style -> AI Toolkit mapping (plan §4.1).

Parameters arrive with engine-native names. Each problem is reported with its path
(`params.lr`), a machine code and a message that says what to do; all problems are reported at
once. Limits come from vocabulary/catalog.py only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vocabulary import catalog
from vocabulary.catalog import BaseModel, Engine, ParamSpec, ParamValue


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _engine_label(engine: Engine) -> str:
    return catalog.ENGINES[engine].label


def _check_value(spec: ParamSpec, value: Any, where: str, context: str) -> Problem | None:
    """Type, options, range and lock of one value; None if it is acceptable."""
    if value is None:
        if spec.nullable:
            return None
        return Problem(where, "null", f"{spec.name} may not be null; omit it to use the default.")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            return Problem(where, "invalid_type", f"{spec.name} must be true or false.")
    elif spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return Problem(where, "invalid_type", f"{spec.name} must be a whole number.")
    elif spec.kind == "float":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            return Problem(where, "invalid_type", f"{spec.name} must be a number.")
    elif spec.kind == "enum":
        if not isinstance(value, str) or value not in spec.options:
            return Problem(
                where,
                "invalid_choice",
                f"{spec.name} must be one of {', '.join(spec.options)}; got {_fmt(value)}.",
            )
    if spec.locked:
        if value != spec.default:
            return Problem(
                where,
                "locked",
                f"{spec.name} is fixed at {_fmt(spec.default)} for {context}; "
                f"omit it or send {_fmt(spec.default)}.",
            )
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.minimum, spec.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            return Problem(
                where,
                "out_of_range",
                f"{spec.name} must be between {_fmt(low)} and {_fmt(high)} for {context}; "
                f"got {_fmt(value)}.",
            )
        if spec.step and int(value) % spec.step:
            return Problem(where, "invalid_step", f"{spec.name} must be a multiple of {spec.step}.")
    return None


def _unknown(
    name: str, engine: Engine, specs: Mapping[str, ParamSpec], contract: catalog.ContractVocabulary
) -> Problem:
    where = f"params.{name}"
    label = _engine_label(engine)
    if name in contract.not_carried.get(engine, frozenset()):
        return Problem(
            where,
            "not_carried",
            f"{name} cannot be sent to {contract.label.lower()} for {label}, so it would not "
            f"be used; remove it.",
        )
    if engine == catalog.AI_TOOLKIT:
        if name in catalog.NOT_USED_BY_AI_TOOLKIT:
            return Problem(where, "not_used", f"{name} is not used by AI Toolkit; remove it.")
        renamed = catalog.KOHYA_TO_AI_TOOLKIT_NAMES.get(name)
        if renamed:
            return Problem(
                where,
                "renamed",
                f"{name} is a Kohya name; AI Toolkit calls it {renamed}. Send {renamed} instead.",
            )
    else:
        renamed = catalog.AI_TOOLKIT_TO_KOHYA_NAMES.get(name)
        if renamed and renamed in specs:
            return Problem(
                where,
                "renamed",
                f"{name} is an AI Toolkit name; {label} calls it {renamed}. Send {renamed} instead.",
            )
        if name in ("ecosystem", "modelVariant"):
            return Problem(
                where, "not_used", f"{name} is only used by AI Toolkit; remove it for {label}."
            )
    if engine == catalog.RAPID:
        return Problem(
            where,
            "not_used",
            f"Rapid Training uses fixed settings and takes no {name}; remove it.",
        )
    close = difflib.get_close_matches(name, list(specs), n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    return Problem(
        where,
        "unknown",
        f"{name} is not a {label} parameter.{hint} Allowed: {', '.join(specs)}.",
    )


def _check_derived(name: str, given: Any, derived: str | None, base: BaseModel) -> Problem | None:
    """A client may repeat the ecosystem/variant we derive from the base model, nothing else."""
    where = f"params.{name}"
    if given == derived or (derived is None and given in (None, "")):
        return None
    if name == "ecosystem":
        return Problem(
            where,
            "mismatch",
            f"{base.key} trains under AI Toolkit ecosystem {derived}, not {_fmt(given)}; "
            "omit ecosystem or send the derived value.",
        )
    assert base.ecosystem is not None
    allowed = catalog.AI_TOOLKIT_VARIANTS[base.ecosystem]
    if derived is None:
        return Problem(
            where,
            "mismatch",
            f"AI Toolkit ecosystem {base.ecosystem} takes no modelVariant; remove it.",
        )
    if given not in allowed:
        return Problem(
            where,
            "invalid_choice",
            f"modelVariant for {base.ecosystem} must be one of {', '.join(allowed)}; "
            f"{base.key} uses {derived}.",
        )
    return Problem(
        where,
        "mismatch",
        f"{base.key} trains {base.label} (modelVariant {derived}), not {_fmt(given)}; "
        "omit modelVariant or send the derived value.",
    )


@dataclass(frozen=True)
class ResolvedParams:
    params: dict[str, ParamValue]
    problems: list[Problem]


def resolve_params(
    *,
    base: BaseModel,
    engine: Engine,
    given: Mapping[str, Any],
    image_count: int | None,
    contract: str,
    defaults: Mapping[str, ParamValue] | None = None,
) -> ResolvedParams:
    """Validate engine-native parameters against what the orchestrator contract can carry and fill
    in the catalog defaults.

    `defaults` may replace catalog defaults (an experiment arm); ranges and locks stay."""
    vocabulary = catalog.contract_vocabulary(contract)
    specs = catalog.param_spec_map(base.key, engine, contract)
    context = f"{base.label} with {_engine_label(engine)}"
    problems: list[Problem] = []
    for name, value in given.items():
        if engine == catalog.AI_TOOLKIT and name in ("ecosystem", "modelVariant"):
            derived = base.ecosystem if name == "ecosystem" else base.variant
            problem = _check_derived(name, value, derived, base)
        elif name in specs:
            problem = _check_value(specs[name], value, f"params.{name}", context)
        else:
            problem = _unknown(name, engine, specs, vocabulary)
        if problem:
            problems.append(problem)

    effective: dict[str, ParamValue] = {}
    for name, spec in specs.items():
        if name in given and not any(p.field == f"params.{name}" for p in problems):
            effective[name] = given[name]
        elif spec.computed and name == "numRepeats":
            effective[name] = catalog.computed_num_repeats(image_count or 1)
        elif defaults and name in defaults and not spec.locked:
            # A stored default (experiment arm, override) is offered only where this contract
            # takes it: an optimizer beta86 lacks falls back to the catalog's.
            value = defaults[name]
            ok = _check_value(spec, value, name, context) is None
            effective[name] = value if ok else spec.default
        else:
            effective[name] = spec.default
    if engine == catalog.RAPID:
        effective = {}  # shown as locked rows, never sent: the orchestrator fixes them
    # Cross-field rules run on the effective values, skipping any rule that involves a value
    # already refused (its default stands in for it and would only confuse).
    bad = {p.field.removeprefix("params.") for p in problems}
    problems.extend(_cross_field(base, engine, given, effective, image_count, bad))
    return ResolvedParams(effective, problems)


def _cross_field(
    base: BaseModel,
    engine: Engine,
    given: Mapping[str, Any],
    eff: dict[str, ParamValue],
    image_count: int | None,
    bad: set[str],
) -> list[Problem]:
    problems: list[Problem] = []

    def ok(*names: str) -> bool:
        return not bad.intersection(names)

    optimizer = eff.get("optimizerType")
    lr_name = "lr" if engine == catalog.AI_TOOLKIT else "unetLR"
    lr = eff.get(lr_name)
    if (
        ok(lr_name, "optimizerType")
        and isinstance(lr, int | float)
        and lr >= 0.1
        and optimizer not in catalog.PRODIGY_OPTIMIZERS
    ):
        problems.append(
            Problem(
                f"params.{lr_name}",
                "lr_too_high",
                f"{lr_name} must be below 0.1 unless the optimizer is Prodigy "
                f"(adaptive, it expects about 1); lower it or choose a Prodigy optimizer.",
            )
        )
    if engine == catalog.AI_TOOLKIT:
        te_lr = eff.get("textEncoderLr")
        if not ok("trainTextEncoder", "textEncoderLr"):
            pass
        elif te_lr == 0 and given.get("trainTextEncoder") is True:
            problems.append(
                Problem(
                    "params.textEncoderLr",
                    "zero_rate",
                    "trainTextEncoder is true but textEncoderLr is 0, which would not train it; "
                    "give a rate above 0 (e.g. 0.00005) or set trainTextEncoder to false.",
                )
            )
        elif te_lr == 0 and "trainTextEncoder" not in given:
            # The plan's rule (trainTextEncoder = !!textEncoderLR): a zero rate means "do not
            # train the text encoder", never "train it at rate 0".
            eff["trainTextEncoder"] = False
            eff["textEncoderLr"] = None
        elif not eff.get("trainTextEncoder"):
            if given.get("textEncoderLr") not in (None, 0):
                problems.append(
                    Problem(
                        "params.textEncoderLr",
                        "requires_train_text_encoder",
                        "textEncoderLr only applies when trainTextEncoder is true; "
                        "set trainTextEncoder to true or remove textEncoderLr.",
                    )
                )
            eff["textEncoderLr"] = None  # a text-encoder rate is meaningless without training it
        elif eff.get("textEncoderLr") is None:
            problems.append(
                Problem(
                    "params.textEncoderLr",
                    "required",
                    "trainTextEncoder is true, so textEncoderLr needs a value (e.g. 0.00005).",
                )
            )
    steps, checkpoints = eff.get("steps"), eff.get("epochs")
    if (
        "epochs" not in given
        and isinstance(steps, int)
        and isinstance(checkpoints, int)
        and checkpoints > steps
    ):
        # A short run asked for without a checkpoint count saves one per step, not the default.
        eff["epochs"] = checkpoints = steps
    if (
        engine == catalog.AI_TOOLKIT
        and ok("steps", "epochs")
        and isinstance(steps, int)
        and isinstance(checkpoints, int)
        and checkpoints > steps
    ):
        problems.append(
            Problem(
                "params.epochs",
                "more_checkpoints_than_steps",
                f"{checkpoints} checkpoints cannot be saved in {steps} steps; lower epochs "
                f"(checkpoints) to {steps} or fewer, or raise steps.",
            )
        )
    if engine in (catalog.KOHYA, catalog.MUSUBI):
        batch, resolution = eff.get("trainBatchSize"), eff.get("resolution")
        if (
            engine == catalog.KOHYA
            and ok("trainBatchSize", "resolution")
            and base.base_type in catalog.KOHYA_BATCH_LIMITED_BASE_TYPES
            and isinstance(batch, int)
            and isinstance(resolution, int)
            and batch > 2
            and resolution > 512
        ):
            problems.append(
                Problem(
                    "params.resolution"
                    if "resolution" in given and "trainBatchSize" not in given
                    else "params.trainBatchSize",
                    "batch_too_high_for_resolution",
                    f"{base.label} trains at most 2 images per batch above 512 px; "
                    "lower trainBatchSize to 2 or resolution to 512.",
                )
            )
        repeats, epochs = eff.get("numRepeats"), eff.get("maxTrainEpochs")
        if (
            ok("numRepeats", "maxTrainEpochs", "trainBatchSize")
            and image_count
            and all(isinstance(v, int) and v > 0 for v in (repeats, epochs, batch))
        ):
            steps = math.ceil(image_count * repeats * epochs / batch)  # type: ignore[operator]
            if steps > catalog.MAX_STEPS:
                # Name the value the user chose, so the message sits at the field they set.
                chosen = [
                    n for n in ("maxTrainEpochs", "numRepeats", "trainBatchSize") if n in given
                ]
                problems.append(
                    Problem(
                        f"params.{chosen[0] if chosen else 'maxTrainEpochs'}",
                        "too_many_steps",
                        f"This run would take {steps} steps (images × numRepeats × epochs / "
                        f"batch); the limit is {catalog.MAX_STEPS}. Lower maxTrainEpochs or "
                        "numRepeats, or raise trainBatchSize.",
                    )
                )
    return problems


def kohya_to_ai_toolkit(
    *, base: BaseModel, params: Mapping[str, Any], contract: str
) -> dict[str, Any]:
    """The page keeps Kohya-style names; at submission AI Toolkit gets its own (plan §4.1).

    Renames, derives trainTextEncoder from textEncoderLR, drops numRepeats/trainBatchSize and the
    Kohya-only knobs, converts scheduler and optimizer spellings, adds ecosystem and variant."""
    out: dict[str, Any] = {}
    ai_specs = (
        catalog.param_spec_map(base.key, catalog.AI_TOOLKIT, contract) if base.ecosystem else {}
    )
    for name, value in params.items():
        if name in catalog.NOT_USED_BY_AI_TOOLKIT or name in catalog.KOHYA_ONLY:
            continue
        if name == "textEncoderLR":
            te_lr = value or None  # 0 means "do not train the text encoder"
            if not ai_specs.get("trainTextEncoder") or not ai_specs["trainTextEncoder"].locked:
                out["trainTextEncoder"] = te_lr is not None
            out["textEncoderLr"] = te_lr
            continue
        if name == "lrScheduler" and isinstance(value, str):
            value = catalog.SCHEDULER_TO_AI_TOOLKIT.get(value, value)
        if name == "optimizerType" and isinstance(value, str):
            value = catalog.OPTIMIZER_TO_AI_TOOLKIT.get(value, value.lower())
        if name == "minSnrGamma" and value == 0:
            value = None
        out[catalog.KOHYA_TO_AI_TOOLKIT_NAMES.get(name, name)] = value
    for name in ("trainTextEncoder", "textEncoderLr", "minSnrGamma", "noiseOffset"):
        spec = ai_specs.get(name)
        if spec and spec.locked:
            out.pop(name, None)  # fixed by the ecosystem: let the catalog default apply
    if base.ecosystem:
        out["ecosystem"] = base.ecosystem
        if base.variant:
            out["modelVariant"] = base.variant
    return out


def run_warnings(run: Any) -> list[str]:
    """Hazards worth a word before paying: accepted, but likely not what the user wants."""
    warnings: list[str] = []
    params = run.params
    optimizer = params.get("optimizerType")
    lr = params.get("lr", params.get("unetLR"))
    if optimizer in catalog.PRODIGY_OPTIMIZERS and isinstance(lr, int | float) and lr < 0.1:
        warnings.append(
            "Prodigy adapts its own step size and expects a learning rate near 1; with "
            f"{_fmt(lr)} it will barely train."
        )
    if run.engine == catalog.AI_TOOLKIT:
        if run.negative_prompt:
            warnings.append(
                "AI Toolkit does not use the negative prompt; it is kept with the run but not sent."
            )
        if (
            run.ecosystem in catalog.LARGE_MODEL_ECOSYSTEMS
            and optimizer in catalog.FULL_PRECISION_OPTIMIZERS
        ):
            warnings.append(
                f"Full-precision {optimizer} on {run.ecosystem} needs far more GPU memory than "
                "adamw8bit and is known to run out of memory; adamw8bit is the tested choice."
            )
    return warnings


check_value = _check_value  # public name for other apps (experiments validate arm values with it)
