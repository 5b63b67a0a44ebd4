"""trainingData.url is fetched by the orchestrator: https to a public host only, decided from the
URL alone (websafety.hosts.private_host_reason), with the pages' own uploads allowed."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.conftest import run_body
from training.models import TrainingRun
from websafety.hosts import private_host_reason

REFUSED = [
    "https://127.0.0.1/set.zip",
    "https://127.1/set.zip",
    "https://2130706433/set.zip",
    "https://0x7f000001/set.zip",
    "https://169.254.169.254/latest/meta-data/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://10.0.0.5/set.zip",
    "https://172.16.4.2/set.zip",
    "https://192.168.1.10/set.zip",
    "https://[::1]/set.zip",
    "https://[fd12:3456::1]/set.zip",
    "https://[fe80::1]/set.zip",
    "https://[::ffff:10.0.0.1]/set.zip",
    "https://localhost/set.zip",
    "https://LOCALHOST./set.zip",
    "https://files.local/set.zip",
    "https://storage.corp.internal/set.zip",
    "https://nas/set.zip",
    "https://0.0.0.0/set.zip",
    "http://data.example.com/set.zip",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_plain_http_urls_have_a_reason(url: str) -> None:
    assert private_host_reason(url) is not None


@pytest.mark.parametrize(
    "url",
    ["https://data.example.com/set.zip?sig=abc", "https://8.8.8.8/set.zip",
     "https://[2606:4700::1111]/set.zip", "https://civitai-delivery.s3.amazonaws.com/x.zip"],
)  # fmt: skip
def test_https_to_a_public_host_passes(url: str) -> None:
    assert private_host_reason(url) is None


def test_the_rule_never_looks_names_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a DNS lookup at request time")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    assert private_host_reason("https://data.example.com/set.zip") is None
    assert private_host_reason("https://localhost/set.zip") is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/set.zip", "https://169.254.169.254/latest/meta-data/",
     "https://metadata.google.internal/x.zip", "https://10.1.2.3/set.zip", "https://[::1]/set.zip",
     "http://data.example.com/set.zip"],
)  # fmt: skip
def test_the_api_refuses_a_private_training_data_url_naming_the_field(
    owner: User, client_for: Any, url: str
) -> None:
    body = run_body(trainingData={"url": url, "imageCount": 24})
    for path in ("", "preview/", "estimate/"):
        response = client_for(owner).post(f"/api/v1/training-runs/{path}", body, format="json")
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert errors[0]["field"] == "trainingData.url"
        assert errors[0]["code"] == "private_host"
        assert "https to a public host" in errors[0]["message"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_a_zip_this_service_stored_is_still_accepted(
    owner: User, client_for: Any, settings: Any
) -> None:
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    url = f"http://127.0.0.1:8000/media/training-data/{owner.pk}/{'a' * 32}.zip"
    body = run_body(trainingData={"url": url, "imageCount": 24})
    response = client_for(owner).post("/api/v1/training-runs/preview/", body, format="json")
    assert response.status_code == 200, response.json()
