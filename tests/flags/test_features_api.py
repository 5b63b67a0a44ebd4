"""GET /api/v1/features/ and PUT /api/v1/features/{key}/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from flags.models import FeaturePreference
from flags.registry import SD3_TRAINING
from tests.flags.helpers import AI, PERSONAS, at_stage, opt_in
from tests.flags.test_gates import STAGE_AUDIENCE

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/features/"
AI_URL = f"/api/v1/features/{AI}/"
Client = Callable[[Any], APIClient]


@pytest.mark.parametrize(
    ("stage", "name"),
    [
        pytest.param(stage, name, id=f"{name}_at_{stage}")
        for stage in STAGE_AUDIENCE
        for name in PERSONAS
        if name != "anonymous"
    ],
)
def test_the_features_list_offers_ai_toolkit_to_whom_the_stage_admits(
    api_client: Client, persona: Callable[[str], Any], stage: str, name: str
) -> None:
    at_stage(stage)
    user = persona(name)
    offered = name in STAGE_AUDIENCE[stage]

    body = api_client(user).get(LIST_URL).json()
    toggles = {t["key"]: t for t in body["toggleable"]}
    assert (AI in toggles) is offered
    assert AI not in body["active"]  # nobody has opted in yet
    if offered:
        assert toggles[AI] == {
            "key": AI,
            "displayName": "AI Toolkit Training",
            "description": "Enable AI Toolkit as a training engine option",
            "enabled": False,
        }

    opt_in(user)
    body = api_client(user).get(LIST_URL).json()
    assert (AI in body["active"]) is offered
    if offered:
        assert {t["key"]: t["enabled"] for t in body["toggleable"]}[AI] is True


def test_anonymous_callers_must_log_in(api_client: Client, anonymous: Any) -> None:
    response = api_client(anonymous).get(LIST_URL)
    assert response.status_code == 401
    assert api_client(anonymous).put(AI_URL, {"enabled": True}, format="json").status_code == 401


def test_a_moderator_sees_sd3_active_but_not_among_the_toggles(
    api_client: Client, moderator: Any
) -> None:
    body = api_client(moderator).get(LIST_URL).json()
    assert body["active"] == [SD3_TRAINING]
    assert [t["key"] for t in body["toggleable"]] == [AI]


def test_a_gold_member_at_stage_paid_opts_in_and_out(api_client: Client, gold_member: Any) -> None:
    at_stage("paid")
    client = api_client(gold_member)

    response = client.put(AI_URL, {"enabled": True}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "key": AI,
        "displayName": "AI Toolkit Training",
        "description": "Enable AI Toolkit as a training engine option",
        "enabled": True,
        "active": True,
    }
    assert client.get(LIST_URL).json()["active"] == [AI]

    response = client.put(AI_URL, {"enabled": False}, format="json")
    assert response.json()["active"] is False
    assert client.get(LIST_URL).json()["active"] == []
    assert FeaturePreference.objects.get(user=gold_member, key=AI).enabled is False


def test_a_plain_user_cannot_opt_into_a_feature_not_offered_to_them(
    api_client: Client, plain_user: Any
) -> None:
    at_stage("paid")
    response = api_client(plain_user).put(AI_URL, {"enabled": True}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "feature_not_available"
    assert body["message"] == "AI Toolkit Training is not available to you yet."
    assert not FeaturePreference.objects.exists()


def test_a_feature_that_is_not_toggleable_cannot_be_switched(
    api_client: Client, moderator: Any
) -> None:
    response = api_client(moderator).put(
        f"/api/v1/features/{SD3_TRAINING}/", {"enabled": False}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "feature_not_toggleable"
    assert "cannot be switched on or off" in response.json()["message"]


def test_an_unknown_feature_is_404(api_client: Client, moderator: Any) -> None:
    response = api_client(moderator).put(
        "/api/v1/features/noSuchFeature/", {"enabled": True}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_feature"


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_enabled_must_be_a_json_boolean(api_client: Client, moderator: Any, value: Any) -> None:
    response = api_client(moderator).put(AI_URL, {"enabled": value}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert [e["field"] for e in body["errors"]] == ["enabled"]


def test_enabled_is_required(api_client: Client, moderator: Any) -> None:
    response = api_client(moderator).put(AI_URL, {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "enabled"


def test_the_openapi_schema_documents_both_operations_and_their_errors(
    api_client: Client, moderator: Any
) -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    put = schema["paths"]["/api/v1/features/{key}/"]["put"]
    assert set(put["responses"]) == {"200", "400", "401", "403", "404"}
    get = schema["paths"]["/api/v1/features/"]["get"]
    assert set(get["responses"]) >= {"200", "401"}
