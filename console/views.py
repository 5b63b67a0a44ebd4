"""Thin views: the moderator dashboard, /metrics and /healthz."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from console.metrics import training_dashboard, window_days
from console.ops import health, metrics_access, ops_snapshot, render_prometheus
from console.present import dashboard_context

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@require_safe
@never_cache
def training_console(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    # Moderators and superusers only: training_dashboard raises PermissionDenied (403) otherwise.
    dash = training_dashboard(user=request.user, days=window_days(request.GET.get("days")))
    return render(request, "console/dashboard.html", dashboard_context(dash))


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    status = metrics_access(request)
    if status != 200:
        response = HttpResponse(
            "Unauthorized.\n" if status == 401 else "Forbidden.\n",
            status=status,
            content_type="text/plain; charset=utf-8",
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render_prometheus(ops_snapshot()), content_type=PROMETHEUS_CONTENT_TYPE)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    ok, body = health()
    return JsonResponse(body, status=200 if ok else 503)
