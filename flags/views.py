"""The feature settings page: a logged-in user opts in or out of the toggleable features offered
to them (the same rules as PUT /api/v1/features/{key}/)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from flags.gates import feature_states
from flags.registry import FEATURES, UnknownFeature
from flags.services import FeatureNotAvailable, FeatureNotToggleable, preference_set


@login_required
@require_http_methods(["GET", "POST"])
def feature_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        key = request.POST.get("key", "")
        enabled = request.POST.get("enabled") == "on"
        try:
            preference_set(user=request.user, key=key, enabled=enabled)
        except (UnknownFeature, FeatureNotToggleable, FeatureNotAvailable) as exc:
            messages.error(request, str(exc))
        else:
            state = "on" if enabled else "off"
            messages.success(request, f"{FEATURES[key].display_name} is now {state}.")
        return HttpResponseRedirect(reverse("feature-settings"))
    states = feature_states(request.user)
    toggles = [
        {"feature": FEATURES[key], "enabled": bool(state.enabled_preference)}
        for key, state in states.items()
        if state.toggleable and state.available
    ]
    return render(request, "flags/feature_settings.html", {"toggles": toggles})
