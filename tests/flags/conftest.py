"""Personas for the flag tests: anonymous, plain user, bronze/silver/gold member, moderator, staff,
superuser. Each test starts with no environment override and waffle's cached rows flushed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from waffle.models import Flag

from flags import env
from flags.registry import FEATURES
from tests.flags.helpers import make_user


@pytest.fixture(autouse=True)
def _no_env_override() -> Iterator[None]:
    # A developer's FEATURE_FLAG_* variables must not leak into the tests.
    with env.override():
        yield


def _flush_waffle_keys() -> None:
    for key in FEATURES:
        Flag(name=key).flush()


@pytest.fixture(autouse=True)
def _flush_waffle() -> Iterator[None]:
    # Waffle caches rows in the shared cache; under a rolled-back test transaction its on_commit
    # flushes never run, so a cached row would outlive the test (django-practice B.5).
    _flush_waffle_keys()
    yield
    _flush_waffle_keys()


@pytest.fixture
def anonymous() -> AnonymousUser:
    return AnonymousUser()


@pytest.fixture
def plain_user(db: None) -> User:
    return make_user("paula")


@pytest.fixture
def bronze_member(db: None) -> User:
    return make_user("bruno", "bronze")


@pytest.fixture
def silver_member(db: None) -> User:
    return make_user("sylvia", "silver")


@pytest.fixture
def gold_member(db: None) -> User:
    return make_user("goldie", "gold")


@pytest.fixture
def moderator(db: None) -> User:
    # is_staff lets a moderator into admin; the group gives the rights (seed_demo does the same).
    return make_user("maude", "mod", is_staff=True)


@pytest.fixture
def staff(db: None) -> User:
    return make_user("stan", is_staff=True)


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(username="root", email="root@example.com", password=None)


@pytest.fixture
def persona(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def get(name: str) -> Any:
        return request.getfixturevalue(name)

    return get


@pytest.fixture
def api_client() -> Callable[[Any], APIClient]:
    def build(user: Any) -> APIClient:
        client = APIClient()
        if user is not None and user.is_authenticated:
            # The way API users authenticate: `Authorization: Token <key>`.
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return build
