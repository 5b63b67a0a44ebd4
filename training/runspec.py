"""A run request resolved against the catalog, the flags and the active contract: either a
complete RunSpec (every value effective, ready to store and to build a payload from) or the list
of problems, each with its field path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from experiments.defaults import effective_defaults
from flags.gates import is_feature_active
from training.orchestrator import contracts
from vocabulary import catalog
from vocabulary.catalog import BaseModel, Engine
from vocabulary.params import Problem, resolve_params

# A custom checkpoint is named by its full AIR (#17): the ecosystem is what lets us check the family.
_CHECKPOINT_AIR = re.compile(
    r"^urn:air:(?P<ecosystem>[a-z0-9_\-]+):(?P<type>[a-z0-9_\-]+):(?P<source>[a-z0-9_\-]+):"
    r"(?P<id>[^@:\s]+)@(?P<version>[^@:\s]+)$"
)
_SHORT_AIR = re.compile(r"^(?:urn:air:)?(?:civitai:)?(?P<id>\d+)@(?P<version>\d+)$")
# RFC 3986 §2: what may appear in a URI as it is; anything else must be percent-encoded.
_URI_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;="
)
_HEX = frozenset("0123456789abcdefABCDEF")
_AFTER_AUTHORITY = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^/?#]*")  # scheme and host
_CHAR_NAMES = {
    " ": "the space",
    "`": "the backtick",
    "\\": "the backslash",
    '"': "the double quote",
}


@dataclass
class RunSpec:
    base_model: str
    engine: Engine
    lora_name: str
    training_data_url: str
    image_count: int
    custom_model: str = ""
    ecosystem: str = ""
    model_variant: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    sample_prompts: list[str] = field(default_factory=list)
    negative_prompt: str = ""
    priority: str = "normal"
    # The A/B experiment on AI Toolkit defaults (experiments app) that chose omitted defaults.
    experiment_id: int | None = None
    experiment_arm_id: int | None = None
    experiment_outcome: str = ""  # "" | "assigned" | "overrode_all"


class FeatureNotActive(Exception):
    def __init__(self, feature: str, message: str) -> None:
        super().__init__(message)
        self.feature = feature
        self.message = message


class RunRejected(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def _engine_not_allowed(base: BaseModel, engine: Engine) -> str:
    allowed = ", ".join(base.engines)
    if engine == catalog.AI_TOOLKIT and base.ai_toolkit_unavailable:
        return base.ai_toolkit_unavailable
    reasons = {
        catalog.RAPID: "Rapid Training is for Flux.1 only.",
        catalog.MUSUBI: "Musubi trains video models only.",
        catalog.KOHYA: "Kohya trains image models only.",
        catalog.AI_TOOLKIT: "AI Toolkit does not support this base model.",
    }
    return f"{reasons[engine]} Engines for {base.label}: {allowed}."


def _full_air(base: BaseModel, model_id: str, version: str) -> str:
    return f"urn:air:{base.air_ecosystems[0]}:checkpoint:civitai:{model_id}@{version}"


def _example_air(base: BaseModel) -> str:
    # Some base models are named by a VAE or a Hugging Face AIR: never show those as the example.
    if _CHECKPOINT_AIR.match(base.air) and ":checkpoint:civitai:" in base.air:
        return base.air
    return _full_air(base, "{model}", "{version}")


def check_custom_model(
    base: BaseModel, value: str, *, contract: str, engine: Engine
) -> Problem | None:
    """Only `urn:air:{ecosystem}:checkpoint:civitai:{model}@{version}` of the base model's family."""
    air = _CHECKPOINT_AIR.match(value)
    if not air:
        short = _SHORT_AIR.match(value)
        example = _full_air(base, short["id"], short["version"]) if short else _example_air(base)
        return Problem(
            "customModel",
            "invalid_air",
            "customModel must be a checkpoint's full AIR, urn:air:{ecosystem}:checkpoint:civitai:"
            f"{{model}}@{{version}}, e.g. {example} (the ecosystem must be the checkpoint's own: "
            f"{', '.join(base.air_ecosystems)} for {base.label}).",
        )
    if air["ecosystem"] not in base.air_ecosystems:
        return Problem(
            "customModel",
            "wrong_family",
            f"customModel is a {air['ecosystem']} model but {base.label} trains the "
            f"{base.family} family ({', '.join(base.air_ecosystems)}); choose a matching "
            "base model or checkpoint.",
        )
    if air["type"] != "checkpoint":
        return Problem(
            "customModel",
            "not_a_checkpoint",
            f"customModel must name a checkpoint to train on, not a {air['type']}.",
        )
    if air["source"] != "civitai" or not (air["id"].isdigit() and air["version"].isdigit()):
        return Problem(
            "customModel",
            "invalid_air",
            "customModel must be a Civitai checkpoint, urn:air:{ecosystem}:checkpoint:civitai:"
            f"{{model}}@{{version}} with numeric ids, e.g. {_example_air(base)}.",
        )
    vocabulary = catalog.contract_vocabulary(contract)
    takes = vocabulary.ai_toolkit_model_ecosystems
    if engine == catalog.AI_TOOLKIT and base.ecosystem not in takes:
        return Problem(
            "customModel",
            "not_supported",
            f"{vocabulary.label} trains AI Toolkit on {base.ecosystem}'s own base model and takes "
            f"no custom checkpoint there (only on {', '.join(sorted(takes))}); remove customModel "
            "or train with another engine.",
        )
    return None


