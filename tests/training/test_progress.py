"""Elapsed time, ETA and conditional GETs on the run resources (#19.1)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import run_body
from training.models import RunStatus, TrainingRun

pytestmark = pytest.mark.django_db


def epoch(n: int) -> dict[str, object]:
    return {"epochNumber": n, "modelName": None, "modelUrl": None, "modelSize": None,
            "sampleImages": []}  # fmt: skip


def test_a_training_run_shows_elapsed_time_and_an_eta_from_its_pace(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    api = client_for(owner)
    run_id = api.post("/api/v1/training-runs/", run_body(params={"maxTrainEpochs": 4}),
                      format="json").json()["id"]  # fmt: skip
    now = timezone.now()
    TrainingRun.objects.filter(pk=run_id).update(
        status=RunStatus.PROCESSING,
        created_at=now - timedelta(seconds=300),
        started_at=now - timedelta(seconds=200),
        outputs={"epochs": [epoch(1), epoch(2)]},
    )
    shown = api.get(f"/api/v1/training-runs/{run_id}/").json()
    assert 299 <= shown["elapsedSeconds"] <= 310
    assert shown["eta"]["basis"] == "pace"
    # 2 of 4 epochs in 200 s: about 200 s to go
    left = (timezone.datetime.fromisoformat(shown["eta"]["at"]) - timezone.now()).total_seconds()
    assert 180 <= left <= 210
    assert shown["eta"]["computedAt"]


def test_before_the_first_epoch_the_eta_is_the_orchestrators_and_a_finished_run_has_none(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    api = client_for(owner)
    run_id = api.post("/api/v1/training-runs/", run_body(), format="json").json()["id"]
    TrainingRun.objects.filter(pk=run_id).update(
        status=RunStatus.SUBMITTED, outputs={"etaAt": "2030-01-01T00:00:00Z"}
    )
    eta = api.get(f"/api/v1/training-runs/{run_id}/").json()["eta"]
    assert eta["at"] == "2030-01-01T00:00:00Z" and eta["basis"] == "orchestrator"
    done = timezone.now()
    TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED, completed_at=done)
    shown = api.get(f"/api/v1/training-runs/{run_id}/").json()
    assert shown["eta"]["at"] is None
    elapsed = shown["elapsedSeconds"]
    assert api.get(f"/api/v1/training-runs/{run_id}/").json()["elapsedSeconds"] == elapsed


def test_an_unchanged_run_and_list_answer_304_to_their_etag_and_a_change_answers_200(
    client_for: Callable[[User | None], APIClient], owner: User
) -> None:
    api = client_for(owner)
    run_id = api.post("/api/v1/training-runs/", run_body(), format="json").json()["id"]
    for url in (f"/api/v1/training-runs/{run_id}/", "/api/v1/training-runs/"):
        first = api.get(url)
        tag = first["ETag"]
        assert tag.startswith('W/"')
        again = api.get(url, HTTP_IF_NONE_MATCH=tag)
        assert again.status_code == 304 and again.content == b""
    detail_tag = api.get(f"/api/v1/training-runs/{run_id}/")["ETag"]
    TrainingRun.objects.filter(pk=run_id).update(outputs={"epochs": [epoch(1)]})
    changed = api.get(f"/api/v1/training-runs/{run_id}/", HTTP_IF_NONE_MATCH=detail_tag)
    assert changed.status_code == 200 and len(changed.json()["epochs"]) == 1
