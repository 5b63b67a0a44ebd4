"""GET /api/v1/features/ and PUT /api/v1/features/{key}/ (JSON, camelCase)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from flags.gates import feature_state, feature_states
from flags.registry import FEATURES, UnknownFeature, feature_get
from flags.services import FeatureNotAvailable, FeatureNotToggleable, preference_set
from training.api.errors import ErrorSerializer


class UnknownFeatureError(NotFound):
    default_code = "unknown_feature"


class FeatureNotAvailableError(PermissionDenied):
    default_code = "feature_not_available"


class FeatureNotToggleableError(PermissionDenied):
    default_code = "feature_not_toggleable"


class StrictBooleanField(serializers.BooleanField):
    """JSON true/false only: DRF's BooleanField would also take "yes", "on", 1, "1"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid")
        raise AssertionError("unreachable")


class ToggleableFeatureSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    displayName = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()


class FeatureListSerializer(serializers.Serializer[Any]):
    active = serializers.ListField(
        child=serializers.CharField(), help_text="Keys of the features active for the caller."
    )
    toggleable = ToggleableFeatureSerializer(
        many=True, help_text="Toggleable features available to the caller, with their choice."
    )


class PreferenceInputSerializer(serializers.Serializer[Any]):
    enabled = StrictBooleanField()


class PreferenceOutputSerializer(ToggleableFeatureSerializer):
    active = serializers.BooleanField()


def _toggleable_item(key: str, enabled: bool) -> dict[str, Any]:
    feature = FEATURES[key]
    return {
        "key": key,
        "displayName": feature.display_name,
        "description": feature.description,
        "enabled": enabled,
    }


_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not logged in."),
}


class FeatureListView(APIView):
    @extend_schema(
        operation_id="features_list",
        summary="The caller's active features and their toggleable ones",
        responses={200: FeatureListSerializer, **_ERRORS},
        tags=["features"],
    )
    def get(self, request: Request) -> Response:
        states = feature_states(request.user)
        body = {
            "active": [key for key, state in states.items() if state.active],
            "toggleable": [
                _toggleable_item(key, bool(state.enabled_preference))
                for key, state in states.items()
                if state.toggleable and state.available
            ],
        }
        return Response(FeatureListSerializer(body).data)


class FeaturePreferenceView(APIView):
    @extend_schema(
        operation_id="features_set_preference",
        summary="Switch a toggleable feature on or off for the caller",
        request=PreferenceInputSerializer,
        responses={
            200: PreferenceOutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="`enabled` missing or not a boolean."
            ),
            **_ERRORS,
            403: OpenApiResponse(
                ErrorSerializer,
                description="The feature is not available to the caller, or not toggleable.",
            ),
            404: OpenApiResponse(ErrorSerializer, description="No feature with this key."),
        },
        tags=["features"],
    )
    def put(self, request: Request, key: str) -> Response:
        try:
            feature_get(key)
        except UnknownFeature as exc:
            raise UnknownFeatureError(str(exc)) from None
        serializer = PreferenceInputSerializer(data=request.data)
        if not serializer.is_valid():
            raise ValidationError(serializer.errors)
        enabled: bool = serializer.validated_data["enabled"]
        try:
            preference_set(user=request.user, key=key, enabled=enabled)
        except FeatureNotToggleable as exc:
            raise FeatureNotToggleableError(str(exc)) from None
        except FeatureNotAvailable as exc:
            raise FeatureNotAvailableError(str(exc)) from None
        state = feature_state(request.user, key)
        body = {**_toggleable_item(key, enabled), "active": state.active}
        return Response(PreferenceOutputSerializer(body).data)
