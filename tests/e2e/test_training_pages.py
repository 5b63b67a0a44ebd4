"""The training pages in a real browser against the real stack and the orchestrator emulator."""

from __future__ import annotations

import re

import pytest
import requests
from django.contrib.auth.models import User
from playwright.sync_api import FilePayload, Page, expect

from emulator.server import EmulatorServer
from flags.services import preference_set
from tests.conftest import make_user, run_body
from tests.e2e.conftest import login, screenshot, stack_cache_clear
from tests.flags.helpers import AI, at_stage
from tests.harness import Stack, wait_until
from tests.training.web.helpers import png, zip_bytes
from training.models import TrainingRun

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RUN_URL = re.compile(r".*/runs/[0-9a-f-]{36}$")


def gold_at_paid(stack: Stack, *, opted_in: bool) -> User:
    at_stage("paid")
    user = make_user("goldie", "gold")
    if opted_in:
        preference_set(user=user, key=AI, enabled=True)
    stack_cache_clear(stack)
    return user


def next_step(page: Page, name: str) -> None:
    page.get_by_role("button", name=f"Continue to {name}").click()
    expect(page.locator(f"#step-{name}")).to_be_visible()


def url_data(page: Page, count: str = "12") -> None:
    page.get_by_label("Give a URL").check()
    page.get_by_label("URL of the zip").fill("https://data.example.com/set.zip")
    page.get_by_label("Number of images in it").fill(count)


def fill_common(page: Page, *, lora: str = "my-style") -> None:
    """On the settings step (the new-run page's steps: model, data, settings, review)."""
    page.get_by_label("LoRA name").fill(lora)
    page.locator("#f-samplePrompts").fill("a portrait in my style\na landscape in my style")


def test_ai_toolkit_toggle_opt_in_visibility_and_exclusion_with_rapid(
    stack: Stack, page: Page
) -> None:
    gold_at_paid(stack, opted_in=False)
    page.goto(f"{stack.url}/")
    assert page.url == f"{stack.url}/accounts/login/"  # / sends a visitor to log in
    login(page, stack, "goldie", shot="login")
    expect(page.locator("#nav-user")).to_have_text("goldie")
    expect(page.locator(".tier")).to_have_text("Gold")
    screenshot(page, "my-runs-empty")

    # Offered but not chosen yet: a hint leads to the features page, and back.
    page.goto(f"{stack.url}/train/new")
    expect(page.locator("#f-engine-ai-toolkit")).to_have_count(0)
    page.locator("#ai-toolkit-hint").get_by_role("link", name="Features").click()
    screenshot(page, "features")
    page.get_by_role("button", name="Turn on AI Toolkit Training").click()
    expect(page.locator(".messages")).to_contain_text("AI Toolkit Training is now on.")
    page.get_by_role("link", name="Back to where you were").click()
    page.wait_for_url(f"{stack.url}/train/new")

    page.get_by_label("Base model").select_option("flux_dev")
    ai = page.get_by_role("switch", name="AI Toolkit Training")
    rapid = page.get_by_role("switch", name="Rapid Training")
    expect(ai).to_be_visible()
    expect(page.locator("#ai-toolkit-toggle .badge-beta")).to_have_text("Beta")
    expect(page.locator("#ai-toolkit-info")).to_contain_text(
        "Train using the AI Toolkit engine, offering improved quality and flexibility."
    )
    expect(page.locator("#f-params-numRepeats")).to_have_count(1)  # on the settings step
    expect(page.locator("#f-params-trainBatchSize")).to_have_count(1)

    ai.check()
    expect(page.locator("#f-params-numRepeats")).to_have_count(0)
    expect(page.locator("#f-params-trainBatchSize")).to_have_count(0)
    expect(page.locator("#f-params-maxTrainEpochs")).to_have_value("5")  # AI Toolkit's default
    expect(page.locator("#f-params-unetLR")).to_have_value("0.0001")
    expect(rapid).to_be_disabled()
    expect(page.locator("#engine-label")).to_have_text("AI Toolkit")
    expect(page.locator("#ai-toolkit-notice")).to_have_text(
        "Training with AI Toolkit engine for improved quality and flexibility."
    )
    screenshot(page, "new-run-ai-toolkit")

    ai.uncheck()  # back to the base model's default engine
    expect(page.locator("#engine-label")).to_have_text("Kohya")
    expect(page.locator("#f-params-trainBatchSize")).to_have_value("4")
    expect(page.locator("#ai-toolkit-notice")).to_be_hidden()
    expect(rapid).to_be_enabled()

    rapid.check()
    expect(ai).to_be_disabled()
    expect(page.locator("#f-params-maxTrainEpochs")).to_have_attribute("readonly", "")
    rapid.uncheck()
    expect(ai).to_be_enabled()

    page.get_by_label("Base model").select_option("hy_720_fp8")
    expect(ai).to_be_hidden()
    expect(page.locator("#ai-toolkit-reason")).to_contain_text("AI Toolkit has no Hunyuan Video")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.get_by_label("Base model").select_option("flux_dev")
    screenshot(page, "new-run-phone")


