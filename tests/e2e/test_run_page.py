"""The run page (#18.5) in Chromium against the real stack: the samples grid with prompts and the
enlarged view by keyboard, a failure in plain words with the Buzz outcome and next step, retry
links both ways, and no console errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, Response, expect

from emulator.server import EmulatorServer
from tests.conftest import make_user, run_body
from tests.e2e.conftest import login, screenshot, stack_cache_clear
from tests.harness import Stack, wait_until
from training.models import TrainingRun

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = ["a portrait in my style", "a landscape in my style"]


@pytest.fixture
def errors(page: Page) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(message: ConsoleMessage) -> None:
        # Failed loads are judged by their responses below (the favicon is not ours to add).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.append(message.text)

    def failed(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            seen.append(f"{response.status} {response.url}")

    page.on("console", note)
    page.on("response", failed)
    page.on("pageerror", lambda exc: seen.append(str(exc)))
    yield seen


def create(stack: Stack, **body: Any) -> str:
    make_user("olivia")
    stack_cache_clear(stack)
    token = stack.token("olivia", "pw-olivia")
    created = requests.post(
        f"{stack.url}/api/v1/training-runs/",
        json=run_body(**body),
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_samples_show_as_a_prompt_by_epoch_grid_and_enlarge_by_keyboard(
    stack: Stack, page: Page, errors: list[str]
) -> None:
    run_id = create(stack, params={"maxTrainEpochs": 2}, samplePrompts=PROMPTS)
    wait_until(lambda: TrainingRun.objects.get(pk=run_id).status == "succeeded", timeout=90)
    login(page, stack, "olivia")
    page.goto(f"{stack.url}/runs/{run_id}")
    grid = page.locator("#samples-grid")
    expect(grid.locator("th.epoch-head")).to_have_count(2)
    expect(grid.locator("th.sample-prompt").first).to_have_text(PROMPTS[0])
    expect(grid.locator("th.sample-prompt").nth(1)).to_have_text(PROMPTS[1])
    expect(grid.get_by_role("link", name="Download this epoch")).to_have_count(2)
    first = grid.locator("button.sample").first
    box = first.locator("img").bounding_box()
    assert box is not None and box["width"] >= 150  # larger than the old 125 px squares
    first.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#sample-view")
    expect(dialog).to_be_visible()
    expect(dialog.locator("figcaption")).to_have_text(f"Epoch 1: {PROMPTS[0]}")
    screenshot(page, "run-sample-enlarged")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('sample')")
    screenshot(page, "run-samples-grid")
    assert errors == []


def test_a_failed_run_says_what_went_wrong_what_happened_to_the_buzz_and_links_its_retry(
    stack: Stack, page: Page, emulator: EmulatorServer, errors: list[str]
) -> None:
    emulator.update_faults(fail_at_epoch=2)
    run_id = create(stack, params={"maxTrainEpochs": 3}, samplePrompts=PROMPTS)
    wait_until(lambda: TrainingRun.objects.get(pk=run_id).status == "failed", timeout=90)
    emulator.update_faults(fail_at_epoch=0)
    login(page, stack, "olivia")
    page.goto(f"{stack.url}/runs/{run_id}")
    failure = page.locator("#run-error")
    expect(failure).to_be_visible()
    expect(failure).to_contain_text("What went wrong")
    expect(failure).to_contain_text("Training stopped with an error on the orchestrator's side.")
    expect(failure).to_contain_text("What to try next:")
    expect(page.locator("#run-buzz")).to_contain_text("Buzz")
    expect(page.locator("#samples-grid th.epoch-head")).to_have_count(1)  # epoch 1 finished
    screenshot(page, "run-failed")

    page.get_by_role("button", name="Retry with the same settings").click()
    expect(page.locator("#retry-of")).to_contain_text("the original run")
    retry_url = page.url
    page.locator("#retry-of a").click()
    expect(page.locator("#retried-as a")).to_have_count(1)
    page.locator("#retried-as a").click()
    assert page.url == retry_url
    assert errors == []


def test_cancel_asks_first_then_says_what_was_refunded_and_drops_stale_banners(
    stack: Stack, page: Page, emulator: EmulatorServer, errors: list[str]
) -> None:
    emulator.update_faults(queue_seconds=1, seconds_per_epoch=60)
    run_id = create(stack, params={"maxTrainEpochs": 3})
    login(page, stack, "olivia")
    page.goto(f"{stack.url}/runs/{run_id}")
    expect(page.locator('#run-status [data-field="status"]')).to_have_text(
        "processing", timeout=30_000
    )
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#cancel-confirm")).to_be_visible()
    page.get_by_role("button", name="Keep it running").click()
    expect(page.locator("#cancel-confirm")).to_be_hidden()
    assert TrainingRun.objects.get(pk=run_id).status == "processing"
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("button", name="Yes, cancel the run").click()
    expect(page.locator(".messages")).to_contain_text("The run was canceled.")
    expect(page.locator("#run-buzz")).to_be_visible()
    expect(page.locator("#epochs-empty")).to_be_hidden()  # "appear as they finish" is over
    expect(page.locator("#epochs-none")).to_be_visible()
    screenshot(page, "run-canceled-refund")
    assert errors == []
