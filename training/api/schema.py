"""drf-spectacular post-processing: say in the schema what the serializers enforce."""

from __future__ import annotations

from typing import Any


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def strict_request_bodies(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """Request bodies of StrictSerializer refuse unknown keys: declare additionalProperties false."""
    from training.api.serializers import StrictSerializer

    names = {cls.__name__.removesuffix("Serializer") for cls in _subclasses(StrictSerializer)}
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.removesuffix("Request") in names and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


def api_only(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """The schema describes the JSON API under /api/; pages and ops endpoints are not in it."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/")]