def uri_problem(url: str) -> str | None:
    """Why a training-data URL is not an RFC 3986 URI (the orchestrator's `format: uri`), naming the
    first character to percent-encode; None if it is one. Only the syntax: whether the host may be
    fetched is another check."""
    for index, char in enumerate(url):
        if char == "%":
            if len(url) < index + 3 or not set(url[index + 1 : index + 3]) <= _HEX:
                return (
                    "The URL is not a valid URI: encode % as %25 where it does not start a %XX "
                    "escape."
                )
            continue
        if char not in _URI_CHARS:
            encoded = "".join(f"%{b:02X}" for b in char.encode())
            name = _CHAR_NAMES.get(char, char)
            return f"The URL is not a valid URI: encode {name} as {encoded}."
    rest = _AFTER_AUTHORITY.sub("", url, count=1)
    for char, encoded in (("[", "%5B"), ("]", "%5D")):
        if char in rest:
            return (
                f"The URL is not a valid URI: encode {char} as {encoded} (brackets only belong "
                "around an IPv6 host)."
            )
    return None


def ai_toolkit_unavailable(base: BaseModel) -> str | None:
    """Why AI Toolkit cannot train this base model (catalog or contract), or None."""
    if catalog.AI_TOOLKIT not in base.engines:
        return base.ai_toolkit_unavailable or _engine_not_allowed(base, catalog.AI_TOOLKIT)
    return contracts.active().ai_toolkit_unavailable(base)


def base_model_available(user: Any, base: BaseModel) -> bool:
    return base.required_feature is None or is_feature_active(user, base.required_feature)


def resolve_run(*, user: Any, data: dict[str, Any]) -> RunSpec:
    """Raises RunRejected with every problem found, or FeatureNotActive (a 403)."""
    base = catalog.BASE_MODELS[data["baseModel"]]
    if not base_model_available(user, base):
        raise RunRejected(
            [
                Problem(
                    "baseModel",
                    "not_available",
                    f"{base.label} is not available to you yet; choose another base model.",
                )
            ]
        )
    engine: Engine = data.get("engine") or base.default_engine
    if engine not in base.engines:
        raise RunRejected([Problem("engine", "not_allowed", _engine_not_allowed(base, engine))])
    if engine == catalog.AI_TOOLKIT:
        reason = ai_toolkit_unavailable(base)
        if reason:
            raise RunRejected([Problem("engine", "not_allowed", reason)])
        if not is_feature_active(user, catalog.AI_TOOLKIT_FEATURE):
            raise FeatureNotActive(
                catalog.AI_TOOLKIT_FEATURE,
                "AI Toolkit training is not enabled for your account. If it is offered to you, "
                "opt in under /settings/features; otherwise train with "
                f"{catalog.ENGINES[base.default_engine].label}.",
            )
    chosen = None
    if engine == catalog.AI_TOOLKIT:
        # Active defaults overrides and the user's experiment arm; one cache read.
        chosen = effective_defaults(user=user, base_model=base.key)
    return run_spec(base=base, engine=engine, data=data, chosen=chosen)


def run_spec(
    *, base: BaseModel, engine: Engine, data: dict[str, Any], chosen: Any = None
) -> RunSpec:
    """The request checked against the catalog and the active contract, once resolve_run has let
    this user use the base model and the engine (`chosen`: their effective AI Toolkit defaults)."""
    contract = contracts.active().name
    problems: list[Problem] = []
    custom_model = data.get("customModel") or ""
    if custom_model:
        problem = check_custom_model(base, custom_model, contract=contract, engine=engine)
        if problem:
            problems.append(problem)
    training_data = data["trainingData"]
    given = data.get("params") or {}
    resolved = resolve_params(
        base=base,
        engine=engine,
        given=given,
        image_count=training_data["imageCount"],
        contract=contract,
        defaults=chosen.values if chosen else None,
    )
    problems.extend(resolved.problems)
    prompts = list(data.get("samplePrompts") or [])
    if engine == catalog.AI_TOOLKIT and not prompts:
        problems.append(
            Problem(
                "samplePrompts",
                "required",
                "AI Toolkit needs at least one sample prompt to render samples for each epoch.",
            )
        )
    if problems:
        raise RunRejected(problems)
    is_ai_toolkit = engine == catalog.AI_TOOLKIT
    experiment_id, arm_id, outcome = None, None, ""
    if chosen is not None and chosen.experiment_id is not None:
        experiment_id, arm_id, outcome = chosen.experiment_id, chosen.arm_id, "assigned"
        if chosen.tested and chosen.tested.issubset(given):
            # The user chose every tested value: the arm changed nothing in this run.
            arm_id, outcome = None, "overrode_all"
    return RunSpec(
        base_model=base.key,
        engine=engine,
        lora_name=data["loraName"],
        training_data_url=training_data["url"],
        image_count=training_data["imageCount"],
        custom_model=custom_model,
        ecosystem=(base.ecosystem or "") if is_ai_toolkit else "",
        model_variant=(base.variant or "") if is_ai_toolkit else "",
        params=resolved.params,
        sample_prompts=prompts,
        negative_prompt=data.get("negativePrompt") or "",
        priority=data.get("priority") or "normal",
        experiment_id=experiment_id,
        experiment_arm_id=arm_id,
        experiment_outcome=outcome,
    )
