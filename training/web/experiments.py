"""The moderators' results pages: the experiments, and per experiment the numbers per arm, with
the promote and roll back buttons (POST, CSRF, moderators only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from experiments import services
from experiments.models import DefaultsOverride, Experiment, ExperimentStatus
from flags.tiers import can_moderate
from training import experiment_results as selectors

View = Callable[..., HttpResponse]


def moderators_only(view: View) -> View:
    """Anonymous: to the login page. Logged in but not a moderator: 403."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_moderate(request.user):
            raise PermissionDenied("Experiment results are for moderators.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


class PromoteForm(forms.Form):
    arm = forms.IntegerField()
    reason = forms.CharField(required=False, max_length=2000)


class RollbackForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)
    experiment = forms.IntegerField(required=False)  # where to come back to


def _get(experiment_id: int) -> Experiment:
    try:
        return selectors.experiment_get(experiment_id=experiment_id)
    except Experiment.DoesNotExist:
        raise Http404("No such experiment.") from None


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) or "current defaults"


def _arm_rows(results: selectors.ExperimentResults) -> list[dict[str, Any]]:
    rows = []
    for r in results.arms:
        test = r.versus_control
        rows.append(
            {
                "result": r,
                "values": _values(r.arm.overrides),
                "expected": _percent(r.expected_share),
                "observed": _percent(r.observed_share),
                "rate": _percent(r.rate),
                "interval": (
                    f"{_percent(r.interval.low)} – {_percent(r.interval.high)}"
                    if r.interval
                    else "—"
                ),
                "duration": _duration(r.duration_median),
                "cost": "—" if r.cost_median is None else f"{r.cost_median:g}",
                "z": "" if test is None else f"{test.z:.2f}",
                "p": "" if test is None else f"{test.p_value:.4f}",
            }
        )
    return rows


@require_GET
@moderators_only
def experiment_list(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/list.html", {"rows": selectors.experiment_summaries()})


@require_GET
@moderators_only
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _get(experiment_id)
    results = selectors.experiment_results(experiment=experiment)
    can_promote = experiment.status != ExperimentStatus.DRAFT and not experiment.promoted_arm_id
    return render(
        request,
        "experiments/detail.html",
        {
            "experiment": experiment,
            "results": results,
            "rows": _arm_rows(results),
            "can_promote": can_promote,
            "promotable": [r.arm for r in results.arms if not r.arm.is_control],
            "active_values": _values(results.active_override.values)
            if results.active_override
            else "",
            "admin_url": reverse("admin:experiments_experiment_change", args=[experiment.pk]),
        },
    )


@require_POST
@moderators_only
def experiment_promote(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _get(experiment_id)
    back = reverse("experiments:detail", args=[experiment.pk])
    form = PromoteForm(request.POST)
    arm = None
    if form.is_valid():
        arm = next((a for a in experiment.arms.all() if a.pk == form.cleaned_data["arm"]), None)
    if arm is None:
        messages.error(request, "Choose an arm of this experiment to promote; nothing changed.")
        return HttpResponseRedirect(back)
    try:
        services.experiment_promote(
            actor=request.user, experiment=experiment, arm=arm, reason=form.cleaned_data["reason"]
        )
    except services.ExperimentError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Promoted {arm.name}: {_values(arm.overrides)} are now the defaults; "
            "the experiment has ended.",
        )
    return HttpResponseRedirect(back)


@require_POST
@moderators_only
def override_rollback(request: HttpRequest, override_id: int) -> HttpResponse:
    form = RollbackForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    back_id = form.cleaned_data.get("experiment") if form.is_valid() else None
    back = reverse("experiments:detail", args=[back_id]) if back_id else reverse("experiments:list")
    try:
        override = DefaultsOverride.objects.get(pk=override_id)
    except DefaultsOverride.DoesNotExist:
        raise Http404("No such defaults override.") from None
    try:
        restored = services.defaults_override_rollback(
            actor=request.user, override=override, reason=reason
        )
    except services.ExperimentError as exc:
        messages.error(request, str(exc))
    else:
        now = _values(restored.values) if restored else "the catalog's defaults"
        messages.success(request, f"Rolled back {override.scope}: runs now get {now}.")
    return HttpResponseRedirect(back)
