"""ETag / If-None-Match for the run resources the pages poll: a weak validator over what the run
says, leaving out what only the clock changes (`elapsedSeconds`, `eta`), so an unchanged run
answers 304 with no body however often it is asked."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

CLOCK_FIELDS = ("elapsedSeconds", "eta")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in CLOCK_FIELDS}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def etag_of(data: Any) -> str:
    text = json.dumps(_stable(data), sort_keys=True, default=str, separators=(",", ":"))
    return f'W/"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


def conditional(request: Request, data: Any) -> Response:
    tag = etag_of(data)
    asked = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
    if tag in asked or tag.removeprefix("W/") in asked:
        response = Response(status=status.HTTP_304_NOT_MODIFIED)
    else:
        response = Response(data)
    response["ETag"] = tag
    response["Cache-Control"] = "private, no-cache"
    return response
