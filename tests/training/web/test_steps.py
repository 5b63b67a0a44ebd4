"""The new-run page's steps without JavaScript: each step validated on the server, what was typed
kept (the draft), the browser's back button (GET ?step=), presets, the data set's grid, summary and
caption edits that reach the run's zip, the review's price, and the inline AI Toolkit opt-in."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from flags.models import FeaturePreference
from tests.flags.helpers import at_stage
from tests.training.web.helpers import field_error, png, throttle_rate
from training.models import TrainingRun
from training.orchestrator.client import get_client
from training.web.forms import RunForm, page_params, range_text
from vocabulary import catalog, presets

pytestmark = pytest.mark.django_db
Browser = Callable[[User], Client]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", 0, EmulatorConfig(queue_seconds=0.1))
    server.start()
    get_client.cache_clear()  # one client per process: not the one of an earlier test's emulator
    with override_settings(ORCHESTRATOR_URL=server.url):
        yield server
    get_client.cache_clear()
    server.stop()


def _zip(entries: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return SimpleUploadedFile("set.zip", buffer.getvalue(), content_type="application/zip")


def _visible_step(page: str) -> str:
    shown = re.findall(r'<section class="step" id="step-(\w+)"[^>]*?(hidden)?>', page)
    visible = [name for name, hidden in shown if not hidden]
    assert len(visible) == 1, shown
    return visible[0]


def _step(client: Client, step: str, action: str = "next", **fields: Any) -> Any:
    return client.post("/train/new", {"step": step, "action": action, **fields})


MODEL = {"baseModel": "sdxl", "customModel": ""}
SETTINGS = {"loraName": "my-cat", "samplePrompts": "a photo of my cat", "priority": "normal"}


def test_the_steps_walk_forward_keep_what_was_typed_and_go_back(
    owner: User, browser_for: Browser, emulator: EmulatorServer
) -> None:
    client = browser_for(owner)
    first = client.get("/train/new")
    assert _visible_step(first.content.decode()) == "model"

    moved = _step(client, "model", **MODEL, loraName="typed early")
    assert moved.status_code == 302 and moved["Location"] == "/train/new?step=data"
    data_page = client.get(moved["Location"]).content.decode()
    assert _visible_step(data_page) == "data"
    assert 'value="typed early"' in data_page  # kept, in its (hidden) step

    upload = _zip({f"{i}.png": png(600, 520, (i * 40, 10, 10)) for i in range(5)})
    stored = _step(client, "data", "upload", **MODEL, dataSource="upload", trainingZip=upload)
    assert stored["Location"] == "/train/new?step=data"
    grid = client.get("/train/new?step=data").content.decode()
    assert grid.count('class="thumb"') == 5 and "Smallest side" in grid

    to_settings = _step(client, "data", **MODEL, dataSource="upload", uploadedName=_name(grid))
    assert to_settings["Location"] == "/train/new?step=settings"
    # The browser's back button: the data step again, with the zip still there.
    back = client.get("/train/new?step=data").content.decode()
    assert _visible_step(back) == "data" and back.count('class="thumb"') == 5

    to_review = _step(
        client,
        "settings",
        **MODEL,
        **SETTINGS,
        dataSource="upload",
        uploadedName=_name(grid),
        preset="style",
    )
    assert to_review["Location"] == "/train/new?step=review"
    review = client.get("/train/new?step=review").content.decode()
    assert _visible_step(review) == "review"
    price = re.search(r'id="estimate-cost">(\d+) Buzz<', review)
    assert price and int(price.group(1)) > 0
    assert re.search(r'id="estimate-jobs">\d+<', review)
    assert "a photo of my cat" in review and "5 images" in review
    assert "Epochs</dt><dd>15<" in review  # the Style preset's value (10 x 1.5)

    started = _step(client, "review", "start", **MODEL, **SETTINGS, dataSource="upload",
                    uploadedName=_name(grid), preset="style", appliedPreset="style",
                    **STYLE_ON_SDXL)  # fmt: skip
    run = TrainingRun.objects.get()
    assert started["Location"] == f"/runs/{run.pk}"
    assert run.image_count == 5 and run.params["maxTrainEpochs"] == 15
    assert run.estimated_cost == int(price.group(1))


STYLE_ON_SDXL = {
    "params.maxTrainEpochs": "15",
    "params.networkDim": "64",
    "params.networkAlpha": "32",
    "params.shuffleCaption": "true",
    "params.flipAugmentation": "true",
    "params.keepTokens": "0",
}


def _name(page: str) -> str:
    match = re.search(r'name="uploadedName" id="f-uploadedName" value="([^"]*)"', page)
    assert match and match.group(1)
    return match.group(1)


def test_a_step_with_a_problem_stays_and_says_it_in_the_forms_words(
    owner: User, browser_for: Browser
) -> None:
    client = browser_for(owner)
    bad_model = _step(client, "model", baseModel="sdxl", customModel="not an air")
    assert bad_model.status_code == 400
    page = bad_model.content.decode()
    assert _visible_step(page) == "model" and 'value="not an air"' in page
    assert field_error(page, "customModel").startswith(
        "Custom checkpoint must be a checkpoint's full AIR"
    )

    no_data = _step(client, "data", **MODEL, dataSource="upload")
    assert no_data.status_code == 400 and _visible_step(no_data.content.decode()) == "data"

    settings = _step(client, "settings", **MODEL, loraName="", **{"params.maxTrainEpochs": "50"})
    page = settings.content.decode()
    assert settings.status_code == 400 and _visible_step(page) == "settings"
    assert field_error(page, "loraName") == "Give the LoRA a name."
    assert field_error(page, "params.maxTrainEpochs").startswith("Epochs must be between 1 and 20")
    assert 'value="50"' in page
    assert TrainingRun.objects.count() == 0


def test_a_caption_edit_is_written_into_the_zip_the_run_trains_on(
    owner: User, browser_for: Browser, _media: Path
) -> None:
    client = browser_for(owner)
    cat, dog = png(640, 640, (1, 2, 3)), png(640, 640, (3, 2, 1))
    upload = _zip({"cat.png": cat, "cat.txt": b"old words", "dog.png": dog})
    _step(client, "data", "upload", **MODEL, dataSource="upload", trainingZip=upload)
    page = client.get("/train/new?step=data").content.decode()
    first = _name(page)
    assert ">old words</textarea>" in page and 'placeholder="No caption"></textarea>' in page
    saved = _step(client, "data", "captions", **MODEL, dataSource="upload", uploadedName=first,
                  **{"caption.0": "my cat, sitting", "caption.1": "a dog"})  # fmt: skip
    assert saved["Location"] == "/train/new?step=data"
    page = client.get("/train/new?step=data").content.decode()
    edited = _name(page)
    assert edited != first and ">my cat, sitting</textarea>" in page

    data = {**MODEL, **SETTINGS, "dataSource": "upload", "uploadedName": edited}
    _step(client, "review", "start", **data)
    run = TrainingRun.objects.get()
    assert run.training_data_url.endswith(edited)
    with default_storage.open(edited, "rb") as stored, zipfile.ZipFile(stored) as archive:
        assert archive.read("cat.txt") == b"my cat, sitting"
        assert archive.read("dog.txt") == b"a dog"
        assert archive.read("cat.png") == cat and archive.read("dog.png") == dog


def test_the_summary_warns_about_what_will_train_badly(owner: User, browser_for: Browser) -> None:
    client = browser_for(owner)
    same = png(300, 200)
    upload = _zip({"a.png": same, "b.png": same, "a.txt": b"x", "clip.mp4": b"\x00" * 64})
    _step(client, "data", "upload", **MODEL, dataSource="upload", trainingZip=upload)
    page = client.get("/train/new?step=data").content.decode()
    summary = re.sub(r"\s+", " ", page)
    assert "<dt>Images</dt><dd>2</dd>" in summary and "<dt>Videos</dt><dd>1</dd>" in summary
    assert "<dt>Smallest side</dt><dd>200 px</dd>" in summary
    assert "<dt>Duplicates</dt><dd>1</dd>" in summary
    assert "Only 2 training files" in page
    assert "1 video file(s) will be ignored" in page
    assert "1 of 2 files have no caption" in page
    assert "The smallest image is 200 px" in page
    assert "1 file(s) repeat another one exactly" in page


def test_thumbnails_are_small_webps_of_my_zip_only_and_bombs_get_none(
    owner: User, other_user: User, browser_for: Browser
) -> None:
    bomb = bytearray(png(8, 8))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # the header claims 100000 x 100000
    client = browser_for(owner)
    upload = _zip({"a.png": png(800, 600), "bomb.png": bytes(bomb)})
    _step(client, "data", "upload", **MODEL, dataSource="upload", trainingZip=upload)
    page = client.get("/train/new?step=data").content.decode()
    urls = re.findall(r'<img src="(/train/data/[0-9a-f]{32}/\d+\.webp)"', page)
    assert len(urls) == 2
    thumb = client.get(urls[0])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    assert thumb.content[:4] == b"RIFF" and len(thumb.content) < 20_000
    assert client.get(urls[1]).status_code == 404  # never decoded
    assert browser_for(other_user).get(urls[0]).status_code == 404


def test_turning_ai_toolkit_on_from_the_form_keeps_the_form(
    gold_member: User, browser_for: Browser
) -> None:
    at_stage("paid")
    client = browser_for(gold_member)
    page = client.get("/train/new?baseModel=flux_dev").content.decode()
    assert 'value="ai-toolkit-on"' in page and 'id="f-engine-ai-toolkit"' not in page
    answer = _step(client, "model", "ai-toolkit-on", baseModel="flux_dev",
                   customModel="", loraName="kept name")  # fmt: skip
    assert answer["Location"] == "/train/new?step=model"
    page = client.get(answer["Location"]).content.decode()
    assert 'id="f-engine-ai-toolkit"' in page
    assert '<option value="flux_dev" selected>' in page and 'value="kept name"' in page
    assert FeaturePreference.objects.get(user=gold_member, key=catalog.AI_TOOLKIT_FEATURE).enabled


def test_a_plain_user_cannot_opt_in_from_the_form(owner: User, browser_for: Browser) -> None:
    answer = _step(browser_for(owner), "model", "ai-toolkit-on", **MODEL)
    assert answer.status_code == 302
    assert not FeaturePreference.objects.filter(user=owner).exists()


def test_a_disabled_engine_switch_says_why(gold_member: User, browser_for: Browser) -> None:
    at_stage("paid")
    client = browser_for(gold_member)
    _step(client, "model", "ai-toolkit-on", baseModel="flux_dev")
    page = _step(client, "model", "next", baseModel="flux_dev", engine="ai-toolkit")
    page = client.get("/train/new?step=model").content.decode()
    assert re.search(r'id="f-engine-rapid"[^>]*disabled', page)
    assert re.search(r'<p class="help why" id="rapid-why">Unavailable while AI Toolkit', page)


# --- presets and help, from the catalog -----------------------------------------------------------


def _all_rows() -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    for key, base in catalog.BASE_MODELS.items():
        for engine in base.engines:
            yield key, engine, page_params(key, engine)


def test_every_setting_has_a_one_line_explanation_a_range_and_a_default() -> None:
    for key, engine, rows in _all_rows():
        for row in rows:
            assert row["help"] and "\n" not in row["help"], (key, engine, row["name"])
            text = range_text(row)
            assert text.startswith(("Fixed at", "Default")) or " to " in text, text
            assert "–" not in text  # "1024–1024" is gone


def test_presets_set_values_within_each_settings_range_for_every_model_and_engine() -> None:
    for key, engine, rows in _all_rows():
        by_name = {row["name"]: row for row in rows}
        for preset in presets.PRESETS:
            for value in presets.preset_values(preset, rows):
                row = by_name[value["name"]]
                assert not row["locked"]
                if row["type"] in ("int", "float"):
                    assert row["min"] <= value["value"] <= row["max"], (key, engine, value)


def test_a_preset_applies_once_and_keeps_later_edits() -> None:
    form = RunForm.initial("sdxl")
    form.preset = "style"
    form.apply_preset()
    assert form.raw_params["maxTrainEpochs"] == "15" and form.raw_params["networkDim"] == "64"
    form.raw_params["maxTrainEpochs"] = "12"  # edited under the preset
    form.apply_preset()
    assert form.raw_params["maxTrainEpochs"] == "12"


def test_the_review_asks_for_prices_no_faster_than_the_estimate_limit_allows(
    owner: User, browser_for: Browser, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle_rate(monkeypatch, "run_estimate", "2/min")
    client = browser_for(owner)
    data = {**MODEL, **SETTINGS, "dataSource": "url", "imageCount": "12",
            "dataUrl": "https://data.example.com/cats.zip"}  # fmt: skip
    assert _step(client, "settings", **data)["Location"] == "/train/new?step=review"

    priced = [client.get("/train/new?step=review").content.decode() for _ in range(2)]
    assert all(re.search(r'id="estimate-cost">\d+ Buzz<', page) for page in priced)
    refused = client.get("/train/new?step=review").content.decode()
    assert 'id="estimate-cost">—<' in refused  # no price shown
    assert "Prices were asked for too often in the last minute" in refused
    # The page still lets them start: the run is priced when it is sent.
    started = _step(client, "review", "start", **data)
    assert started.status_code == 302 and TrainingRun.objects.filter(owner=owner).count() == 1
