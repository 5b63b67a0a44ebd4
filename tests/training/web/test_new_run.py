"""The new-run page: toggles by flag and base model, the Kohya-style -> AI Toolkit round trip with the
API's own messages, training-data zips, and the live estimate."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from rest_framework.test import APIClient

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.flags.helpers import at_stage, opt_in
from tests.training.web.helpers import field_error, form_data, make_run, throttle_rate, zip_bytes
from training.models import TrainingRun
from training.uploads import training_zips_prune

pytestmark = pytest.mark.django_db
Browser = Callable[[User], Client]
ApiFor = Callable[[User | None], APIClient]


@pytest.fixture
def ai_gold(gold_member: User) -> User:
    """A gold member at rollout stage `paid` who opted in to AI Toolkit."""
    at_stage("paid")
    opt_in(gold_member)
    return gold_member


def _page_data(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', page, re.S)
    assert match
    return dict(json.loads(match.group(1)))


def _zip(name: str = "set.zip", **kw: Any) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, zip_bytes(**kw), content_type="application/zip")


# --- what the page offers -----------------------------------------------------------------------


def test_an_opted_in_gold_member_gets_the_ai_toolkit_toggle_with_beta_badge_and_info(
    ai_gold: User, browser_for: Browser
) -> None:
    page = browser_for(ai_gold).get("/train/new?baseModel=flux_dev").content.decode()
    assert 'id="f-engine-ai-toolkit"' in page and 'class="badge badge-beta">Beta<' in page
    assert "Train using the AI Toolkit engine, offering improved quality and flexibility." in page
    assert "Note: Enabling AI Toolkit will disable Rapid Training." in page
    assert 'id="f-engine-rapid"' in page
    assert 'id="ai-toolkit-notice" hidden' in page  # only while AI Toolkit is on
    data = _page_data(page)
    flux = next(m for m in data["catalog"]["baseModels"] if m["key"] == "flux_dev")
    ai = next(e for e in flux["engines"] if e["key"] == "ai-toolkit")
    names = [row["name"] for row in ai["params"]]
    # Kohya-style names with AI Toolkit's defaults and ranges; no numRepeats / trainBatchSize.
    assert "maxTrainEpochs" in names and "unetLR" in names and "shuffleCaption" in names
    assert "epochs" not in names and "numRepeats" not in names and "trainBatchSize" not in names
    epochs = next(row for row in ai["params"] if row["name"] == "maxTrainEpochs")
    assert (epochs["default"], epochs["min"], epochs["max"]) == (5, 5, 20)


def test_hunyuan_says_why_ai_toolkit_is_not_offered(ai_gold: User, browser_for: Browser) -> None:
    page = browser_for(ai_gold).get("/train/new?baseModel=hy_720_fp8").content.decode()
    assert 'id="ai-toolkit-toggle" hidden' in page
    assert 'id="ai-toolkit-reason" hidden' not in page
    assert "AI Toolkit has no Hunyuan Video support" in page


def test_a_gold_member_who_has_not_opted_in_gets_a_hint_to_the_features_page(
    gold_member: User, browser_for: Browser
) -> None:
    at_stage("paid")
    page = browser_for(gold_member).get("/train/new").content.decode()
    assert 'id="f-engine-ai-toolkit"' not in page
    assert 'href="/settings/features?next=/train/new"' in page


def test_a_plain_user_at_stage_mods_sees_neither_toggle_nor_hint_nor_sd3(
    owner: User, browser_for: Browser
) -> None:
    at_stage("mods")
    page = browser_for(owner).get("/train/new").content.decode()
    assert 'id="f-engine-ai-toolkit"' not in page and 'id="ai-toolkit-hint"' not in page
    assert "SD 3.5" not in page
    assert '<optgroup label="Flux.1">' in page


# --- submission, mapping and messages -------------------------------------------------------------


def test_ai_toolkit_submission_maps_kohya_names_and_opens_the_run(
    ai_gold: User, browser_for: Browser
) -> None:
    data = form_data(
        baseModel="flux_dev",
        engine="ai-toolkit",
        **{
            "params.maxTrainEpochs": "6",
            "params.unetLR": "0.0002",
            "params.shuffleCaption": ["false", "true"],  # hidden input + ticked checkbox
            "params.lrScheduler": "linear",
            "params.numRepeats": "7",  # a stale hidden row: AI Toolkit has none, so it is dropped
        },
    )
    response = browser_for(ai_gold).post("/train/new", data)
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}"
    assert run.engine == "ai-toolkit" and (run.ecosystem, run.model_variant) == ("flux1", "dev")
    assert run.params["epochs"] == 6 and run.params["lr"] == 0.0002
    assert run.params["shuffleTokens"] is True and run.params["lrScheduler"] == "linear"
    assert "maxTrainEpochs" not in run.params and "numRepeats" not in run.params


def test_an_invalid_value_shows_the_apis_message_next_to_its_kohya_field(
    ai_gold: User, browser_for: Browser, client_for: ApiFor
) -> None:
    data = form_data(baseModel="flux_dev", engine="ai-toolkit", **{"params.maxTrainEpochs": "99"})
    response = browser_for(ai_gold).post("/train/new", data)
    assert response.status_code == 400
    page = response.content.decode()
    api = client_for(ai_gold).post(
        "/api/v1/training-runs/",
        {
            "baseModel": "flux_dev",
            "engine": "ai-toolkit",
            "loraName": "my-style",
            "trainingData": {"url": "https://data.example.com/set.zip", "imageCount": 12},
            "samplePrompts": ["a portrait in my style"],
            "params": {"epochs": 99},
        },
        format="json",
    )
    api_message = {e["field"]: e["message"] for e in api.json()["errors"]}["params.epochs"]
    # The API keeps its field names; the page says the form's label (#18 item 6).
    assert api_message == "epochs must be between 5 and 20 for Flux.1 Dev with AI Toolkit; got 99."
    assert field_error(page, "params.maxTrainEpochs") == (
        "Epochs must be between 5 and 20 for Flux.1 Dev with AI Toolkit; got 99."
    )
    assert 'id="error-summary"' in page and 'href="#f-params-maxTrainEpochs"' in page
    assert 'value="99"' in page  # what the user typed is kept
    assert TrainingRun.objects.count() == 0


def test_kohya_errors_and_missing_fields_use_the_api_messages(
    owner: User, browser_for: Browser
) -> None:
    data = form_data(loraName="", imageCount="0", **{"params.trainBatchSize": "abc"})
    page = browser_for(owner).post("/train/new", data).content.decode()
    assert field_error(page, "loraName") == "This field may not be blank."
    assert field_error(page, "imageCount") == "Ensure this value is greater than or equal to 1."


def test_param_errors_name_their_field(owner: User, browser_for: Browser) -> None:
    data = form_data(**{"params.trainBatchSize": "abc", "params.maxTrainEpochs": "2.5"})
    page = browser_for(owner).post("/train/new", data).content.decode()
    assert field_error(page, "params.trainBatchSize") == "Train batch size must be a whole number."
    assert field_error(page, "params.maxTrainEpochs") == "Epochs must be a whole number."
    assert "trainBatchSize" not in re.sub(
        r'(name|id|href|data-name|for|aria-describedby)="[^"]*"|<script.*?</script>',
        "",
        page,
        flags=re.S,
    )


def test_a_hand_made_ai_toolkit_post_from_a_plain_user_is_refused_with_403(
    owner: User, browser_for: Browser
) -> None:
    at_stage("mods")
    data = form_data(baseModel="flux_dev", engine="ai-toolkit")
    response = browser_for(owner).post("/train/new", data)
    assert response.status_code == 403
    message = field_error(response.content.decode(), "engine")
    assert message.startswith("AI Toolkit training is not enabled for your account.")
    assert TrainingRun.objects.count() == 0


def test_rapid_and_ai_toolkit_together_are_refused(ai_gold: User, browser_for: Browser) -> None:
    data = form_data(baseModel="flux_dev", engine=["rapid", "ai-toolkit"])
    page = browser_for(ai_gold).post("/train/new", data).content.decode()
    assert "cannot both be on" in field_error(page, "engine")
    assert TrainingRun.objects.count() == 0


def test_the_active_run_cap_is_explained_at_the_top(owner: User, browser_for: Browser) -> None:
    with override_settings(TRAINING_MAX_ACTIVE_RUNS=1):
        client = browser_for(owner)
        assert client.post("/train/new", form_data()).status_code == 302
        response = client.post("/train/new", form_data())
    assert response.status_code == 429
    assert "You already have 1 runs pending or training" in response.content.decode()
    assert TrainingRun.objects.count() == 1


def test_no_training_data_is_asked_for(owner: User, browser_for: Browser) -> None:
    data = form_data(dataSource="upload", dataUrl="", imageCount="")
    page = browser_for(owner).post("/train/new", data).content.decode()
    assert field_error(page, "trainingZip").startswith("Add your training data")


# --- training-data zips ---------------------------------------------------------------------------


def test_an_uploaded_zip_is_stored_per_user_counted_and_given_a_public_url(
    owner: User, browser_for: Browser, _media: Path
) -> None:
    upload = _zip(names=["a.png", "sub/b.JPG", "c.webp", "a.txt", "__MACOSX/._a.png", ".x.png"])
    response = browser_for(owner).post(
        "/train/upload", {"trainingZip": upload, "baseModel": "sdxl"}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["imageCount"] == 3
    assert re.fullmatch(rf"training-data/{owner.pk}/[0-9a-f]{{32}}\.zip", body["name"])
    assert body["url"] == f"http://127.0.0.1:8000/media/{body['name']}"
    assert (_media / body["name"]).is_file()


def test_a_form_post_with_a_zip_creates_the_run_with_its_url_and_count(
    owner: User, browser_for: Browser
) -> None:
    data = form_data(dataSource="upload", dataUrl="", imageCount="")
    data["trainingZip"] = _zip(names=["1.png", "2.png", "3.png"])
    response = browser_for(owner).post("/train/new", data)
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.image_count == 3
    assert run.training_data_url.startswith(
        f"http://127.0.0.1:8000/media/training-data/{owner.pk}/"
    )


def test_a_zip_uploaded_earlier_is_used_by_name_but_only_its_owners(
    owner: User, other_user: User, browser_for: Browser
) -> None:
    name = (
        browser_for(owner)
        .post("/train/upload", {"trainingZip": _zip(names=["1.png"])})
        .json()["name"]
    )
    data = form_data(dataSource="upload", uploadedName=name)
    page = browser_for(other_user).post("/train/new", data).content.decode()
    assert field_error(page, "trainingZip") == (
        "The uploaded zip is no longer available; upload it again."
    )
    assert browser_for(owner).post("/train/new", data).status_code == 302


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile("set.zip", b"not a zip at all", content_type="application/zip"),
            "That file is not a zip archive. Upload a .zip of your training images.",
        ),
        (
            SimpleUploadedFile("set.zip", zip_bytes(["notes.txt", "clip.mp4"])),
            "The zip has no training files (png, jpg, jpeg, webp). Add your images and upload "
            "it again.",
        ),
        (
            SimpleUploadedFile("set.zip", zip_bytes([f"{i}.png" for i in range(1001)], b"x")),
            "The zip has 1001 training files; the limit is 1000. Remove some and upload it again.",
        ),
    ],
    ids=["not-a-zip", "no-images", "too-many-files"],
)
def test_bad_zips_are_refused_with_a_clear_message(
    owner: User, browser_for: Browser, upload: SimpleUploadedFile, message: str
) -> None:
    client = browser_for(owner)
    response = client.post("/train/upload", {"trainingZip": upload, "baseModel": "sdxl"})
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "field": "trainingData",
        "input": "trainingZip",
        "code": response.json()["errors"][0]["code"],
        "message": message,
    }
    upload.seek(0)
    data = form_data(dataSource="upload", trainingZip=upload)
    page = client.post("/train/new", data).content.decode()
    assert field_error(page, "trainingZip") == message
    assert TrainingRun.objects.count() == 0


def test_a_zip_over_the_size_limit_is_refused(owner: User, browser_for: Browser) -> None:
    with override_settings(TRAINING_UPLOAD_MAX_BYTES=100):
        response = browser_for(owner).post("/train/upload", {"trainingZip": _zip(names=["1.png"])})
    assert response.status_code == 413
    assert response.json()["message"].startswith("The zip is larger than the limit of 100\xa0bytes")


def test_uploading_too_often_answers_429_with_a_message_the_page_shows(
    owner: User, browser_for: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttle_rate(monkeypatch, "training_upload", "2/hour")
    client = browser_for(owner)
    codes = [
        client.post("/train/upload", {"trainingZip": _zip(names=["1.png"])}).status_code
        for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    refused = client.post("/train/upload", {"trainingZip": _zip(names=["1.png"])})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 60
    assert "throttled" in refused.json()["message"].lower()


def _age(media: Path, name: str, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(media / name, (then, then))


def test_abandoned_uploads_are_deleted_and_those_runs_use_are_kept(
    owner: User, other_user: User, browser_for: Browser, _media: Path
) -> None:
    def upload(user: User) -> str:
        response = browser_for(user).post("/train/upload", {"trainingZip": _zip(names=["1.png"])})
        assert response.status_code == 201
        return str(response.json()["name"])

    used, abandoned, fresh, others = upload(owner), upload(owner), upload(owner), upload(other_user)
    make_run(owner, training_data_url=f"https://old-host.example/media/{used}")
    for name in (used, abandoned, others):
        _age(_media, name, hours=30)
    _age(_media, fresh, hours=2)

    assert training_zips_prune(older_than=timedelta(hours=24)) == 2
    assert (_media / used).is_file() and (_media / fresh).is_file()
    assert not (_media / abandoned).exists() and not (_media / others).exists()
    # The page's saved name now says so, instead of pointing the run at a missing file.
    data = form_data(dataSource="upload", uploadedName=abandoned)
    page = browser_for(owner).post("/train/new", data).content.decode()
    assert "The uploaded zip is no longer available" in page


def test_pruning_with_no_uploads_at_all_deletes_nothing(_media: Path) -> None:
    assert training_zips_prune(older_than=timedelta(hours=24)) == 0


def test_videos_count_for_video_models_only(owner: User, browser_for: Browser) -> None:
    client = browser_for(owner)
    videos = zip_bytes(["a.mp4", "b.webm", "c.png"])
    wan = client.post(
        "/train/upload",
        {"trainingZip": SimpleUploadedFile("v.zip", videos), "baseModel": "wan_2_1_t2v_14b"},
    )
    sdxl = client.post(
        "/train/upload", {"trainingZip": SimpleUploadedFile("v.zip", videos), "baseModel": "sdxl"}
    )
    assert (wan.json()["imageCount"], sdxl.json()["imageCount"]) == (3, 1)


# --- the live estimate ----------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer("127.0.0.1", 0, EmulatorConfig(queue_seconds=0.1))
    server.start()
    with override_settings(ORCHESTRATOR_URL=server.url):
        yield server
    server.stop()


def test_the_estimate_waits_for_training_data(owner: User, browser_for: Browser) -> None:
    data = form_data(dataSource="upload", dataUrl="", imageCount="", loraName="")
    response = browser_for(owner).post("/train/estimate", data)
    assert response.status_code == 200
    assert response.json() == {
        "estimate": None,
        "message": "Add your training data to see the price.",
    }


def test_the_estimate_reports_errors_with_the_page_input_they_belong_to(
    ai_gold: User, browser_for: Browser
) -> None:
    data = form_data(baseModel="flux_dev", engine="ai-toolkit", **{"params.maxTrainEpochs": "99"})
    response = browser_for(ai_gold).post("/train/estimate", data)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["field"], error["input"]) == ("params.epochs", "params.maxTrainEpochs")
    assert (
        error["message"]
        == "Epochs must be between 5 and 20 for Flux.1 Dev with AI Toolkit; got 99."
    )


def test_the_estimate_prices_the_run_with_the_orchestrator(
    ai_gold: User, browser_for: Browser, emulator: EmulatorServer
) -> None:
    data = form_data(baseModel="flux_dev", engine="ai-toolkit")
    response = browser_for(ai_gold).post("/train/estimate", data)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (
        isinstance(body["estimate"]["cost"]["total"], int) and body["estimate"]["cost"]["total"] > 0
    )
    assert body["engine"] == "ai-toolkit" and body["imageCount"] == 12
    # The quoted price travels with the run created from the same form.
    browser_for(ai_gold).post("/train/new", data)
    assert TrainingRun.objects.get().estimated_cost == body["estimate"]["cost"]["total"]