def test_a_plain_user_has_no_toggle_and_a_hand_made_post_is_refused(
    stack: Stack, page: Page
) -> None:
    at_stage("mods")
    make_user("paula")
    stack_cache_clear(stack)
    login(page, stack, "paula")
    page.goto(f"{stack.url}/train/new")
    page.get_by_label("Base model").select_option("flux_dev")
    expect(page.locator("#f-engine-ai-toolkit")).to_have_count(0)
    expect(page.locator("#ai-toolkit-hint")).to_have_count(0)
    # A hand-made field on the real form: the CSRF token is valid, the engine is not allowed.
    page.evaluate(
        """() => {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = "engine"; input.value = "ai-toolkit";
            document.getElementById("run-form").appendChild(input);
        }"""
    )
    with page.expect_response(lambda r: r.url.endswith("/train/new")) as answer:
        page.get_by_role("button", name="Continue to data").click()
    assert answer.value.status == 403
    expect(page.locator("#error-summary")).to_contain_text(
        "AI Toolkit training is not enabled for your account."
    )
    expect(page.locator("#f-engine-error")).to_contain_text("AI Toolkit training is not enabled")
    assert TrainingRun.objects.count() == 0
    screenshot(page, "new-run-refused")


def test_an_invalid_value_shows_the_apis_message_next_to_the_field(
    stack: Stack, page: Page
) -> None:
    gold_at_paid(stack, opted_in=True)
    api = requests.post(
        f"{stack.url}/api/v1/training-runs/preview/",
        json=run_body(baseModel="flux_dev", engine="ai-toolkit", params={"epochs": 99}),
        headers={"Authorization": "Token " + stack.token("goldie", "pw-goldie")},
        timeout=10,
    )
    api_message = {e["field"]: e["message"] for e in api.json()["errors"]}["params.epochs"]
    assert api_message.startswith("epochs must be")  # the API keeps its names; the page
    expected = "Epochs" + api_message[len("epochs") :]  # says the form's label (#18 item 6)

    login(page, stack, "goldie")
    page.goto(f"{stack.url}/train/new")
    page.get_by_label("Base model").select_option("flux_dev")
    page.get_by_role("switch", name="AI Toolkit Training").check()
    next_step(page, "data")
    url_data(page, "24")
    next_step(page, "settings")
    fill_common(page)
    page.locator("#f-params-maxTrainEpochs").fill("99")
    # From the server, when leaving the step, with the summary focused.
    page.get_by_role("button", name="Continue to review").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary a")).to_have_text(expected)
    expect(page.locator("#f-params-maxTrainEpochs-error")).to_have_text(expected)
    expect(page.locator("#f-params-maxTrainEpochs")).to_have_value("99")
    screenshot(page, "new-run-invalid")


