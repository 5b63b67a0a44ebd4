"""Fixtures for the page tests: no FEATURE_FLAG_* overrides, waffle rows flushed, uploads in a
temporary MEDIA_ROOT, and logged-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from waffle.models import Flag

from flags import env
from flags.registry import FEATURES


@pytest.fixture(autouse=True)
def _no_env_override() -> Iterator[None]:
    with env.override():
        yield


@pytest.fixture(autouse=True)
def _flush_waffle() -> Iterator[None]:
    for key in FEATURES:
        Flag(name=key).flush()
    yield
    for key in FEATURES:
        Flag(name=key).flush()


@pytest.fixture(autouse=True)
def _media(tmp_path: Path) -> Iterator[Path]:
    with override_settings(
        MEDIA_ROOT=str(tmp_path / "media"), PUBLIC_BASE_URL="http://127.0.0.1:8000"
    ):
        yield tmp_path / "media"


@pytest.fixture
def browser_for() -> Callable[[User], Client]:
    """A page client logged in as the user (session cookie, as a browser has)."""

    def build(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return build
