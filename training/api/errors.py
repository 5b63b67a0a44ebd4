"""One error format for every API response: {code, message, errors: [{field, code, message}]}.

A 400 lists every problem with its field path (`params.modelVariant`, `samplePrompts[0]`)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from training.runspec import FeatureNotActive, RunRejected


class FieldErrorSerializer(serializers.Serializer[Any]):
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    errors = FieldErrorSerializer(many=True)  # type: ignore[assignment]  # schema only


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                path = prefix
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(_flatten(value, path))
    elif isinstance(detail, list):
        for item in detail:
            out.extend(_flatten(item, prefix))
    else:
        code = getattr(detail, "code", "invalid") or "invalid"
        out.append({"field": prefix or None, "code": str(code), "message": str(detail)})
    return out


def _body(code: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "errors": errors or []}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RunRejected):
        exc = exceptions.ValidationError(_group({}, exc.problems))
    if isinstance(exc, FeatureNotActive):
        return Response(
            _body("feature_not_active", exc.message, [
                {"field": "engine", "code": "feature_not_active", "message": exc.message}
            ]),
            status=status.HTTP_403_FORBIDDEN,
        )  # fmt: skip
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        count = len(errors)
        message = errors[0]["message"] if count == 1 else f"{count} problems; see errors."
        response.data = _body("invalid", message, errors)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else str(_flatten(detail))
        code = getattr(detail, "code", None) or exc.default_code
        response.data = _body(str(code), message)
    return response


def _group(existing: dict[str, list[Any]], problems: list[Any]) -> dict[str, list[Any]]:
    for p in problems:
        existing.setdefault(p.field, []).append(exceptions.ErrorDetail(p.message, code=p.code))
    return existing
