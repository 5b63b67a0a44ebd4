"""The pages through Django's test client: login, ownership, CSRF, runs, cancel/retry, features."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.test import Client

from flags.gates import is_feature_active
from tests.flags.helpers import AI, at_stage, opt_in
from tests.training.web.helpers import form_data, make_run
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
Browser = Callable[[User], Client]


def test_every_page_needs_a_login() -> None:
    anonymous = Client()
    for url in ("/train/new", "/runs/", f"/runs/{uuid4()}", "/settings/features"):
        response = anonymous.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    for url in (f"/runs/{uuid4()}/cancel", f"/runs/{uuid4()}/retry", "/train/new"):
        response = anonymous.post(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    # The pages' JSON endpoints answer instead of redirecting.
    assert anonymous.post("/train/estimate", {}).status_code == 403
    assert anonymous.post("/train/upload", {}).status_code == 403


def test_the_root_sends_visitors_to_log_in_and_members_to_their_runs(owner: User) -> None:
    assert Client().get("/")["Location"] == "/accounts/login/"
    client = Client()
    client.force_login(owner)
    assert client.get("/")["Location"] == "/runs/"


def test_logging_in_lands_on_my_runs_and_the_bar_shows_user_and_tier(gold_member: User) -> None:
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in page and 'for="id_username"' in page
    response = client.post("/accounts/login/", {"username": "goldie", "password": "pw-goldie"})
    assert response["Location"] == "/runs/"
    page = client.get("/runs/").content.decode()
    assert "goldie" in page and 'class="tier tier-gold"' in page
    assert "Moderator console" not in page and ">Admin<" not in page
    # Log out is a POST (Django 5); a GET is refused.
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"


def test_moderators_and_staff_get_their_links(mod: User, browser_for: Browser) -> None:
    mod.is_staff = True
    mod.save()
    page = browser_for(mod).get("/runs/").content.decode()
    assert 'href="/mod/training/"' in page and 'href="/admin/"' in page
    assert "tier-free" in page


def test_another_users_run_is_a_404_and_cannot_be_canceled_or_retried(
    owner: User, other_user: User, browser_for: Browser
) -> None:
    run = make_run(owner, status="failed")
    intruder = browser_for(other_user)
    assert intruder.get(f"/runs/{run.pk}").status_code == 404
    assert intruder.post(f"/runs/{run.pk}/cancel").status_code == 404
    assert intruder.post(f"/runs/{run.pk}/retry").status_code == 404
    assert str(run.pk) not in intruder.get("/runs/").content.decode()
    assert TrainingRun.objects.count() == 1


def test_the_run_page_shows_parameters_timeline_payload_epochs_and_samples(
    owner: User, browser_for: Browser
) -> None:
    run = make_run(
        owner,
        status="processing",
        outputs={
            "epochs": [
                {
                    "epochNumber": 1,
                    "modelUrl": "https://blobs.example.com/e1.safetensors",
                    "modelSize": 2048,
                    "sampleImages": ["https://blobs.example.com/e1-0.png"],
                }
            ]
        },
    )
    run.events.create(kind="created", to_status="pending")
    page = browser_for(owner).get(f"/runs/{run.pk}").content.decode()
    assert "1 / 5 epochs" in page
    assert 'href="https://blobs.example.com/e1.safetensors"' in page
    assert (
        '<img src="https://blobs.example.com/e1-0.png" alt="Epoch 1: ' in page
    )  # its prompt follows
    assert "<summary>Orchestrator payload</summary>" in page
    assert "imageResourceTraining" in page  # the exact body, from training.payloads
    assert "<code>Epochs</code>" in page and "maxTrainEpochs</code>" not in page  # the form's label
    assert 'id="cancel-form"' in page and 'id="retry-form" hidden' in page


def test_my_runs_shows_status_engine_base_model_progress_and_cost(
    owner: User, browser_for: Browser
) -> None:
    make_run(owner, lora_name="first", status="succeeded", charged_cost=1200)
    make_run(
        owner,
        lora_name="second",
        engine="ai-toolkit",
        base_model="flux_dev",
        status="processing",
        params={"epochs": 6},
        outputs={"epochs": [{"epochNumber": 1}, {"epochNumber": 2}]},
        estimated_cost=2000,
    )
    page = browser_for(owner).get("/runs/").content.decode()
    assert page.index(">second<") < page.index(">first<")  # newest first
    assert 'class="status status-processing"' in page and 'class="status status-succeeded"' in page
    assert "AI Toolkit" in page and "Flux.1 Dev" in page
    assert "2 / 6 epochs" in page
    assert "2,000 Buzz (est.)" in page and "1,200 Buzz" in page


def test_cancel_and_retry_from_the_run_page(owner: User, browser_for: Browser) -> None:
    client = browser_for(owner)
    run = make_run(owner, status="pending")
    response = client.post(f"/runs/{run.pk}/cancel", follow=True)
    assert "The run was canceled." in response.content.decode()
    run.refresh_from_db()
    assert run.status == "canceled"
    again = client.post(f"/runs/{run.pk}/cancel", follow=True).content.decode()
    assert "The run has already canceled; there is nothing to cancel." in again
    retried = client.post(f"/runs/{run.pk}/retry")
    new_run = TrainingRun.objects.exclude(pk=run.pk).get()
    assert retried["Location"] == f"/runs/{new_run.pk}"
    assert new_run.retried_from == run and new_run.status == "pending"


def test_retrying_a_succeeded_run_explains_why_not(owner: User, browser_for: Browser) -> None:
    run = make_run(owner, status="succeeded")
    page = browser_for(owner).post(f"/runs/{run.pk}/retry", follow=True).content.decode()
    assert "Only failed, expired or canceled runs can be retried" in page


def test_forms_and_page_endpoints_refuse_a_post_without_a_csrf_token(owner: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    run = make_run(owner, status="pending")
    for url in ("/train/new", "/train/estimate", "/train/upload", "/settings/features",
                f"/runs/{run.pk}/cancel", f"/runs/{run.pk}/retry", "/accounts/logout/"):  # fmt: skip
        assert client.post(url, form_data()).status_code == 403, url
    run.refresh_from_db()
    assert run.status == "pending" and TrainingRun.objects.count() == 1
    # With the token the page carries, the same POST goes through.
    client.get("/train/new")
    token = client.cookies["csrftoken"].value
    response = client.post("/train/new", {**form_data(), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    estimate = client.post("/train/estimate", form_data(), HTTP_X_CSRFTOKEN=token)
    assert estimate.status_code != 403


def test_the_features_page_turns_a_preference_on_and_off(
    gold_member: User, browser_for: Browser
) -> None:
    at_stage("paid")
    client = browser_for(gold_member)
    page = client.get("/settings/features").content.decode()
    assert "AI Toolkit Training" in page and "Turn on AI Toolkit Training" in page
    response = client.post(
        "/settings/features", {"key": AI, "enabled": "on", "next": "/train/new"}, follow=True
    )
    body = response.content.decode()
    assert "AI Toolkit Training is now on." in body and "Turn off AI Toolkit Training" in body
    assert 'href="/train/new"' in body  # back to where the hint came from
    assert is_feature_active(gold_member, AI)
    client.post("/settings/features", {"key": AI})
    assert not is_feature_active(gold_member, AI)


def test_the_features_page_offers_nothing_a_user_may_not_have(
    owner: User, browser_for: Browser
) -> None:
    at_stage("paid")
    client = browser_for(owner)
    assert "No optional features are offered" in client.get("/settings/features").content.decode()
    response = client.post("/settings/features", {"key": AI, "enabled": "on"}, follow=True)
    assert "not available to you yet" in response.content.decode()
    assert not is_feature_active(owner, AI)


def test_an_unsafe_next_is_ignored(gold_member: User, browser_for: Browser) -> None:
    at_stage("paid")
    opt_in(gold_member)
    response = browser_for(gold_member).post(
        "/settings/features", {"key": AI, "enabled": "on", "next": "https://evil.example.com/"}
    )
    assert response["Location"] == "/settings/features"
