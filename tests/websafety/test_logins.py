"""Login throttling (django-axes) on the page, admin and the API token endpoint, per account and
per client address; and the password validators."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import make_user

ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"


def page_login(client: Client, url: str, username: str, password: str, address: str) -> Any:
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_sixty_wrong_passwords_at_the_login_page_are_throttled(owner: User) -> None:
    client = Client()
    codes = [
        page_login(client, "/accounts/login/", "olivia", f"guess-{i}", ATTACKER).status_code
        for i in range(60)
    ]
    assert codes[:9] == [200] * 9  # the form again, with "didn't match"
    assert set(codes[9:]) == {429}  # the tenth failure locks
    locked = page_login(client, "/accounts/login/", "olivia", "pw-olivia", ATTACKER)
    assert locked.status_code == 429  # even the right password waits out the cool-off
    assert int(locked["Retry-After"]) == 15 * 60
    text = locked.content.decode()
    assert "Too many failed logins" in text and "Try again in 15 minutes" in text
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_thirty_wrong_passwords_at_the_admin_login_are_throttled() -> None:
    make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    codes = [
        page_login(client, "/admin/login/", "root", f"guess-{i}", ATTACKER).status_code
        for i in range(30)
    ]
    assert codes[:9] == [200] * 9
    assert set(codes[9:]) == {429}  # the tenth failure locks
    assert page_login(client, "/admin/login/", "root", "pw-root", ATTACKER).status_code == 429


@pytest.mark.django_db
def test_another_account_from_another_address_still_logs_in(owner: User, other_user: User) -> None:
    attacker = Client()
    for i in range(12):
        page_login(attacker, "/accounts/login/", "olivia", f"guess-{i}", ATTACKER)
    assert page_login(attacker, "/accounts/login/", "olivia", "x", ATTACKER).status_code == 429
    someone = Client()
    response = page_login(someone, "/accounts/login/", "mallory", "pw-mallory", ELSEWHERE)
    assert response.status_code == 302 and response["Location"] == "/runs/"


@pytest.mark.django_db
def test_a_locked_address_cannot_try_other_accounts(owner: User, other_user: User) -> None:
    client = Client()
    for i in range(10):
        page_login(client, "/accounts/login/", f"nobody-{i}", "guess", ATTACKER)
    # Ten different usernames from one address: the address is what is locked.
    response = page_login(client, "/accounts/login/", "mallory", "pw-mallory", ATTACKER)
    assert response.status_code == 429


@pytest.mark.django_db
def test_a_locked_account_cannot_be_guessed_from_another_address(owner: User) -> None:
    for i in range(10):
        page_login(Client(), "/accounts/login/", "olivia", f"guess-{i}", f"198.51.100.{i + 1}")
    response = page_login(Client(), "/accounts/login/", "olivia", "pw-olivia", ELSEWHERE)
    assert response.status_code == 429


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_client_address_is_locked_not_the_proxy(
    owner: User, other_user: User, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "10.0.0.2"

    def via_proxy(username: str, password: str, client_ip: str) -> int:
        return (
            Client()
            .post(
                "/accounts/login/",
                {"username": username, "password": password},
                REMOTE_ADDR=proxy,
                HTTP_X_FORWARDED_FOR=f"1.2.3.4, {client_ip}",  # the left entry is the client's claim
            )
            .status_code
        )

    for i in range(10):
        via_proxy(f"nobody-{i}", "guess", ATTACKER)
    assert via_proxy("mallory", "pw-mallory", ATTACKER) == 429
    assert via_proxy("mallory", "pw-mallory", ELSEWHERE) == 302  # same proxy, another client


@pytest.mark.django_db
def test_the_api_token_endpoint_locks_with_a_json_429_saying_when_to_retry(
    owner: User, settings: Any
) -> None:
    # The endpoint's own per-address rate is loosened so the account lockout is what answers.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth_token": "1000/min",
        },
    }
    client = APIClient()
    wrong = {"username": "olivia", "password": "guess"}
    codes = [
        client.post("/api/v1/auth/token/", wrong, format="json", REMOTE_ADDR=f"198.51.100.{i}")
        for i in range(1, 12)
    ]
    assert [c.status_code for c in codes] == [401] * 9 + [429] * 2
    locked = codes[-1]
    body = locked.json()
    assert body["code"] == "login_locked"
    assert "Try again in 15 minutes" in body["message"]
    assert body["errors"] == []
    assert int(locked["Retry-After"]) == 15 * 60
    right = {"username": "olivia", "password": "pw-olivia"}
    assert client.post("/api/v1/auth/token/", right, format="json").status_code == 429


@pytest.mark.django_db
def test_a_success_clears_the_accounts_failures(owner: User) -> None:
    client = Client()
    for i in range(9):
        page_login(client, "/accounts/login/", "olivia", f"guess-{i}", ATTACKER)
    assert (
        page_login(client, "/accounts/login/", "olivia", "pw-olivia", ELSEWHERE).status_code == 302
    )
    other = Client()
    for i in range(9):
        page_login(other, "/accounts/login/", "olivia", f"again-{i}", ELSEWHERE)
    assert (
        page_login(other, "/accounts/login/", "olivia", "pw-olivia", ELSEWHERE).status_code == 302
    )


@pytest.mark.django_db
def test_test_clients_force_login_is_not_throttled(owner: User) -> None:
    client = Client()
    client.force_login(owner)
    assert client.get("/runs/").status_code == 200


@pytest.mark.parametrize(
    ("password", "problem"),
    [("password123", "too common"), ("83920174651", "entirely numeric")],
)
def test_common_and_numeric_passwords_are_refused(password: str, problem: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_password(password)
    assert any(problem in message for message in refused.value.messages)
