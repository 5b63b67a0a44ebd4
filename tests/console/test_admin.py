"""The training runs admin: filters, search, cheap queries, and the re-check / cancel / retry
actions against the orchestrator emulator over real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from tests.conftest import make_user, run_body
from tests.console.helpers import ago, make_run
from training import lifecycle, services
from training.models import RunStatus, TrainingRun
from training.orchestrator.client import get_client
from training.runspec import resolve_run

pytestmark = pytest.mark.django_db
LIST = "/admin/training/trainingrun/"


@pytest.fixture
def boss(db: None) -> User:
    return make_user("boss", is_superuser=True, is_staff=True)


@pytest.fixture
def admin_client(boss: User) -> Client:
    client = Client()
    client.force_login(boss)
    return client


def listed(client: Client, **params: str) -> list[str]:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return re.findall(r'name="_selected_action" value="([0-9a-f-]+)"', response.content.decode())


def test_filters_and_search(admin_client: Client, owner: User, other_user: User) -> None:
    kohya = make_run(owner, engine="kohya", base_model="sdxl", workflow_id="wf-one")
    ai = make_run(owner, engine="ai-toolkit", base_model="flux_dev", status="failed",
                  error_code="orchestrator_failed")  # fmt: skip
    video = make_run(other_user, engine="musubi", base_model="wan_2_1_t2v_14b",
                     created=ago(days=20))  # fmt: skip
    everyone = {str(r.pk) for r in (kohya, ai, video)}
    assert set(listed(admin_client)) == everyone
    assert listed(admin_client, status__exact="failed") == [str(ai.pk)]
    assert listed(admin_client, engine__exact="musubi") == [str(video.pk)]
    assert listed(admin_client, family="wan") == [str(video.pk)]
    assert listed(admin_client, family="flux1") == [str(ai.pk)]
    assert listed(admin_client, base_model__exact="sdxl") == [str(kohya.pk)]
    week = ago(days=7).strftime("%Y-%m-%d %H:%M:%S%z")
    assert set(listed(admin_client, created_at__gte=week)) == {str(kohya.pk), str(ai.pk)}
    assert listed(admin_client, q=str(video.pk)) == [str(video.pk)]
    assert listed(admin_client, q="wf-one") == [str(kohya.pk)]
    assert set(listed(admin_client, q="olivia")) == {str(kohya.pk), str(ai.pk)}
    assert listed(admin_client, q="oliv") == []  # exact matches only: no table scan


def test_the_list_never_counts_or_scans_the_whole_table(admin_client: Client, owner: User) -> None:
    def queries(**params: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(LIST, params).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    make_run(owner)
    few = queries()
    for day in range(30):
        make_run(owner, created=ago(days=day), status="failed", error_code="x")
    many = queries()
    assert len(few) == len(many)
    for params in ({}, {"status__exact": "failed"}, {"family": "sdxl"}, {"q": "olivia"}):
        for sql in queries(**params):
            if "training_trainingrun" in sql and "COUNT(" in sql:
                assert "LIMIT 10001" in sql, sql  # the capped count, never a full COUNT(*)
            assert "DISTINCT" not in sql, sql  # no date_hierarchy or AllValues filter
    listing = next(s for s in many if s.startswith('SELECT "training_trainingrun"."id"'))
    assert 'ORDER BY "training_trainingrun"."created_at" DESC, "training_trainingrun"."id" DESC' in listing  # fmt: skip


def test_a_capped_count_reads_as_at_least(
    admin_client: Client, owner: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("training.admin.COUNT_CAP", 3)
    for _ in range(5):
        make_run(owner)
    html = admin_client.get(LIST).content.decode()
    assert "3+ training runs" in html


def test_the_change_page_shows_the_timeline_and_payload(admin_client: Client, owner: User) -> None:
    spec = resolve_run(user=owner, data=run_body())
    run = services.training_run_create(owner=owner, spec=spec)
    html = admin_client.get(f"{LIST}{run.pk}/change/").content.decode()
    assert "Timeline" in html and "created" in html
    assert "Orchestrator payload" in html and "imageResourceTraining" in html


# --- actions against the emulator ------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        "127.0.0.1",
        0,
        EmulatorConfig(queue_seconds=0.2, seconds_per_epoch=0.02, tick_seconds=0.02,
                       drop_callbacks=True),
    )  # fmt: skip
    server.start()
    get_client.cache_clear()
    with override_settings(ORCHESTRATOR_URL=server.url, ORCHESTRATOR_TOKEN="emulator-token"):
        yield server
    get_client.cache_clear()
    server.stop()


def submitted_run(owner: User) -> TrainingRun:
    run = services.training_run_create(owner=owner, spec=resolve_run(user=owner, data=run_body()))
    assert lifecycle.run_submit(run_id=run.pk).status == RunStatus.SUBMITTED
    run.refresh_from_db()
    return run


def test_recheck_fetches_the_workflow(
    admin_client: Client, owner: User, emulator: EmulatorServer
) -> None:
    run = submitted_run(owner)
    finished = make_run(owner)  # terminal: skipped
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        workflow = get_client().get(run.workflow_id)
        if workflow.get("status") == "succeeded":
            break
        time.sleep(0.1)
    messages = act(admin_client, "recheck_runs", run, finished)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert any("Re-checked 1 runs" in m and "→ succeeded" in m for m in messages), messages
    assert any("Skipped 1 runs" in m for m in messages), messages


def test_recheck_reports_an_unreachable_orchestrator(admin_client: Client, owner: User) -> None:
    run = make_run(owner, status="processing", duration=None, workflow_id="wf-gone")
    get_client.cache_clear()
    try:
        with override_settings(ORCHESTRATOR_URL="http://127.0.0.1:9", ORCHESTRATOR_READ_TIMEOUT=1):
            messages = act(admin_client, "recheck_runs", run)
    finally:
        get_client.cache_clear()
    assert any(m.startswith(f"Run {run.pk}:") for m in messages), messages
    run.refresh_from_db()
    assert run.status == RunStatus.PROCESSING


REASON = "Training data is a copyrighted film; see the abuse report"


def act(client: Client, action: str, *runs: TrainingRun, **extra: str) -> list[str]:
    response = client.post(
        LIST,
        {"action": action, "_selected_action": [str(r.pk) for r in runs], "index": 0, **extra},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]] if response.context else []


def moderator_client() -> Client:
    from django.core.management import call_command

    call_command("sync_features")  # grants group `mod` its admin permissions
    client = Client()
    client.force_login(make_user("maude", "mod", is_staff=True))
    return client


def test_cancel_asks_for_a_reason_first_and_cancels_nothing_without_one(
    admin_client: Client, owner: User
) -> None:
    run = make_run(owner, status="pending", submit_after=None)
    page = admin_client.post(
        LIST, {"action": "cancel_runs", "_selected_action": [str(run.pk)], "index": 0}
    )
    assert page.status_code == 200
    assert "Each owner sees your reason" in page.content.decode()
    short = admin_client.post(
        LIST,
        {"action": "cancel_runs", "_selected_action": [str(run.pk)], "confirm": "yes",
         "reason": "spam"},
    )  # fmt: skip
    assert short.status_code == 200 and "at least 10 characters" in short.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING


def test_cancel_at_the_orchestrator_and_locally(
    admin_client: Client, owner: User, emulator: EmulatorServer
) -> None:
    remote = submitted_run(owner)
    local = services.training_run_create(owner=owner, spec=resolve_run(user=owner, data=run_body()))
    done = make_run(owner)
    messages = act(admin_client, "cancel_runs", remote, local, done, confirm="yes", reason=REASON)
    remote.refresh_from_db()
    local.refresh_from_db()
    assert (remote.status, local.status) == (RunStatus.CANCELED, RunStatus.CANCELED)
    assert get_client().get(remote.workflow_id)["status"] == "canceled"
    assert any(m.startswith("Canceled 2 runs.") for m in messages), messages
    assert any(f"Run {done.pk}: The run has already succeeded" in m for m in messages), messages


def test_a_moderator_cancels_another_users_run_and_the_owner_reads_why(owner: User) -> None:
    run = services.training_run_create(owner=owner, spec=resolve_run(user=owner, data=run_body()))
    act(moderator_client(), "cancel_runs", run, confirm="yes", reason=REASON)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    event = run.events.filter(to_status=RunStatus.CANCELED).get()
    assert event.message == f"canceled by a moderator before submission: {REASON}"
    assert event.data == {"canceled_by": "maude", "reason": REASON}
    page = Client()
    page.force_login(owner)
    assert REASON in page.get(f"/runs/{run.pk}").content.decode()


def test_the_service_refuses_a_moderator_cancel_without_a_reason(owner: User, mod: User) -> None:
    run = make_run(owner, status="pending", submit_after=None)
    with pytest.raises(services.CancelReasonRequired):
        services.training_run_cancel(run=run, actor=mod, reason="  ")
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING


def test_nobody_retries_or_creates_runs_in_another_users_account_from_admin(
    admin_client: Client, owner: User
) -> None:
    failed = make_run(owner, status="failed", error_code="x")
    act(admin_client, "retry_runs", failed)
    act(moderator_client(), "retry_runs", failed)
    assert not TrainingRun.objects.filter(retried_from=failed).exists()
    assert admin_client.get(f"{LIST}add/").status_code == 403


def test_moderators_may_recheck_and_cancel_but_a_view_only_user_only_rechecks(
    owner: User,
) -> None:
    from django.core.management import call_command

    call_command("sync_features")  # grants group `mod` its admin permissions
    model_admin = site._registry[TrainingRun]
    request = RequestFactory().get(LIST)
    maude = make_user("maude", "mod", is_staff=True)
    request.user = User.objects.get(pk=maude.pk)
    assert set(model_admin.get_actions(request)) == {"recheck_runs", "cancel_runs"}
    assert not request.user.has_perm("training.change_trainingrun")
    viewer = make_user("vera", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_trainingrun"))
    request.user = User.objects.get(pk=viewer.pk)
    assert set(model_admin.get_actions(request)) == {"recheck_runs"}
