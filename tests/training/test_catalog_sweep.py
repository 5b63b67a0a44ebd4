"""#17's property-style sweep: every base model × engine × the default, minimum and maximum (each
option, each boolean) of every parameter the catalog offers, under each contract. Every accepted
run's payload passes the contract's schema and carries the value; every refused one names its
field, never the payload (which would mean the catalog offered what the contract refuses)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from training.orchestrator import contracts
from training.payloads import PREVIEW_RUN_ID, checked_workflow_body
from training.runspec import RunRejected, resolve_run, run_spec
from vocabulary import catalog


def values_of(spec: catalog.ParamSpec) -> list[Any]:
    if spec.locked:
        return [spec.default]
    if spec.kind == "bool":
        return [True, False]
    if spec.kind == "enum":
        return list(spec.options)
    out: list[Any] = [] if spec.computed or spec.default is None else [spec.default]
    for end in (spec.minimum, spec.maximum):
        if end is not None:
            out.append(int(end) if spec.kind == "int" else float(end))
    return out


def cases(contract: str) -> list[tuple[str, str, str, Any]]:
    out: list[tuple[str, str, str, Any]] = []
    for key, base in catalog.BASE_MODELS.items():
        for engine in base.engines:
            specs = catalog.param_specs(key, engine, contract)
            out.append((key, engine, "", None))  # defaults, through every gate of resolve_run
            for spec in specs:
                out += [(key, engine, spec.name, value) for value in values_of(spec)]
    return out


def specs_of(key: str, engine: str, contract: str) -> tuple[catalog.ParamSpec, ...]:
    return catalog.param_specs(key, engine, contract)  # type: ignore[arg-type]


def request(key: str, engine: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "baseModel": key,
        "engine": engine,
        "loraName": "sweep",
        "trainingData": {"url": "https://data.example.com/set.zip", "imageCount": 24},
        "samplePrompts": ["a portrait"],
        "params": params,
    }


@pytest.fixture
def sd3_on(mod: User) -> None:
    from waffle.models import Flag

    assert Flag.objects.get(name="sd3Training").groups.filter(name="mod").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("contract", ["beta12", "beta86"])
def test_every_offered_value_is_sent_valid_or_refused_at_its_field(
    ai_mod: User, sd3_on: None, contract: str
) -> None:
    wire = contracts.get(contract)
    accepted = refused = 0
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        for key, engine, name, value in cases(contract):
            params = {name: value} if name else {}
            try:
                if name:
                    # The user's gates (flags) were passed once below; the sweep is about values.
                    base = catalog.BASE_MODELS[key]
                    data = request(key, engine, params)
                    spec = run_spec(base=base, engine=engine, data=data)  # type: ignore[arg-type]
                else:
                    spec = resolve_run(user=ai_mod, data=request(key, engine, params))
                body = checked_workflow_body(spec, run_id=PREVIEW_RUN_ID)
            except RunRejected as exc:
                fields = [p.field for p in exc.problems]
                where = (contract, key, engine, name, value, fields)
                assert not any(f.startswith("payload") for f in fields), where
                assert (f"params.{name}" in fields) if name else fields == ["engine"], where
                assert name or not specs_of(key, engine, contract), where
                refused += 1
                continue
            assert wire.validate_workflow(body) == [], (contract, key, engine, name, value)
            assert wire.params_not_sent(spec) == frozenset(), (contract, key, engine, name)
            sent = body["steps"][0]["input"]
            if (
                name
                and engine != "rapid"
                and value is not None
                and not (engine == "musubi" and contract == "beta86" and name == "maxTrainEpochs")
            ):
                assert sent.get(name, spec.params[name]) == spec.params[name], (key, engine, name)
                assert name in sent or spec.params[name] is None or name == "trainTextEncoder", (
                    contract,
                    key,
                    engine,
                    name,
                    value,
                )
            accepted += 1
    assert accepted > 300 and refused > 0
