"""Hostile input is a 400 in the usual error shape, never a 500: deep JSON nesting, NUL bytes in
query strings, headers and bodies, forged cursors. First the repros, then a sweep over every URL
pattern, logged in or not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.conftest import make_user, run_body
from training.models import TrainingRun

DEEP = "[" * 100_000
FORGED_CURSOR = "cD1ub3RhZGF0ZQ=="  # base64 of "p=notadate"


def nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def assert_error_shape(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.django_db
def test_a_hundred_thousand_brackets_at_the_token_endpoint_are_a_400() -> None:
    response = APIClient().post("/api/v1/auth/token/", DEEP, content_type="application/json")
    body = assert_error_shape(response)
    assert body["code"] == "parse_error"
    assert "nested deeper than 32 levels" in body["message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/training-runs/"),
        ("post", "/api/v1/training-runs/preview/"),
        ("post", "/api/v1/training-runs/estimate/"),
        ("put", "/api/v1/features/aiToolkitTraining/"),
    ],
)
def test_950_levels_of_nesting_are_a_400_on_every_write(
    owner: User, client_for: Any, method: str, url: str
) -> None:
    body = run_body(params={"networkDim": nested(950)})
    if "features" in url:
        body = {"enabled": nested(950)}
    response = getattr(client_for(owner), method)(url, body, format="json")
    assert "nested deeper" in assert_error_shape(response)["message"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_a_nul_character_in_a_json_string_is_a_400(owner: User, client_for: Any) -> None:
    response = client_for(owner).post(
        "/api/v1/training-runs/", run_body(loraName="my\u0000style"), format="json"
    )
    assert "NUL" in assert_error_shape(response)["message"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["status=a%00b", "engine=%00", "cursor=%00"])
def test_nul_bytes_in_the_query_string_are_a_400(owner: User, client_for: Any, query: str) -> None:
    response = client_for(owner).get(f"/api/v1/training-runs/?{query}")
    body = assert_error_shape(response)
    assert body["code"] == "nul_byte"
    assert body["message"] == "The query string contains a NUL byte."


@pytest.mark.django_db
def test_a_forged_cursor_is_a_400_naming_the_cursor(owner: User, client_for: Any) -> None:
    response = client_for(owner).get(f"/api/v1/training-runs/?cursor={FORGED_CURSOR}")
    body = assert_error_shape(response)
    assert body["errors"][0]["field"] == "cursor"


@pytest.mark.django_db
def test_a_cursor_from_a_listing_still_pages(owner: User, client_for: Any) -> None:
    api = client_for(owner)
    for i in range(3):
        assert (
            api.post(
                "/api/v1/training-runs/", run_body(loraName=f"r{i}"), format="json"
            ).status_code
            == 201
        )
    first = api.get("/api/v1/training-runs/?pageSize=2").json()
    second = api.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1


@pytest.mark.django_db
def test_an_idempotency_key_with_a_nul_byte_is_a_400(owner: User, client_for: Any) -> None:
    response = client_for(owner).post(
        "/api/v1/training-runs/", run_body(), format="json", HTTP_IDEMPOTENCY_KEY="key\x00one"
    )
    body = assert_error_shape(response)
    assert body["message"] == "The Idempotency-Key header contains a NUL byte."
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_a_session_cookie_with_a_nul_byte_is_a_400_not_a_database_error(owner: User) -> None:
    response = Client().get("/runs/", HTTP_COOKIE="sessionid=abc\x00def")
    assert response.status_code == 400
    assert b"The Cookie header contains a NUL byte." in response.content


@pytest.mark.django_db
def test_a_nul_byte_in_a_page_form_is_a_styled_400(owner: User) -> None:
    client = Client()
    client.force_login(owner)
    response = client.post("/train/new", "loraName=a%00b&baseModel=sdxl",
                           content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert response.status_code == 400
    assert b"The form contains a NUL byte." in response.content
    assert b"<h1>We couldn" in response.content


# --- the sweep --------------------------------------------------------------------------------


def _patterns(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _patterns(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def concrete(pattern: str, run_id: uuid.UUID, user_id: int) -> str | None:
    if pattern.startswith("^") or "(?P<" in pattern:
        # Regex routes: static/media files and admin's app index and catch-all.
        if "app_label" in pattern:
            return "/admin/training/"
        return None
    path = pattern
    for token, value in {
        "<uuid:run_id>": str(run_id),
        "<int:experiment_id>": "1",
        "<int:override_id>": "1",
        "<str:key>": "aiToolkitTraining",
        "<int:index>": "0",
        "<path:content_type_id>": "1",
        "<path:object_id>": str(user_id),
        "<id>": str(user_id),
    }.items():
        path = path.replace(token, value)
    assert "<" not in path, f"add a value for {pattern} to the sweep"
    return "/" + path


ATTACKS: list[tuple[str, dict[str, Any]]] = [
    ("get", {"QUERY_STRING": f"cursor={FORGED_CURSOR}"}),
    ("get", {"QUERY_STRING": "status=a%00b&engine=%00&q=%00"}),
    ("get", {"HTTP_IDEMPOTENCY_KEY": "a\x00b"}),
    ("post", {"data": DEEP, "content_type": "application/json"}),
    ("post", {"data": json.dumps(nested(950)), "content_type": "application/json"}),
    ("post", {"data": '{"loraName": "a\\u0000b", "url": "\\u0000"}', "content_type": "application/json"}),
    ("post", {"data": "name=a%00b", "content_type": "application/x-www-form-urlencoded"}),
    ("put", {"data": DEEP, "content_type": "application/json"}),
    ("patch", {"data": json.dumps(nested(950)), "content_type": "application/json"}),
]  # fmt: skip


@pytest.mark.django_db
def test_no_url_answers_hostile_input_with_a_server_error(owner: User, client_for: Any) -> None:
    root = make_user("root", is_staff=True, is_superuser=True)
    run = TrainingRun.objects.create(
        owner=owner, base_model="sdxl", engine="kohya", lora_name="r",
        training_data_url="https://data.example.com/set.zip", image_count=10,
    )  # fmt: skip
    anonymous = Client()
    by_session = Client()
    by_session.force_login(owner)
    superuser = Client()
    superuser.force_login(root)
    clients = {"anonymous": anonymous, "owner-token": client_for(owner), "owner": by_session,
               "superuser": superuser}  # fmt: skip
    paths = sorted(
        {
            p
            for p in (concrete(x, run.pk, owner.pk) for x in _patterns(get_resolver().url_patterns))
            if p
        }
    )
    assert "/api/v1/training-runs/" in paths and "/admin/auth/user/" in paths
    failures = []
    for path in paths:
        for who, client in clients.items():
            for method, kwargs in ATTACKS:
                kwargs = dict(kwargs)
                query = kwargs.pop("QUERY_STRING", "")
                target = f"{path}?{query}" if query else path
                response = getattr(client, method)(target, **kwargs)
                if path == "/healthz" and response.status_code == 503:
                    continue  # the health answer (no orchestrator here), not a parse failure
                if response.status_code >= 500:
                    failures.append(f"{who} {method.upper()} {target}: {response.status_code}")
                elif response.status_code == 400 and path.startswith("/api/"):
                    body = response.json()
                    if set(body) != {"code", "message", "errors"}:
                        failures.append(f"{who} {method.upper()} {target}: 400 shaped {body}")
    assert failures == []
