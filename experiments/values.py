"""Default values (an arm's overrides, a promoted or manual override) checked against the catalog.

The catalog keeps the ranges and locks; an override only moves a default inside them. Every
message names the parameter and what it accepts, so an admin form can show it at the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from vocabulary import catalog
from vocabulary.catalog import BaseModel, ParamSpec, ParamValue
from vocabulary.params import check_value, resolve_params

ECOSYSTEM_CHOICES = [(key, key) for key in catalog.AI_TOOLKIT_VARIANTS]
BASE_MODEL_CHOICES = [
    (b.key, b.label)
    for b in catalog.BASE_MODELS.values()
    if b.ecosystem and catalog.AI_TOOLKIT in b.engines
]
# Derived from the base model by resolve_run; never a default anyone could test.
NOT_DEFAULTS = frozenset({"ecosystem", "modelVariant"})


def scope_bases(ecosystem: str, base_model: str = "") -> list[BaseModel]:
    """The base models a scope covers: one, or every AI Toolkit base model of the ecosystem."""
    if base_model:
        base = catalog.BASE_MODELS.get(base_model)
        return [base] if base is not None else []
    return [
        b
        for b in catalog.BASE_MODELS.values()
        if b.ecosystem == ecosystem and catalog.AI_TOOLKIT in b.engines
    ]


def scope_label(ecosystem: str, base_model: str = "") -> str:
    if base_model:
        base = catalog.BASE_MODELS.get(base_model)
        return f"{base.label if base else base_model} with AI Toolkit"
    return f"AI Toolkit ecosystem {ecosystem}"


def scope_specs(ecosystem: str, base_model: str = "") -> dict[str, ParamSpec]:
    bases = scope_bases(ecosystem, base_model)
    # Every base model of an ecosystem shares the ecosystem's AI Toolkit rows (catalog.py).
    if not bases:
        return {}
    return catalog.param_spec_map(bases[0].key, catalog.AI_TOOLKIT, settings.ORCHESTRATOR_CONTRACT)


def scope_problems(ecosystem: str, base_model: str) -> list[str]:
    if ecosystem not in catalog.AI_TOOLKIT_VARIANTS:
        return [f"{ecosystem} is not an AI Toolkit ecosystem."]
    if not base_model:
        return []
    base = catalog.BASE_MODELS.get(base_model)
    if base is None or catalog.AI_TOOLKIT not in base.engines:
        return [f"{base_model} is not trained with AI Toolkit."]
    if base.ecosystem != ecosystem:
        return [f"{base.label} trains under ecosystem {base.ecosystem}, not {ecosystem}."]
    return []


def value_problems(
    *,
    ecosystem: str,
    base_model: str,
    values: Any,
    layered_on: Mapping[str, ParamValue] | None = None,
) -> list[str]:
    """What is wrong with these default values for the scope; [] if they may be used.

    `layered_on` are the defaults they would sit on (the active override), so that rules that
    involve two parameters (lr and optimizer, text encoder) are checked on the combination."""
    if not isinstance(values, dict):
        return ['Give the values as a JSON object, e.g. {"lr": 0.0002}.']
    scope = scope_problems(ecosystem, base_model)
    if scope:
        return scope
    specs = scope_specs(ecosystem, base_model)
    context = scope_label(ecosystem, base_model)
    problems: list[str] = []
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None or name in NOT_DEFAULTS:
            renamed = catalog.KOHYA_TO_AI_TOOLKIT_NAMES.get(name)
            hint = f" AI Toolkit calls it {renamed}." if renamed else ""
            problems.append(
                f"{name} is not an AI Toolkit parameter with a default for {context}.{hint} "
                f"Allowed: {', '.join(n for n, s in specs.items() if not s.locked)}."
            )
        elif spec.locked:
            problems.append(
                f"{name} is fixed at {spec.default!r} for {context}; its default cannot change."
            )
        else:
            problem = check_value(spec, value, name, context)
            if problem:
                problems.append(problem.message)
    if problems:
        return problems
    # The combination as a run that omits every parameter would get it.
    seen: set[str] = set()
    for base in scope_bases(ecosystem, base_model):
        resolved = resolve_params(
            base=base,
            engine=catalog.AI_TOOLKIT,
            given=values,
            image_count=None,
            contract=settings.ORCHESTRATOR_CONTRACT,
            defaults=layered_on,
        )
        for p in resolved.problems:
            if p.message not in seen:
                seen.add(p.message)
                problems.append(p.message)
    return problems


def valid_only(
    *, ecosystem: str, base_model: str, values: Mapping[str, Any]
) -> dict[str, ParamValue]:
    """The values that still pass their spec: a catalog change shipped after an override was
    saved must never let an out-of-range default reach a run (resolve_params trusts defaults)."""
    specs = scope_specs(ecosystem, base_model)
    context = scope_label(ecosystem, base_model)
    out: dict[str, ParamValue] = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is not None and not spec.locked and check_value(spec, value, name, context) is None:
            out[name] = value
    return out
