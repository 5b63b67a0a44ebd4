"""The moderator dashboard page: who may see it, what it shows, and what it costs."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import make_user
from tests.console.helpers import ago, make_run, refreshed
from training.selectors import engine_success_rate

pytestmark = pytest.mark.django_db
URL = "/mod/training/"


@pytest.fixture
def boss(db: None) -> User:
    return make_user("boss", is_superuser=True, is_staff=True)


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def text_of(html: str, element_id: str, tag: str = "dd") -> str:
    """The text of the element with that id (tags stripped, spaces collapsed)."""
    match = re.search(rf'<{tag}[^>]*id="{element_id}"[^>]*>(.*?)</{tag}>', html, re.S)
    assert match, element_id
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_anonymous_visitors_are_sent_to_log_in(db: None) -> None:
    response = client_for(None).get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"{settings.LOGIN_URL}?next={URL}"


def test_plain_users_are_refused(owner: User) -> None:
    assert client_for(owner).get(URL).status_code == 403
    staff = make_user("stan", is_staff=True)  # staff is not enough: moderators only
    assert client_for(staff).get(URL).status_code == 403


@pytest.mark.parametrize("who", ["mod", "boss"])
def test_moderators_and_superusers_see_it(who: str, request: pytest.FixtureRequest) -> None:
    user = request.getfixturevalue(who)
    response = client_for(user).get(URL)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert "Training metrics" in response.content.decode()


def test_window_selector(mod: User) -> None:
    html = client_for(mod).get(URL, {"days": "7"}).content.decode()
    assert re.search(r'href="\?days=7" aria-current="page"', html)
    assert 'href="?days=30"' in html and 'href="?days=90"' in html
    fallback = client_for(mod).get(URL, {"days": "1000"}).content.decode()
    assert re.search(r'href="\?days=30" aria-current="page"', fallback)


def test_it_shows_the_rollout_guards_own_number(owner: User, mod: User) -> None:
    make_run(owner, engine="ai-toolkit", created=ago(days=3))
    make_run(owner, engine="ai-toolkit", created=ago(days=4))
    make_run(owner, engine="ai-toolkit", created=ago(days=5), status="failed",
             error_code="orchestrator_failed")  # fmt: skip
    make_run(owner, engine="ai-toolkit", created=ago(days=20))  # in the 30 days, not the 14
    html = client_for(mod).get(URL).content.decode()
    numbers = engine_success_rate(engine="ai-toolkit", days=14)
    assert (numbers.succeeded, numbers.finished) == (2, 3)
    assert "Rollout guard: AI Toolkit, last 14 days" in html
    assert "rollout guard&#x27;s number" in html or "rollout guard's number" in html
    assert text_of(html, "guard-rate") == "66.7 % 2 of 3 finished"
    assert text_of(html, "guard-status", "span") == "not met"  # 20 finished runs needed
    ai_row = re.search(r'data-engine="ai-toolkit">(.*?)</tr>', html, re.S)
    assert ai_row and "75.0 %" in ai_row.group(1)  # the dashboard's 30 days: 3 of 4


def test_engines_without_finished_runs_read_dash_not_zero(owner: User, mod: User) -> None:
    make_run(owner, engine="kohya")
    html = client_for(mod).get(URL).content.decode()
    musubi = re.search(r'data-engine="musubi">(.*?)</tr>', html, re.S)
    assert musubi
    cells = re.findall(
        r'data-field="(success|duration-p50|queue-p90|cost-mean)">([^<]*)<', musubi.group(1)
    )
    assert [value for _, value in cells] == ["—", "—", "—", "—"]
    kohya = re.search(r'data-engine="kohya">(.*?)</tr>', html, re.S)
    assert kohya and "100.0 %" in kohya.group(1) and "10 min" in kohya.group(1)


def test_an_empty_database_renders(mod: User) -> None:
    response = client_for(mod).get(URL, {"days": "90"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "No finished runs in this window." in html
    assert text_of(html, "kpi-success") == "— 0 of 0"
    assert text_of(html, "kpi-started") == "0"
    assert text_of(html, "adoption-runs") == "— 0 of 0"


def test_charts_are_inline_svg_with_titles(owner: User, mod: User) -> None:
    make_run(owner, engine="kohya", created=ago(days=3))
    make_run(owner, engine="ai-toolkit", created=ago(days=2), status="failed",
             error_code="orchestrator_failed", error_message="<b>boom</b>")  # fmt: skip
    html = client_for(mod).get(URL).content.decode()
    # Charts, not the legend's colour swatches (decorative, hidden from assistive technology).
    svgs = [s for s in re.findall(r"<svg .*?</svg>", html, re.S) if "aria-hidden" not in s[:80]]
    assert len(svgs) >= 5  # success over time, duration, cost, failures, adoption meters
    assert all("<title" in svg and 'role="img"' in svg for svg in svgs)
    assert "Success rate per day, by engine" in html
    assert "<b>boom</b>" not in html and "&lt;b&gt;boom&lt;/b&gt;" in html  # escaped
    assert "cdn" not in html.lower()


def test_query_count_does_not_grow_with_runs(owner: User, mod: User) -> None:
    client = client_for(mod)

    def count() -> int:
        refreshed()
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    make_run(owner)
    few = count()
    for day in range(1, 30):
        make_run(owner, engine="ai-toolkit", created=ago(days=day), params={"epochs": day})
        make_run(owner, engine="kohya", created=ago(days=day), status="failed",
                 error_code=f"code_{day % 5}")  # fmt: skip
    many = count()
    assert few == many
    # session, user, moderator check, rollup state, 5 rollup reads, the guard; the page's
    # navigation bar (base.html) asks for the user's groups twice more.
    assert many <= 12


def test_the_admin_index_links_to_it(boss: User) -> None:
    html = client_for(boss).get("/admin/").content.decode()
    assert f'href="{URL}"' in html and "Training metrics" in html
