"""What a locked-out login sees (django-axes' AXES_LOCKOUT_CALLABLE): a page saying when to
try again, or under /api/ the API's error shape (training/api/errors.py) with Retry-After."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string


def cooloff_seconds() -> int:
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message() -> str:
    minutes = max(1, round(cooloff_seconds() / 60))
    return (
        "Too many failed logins for this account or from this address. "
        f"Try again in {minutes} minutes, or reset your password with an administrator."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    wait = cooloff_seconds()
    response: HttpResponse
    if request.path_info.startswith("/api/"):
        response = JsonResponse(
            {"code": "login_locked", "message": lockout_message(), "errors": []}, status=429
        )
    else:
        html = render_to_string(
            "registration/locked_out.html", {"message": lockout_message()}, request=request
        )
        response = HttpResponse(html, status=429)
    response["Retry-After"] = str(wait)
    return response
