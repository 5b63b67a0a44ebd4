from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.conftest import run_body
from training.models import RunEvent, TrainingRun
from training.orchestrator.contracts import beta12
from vocabulary import catalog

ALL_PAIRS = [(k, e) for k, m in catalog.BASE_MODELS.items() for e in m.engines]
URL = "/api/v1/training-runs/"
Client = Callable[[User | None], APIClient]


def errors_of(response: Any) -> dict[str, tuple[str, str]]:
    return {e["field"]: (e["code"], e["message"]) for e in response.json()["errors"]}


@pytest.fixture
def sd3_on(mod: User) -> None:
    from waffle.models import Flag

    assert Flag.objects.get(name="sd3Training").groups.filter(name="mod").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "engine"), ALL_PAIRS)
def test_a_moderator_creates_a_run_for_every_base_model_and_engine_with_defaults(
    key: str, engine: str, ai_mod: User, client_for: Client, sd3_on: None
) -> None:
    response = client_for(ai_mod).post(URL, run_body(baseModel=key, engine=engine), format="json")
    assert response.status_code == 201, response.json()
    run = response.json()
    assert run["status"] == "pending"
    assert run["engine"] == engine
    assert beta12.validate_workflow(run["payload"]) == []
    assert run["payload"]["tags"][1] == f"run:{run['id']}"
    stored = TrainingRun.objects.get(pk=run["id"])
    assert stored.owner == ai_mod and stored.params == run["params"]
    assert RunEvent.objects.filter(run=stored, kind="created").count() == 1


@pytest.mark.django_db
def test_the_engine_defaults_to_the_base_models_default(owner: User, client_for: Client) -> None:
    video = client_for(owner).post(
        URL, run_body(baseModel="wan_2_1_t2v_14b", samplePrompts=[]), format="json"
    )
    image = client_for(owner).post(URL, run_body(baseModel="sd_1_5"), format="json")
    assert (video.json()["engine"], image.json()["engine"]) == ("musubi", "kohya")


@pytest.mark.django_db
def test_the_response_shows_the_effective_values_after_defaults(
    owner: User, client_for: Client
) -> None:
    body = run_body(baseModel="pony", params={"maxTrainEpochs": 12, "unetLR": 0.0002})
    params = client_for(owner).post(URL, body, format="json").json()["params"]
    assert params["maxTrainEpochs"] == 12 and params["unetLR"] == 0.0002
    assert params["optimizerType"] == "Prodigy" and params["trainBatchSize"] == 5
    assert params["numRepeats"] == 9  # ceil(200 / 24 images)


@pytest.mark.django_db
def test_the_preview_shows_the_exact_body_and_stores_nothing(
    ai_mod: User, client_for: Client
) -> None:
    mod = ai_mod
    body = run_body(baseModel="flux_dev", engine="ai-toolkit")
    preview = client_for(mod).post(URL + "preview/", body, format="json")
    assert preview.status_code == 200
    assert TrainingRun.objects.count() == 0
    created = client_for(mod).post(URL, body, format="json").json()
    expected = preview.json()["workflow"]
    zero = "00000000-0000-0000-0000-000000000000"
    assert expected["steps"][0]["input"] == created["payload"]["steps"][0]["input"]
    assert expected["tags"] == [t.replace(created["id"], zero) for t in created["payload"]["tags"]]


@pytest.mark.django_db
def test_anonymous_gets_401_everywhere(client_for: Client) -> None:
    anonymous = client_for(None)
    for method, url in [
        ("get", URL),
        ("post", URL),
        ("post", URL + "preview/"),
        ("get", "/api/v1/training-catalog/"),
        ("get", URL + "6f1c1b7e-1111-4aaa-8bbb-123456789abc/"),
    ]:
        response = getattr(anonymous, method)(url, run_body(), format="json")
        assert response.status_code == 401, url
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_another_users_run_is_a_404_and_missing_from_their_list(
    owner: User, other_user: User, client_for: Client
) -> None:
    run_id = client_for(owner).post(URL, run_body(), format="json").json()["id"]
    assert client_for(owner).get(f"{URL}{run_id}/").status_code == 200
    assert client_for(other_user).get(f"{URL}{run_id}/").status_code == 404
    assert client_for(other_user).get(URL).json()["results"] == []


