"""Thin views: the moderator dashboard, /metrics and /healthz."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from console.metrics import training_dashboard, window_days
from console.ops import has_metrics_token, health, metrics_access, render_prometheus
from console.present import dashboard_context


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
    return HttpResponse(render_prometheus(), content_type=CONTENT_TYPE_LATEST)


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    # Details (timings, error text, which may name hosts) for staff and the metrics scraper only.
    detailed = bool(request.user.is_authenticated and request.user.is_staff) or has_metrics_token(
        request
    )
    status, body = health(detailed=detailed)
    return JsonResponse(body, status=status)