def test_a_full_submission_is_priced_trains_and_shows_its_samples(stack: Stack, page: Page) -> None:
    gold_at_paid(stack, opted_in=True)
    login(page, stack, "goldie")
    page.goto(f"{stack.url}/train/new")
    page.get_by_label("Base model").select_option("flux_dev")
    page.get_by_role("switch", name="AI Toolkit Training").check()
    expect(page.locator("#ai-toolkit-notice")).to_be_visible()
    next_step(page, "data")
    dataset = zip_bytes(["a.png", "b.png", "c.png"], png(16, 16))
    upload: FilePayload = {"name": "set.zip", "mimeType": "application/zip", "buffer": dataset}
    page.get_by_label("Zip of your training images").set_input_files(files=[upload])
    expect(page.locator("#upload-status")).to_contain_text("Uploaded: 3 images")
    next_step(page, "settings")
    fill_common(page, lora="flux-ai-toolkit")
    next_step(page, "review")
    # The price first.
    expect(page.locator("#estimate-cost")).to_have_text(re.compile(r"^[\d,]+ Buzz$"))
    price = int(page.locator("#estimate-cost").inner_text().split()[0].replace(",", ""))
    expect(page.locator("#review-data")).to_contain_text("3 images")
    screenshot(page, "new-run-priced")

    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(RUN_URL)
    expect(page.locator(".messages")).to_contain_text("accepted")
    expect(page.locator('#run-status [data-field="status"]')).to_have_text(
        "succeeded", timeout=90_000
    )
    page.wait_for_function(
        """() => {
            const imgs = [...document.querySelectorAll("#samples-grid img")];
            return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
        }""",
        timeout=30_000,
    )
    expect(page.locator("#samples-grid th.epoch-head")).to_have_count(5)  # Flux AI Toolkit default
    expect(page.locator("#run-progress")).to_contain_text("5 / 5 epochs")
    expect(page.locator("#cancel-form")).to_be_hidden()
    page.get_by_text("Orchestrator payload").click()
    expect(page.locator(".payload pre")).to_contain_text('"engine": "ai-toolkit"')
    screenshot(page, "run-succeeded")

    run = TrainingRun.objects.get()
    assert run.engine == "ai-toolkit" and run.image_count == 3 and run.estimated_cost == price
    assert run.params["epochs"] == 5 and "maxTrainEpochs" not in run.params
    # The stored zip is where the orchestrator would download it.
    zip_answer = requests.get(run.training_data_url, timeout=10)
    assert zip_answer.status_code == 200 and zip_answer.content == dataset

    page.get_by_role("link", name="My runs").first.click()
    expect(page.locator(f'tr[data-run-id="{run.pk}"] [data-field="status"]')).to_have_text(
        "succeeded"
    )
    screenshot(page, "my-runs")


def test_my_runs_updates_live_and_the_run_page_cancels(
    stack: Stack, page: Page, emulator: EmulatorServer
) -> None:
    make_user("olivia")
    stack_cache_clear(stack)
    emulator.update_faults(queue_seconds=3, seconds_per_epoch=60)
    token = stack.token("olivia", "pw-olivia")
    created = requests.post(
        f"{stack.url}/api/v1/training-runs/",
        json=run_body(params={"maxTrainEpochs": 3}),
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]

    login(page, stack, "olivia")
    page.evaluate("window.__sameDocument = true")
    badge = page.locator(f'tr[data-run-id="{run_id}"] [data-field="status"]')
    expect(badge).to_have_text("processing", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded

    page.get_by_role("link", name="my-style").click()
    expect(page.locator("#run-progress")).to_contain_text("0 / 3 epochs")
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("button", name="Yes, cancel the run").click()
    expect(page.locator(".messages")).to_contain_text("The run was canceled.")
    expect(page.locator('#run-status [data-field="status"]')).to_have_text("canceled")
    expect(page.get_by_role("button", name="Retry with the same settings")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
    screenshot(page, "run-canceled")
    wait_until(lambda: TrainingRun.objects.get(pk=run_id).status == "canceled", timeout=5)
    # The orchestrator was told: its workflow ends canceled too.
    workflow_id = TrainingRun.objects.get(pk=run_id).workflow_id
    wait_until(
        lambda: (
            requests.get(
                f"{emulator.url}/v2/consumer/workflows/{workflow_id}",
                headers={"Authorization": "Bearer emulator-token"},
                timeout=5,
            ).json()["status"]
            == "canceled"
        ),
        timeout=10,
    )
