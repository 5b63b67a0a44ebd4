"""The feature settings page at /settings/features/."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from flags import is_feature_active
from tests.flags.helpers import AI, at_stage

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.flags.page_urls")]

URL = "/settings/features/"


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_gold_member_opts_into_ai_toolkit_on_the_settings_page(gold_member: Any) -> None:
    at_stage("paid")
    client = _logged_in(gold_member)
    page = client.get(URL).content.decode()
    assert "AI Toolkit Training" in page
    assert "checked" not in page
    response = client.post(URL, {"key": AI, "enabled": "on"}, follow=True)
    assert "AI Toolkit Training is now on." in response.content.decode()
    assert is_feature_active(gold_member, AI)
    client.post(URL, {"key": AI})  # an unticked checkbox sends nothing
    assert not is_feature_active(gold_member, AI)


def test_a_plain_user_is_offered_nothing_and_cannot_post_their_way_in(plain_user: Any) -> None:
    at_stage("paid")
    client = _logged_in(plain_user)
    assert "No optional features are offered" in client.get(URL).content.decode()
    response = client.post(URL, {"key": AI, "enabled": "on"}, follow=True)
    assert "not available to you yet" in response.content.decode()
    assert not is_feature_active(plain_user, AI)


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    response = Client().get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
