"""Opting in on the feature settings page (/settings/features) goes through the same rules as the
API: offered features only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from flags.gates import is_feature_active
from tests.flags.helpers import AI, at_stage

pytestmark = pytest.mark.django_db


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_gold_member_opts_into_ai_toolkit_on_the_settings_page(gold_member: Any) -> None:
    at_stage("paid")
    client = _logged_in(gold_member)
    url = reverse("page-features")
    assert "AI Toolkit Training" in client.get(url).content.decode()
    response = client.post(url, {"key": AI, "enabled": "on"}, follow=True)
    assert "AI Toolkit Training is now on." in response.content.decode()
    assert is_feature_active(gold_member, AI)
    client.post(url, {"key": AI})
    assert not is_feature_active(gold_member, AI)


def test_a_plain_user_is_offered_nothing_and_cannot_post_their_way_in(plain_user: Any) -> None:
    at_stage("paid")
    client = _logged_in(plain_user)
    url = reverse("page-features")
    assert "No optional features are offered" in client.get(url).content.decode()
    response = client.post(url, {"key": AI, "enabled": "on"}, follow=True)
    assert "not available to you yet" in response.content.decode()
    assert not is_feature_active(plain_user, AI)
