"""beta86, today's orchestrator: every base model × engine through the API under each contract,
the schema's beta86 specifics, the translation of the plan's run, and reading its workflows."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import run_body
from tests.training.orchestrator.test_contract_beta12 import spec_for
from training.models import TrainingRun
from training.orchestrator import contracts
from training.orchestrator.contracts import beta12, beta86
from training.runspec import RunSpec
from vocabulary import catalog

URL = "/api/v1/training-runs/"
CATALOG = "/api/v1/training-catalog/"
Client = Callable[[User | None], APIClient]
ALL_PAIRS = [(k, e) for k, m in catalog.BASE_MODELS.items() for e in m.engines]
MATRIX = [(c, k, e) for c in contracts.CONTRACTS for k, e in ALL_PAIRS]
NO_BETA86_ECOSYSTEM = {"wan": "Wan", "sd3": "SD3"}
RUN_ID = "6f1c1b7e-1111-4aaa-8bbb-123456789abc"


@pytest.fixture
def sd3_on(mod: User) -> None:
    from waffle.models import Flag

    assert Flag.objects.get(name="sd3Training").groups.filter(name="mod").exists()


def refused_under(contract: str, key: str, engine: str) -> bool:
    ecosystem = catalog.BASE_MODELS[key].ecosystem
    return contract == "beta86" and engine == "ai-toolkit" and ecosystem in NO_BETA86_ECOSYSTEM


def spec86(key: str, engine: catalog.Engine, params: dict[str, Any] | None = None) -> RunSpec:
    spec = spec_for(key, engine, params, contract="beta86")
    spec.training_data_url = "https://data.example.com/set.zip"  # beta86 wants an AIR-like URL
    return spec


def build86(spec: RunSpec, run_id: str = RUN_ID) -> dict[str, Any]:
    return beta86.build_workflow(spec, run_id=run_id, callback_url="https://svc.example.com/cb?t=1")


# --- the matrix, through the API ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("contract", "key", "engine"), MATRIX)
def test_every_base_model_and_engine_is_accepted_refused_or_translated_under_each_contract(
    contract: str, key: str, engine: str, ai_mod: User, client_for: Client, sd3_on: None
) -> None:
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        response = client_for(ai_mod).post(URL, run_body(baseModel=key, engine=engine), "json")
    base = catalog.BASE_MODELS[key]
    if refused_under(contract, key, engine):
        assert response.status_code == 400, response.json()
        [error] = response.json()["errors"]
        label = NO_BETA86_ECOSYSTEM[base.ecosystem or ""]
        assert error["field"] == "engine"
        assert error["message"] == (
            f"Today's orchestrator (beta86) has no {label} ecosystem for AI Toolkit; "
            f"train {base.label} with {catalog.ENGINES[base.default_engine].label}."
        )
        assert TrainingRun.objects.count() == 0
        return
    assert response.status_code == 201, response.json()
    run = response.json()
    payload = run["payload"]
    assert contracts.get(contract).validate_workflow(payload) == []
    step_input = payload["steps"][0]["input"]
    if contract == "beta12":
        assert "currencies" not in payload and "externalId" not in payload
        return
    assert payload["currencies"] == [] and payload["externalId"] == run["id"]
    assert payload["callbacks"][0]["detailed"] is False
    if engine == "ai-toolkit":
        # A real length (#17): the ecosystem's default run, not epochs × images.
        assert step_input["steps"] == run["params"]["steps"] == 2000
        assert step_input["epochs"] == run["params"]["epochs"] == 10  # checkpoints saved
        assert step_input["batchSize"] == 1
        assert not {"resolution", "numRepeats", "trainBatchSize"} & set(step_input)
        has_model = base.ecosystem in ("sd1", "sdxl")
        assert ("model" in step_input, "minSnrGamma" in step_input) == (has_model, has_model)
        assert ("modelVariant" in step_input) == (base.ecosystem == "flux1")
    elif engine == "musubi":
        assert step_input["epochs"] == run["params"]["maxTrainEpochs"]
        assert not {"maxTrainEpochs", "numRepeats", "trainBatchSize"} & set(step_input)


@pytest.mark.django_db
def test_wan_keeps_musubi_as_its_default_engine_under_beta86(
    ai_mod: User, client_for: Client
) -> None:
    with override_settings(ORCHESTRATOR_CONTRACT="beta86"):
        response = client_for(ai_mod).post(URL, run_body(baseModel="wan_2_1_t2v_14b"), "json")
    assert response.status_code == 201 and response.json()["engine"] == "musubi"


def catalog_under(contract: str, client: APIClient) -> dict[str, Any]:
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        response = client.get(CATALOG)
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.django_db
def test_switching_the_contract_changes_the_catalog_only_where_the_contract_declares(
    ai_mod: User, client_for: Client, sd3_on: None
) -> None:
    client = client_for(ai_mod)
    old, new = catalog_under("beta12", client), catalog_under("beta86", client)
    assert (old["contract"], new["contract"]) == ("beta12", "beta86")
    assert old["engines"] == new["engines"]
    unavailable, changed = set(), set()
    for before, after in zip(old["baseModels"], new["baseModels"], strict=True):
        for engine_before, engine_after in zip(before["engines"], after["engines"], strict=True):
            if engine_before == engine_after:
                continue
            changed.add((before["key"], engine_before["key"]))
            if engine_after["available"] is False:
                unavailable.add((before["key"], engine_before["key"]))
                assert engine_after["reason"].startswith("Today's orchestrator (beta86) has no")
                assert engine_after["params"] == [] and engine_after["default"] is False
                continue
            names_before = [p["name"] for p in engine_before["params"]]
            names_after = [p["name"] for p in engine_after["params"]]
            if engine_before["key"] == "musubi":
                assert set(names_before) - set(names_after) == {"numRepeats", "trainBatchSize"}
            else:
                assert names_after[:2] == ["steps", "epochs"] and "resolution" not in names_after
        assert {k: v for k, v in before.items() if k != "engines"} == {
            k: v for k, v in after.items() if k != "engines"
        }
    expected = {
        (k, "ai-toolkit")
        for k, m in catalog.BASE_MODELS.items()
        if m.ecosystem in NO_BETA86_ECOSYSTEM and "ai-toolkit" in m.engines
    }
    assert unavailable == expected and len(expected) == 5
    # Kohya and Rapid carry the same fields under both contracts.
    assert {engine for _, engine in changed} == {"ai-toolkit", "musubi"}
    wan = next(m for m in new["baseModels"] if m["key"] == "wan_2_1_t2v_14b")
    assert wan["defaultEngine"] == "musubi"
    assert "train Wan 2.1 T2V 14B with Musubi" in wan["engines"][-1]["reason"]


@pytest.mark.django_db
def test_beta12_payloads_do_not_depend_on_the_new_settings(
    ai_mod: User, client_for: Client
) -> None:
    body = run_body(baseModel="flux_dev", engine="ai-toolkit")
    created = client_for(ai_mod).post(URL, body, "json").json()
    stored = TrainingRun.objects.get(pk=created["id"])
    url = created["payload"]["callbacks"][0]["url"]
    plain = beta12.build_workflow(stored, run_id=str(stored.pk), callback_url=url)
    with override_settings(ORCHESTRATOR_CURRENCIES=["blue"], ORCHESTRATOR_CONTRACT="beta86"):
        again = beta12.build_workflow(stored, run_id=str(stored.pk), callback_url=url)
    assert json.dumps(again) == json.dumps(plain)  # byte for byte, key order too
    assert plain == created["payload"]


def test_each_contract_declares_an_epoch_range_holding_every_catalog_ai_toolkit_range() -> None:
    for contract in contracts.CONTRACTS.values():
        low, high = contract.ai_toolkit_epochs_range()
        for key, base in catalog.BASE_MODELS.items():
            if "ai-toolkit" in base.engines:
                specs = catalog.param_spec_map(key, "ai-toolkit", contract.name)
                if not specs:
                    continue  # not offered under this contract
                spec = specs["epochs"]
                assert spec.minimum is not None and spec.maximum is not None
                assert low <= spec.minimum and spec.maximum <= high, (contract.name, key)
    assert contracts.get("beta12").ai_toolkit_steps(spec86("sdxl", "ai-toolkit")) is None
    assert contracts.get("beta86").ai_toolkit_steps(spec86("sdxl", "ai-toolkit")) == 2000


def test_the_params_a_contract_does_not_send_are_declared() -> None:
    b12, b86 = contracts.get("beta12"), contracts.get("beta86")
    assert b12.params_not_sent(spec86("sdxl", "ai-toolkit")) == frozenset()
    # Runs accepted under beta86 carry nothing beta86 cannot send (#17)...
    for key, engine in ALL_PAIRS:
        if not refused_under("beta86", key, engine):
            assert b86.params_not_sent(spec86(key, engine)) == frozenset(), (key, engine)
    # ...only runs stored under beta12 and sent after a switch do, and those are left out.
    assert b86.params_not_sent(spec_for("sdxl", "ai-toolkit")) == {"resolution"}
    assert b86.params_not_sent(spec_for("flux_dev", "ai-toolkit")) == {"resolution", "minSnrGamma"}
    assert b86.params_not_sent(spec_for("wan_2_1_t2v_14b", "musubi")) == {
        "numRepeats",
        "trainBatchSize",
    }
    assert b86.params_not_sent(spec_for("sdxl", "kohya")) == frozenset()
    for key, engine in ALL_PAIRS:
        spec = spec86(key, engine)
        if refused_under("beta86", key, engine):
            continue
        step_input = build86(spec)["steps"][0]["input"]
        sent = {"maxTrainEpochs" if n == "epochs" and engine == "musubi" else n for n in step_input}
        assert not (b86.params_not_sent(spec) & sent), (key, engine)


# --- the translation ----------------------------------------------------------------------------


def test_steps_and_checkpoints_are_sent_as_the_run_asks() -> None:
    spec = spec86("sdxl", "ai-toolkit", {"steps": 3500, "epochs": 7})
    step_input = build86(spec)["steps"][0]["input"]
    assert (step_input["steps"], step_input["epochs"]) == (3500, 7)
    assert list(step_input).count("steps") == 1


def test_a_run_stored_before_steps_keeps_the_length_it_was_quoted() -> None:
    spec = spec_for("sdxl", "ai-toolkit", {"epochs": 20})  # beta12 params: no steps
    spec.training_data_url = "https://data.example.com/set.zip"
    spec.image_count = 1000
    step_input = build86(spec)["steps"][0]["input"]
    assert (step_input["steps"], step_input["epochs"]) == (10_000, 20)  # 20 000 clamped
    spec.image_count = 1
    spec.params["epochs"] = 5
    assert build86(spec)["steps"][0]["input"]["steps"] == 5


def test_an_sdxl_ai_toolkit_step_is_the_beta86_shape() -> None:
    spec = spec86("sdxl", "ai-toolkit", {"minSnrGamma": 5.0})
    step_input = build86(spec)["steps"][0]["input"]
    assert step_input["engine"] == "ai-toolkit" and step_input["ecosystem"] == "sdxl"
    assert step_input["model"] == catalog.BASE_MODELS["sdxl"].air
    assert step_input["minSnrGamma"] == 5 and isinstance(step_input["minSnrGamma"], int)
    assert step_input["trainingData"] == {
        "type": "zip",
        "sourceUrl": "https://data.example.com/set.zip",
        "count": 24,
    }
    assert step_input["samples"] == {"prompts": ["a portrait"]}
    assert "negativePrompt" not in step_input["samples"]  # AI Toolkit runs keep it unsent


def test_flux_and_chroma_send_no_model_and_flux_its_variant() -> None:
    flux = build86(spec86("flux_dev", "ai-toolkit"))["steps"][0]["input"]
    chroma = build86(spec86("chroma", "ai-toolkit"))["steps"][0]["input"]
    assert flux["modelVariant"] == "dev" and "model" not in flux and "minSnrGamma" not in flux
    assert "modelVariant" not in chroma and "model" not in chroma
    assert "textEncoderLr" not in flux  # None in our params: omitted, never null


def test_a_custom_flux_checkpoint_is_refused_with_the_reason_not_dropped() -> None:
    spec = spec86("flux_dev", "ai-toolkit")
    spec.custom_model = "urn:air:flux1:checkpoint:civitai:1@2"
    [error] = beta86.validate_workflow(build86(spec))
    assert error.path == "steps[0].input.model"
    assert "custom checkpoint cannot be used" in error.message


def test_legacy_engines_under_beta86() -> None:
    kohya = build86(spec86("sdxl", "kohya"))["steps"][0]["input"]
    old = beta12.build_workflow(spec86("sdxl", "kohya"), run_id=RUN_ID, callback_url="https://c")
    assert kohya == old["steps"][0]["input"]  # Kohya is unchanged field by field
    musubi = build86(spec86("wan_2_1_t2v_14b", "musubi"))["steps"][0]["input"]
    assert musubi["epochs"] == 10 and musubi["resolution"] == 960
    rapid = build86(spec86("flux_dev", "rapid"))["steps"][0]["input"]
    assert set(rapid) == {
        "engine", "model", "trainingData", "trainingDataImagesCount", "loraName",
        "samplePrompts", "negativePrompt",
    }  # fmt: skip


def test_the_workflow_carries_currencies_the_external_id_and_plain_callbacks() -> None:
    with override_settings(ORCHESTRATOR_CURRENCIES=["blue", "yellow"]):
        body = build86(spec86("sdxl", "kohya"))
    assert body["currencies"] == ["blue", "yellow"]
    assert body["externalId"] == RUN_ID
    assert body["callbacks"] == [
        {
            "url": "https://svc.example.com/cb?t=1",
            "type": ["workflow:*", "job:processing"],
            "detailed": False,
        }
    ]
    assert body["tags"] == ["training", f"run:{RUN_ID}", "engine:kohya"]
    assert body["metadata"] == body["steps"][0]["metadata"] == {"runId": RUN_ID}
    preview = build86(spec86("sdxl", "kohya"), run_id="00000000-0000-0000-0000-000000000000")
    assert "externalId" not in preview  # all previews and estimates share that id


def test_an_unknown_currency_is_a_configuration_error() -> None:
    with (
        override_settings(ORCHESTRATOR_CURRENCIES=["yellow", "red"]),
        pytest.raises(ImproperlyConfigured, match="red"),
    ):
        build86(spec86("sdxl", "kohya"))


# --- the schema ---------------------------------------------------------------------------------


def valid_flux() -> dict[str, Any]:
    return build86(spec86("flux_dev", "ai-toolkit"))


def valid_sd1() -> dict[str, Any]:
    return build86(spec86("sd_1_5", "ai-toolkit"))


def step_input(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["steps"][0]["input"])


@pytest.mark.parametrize(
    ("make", "mutate", "path"),
    [
        (valid_flux, lambda b: b["steps"][0]["input"].update(resolution=1024), "steps[0].input.resolution"),
        (valid_flux, lambda b: b.pop("currencies"), "currencies"),
        (valid_flux, lambda b: b.update(currencies=["red"]), "currencies[0]"),
        (valid_flux, lambda b: b.update(nsfwLevel="pG13"), "nsfwLevel"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(ecosystem="wan"), "steps[0].input.ecosystem"),
        (valid_flux, lambda b: b["steps"][0]["input"].pop("modelVariant"), "steps[0].input.modelVariant"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(modelVariant="2.1"), "steps[0].input.modelVariant"),
        (valid_sd1, lambda b: b["steps"][0]["input"].update(modelVariant="dev"), "steps[0].input.modelVariant"),
        (valid_flux, lambda b: b.update(externalId="run.1"), "externalId"),
        (valid_flux, lambda b: b.update(externalId=""), "externalId"),
        (valid_flux, lambda b: b.update(externalId="x" * 129), "externalId"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(numRepeats=8), "steps[0].input.numRepeats"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(trainBatchSize=2), "steps[0].input.trainBatchSize"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(minSnrGamma=5), "steps[0].input.minSnrGamma"),
        (valid_sd1, lambda b: b["steps"][0]["input"].update(minSnrGamma=2.5), "steps[0].input.minSnrGamma"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(epochs=201), "steps[0].input.epochs"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(steps=10_001), "steps[0].input.steps"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(lr=None), "steps[0].input.lr"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(lrScheduler=None), "steps[0].input.lrScheduler"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(optimizerType="adam"), "steps[0].input.optimizerType"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(usesStepPricing=True), "steps[0].input.usesStepPricing"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(defaultSteps=2000), "steps[0].input.defaultSteps"),
        (valid_flux, lambda b: b["steps"][0]["input"]["trainingData"].update(sourceUrl="https://x.example/d.zip?sig=1"), "steps[0].input.trainingData.sourceUrl"),
        (valid_flux, lambda b: b["steps"][0]["input"]["trainingData"].update(type="blobs"), "steps[0].input.trainingData.type"),
        (valid_flux, lambda b: b["steps"][0]["input"].update(engine="kohya"), "steps[0].input.engine"),
        (valid_flux, lambda b: b["callbacks"][0].update(detailed="yes"), "callbacks[0].detailed"),
        (valid_flux, lambda b: b["steps"][0].update(timeout="5 minutes"), "steps[0].timeout"),
        (valid_flux, lambda b: b.update(tips={"civitai": 3, "creators": 0}), "tips.civitai"),
        (valid_flux, lambda b: b.update(tags=["a", "a"]), "tags"),
    ],
)  # fmt: skip
def test_the_schema_refuses_what_beta86_refuses(make: Any, mutate: Any, path: str) -> None:
    body = copy.deepcopy(make())
    assert beta86.validate_workflow(body) == []
    mutate(body)
    assert path in [e.path for e in beta86.validate_workflow(body)]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(nsfwLevel="pg13", ephemeral=None, externalId="A-b_9" * 25),
        lambda b: b["callbacks"][0].update(detailed=None),
        lambda b: b["steps"][0]["input"].update(networkDim=None, noiseOffset=None, epochs=None),
        lambda b: b["steps"][0]["input"].update(steps=1, epochs=200, trainTextEncoder=None),
        lambda b: b["steps"][0]["input"].update(optimizerType="automagic", continueFrom=None),
        lambda b: b["steps"][0]["input"]["samples"].update(negativePrompt=None, cfgScale=3.5),
        lambda b: b["steps"][0]["input"]["trainingData"].update(
            sourceUrl="urn:air:other:other:civitai-r2:bucket@datasets/abc.zip"
        ),
        lambda b: b["steps"][0]["input"].pop("samples"),
        lambda b: b["steps"][0].update(timeout="00:05:00"),
    ],
)
def test_the_schema_accepts_what_beta86_accepts(mutate: Any) -> None:
    body = valid_flux()
    mutate(body)
    assert beta86.validate_workflow(body) == []


def test_the_legacy_steps_refuse_what_beta86_removed() -> None:
    musubi = build86(spec86("wan_2_1_t2v_14b", "musubi"))
    musubi["steps"][0]["input"]["maxTrainEpochs"] = 5
    kohya = build86(spec86("sdxl", "kohya"))
    kohya["steps"][0]["input"]["engine"] = "ai-toolkit"  # beta12's legacy engine is gone
    kohya_null = build86(spec86("sdxl", "kohya"))
    kohya_null["steps"][0]["input"]["clipSkip"] = None
    assert [e.path for e in beta86.validate_workflow(musubi)] == ["steps[0].input.maxTrainEpochs"]
    assert [e.path for e in beta86.validate_workflow(kohya)] == ["steps[0].input.engine"]
    assert [e.path for e in beta86.validate_workflow(kohya_null)] == ["steps[0].input.clipSkip"]


# --- reading beta86 workflows -------------------------------------------------------------------


def blob(url: str | None, expires: str | None, kind: str = "image") -> dict[str, Any]:
    return {"type": kind, "id": "b1", "available": url is not None, "url": url,
            "urlExpiresAt": expires}  # fmt: skip


def test_parse_workflow_reads_the_new_training_output() -> None:
    workflow = {
        "id": "wf-1",
        "status": "processing",
        "startedAt": "2026-11-29T06:00:00Z",
        "cost": {"base": 30, "total": 30, "tips": {"civitai": 0, "creators": 0}},
        "transactions": {"list": [{"type": "debit", "amount": 30, "accountType": "blue"}]},
        "steps": [
            {
                "$type": "training",
                "jobs": [{"id": "j", "status": "processing", "cost": 30,
                          "queuePosition": {"support": "available", "precedingJobs": 0}}],
                "output": {
                    "moderationStatus": "underReview",
                    "epochs": [
                        {"epochNumber": 2,
                         "model": blob("https://b.example/x/my%20lora_e2.safetensors?sig=1",
                                       "2026-11-29T08:00:00Z", "model"),
                         "samples": [blob("https://b.example/s2.png?sig=1", "2026-11-29T07:30:00Z"),
                                     blob(None, None)]},
                        {"epochNumber": 1,
                         "model": blob("https://b.example/x/e1.safetensors", None, "model"),
                         "samples": []},
                    ],
                },
            }
        ],
    }  # fmt: skip
    state = beta86.parse_workflow(workflow)
    assert (state.status, state.cost, state.charged, state.jobs_ahead) == ("processing", 30, 30, 0)
    assert state.moderation == "underReview"
    assert state.epochs == [
        {"epochNumber": 1, "modelName": "e1.safetensors",
         "modelUrl": "https://b.example/x/e1.safetensors", "modelSize": None, "sampleImages": []},
        {"epochNumber": 2, "modelName": "my lora_e2.safetensors",
         "modelUrl": "https://b.example/x/my%20lora_e2.safetensors?sig=1", "modelSize": None,
         "sampleImages": ["https://b.example/s2.png?sig=1"],
         "urlExpiresAt": "2026-11-29T07:30:00+00:00"},
    ]  # fmt: skip


def test_parse_workflow_reads_the_legacy_output_and_a_failure() -> None:
    workflow = {
        "status": "failed",
        "steps": [
            {
                "$type": "imageResourceTraining",
                "jobs": [{"id": "j", "status": "failed", "cost": 1, "reason": "out of memory"}],
                "output": {
                    "moderationStatus": "approved",
                    "sampleImagesPrompts": ["p"],
                    "eta": 3,
                    "epochs": [{"epochNumber": 1, "blobName": "a_e1.safetensors",
                                "blobUrl": "https://b.example/a_e1.safetensors", "blobSize": 4096,
                                "sampleImages": ["https://b.example/a_e1_0.png"]}],
                },
            }
        ],
    }  # fmt: skip
    state = beta86.parse_workflow(workflow)
    assert state.message == "The orchestrator reports the workflow failed: out of memory"
    assert (state.moderation, state.eta_minutes) == ("approved", 3.0)
    assert state.epochs == [
        {"epochNumber": 1, "modelName": "a_e1.safetensors",
         "modelUrl": "https://b.example/a_e1.safetensors", "modelSize": 4096,
         "sampleImages": ["https://b.example/a_e1_0.png"]},
    ]  # fmt: skip
