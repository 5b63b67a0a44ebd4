"""The results: numbers per arm on crafted runs, the page that shows them, and who may see it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from experiments.models import Experiment
from tests.conftest import make_user
from tests.experiments.conftest import arm_named, make_experiment
from training.experiment_results import experiment_results
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
WebClient = Callable[[User | None], Client]


def _runs(
    experiment: Experiment,
    owner: User,
    arm: str | None,
    status: str,
    count: int,
    *,
    minutes: int | None = None,
    cost: int | None = None,
    outcome: str = "assigned",
) -> list[TrainingRun]:
    """`count` runs; a succeeded run i takes minutes + i minutes and costs cost + i."""
    now = timezone.now()
    arm_obj = arm_named(experiment, arm) if arm else None
    runs = []
    for i in range(count):
        started = now - timedelta(days=1)
        runs.append(
            TrainingRun(
                owner=owner, base_model="flux_dev", engine="ai-toolkit", ecosystem="flux1",
                model_variant="dev", training_data_url="https://x.example/d.zip", image_count=5,
                lora_name=f"{arm}-{status}-{i}", status=status, experiment=experiment,
                experiment_arm=arm_obj, experiment_outcome=outcome,
                started_at=started if minutes is not None else None,
                completed_at=started + timedelta(minutes=minutes + i) if minutes is not None else None,
                charged_cost=cost + i if cost is not None else None,
            )
        )  # fmt: skip
    return TrainingRun.objects.bulk_create(runs)


@pytest.fixture
def crafted(mod: User) -> Experiment:
    experiment = make_experiment(
        arms=[("control", 2, {}), ("longer", 1, {"epochs": 8}), ("wide", 1, {"networkDim": 24})],
        start=True,
    )
    # control: 25 of 40 finished succeeded (failed and expired count as failures; canceled and
    # pending runs are not finished)
    _runs(experiment, mod, "control", "succeeded", 25, minutes=60, cost=100)
    _runs(experiment, mod, "control", "failed", 10, minutes=5, cost=1)
    _runs(experiment, mod, "control", "expired", 5)
    _runs(experiment, mod, "control", "canceled", 3)
    _runs(experiment, mod, "control", "pending", 2)
    # longer: 45 of 50
    _runs(experiment, mod, "longer", "succeeded", 45, minutes=90, cost=150)
    _runs(experiment, mod, "longer", "failed", 5, minutes=2, cost=1)
    # wide: 28 of 40, no timings or costs known
    _runs(experiment, mod, "wide", "succeeded", 28)
    _runs(experiment, mod, "wide", "failed", 12)
    # users who set every tested parameter: in no arm
    _runs(experiment, mod, None, "succeeded", 4, outcome="overrode_all")
    return experiment


def test_the_numbers_per_arm(crafted: Experiment) -> None:
    results = experiment_results(experiment=crafted)
    by_name = {r.arm.name: r for r in results.arms}
    control, longer, wide = by_name["control"], by_name["longer"], by_name["wide"]
    assert (results.assigned_runs, results.overrode_all) == (135, 4)
    assert [(r.runs, r.finished, r.succeeded) for r in (control, longer, wide)] == [
        (45, 40, 25),
        (50, 50, 45),
        (40, 40, 28),
    ]
    assert (control.expected_share, longer.expected_share) == (0.5, 0.25)
    assert round(control.observed_share or 0, 4) == round(45 / 135, 4)

    def bounds(r: Any) -> tuple[float, float]:
        return (round(r.interval.low, 4), round(r.interval.high, 4))

    assert bounds(control) == (0.4703, 0.7578)
    assert bounds(longer) == (0.7864, 0.9565)
    assert bounds(wide) == (0.5457, 0.8193)
    # medians over succeeded runs only: 60 + 12 minutes, 100 + 12; 90 + 22 minutes, 150 + 22
    assert (control.duration_median, control.cost_median) == (72 * 60, 112)
    assert (longer.duration_median, longer.cost_median) == (112 * 60, 172)
    assert (wide.duration_median, wide.cost_median) == (None, None)
    assert control.versus_control is None
    assert longer.versus_control is not None and wide.versus_control is not None
    assert (round(longer.versus_control.z, 4), round(longer.versus_control.p_value, 4)) == (
        3.1182,
        0.0018,
    )
    assert (round(wide.versus_control.z, 4), round(wide.versus_control.p_value, 4)) == (
        0.7093,
        0.4781,
    )
    assert (longer.verdict, wide.verdict) == ("significantly better", "no significant difference")
    assert not results.too_small


def _cells(html: str, arm: str) -> dict[str, str]:
    row = re.search(rf'<tr data-arm-id="\d+" data-arm="{arm}">(.*?)</tr>', html, re.S)
    assert row, arm
    cells = re.findall(r'data-field="(\w+)">(.*?)</td>', row.group(1), re.S)
    return {k: re.sub(r"\s+", " ", v).strip() for k, v in cells}


def test_the_page_shows_them(crafted: Experiment, moderator: User, web_client: WebClient) -> None:
    page = web_client(moderator).get(reverse("experiments:detail", args=[crafted.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert _cells(html, "longer") == {
        "runs": "50", "finished": "50", "succeeded": "45", "rate": "90.0 %",
        "interval": "78.6 % – 95.7 %", "duration": "112 min", "cost": "172", "z": "3.12",
        "p": "0.0018", "verdict": "significantly better",
    }  # fmt: skip
    assert _cells(html, "wide")["verdict"] == "no significant difference"
    assert _cells(html, "control")["interval"] == "47.0 % – 75.8 %"
    assert "two-proportion z-test (pooled, two-sided)" in html
    assert "p &lt; 0.05" in html
    assert 'id="small-sample"' not in html
    assert 'id="promote-form"' in html


def test_a_small_sample_is_flagged(mod: User, moderator: User, web_client: WebClient) -> None:
    experiment = make_experiment(arms=[("control", 1, {}), ("longer", 1, {"epochs": 8})])
    _runs(experiment, mod, "control", "succeeded", 20)
    _runs(experiment, mod, "control", "failed", 9)
    _runs(experiment, mod, "longer", "succeeded", 29)
    _runs(experiment, mod, "longer", "failed", 1)
    results = experiment_results(experiment=experiment)
    longer = next(r for r in results.arms if r.arm.name == "longer")
    assert results.too_small
    assert longer.too_small == "1 failure; at least 5 are needed"
    assert longer.verdict == "too early to tell"
    html = web_client(moderator).get(reverse("experiments:detail", args=[experiment.pk]))
    assert 'id="small-sample"' in html.content.decode()
    assert _cells(html.content.decode(), "longer")["verdict"].startswith("too early to tell")


def test_the_list_counts_runs(crafted: Experiment, moderator: User, web_client: WebClient) -> None:
    html = web_client(moderator).get(reverse("experiments:list")).content.decode()
    assert f'data-experiment-id="{crafted.pk}"' in html
    assert "Flux: longer and faster" in html
    assert '<td data-label="Runs">135</td>' in html
    assert '<td data-label="Finished">130</td>' in html


@pytest.mark.parametrize("name", ["list", "detail"])
def test_only_moderators_see_results(name: str, mod: User, web_client: WebClient) -> None:
    experiment = make_experiment(arms=[("control", 1, {}), ("longer", 1, {"epochs": 8})])
    url = reverse(f"experiments:{name}", args=[experiment.pk] if name == "detail" else [])
    anonymous = web_client(None).get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/?next=")
    assert web_client(make_user("plain")).get(url).status_code == 403
    assert web_client(make_user("staffer", is_staff=True)).get(url).status_code == 403
    assert web_client(mod).get(url).status_code == 200
    root = User.objects.create_superuser("root", "root@example.com", None)
    assert web_client(root).get(url).status_code == 200


def test_an_unknown_experiment_is_a_404(moderator: User, web_client: WebClient) -> None:
    assert web_client(moderator).get("/mod/experiments/999999/").status_code == 404
