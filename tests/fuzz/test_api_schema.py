"""Schemathesis over our own OpenAPI schema, authenticated, every operation: no 5xx, and every
response matches what the schema documents (status codes, content types, bodies).

Driven through schemathesis' Python API with Hypothesis (its pytest plugin does not load under
pytest 9)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.conftest import make_user, opt_in

MAX_EXAMPLES = 30


@pytest.fixture
def api_schema(db: None) -> Iterator[Any]:
    from django.core import signals
    from django.db import close_old_connections

    from config.wsgi import application

    # Like Django's test client: keep the test's connection (and transaction) across requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def orchestrator(settings: Any) -> Iterator[None]:
    # Estimates and cancels talk to the orchestrator: give them the emulator, so a 503 found
    # here would be ours.
    from emulator.config import EmulatorConfig
    from emulator.server import EmulatorServer
    from training.orchestrator.client import get_client

    server = EmulatorServer("127.0.0.1", 0, EmulatorConfig(queue_seconds=0.2))
    server.start()
    settings.ORCHESTRATOR_URL = server.url
    get_client.cache_clear()
    yield
    server.stop()
    get_client.cache_clear()


@pytest.fixture
def auth_header(db: None) -> dict[str, str]:
    from rest_framework.authtoken.models import Token

    user = opt_in(make_user("fuzzer", "mod"))
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def test_no_operation_fails_or_breaks_its_schema(
    api_schema: Any, auth_header: dict[str, str]
) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            # Schema-valid bodies may still break a domain rule (Rapid on SDXL, a range per base
            # model): those are 400s by design, so "positive data acceptance" does not apply.
            case.call_and_validate(
                headers=auth_header, excluded_checks=[checks.positive_data_acceptance]
            )

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
