"""NUL bytes are never meaningful in this service's input, and PostgreSQL refuses them in text:
a NUL in a query string, a header or a form body is answered 400 before any view reads it,
instead of a 500 deep in the ORM. JSON bodies are checked by websafety.parsers (their NULs
arrive escaped as \\u0000); multipart bodies are left to the upload handlers and form fields
(Django's and DRF's CharFields refuse NULs), since reading them here would buffer the upload."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

NUL = b"\x00"


def _has_nul(raw: str) -> bool:
    # Percent-decoded, so %00 is found, and the raw text, so a literal NUL is too.
    return "\x00" in raw or NUL in unquote_to_bytes(raw)


def nul_byte_problem(request: HttpRequest) -> str | None:
    """Where a NUL byte sits in the request, or None."""
    if "\x00" in request.path_info:
        return "The address contains a NUL byte."
    if _has_nul(request.META.get("QUERY_STRING", "")):
        return "The query string contains a NUL byte."
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            header = key[5:].replace("_", "-").title()
            return f"The {header} header contains a NUL byte."
    if request.content_type == "application/x-www-form-urlencoded" and request.method in (
        "POST", "PUT", "PATCH",
    ):  # fmt: skip
        # Bounded by DATA_UPLOAD_MAX_MEMORY_SIZE, which Django applies to request.body.
        if NUL in request.body or NUL in unquote_to_bytes(request.body.replace(b"+", b" ")):
            return "The form contains a NUL byte."
    return None


def bad_request(request: HttpRequest, message: str, *, code: str = "invalid") -> HttpResponse:
    """A 400 in the API's error shape (training/api/errors.py) under /api/, a page elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"code": code, "message": message, "errors": []}, status=400)
    html = render_to_string("400.html", {"message": message}, request=None)
    return HttpResponse(html, status=400)


class RefuseNulBytesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = nul_byte_problem(request)
        if problem is not None:
            return bad_request(request, problem, code="nul_byte")
        return self.get_response(request)
