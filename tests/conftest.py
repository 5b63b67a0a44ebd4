"""Personas and clients shared by the tests: owner, other user, moderator, gold member, anonymous."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.harness import ENABLE_BROWSER_TESTS, find_chromium

# Subprocesses started by tests (tests/harness.py) inherit this; see config/settings.py.
os.environ.setdefault("FAST_PASSWORD_HASHER", "true")

# In CI a browser test that did not run is a failure, not a skip (.ci/run sets CI=true).
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
_browser: dict[str, Any] = {"no_chromium": False, "skipped": []}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_tests = [item for item in items if item.get_closest_marker("e2e")]
    if browser_tests and find_chromium() is None:
        _browser["no_chromium"] = True
        for item in browser_tests:
            item.add_marker(pytest.mark.skip(reason=ENABLE_BROWSER_TESTS))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "e2e" in report.keywords:
        _browser["skipped"].append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _browser["no_chromium"]:
        terminalreporter.write_line(ENABLE_BROWSER_TESTS, yellow=True)
    if IN_CI and _browser["skipped"]:
        count = len(_browser["skipped"])
        terminalreporter.write_line(
            f"CI: {count} browser test(s) skipped: that fails the run", red=True
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _browser["skipped"] and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Waffle caches flags in the shared cache; a test must not see the previous test's flags.
    cache.clear()
    yield
    cache.clear()


def make_user(username: str, *groups: str, **extra: Any) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def owner(db: None) -> User:
    return make_user("olivia")


@pytest.fixture
def other_user(db: None) -> User:
    return make_user("mallory")


@pytest.fixture
def mod(db: None) -> User:
    return make_user("maude", "mod")


@pytest.fixture
def gold_member(db: None) -> User:
    return make_user("goldie", "gold")


@pytest.fixture
def client_for() -> Callable[[User | None], APIClient]:
    """An API client that authenticates the way API users do: `Authorization: Token <key>`."""

    def build(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return build


def run_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "baseModel": "sdxl",
        "loraName": "my-style",
        "trainingData": {"url": "https://data.example.com/set.zip", "imageCount": 24},
        "samplePrompts": ["a portrait in my style"],
    }
    body.update(overrides)
    return body


def opt_in(user: User, key: str = "aiToolkitTraining") -> User:
    from flags.models import FeaturePreference

    FeaturePreference.objects.update_or_create(user=user, key=key, defaults={"enabled": True})
    return user


@pytest.fixture
def ai_mod(mod: User) -> User:
    """A moderator who opted in to AI Toolkit (toggleable, off until chosen)."""
    return opt_in(mod)
