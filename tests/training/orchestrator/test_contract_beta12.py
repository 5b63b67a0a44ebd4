from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from training.orchestrator.contracts import beta12
from training.runspec import RunSpec
from vocabulary import catalog

ALL_PAIRS = [(k, e) for k, m in catalog.BASE_MODELS.items() for e in m.engines]


def spec_for(
    key: str,
    engine: catalog.Engine,
    params: dict[str, Any] | None = None,
    contract: str = "beta12",
) -> RunSpec:
    base = catalog.BASE_MODELS[key]
    effective = {s.name: s.default for s in catalog.param_specs(key, engine, contract)}
    if "numRepeats" in effective:
        effective["numRepeats"] = catalog.computed_num_repeats(24)
    effective.update(params or {})
    if engine == "rapid":
        effective = {}
    return RunSpec(
        base_model=key,
        engine=engine,
        lora_name="my-style",
        training_data_url="https://data.example.com/set.zip?sig=abc",
        image_count=24,
        ecosystem=(base.ecosystem or "") if engine == "ai-toolkit" else "",
        model_variant=(base.variant or "") if engine == "ai-toolkit" else "",
        params=effective,
        sample_prompts=["a portrait"],
        negative_prompt="blurry",
    )


def build(spec: RunSpec) -> dict[str, Any]:
    return beta12.build_workflow(spec, run_id="r-1", callback_url="https://svc.example.com/cb?t=1")


@pytest.mark.parametrize(("key", "engine"), ALL_PAIRS)
def test_every_base_model_and_engine_builds_a_valid_workflow_with_defaults(
    key: str, engine: catalog.Engine
) -> None:
    body = build(spec_for(key, engine))
    assert beta12.validate_workflow(body) == []
    assert json.loads(json.dumps(body)) == body  # plain JSON, nothing that serialises oddly


@pytest.mark.parametrize(("key", "engine"), ALL_PAIRS)
def test_the_catalog_extremes_stay_valid_on_the_wire(key: str, engine: catalog.Engine) -> None:
    specs = [s for s in catalog.param_specs(key, engine, "beta12") if s.kind in ("int", "float")]
    for end in ("minimum", "maximum"):
        values: dict[str, Any] = {}
        for s in specs:
            if s.locked or s.computed:
                continue
            value = getattr(s, end)
            values[s.name] = int(value) if s.kind == "int" else float(value)
        body = build(spec_for(key, engine, values))
        assert beta12.validate_workflow(body) == [], (end, values)


def test_an_ai_toolkit_step_is_the_new_training_type_with_ecosystem_and_variant() -> None:
    step = build(spec_for("flux_dev", "ai-toolkit"))["steps"][0]
    assert step["$type"] == "training"
    assert step["retries"] == 2
    inp = step["input"]
    assert (inp["engine"], inp["ecosystem"], inp["modelVariant"]) == ("ai-toolkit", "flux1", "dev")
    assert inp["model"] == catalog.BASE_MODELS["flux_dev"].air
    assert inp["trainingData"] == {
        "type": "zip",
        "sourceUrl": "https://data.example.com/set.zip?sig=abc",
        "count": 24,
    }
    assert inp["samples"] == {"prompts": ["a portrait"]}
    assert "numRepeats" not in inp and "trainBatchSize" not in inp and "loraName" not in inp


def test_an_sd1_ai_toolkit_step_sends_no_variant() -> None:
    inp = build(spec_for("sd_1_5", "ai-toolkit"))["steps"][0]["input"]
    assert "modelVariant" not in inp
    assert inp["trainTextEncoder"] is True and inp["textEncoderLr"] == 0.00005


def test_rapid_sends_no_training_parameters() -> None:
    inp = build(spec_for("flux_dev", "rapid"))["steps"][0]["input"]
    assert set(inp) == {
        "engine", "model", "trainingData", "trainingDataImagesCount", "loraName",
        "samplePrompts", "negativePrompt",
    }  # fmt: skip
    assert inp["engine"] == "flux-dev-fast"


