"""#17: train what the user asked for, under each orchestrator contract. Steps under beta86, the
catalog offering exactly what the active contract takes, no silent drops, exact AIRs and URIs, and
the text-encoder rule; each case under beta12 and beta86 (ORCHESTRATOR_CONTRACT overridden)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from rest_framework.test import APIClient

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conftest import run_body
from training.models import TrainingRun
from training.orchestrator.client import get_client

URL = "/api/v1/training-runs/"
PREVIEW = "/api/v1/training-runs/preview/"
CATALOG = "/api/v1/training-catalog/"
Client = Callable[[User | None], APIClient]
BOTH = pytest.mark.parametrize("contract", ["beta12", "beta86"])


def post(client: APIClient, contract: str, body: dict[str, Any], url: str = PREVIEW) -> Any:
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        return client.post(url, body, "json")


def errors(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.json()
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def step_input(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.json()
    return dict(response.json()["workflow"]["steps"][0]["input"])


def ai(base: str = "sdxl", **params: Any) -> dict[str, Any]:
    return run_body(baseModel=base, engine="ai-toolkit", params=params)


@pytest.fixture
def client(ai_mod: User, client_for: Client) -> APIClient:
    return client_for(ai_mod)


# --- 1. training length under beta86 ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("base", ["sd_1_5", "sdxl", "flux_dev", "chroma"])
def test_a_default_ai_toolkit_run_trains_the_ecosystems_default_run_under_beta86(
    client: APIClient, base: str
) -> None:
    sent = step_input(post(client, "beta86", ai(base)))
    assert (sent["steps"], sent["epochs"], sent["batchSize"]) == (2000, 10, 1)


@pytest.mark.django_db
def test_one_image_no_longer_means_five_steps_under_beta86(client: APIClient) -> None:
    body = ai("sdxl")
    body["trainingData"]["imageCount"] = 1
    assert step_input(post(client, "beta86", body))["steps"] == 2000


@pytest.mark.django_db
def test_steps_and_checkpoints_are_the_users_under_beta86(client: APIClient) -> None:
    sent = step_input(post(client, "beta86", ai("flux_dev", steps=3000, epochs=15)))
    assert (sent["steps"], sent["epochs"]) == (3000, 15)


@pytest.mark.django_db
@pytest.mark.parametrize("steps", [0, 10_001])
def test_steps_outside_the_contracts_range_are_refused_under_beta86(
    client: APIClient, steps: int
) -> None:
    assert "between 1 and 10000" in errors(post(client, "beta86", ai(steps=steps)))["params.steps"]


@pytest.mark.django_db
def test_more_checkpoints_than_steps_is_refused_and_a_short_run_saves_one_per_step(
    client: APIClient,
) -> None:
    message = errors(post(client, "beta86", ai(steps=5, epochs=6)))["params.epochs"]
    assert "6 checkpoints cannot be saved in 5 steps" in message
    sent = step_input(post(client, "beta86", ai(steps=5)))
    assert (sent["steps"], sent["epochs"]) == (5, 5)


@pytest.mark.django_db
def test_beta12_has_no_steps_and_keeps_its_epochs(client: APIClient) -> None:
    assert (
        "not a AI Toolkit parameter"
        in errors(post(client, "beta12", ai(steps=2000)))["params.steps"]
    )
    sent = step_input(post(client, "beta12", ai("sdxl", epochs=7)))
    assert sent["epochs"] == 7 and "steps" not in sent


@pytest.mark.django_db
@BOTH
def test_the_catalog_names_the_length_fields_of_the_active_contract(
    client: APIClient, contract: str
) -> None:
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        data = client.get(CATALOG).json()
    assert data["contract"] == contract
    sdxl = next(m for m in data["baseModels"] if m["key"] == "sdxl")
    rows = next(e for e in sdxl["engines"] if e["key"] == "ai-toolkit")["params"]
    labels = {r["name"]: (r["label"], r["min"], r["max"], r["default"]) for r in rows}
    if contract == "beta86":
        assert labels["steps"] == ("Steps", 1, 10_000, 2000)
        assert labels["epochs"] == ("Checkpoints", 1, 20, 10)
    else:
        assert "steps" not in labels and labels["epochs"] == ("Epochs", 5, 20, 5)


@pytest.mark.django_db
@BOTH
def test_the_estimate_follows_the_length_steps_under_beta86_epochs_under_beta12(
    client: APIClient, contract: str, settings: Any
) -> None:
    """The emulator over HTTP prices beta86 AI Toolkit by steps (flux1: 2000 Buzz per 2000 steps)
    and beta12 by epoch (flux1: 200 Buzz per epoch)."""
    server = EmulatorServer("127.0.0.1", 0, EmulatorConfig(contract=contract, queue_seconds=0))
    server.start()
    settings.ORCHESTRATOR_URL, settings.ORCHESTRATOR_TOKEN = server.url, "emulator-token"
    settings.ORCHESTRATOR_CONTRACT = contract
    get_client.cache_clear()
    try:
        short = client.post(f"{URL}estimate/", ai("flux_dev"), "json")
        longer = client.post(
            f"{URL}estimate/",
            ai("flux_dev", **{"steps" if contract == "beta86" else "epochs": 10}),
            "json",
        )
    finally:
        get_client.cache_clear()
        server.stop()
    assert short.status_code == longer.status_code == 200, (short.json(), longer.json())
    if contract == "beta86":
        assert (short.json()["cost"]["total"], longer.json()["cost"]["total"]) == (2000, 10)
    else:
        assert (short.json()["cost"]["total"], longer.json()["cost"]["total"]) == (1000, 2000)


# --- 2. the catalog offers exactly what the contract takes --------------------------------------


@pytest.mark.django_db
def test_optimizers_follow_the_contract(client: APIClient) -> None:
    assert (
        "automagic"
        in errors(post(client, "beta12", ai(optimizerType="automagic")))["params.optimizerType"]
    )
    assert step_input(post(client, "beta86", ai(optimizerType="automagic")))["optimizerType"] == (
        "automagic"
    )
    assert (
        "adam" in errors(post(client, "beta86", ai(optimizerType="adam")))["params.optimizerType"]
    )
    assert step_input(post(client, "beta12", ai(optimizerType="adam")))["optimizerType"] == "adam"


@pytest.mark.django_db
def test_min_snr_gamma_is_a_whole_number_under_beta86_only(client: APIClient) -> None:
    message = errors(post(client, "beta86", ai(minSnrGamma=2.5)))["params.minSnrGamma"]
    assert message == "minSnrGamma must be a whole number."
    assert step_input(post(client, "beta12", ai(minSnrGamma=2.5)))["minSnrGamma"] == 2.5


@pytest.mark.django_db
@BOTH
def test_the_catalog_api_offers_the_contracts_optimizers(client: APIClient, contract: str) -> None:
    with override_settings(ORCHESTRATOR_CONTRACT=contract):
        data = client.get(CATALOG).json()
    flux = next(m for m in data["baseModels"] if m["key"] == "flux_dev")
    rows = {
        r["name"]: r for r in next(e for e in flux["engines"] if e["key"] == "ai-toolkit")["params"]
    }
    options = set(rows["optimizerType"]["options"])
    assert ("automagic" in options, "adam" in options) == (
        (True, False) if contract == "beta86" else (False, True)
    )
    assert ("resolution" in rows, "minSnrGamma" in rows) == (
        (False, False) if contract == "beta86" else (True, True)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["numRepeats", "trainBatchSize"])
def test_musubi_settings_beta86_cannot_carry_are_refused_not_dropped(
    client: APIClient, name: str
) -> None:
    body = run_body(baseModel="wan_2_1_t2v_14b", engine="musubi", params={name: 2})
    message = errors(post(client, "beta86", body, URL))[f"params.{name}"]
    assert message.startswith(f"{name} cannot be sent to today's orchestrator (beta86)")
    assert TrainingRun.objects.count() == 0
    created = post(client, "beta12", body, URL)
    assert created.status_code == 201
    assert created.json()["payload"]["steps"][0]["input"][name] == 2


@pytest.mark.django_db
def test_resolution_on_ai_toolkit_is_refused_under_beta86(client: APIClient) -> None:
    assert (
        "cannot be sent" in errors(post(client, "beta86", ai(resolution=1024)))["params.resolution"]
    )
    assert step_input(post(client, "beta12", ai(resolution=1024)))["resolution"] == 1024


# --- 3. custom checkpoints ----------------------------------------------------------------------


@pytest.mark.django_db
@BOTH
def test_the_short_custom_model_form_is_refused_with_the_full_form_to_use(
    client: APIClient, contract: str
) -> None:
    body = run_body(baseModel="flux_dev", customModel="civitai:4384@128713")
    message = errors(post(client, contract, body))["customModel"]
    assert "urn:air:flux1:checkpoint:civitai:4384@128713" in message


@pytest.mark.django_db
@BOTH
def test_an_sd15_checkpoint_is_refused_for_flux(client: APIClient, contract: str) -> None:
    body = run_body(baseModel="flux_dev", customModel="urn:air:sd1:checkpoint:civitai:4384@128713")
    assert "is a sd1 model" in errors(post(client, contract, body))["customModel"]


@pytest.mark.django_db
@BOTH
@pytest.mark.parametrize(
    "air",
    [
        "urn:air:sdxl:lora:civitai:1@2",
        "urn:air:sdxl:checkpoint:huggingface:org/model@main",
        "urn:air:sdxl:checkpoint:civitai:abc@2",
    ],
)
def test_only_a_civitai_checkpoint_air_is_taken(client: APIClient, contract: str, air: str) -> None:
    assert "customModel" in errors(post(client, contract, run_body(customModel=air)))


@pytest.mark.django_db
@BOTH
def test_a_matching_full_air_is_sent_as_the_model(client: APIClient, contract: str) -> None:
    air = "urn:air:pony:checkpoint:civitai:257749@290640"
    assert step_input(post(client, contract, run_body(customModel=air)))["model"] == air
    assert (
        step_input(post(client, contract, ai("sdxl", epochs=5) | {"customModel": air}))["model"]
        == air
    )


@pytest.mark.django_db
def test_a_custom_flux_checkpoint_with_ai_toolkit_is_a_field_error_under_beta86(
    client: APIClient,
) -> None:
    body = ai("flux_dev") | {"customModel": "urn:air:flux1:checkpoint:civitai:1@2"}
    assert "takes no custom checkpoint" in errors(post(client, "beta86", body))["customModel"]
    assert step_input(post(client, "beta12", body))["model"] == body["customModel"]


# --- 4. URIs ------------------------------------------------------------------------------------


@pytest.mark.django_db
@BOTH
@pytest.mark.parametrize(
    ("char", "encoded"),
    [("|", "%7C"), ("<", "%3C"), (">", "%3E"), ('"', "%22"), ("{", "%7B"), ("}", "%7D"),
     ("^", "%5E"), ("\\", "%5C"), ("`", "%60"), (" ", "%20")],
)  # fmt: skip
def test_a_url_that_is_not_a_uri_is_refused_naming_what_to_encode(
    client: APIClient, contract: str, char: str, encoded: str
) -> None:
    body = run_body()
    body["trainingData"]["url"] = f"https://example.com/a{char}b.zip"
    messages = errors(post(client, contract, body, URL))["trainingData.url"]
    assert f"as {encoded}" in messages
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
@BOTH
def test_an_encoded_url_is_taken_as_it_is(client: APIClient, contract: str) -> None:
    body = run_body()
    body["trainingData"]["url"] = "https://example.com/a%7Cb.zip?x=1&y=%20#frag"
    assert step_input(post(client, contract, body))["trainingData"] == body["trainingData"]["url"]


# --- 5. text encoder ----------------------------------------------------------------------------


@pytest.mark.django_db
@BOTH
def test_a_zero_text_encoder_rate_means_the_text_encoder_is_not_trained(
    client: APIClient, contract: str
) -> None:
    response = post(client, contract, ai("sd_1_5", textEncoderLr=0))
    sent = step_input(response)
    assert sent["trainTextEncoder"] is False
    assert sent.get("textEncoderLr") is None
    assert response.json()["params"]["trainTextEncoder"] is False


@pytest.mark.django_db
@BOTH
def test_training_the_text_encoder_at_rate_zero_is_refused(
    client: APIClient, contract: str
) -> None:
    message = errors(post(client, contract, ai("sdxl", trainTextEncoder=True, textEncoderLr=0)))[
        "params.textEncoderLr"
    ]
    assert "trainTextEncoder is true but textEncoderLr is 0" in message
