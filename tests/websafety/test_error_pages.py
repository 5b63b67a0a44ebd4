"""What an error shows: the DEBUG page of `make run` never shows a credential, and with DEBUG off
the 400/403/404/500 pages are the site's own, styled, with a way back."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.views.debug import technical_500_response

# Built at run time: the debug page quotes this file's source, which must not hold the values.
SECRETS = {
    name: f"{name}-{8800 + i}"
    for i, name in enumerate(["db-pass", "redis-pass", "orch-token", "api-token"])
}
DB_URL = f"postgres://trainer:{SECRETS['db-pass']}@db.example.net:5432/training"
REDIS = f"redis://:{SECRETS['redis-pass']}@cache.example.net:6379/0"


def debug_page(settings: Any) -> str:
    settings.DEBUG = True
    settings.REDIS_URL = REDIS
    settings.CELERY_BROKER_URL = REDIS
    settings.RESULTS_STORE = {"default": {"LOCATION": REDIS}}  # nested, under an innocent name
    settings.ORCHESTRATOR_TOKEN = SECRETS["orch-token"]
    request = RequestFactory().get(
        "/runs/", DATABASE_URL=DB_URL, REDIS_URL=REDIS,  # runserver puts os.environ in META
        HTTP_AUTHORIZATION=f"Token {SECRETS['api-token']}",
    )  # fmt: skip
    connection = f"{DB_URL}?sslmode=require"  # a local variable in the failing frame
    try:
        raise RuntimeError(f"could not connect using {connection}")
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    return response.content.decode()


@pytest.mark.parametrize("name", list(SECRETS))
def test_the_debug_page_shows_no_credential(settings: Any, name: str) -> None:
    page = debug_page(settings)
    assert "RuntimeError" in page  # it is the real debug page
    assert SECRETS[name] not in page


def test_the_debug_page_keeps_hosts_readable(settings: Any) -> None:
    page = debug_page(settings)
    assert "cache.example.net" in page
    assert "db.example.net" in page


@pytest.mark.django_db
def test_an_unknown_page_is_the_sites_styled_404_with_debug_off(settings: Any, owner: User) -> None:
    settings.DEBUG = False
    client = Client()
    client.force_login(owner)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "We couldn’t find that page" in html or "We couldn't find that page" in html
    assert "css/app.css" in html and "favicon.svg" in html
    assert 'class="nav-links"' in html  # the site's frame, logged in


@pytest.mark.django_db
def test_another_users_run_page_is_the_styled_404(
    settings: Any, owner: User, other_user: User
) -> None:
    import uuid

    settings.DEBUG = False
    client = Client()
    client.force_login(other_user)
    response = client.get(f"/runs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "We couldn" in response.content.decode()


@pytest.mark.django_db
def test_a_moderator_page_refused_to_a_plain_user_is_the_styled_403(
    settings: Any, owner: User
) -> None:
    settings.DEBUG = False
    client = Client()
    client.force_login(owner)
    response = client.get("/mod/experiments/")
    assert response.status_code == 403
    assert "have access to this page" in response.content.decode()


def test_the_500_page_renders_without_a_request(settings: Any) -> None:
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html and "css/app.css" in html


@pytest.mark.django_db
def test_a_stale_form_is_the_styled_csrf_403(settings: Any, owner: User) -> None:
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/train/new", {"loraName": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


@pytest.mark.django_db
def test_the_favicon_is_served_and_linked() -> None:
    response = Client().get("/accounts/login/")
    assert 'rel="icon"' in response.content.decode()
    assert Client().get("/favicon.ico").status_code in (301, 302)