def test_musubi_sends_only_its_own_fields() -> None:
    inp = build(spec_for("wan_2_1_t2v_14b", "musubi"))["steps"][0]["input"]
    assert inp["engine"] == "musubi"
    assert not {"clipSkip", "textEncoderLR", "noiseOffset", "minSnrGamma"} & set(inp)
    assert inp["resolution"] == 960


def test_the_workflow_carries_the_run_tag_callback_and_metadata() -> None:
    body = build(spec_for("sdxl", "kohya"))
    assert body["tags"] == ["training", "run:r-1", "engine:kohya"]
    assert body["callbacks"] == [
        {"url": "https://svc.example.com/cb?t=1", "type": ["workflow:*", "job:processing"]}
    ]
    assert body["metadata"] == {"runId": "r-1"}
    assert body["steps"][0]["metadata"] == {"runId": "r-1"}


def test_a_legacy_run_with_an_ai_toolkit_null_is_omitted_not_sent_as_null() -> None:
    spec = spec_for("flux_dev", "ai-toolkit")
    spec.params["noiseOffset"] = None
    inp = build(spec)["steps"][0]["input"]
    assert "noiseOffset" not in inp
    assert inp["minSnrGamma"] is None  # nullable in beta12: null is allowed


def valid_body() -> dict[str, Any]:
    return build(spec_for("flux_dev", "ai-toolkit"))


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["steps"][0]["input"].update(networkDim=None), "steps[0].input.networkDim"),
        (lambda b: b["steps"][0]["input"].update(noiseOffset=None), "steps[0].input.noiseOffset"),
        (lambda b: b["steps"][0]["input"].update(epochs=21), "steps[0].input.epochs"),
        (lambda b: b["steps"][0]["input"].update(epochs=5.0), "steps[0].input.epochs"),
        (lambda b: b["steps"][0]["input"].update(networkDim=129), "steps[0].input.networkDim"),
        (lambda b: b["steps"][0]["input"].pop("model"), "steps[0].input.model"),
        (lambda b: b["steps"][0]["input"].pop("samples"), "steps[0].input.samples"),
        (lambda b: b["steps"][0]["input"].update(bogus=1), "steps[0].input.bogus"),
        (lambda b: b["steps"][0]["input"].update(model="not an air"), "steps[0].input.model"),
        (lambda b: b.update(currencies=None), "currencies"),
        (lambda b: b.update(nsfwLevel="pg13"), "nsfwLevel"),
        (lambda b: b.update(tags=["a", "a"]), "tags"),
        (lambda b: b.update(tags=[str(i) for i in range(11)]), "tags"),
        (lambda b: b["callbacks"][0].update(type=["workflow:preparing"]), "callbacks[0].type[0]"),
        (lambda b: b["steps"][0].update(priority="urgent"), "steps[0].priority"),
        (lambda b: b.update(externalId="abc"), "externalId"),
    ],
)
def test_the_schema_refuses_what_beta12_refuses(mutate: Any, path: str) -> None:
    body = copy.deepcopy(valid_body())
    mutate(body)
    assert path in [e.path for e in beta12.validate_workflow(body)]


def test_a_kohya_scheduler_may_be_omitted_but_not_null() -> None:
    body = build(spec_for("sdxl", "kohya"))
    body["steps"][0]["input"].pop("lrScheduler")
    assert beta12.validate_workflow(body) == []
    body["steps"][0]["input"]["lrScheduler"] = None
    assert [e.path for e in beta12.validate_workflow(body)] == ["steps[0].input.lrScheduler"]


def test_the_b12_air_pattern_refuses_a_percent_in_the_version() -> None:
    body = build(spec_for("sdxl", "kohya"))
    body["steps"][0]["input"]["model"] = "urn:air:sdxl:checkpoint:civitai:1@a%20b"
    assert [e.path for e in beta12.validate_workflow(body)] == ["steps[0].input.model"]