@pytest.mark.django_db
def test_the_list_is_newest_first_with_cursor_pages_and_filters(
    owner: User, client_for: Client
) -> None:
    api = client_for(owner)
    ids = [api.post(URL, run_body(loraName=f"r{i}"), format="json").json()["id"] for i in range(3)]
    api.post(URL, run_body(baseModel="wan_2_1_t2v_14b"), format="json")
    first = api.get(URL, {"pageSize": 2, "engine": "kohya"}).json()
    assert [r["id"] for r in first["results"]] == ids[::-1][:2]
    second = api.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [ids[0]]
    assert api.get(URL, {"engine": "musubi"}).json()["results"][0]["engine"] == "musubi"
    assert api.get(URL, {"status": "succeeded"}).json()["results"] == []


@pytest.mark.django_db
def test_a_plain_user_is_refused_ai_toolkit_with_403(owner: User, client_for: Client) -> None:
    body = run_body(baseModel="flux_dev", engine="ai-toolkit")
    for url in (URL, URL + "preview/"):
        response = client_for(owner).post(url, body, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "feature_not_active"
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_sd3_is_refused_to_a_plain_user_and_absent_from_their_catalog(
    owner: User, client_for: Client
) -> None:
    response = client_for(owner).post(URL, run_body(baseModel="sd3_large"), format="json")
    assert response.status_code == 400
    assert errors_of(response)["baseModel"][0] == "not_available"
    keys = [
        m["key"] for m in client_for(owner).get("/api/v1/training-catalog/").json()["baseModels"]
    ]
    assert "sd3_large" not in keys and "sdxl" in keys


@pytest.mark.django_db
def test_the_create_query_count_does_not_grow_with_stored_runs(
    ai_mod: User, client_for: Client
) -> None:
    mod = ai_mod
    api = client_for(mod)
    body = run_body(baseModel="flux_dev", engine="ai-toolkit")

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.post(URL, body, format="json").status_code == 201
        return len(ctx.captured_queries)

    count()  # warm the flag cache
    small = count()
    TrainingRun.objects.update(status="succeeded")  # stay under the active-run cap
    TrainingRun.objects.bulk_create(
        TrainingRun(
            owner=mod, base_model="sdxl", engine="kohya", training_data_url="https://x.example/d.zip",
            image_count=5, lora_name=f"bulk{i}", status="succeeded",
        )
        for i in range(300)
    )  # fmt: skip
    TrainingRun.objects.update(status="succeeded")
    assert count() == small
    assert small <= 12


@pytest.mark.django_db
def test_another_user_can_neither_read_cancel_nor_retry_a_run(
    owner: User, other_user: User, client_for: Client
) -> None:
    run_id = client_for(owner).post(URL, run_body(), format="json").json()["id"]
    TrainingRun.objects.filter(pk=run_id).update(status="failed")
    mallory = client_for(other_user)
    assert mallory.get(f"{URL}{run_id}/").status_code == 404
    assert mallory.post(f"{URL}{run_id}/cancel/").status_code == 404
    assert mallory.post(f"{URL}{run_id}/retry/").status_code == 404
    assert TrainingRun.objects.count() == 1
    # The owner may retry it: a new run, the old one untouched.
    retried = client_for(owner).post(f"{URL}{run_id}/retry/")
    assert retried.status_code == 201 and retried.json()["id"] != run_id
    assert TrainingRun.objects.get(pk=run_id).status == "failed"


@pytest.mark.django_db
def test_anonymous_cannot_cancel_or_retry(owner: User, client_for: Client) -> None:
    run_id = client_for(owner).post(URL, run_body(), format="json").json()["id"]
    for action in ("cancel", "retry"):
        assert client_for(None).post(f"{URL}{run_id}/{action}/").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_create_without_a_webhook_is_one_transaction_with_no_savepoint(
    owner: User, client_for: Client
) -> None:
    api = client_for(owner)
    assert api.post(URL, run_body(), format="json").status_code == 201  # warm: flags, caches
    with CaptureQueriesContext(connection) as ctx:
        assert api.post(URL, run_body(loraName="second"), format="json").status_code == 201
    statements = [q["sql"] for q in ctx.captured_queries]
    assert not [s for s in statements if "SAVEPOINT" in s], statements
    # BEGIN, lock the owner, capped count, the run, its event, COMMIT (+ the token, if any).
    assert len(statements) <= 7, statements
