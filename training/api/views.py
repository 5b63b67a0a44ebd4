"""Thin API views: parse with a serializer, call one service or selector, render."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict
from datetime import datetime
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import authenticate
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import APIException, NotFound, Throttled
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from training import lifecycle, progress, selectors, services
from training.api.conditional import conditional
from training.api.errors import ErrorSerializer
from training.api.serializers import (
    CatalogSerializer,
    PreviewSerializer,
    RunCreatedSerializer,
    RunDetailSerializer,
    RunInputSerializer,
    RunPageSerializer,
    RunSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from training.api.throttling import AtomicScopedRateThrottle
from training.idempotency import KeyConflict, with_idempotency
from training.models import RunStatus, TrainingRun
from training.orchestrator.callbacks import callback_token_valid, callback_tokens_redacted
from training.webhooks.services import run_webhook_set
from vocabulary import catalog
from websafety.lockout import cooloff_seconds, lockout_message

E400 = OpenApiResponse(ErrorSerializer, description="Invalid input: every problem with its field.")
E401 = OpenApiResponse(ErrorSerializer, description="Not logged in.")
E403 = OpenApiResponse(ErrorSerializer, description="Not allowed (e.g. AI Toolkit not enabled).")
E409 = OpenApiResponse(ErrorSerializer, description="Conflict with the current state or request.")
E422 = OpenApiResponse(ErrorSerializer, description="Idempotency-Key reused with another body.")
E429 = OpenApiResponse(
    ErrorSerializer, description="Too many requests, or too many active runs (see Retry-After)."
)
E404 = OpenApiResponse(ErrorSerializer, description="No such run among yours.")
COMMON = {401: E401}
NOT_MODIFIED = OpenApiResponse(
    description="Unchanged since the ETag given in If-None-Match (clock-only fields aside)."
)
NOT_MODIFIED_PARAM = OpenApiParameter(
    "If-None-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag of an earlier answer: 304 with no body if nothing changed since.",
)


class Unauthorized(APIException):
    # Not AuthenticationFailed: DRF turns that into 403 for views without authenticators.
    status_code = 401
    default_code = "not_authenticated"


class RunCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    max_page_size = 100
    page_size_query_param = "pageSize"

    def decode_cursor(self, request: Request) -> Any:
        invalid = serializers.ValidationError(
            {"cursor": ["Invalid cursor; use the next/previous links from a listing."]}
        )
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            # A cursor we did not issue is bad input, not a missing resource.
            raise invalid from None
        # The cursor's position is compared with created_at: anything but a timestamp (a forged
        # `p=notadate`) would fail in the database instead of here.
        if cursor is not None and cursor.position is not None:
            try:
                parsed = datetime.fromisoformat(str(cursor.position))
            except ValueError:
                raise invalid from None
            if parsed.tzinfo is None:
                raise invalid
        return cursor


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_scope = "auth_token"  # slows password guessing, per address
    throttle_classes = [AtomicScopedRateThrottle]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, 400: E400, 401: E401, 429: E429},
        summary="Exchange a username and password for an API token",
    )
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        credentials = {"username": data.validated_data["username"]}
        user = authenticate(request, password=data.validated_data["password"], **credentials)
        if user is None and AxesProxyHandler.is_locked(request, credentials):
            # django-axes counted this failure and the account or address is now locked out.
            raise Throttled(wait=cooloff_seconds(), detail=lockout_message(), code="login_locked")
        if user is None or not user.is_active:
            raise Unauthorized("Wrong username or password.", code="wrong_credentials")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class TrainingRunListCreateView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s.value for s in RunStatus]),
            OpenApiParameter("engine", str, enum=list(catalog.ENGINES)),
            OpenApiParameter("cursor", str),
            OpenApiParameter("pageSize", int),
            NOT_MODIFIED_PARAM,
        ],
        responses={200: RunPageSerializer, 304: NOT_MODIFIED, 400: E400, **COMMON},
        summary="Your training runs, newest first",
        operation_id="training_runs_list",
    )
    def get(self, request: Request) -> Response:
        runs = selectors.training_run_list(
            user=request.user,
            status=request.query_params.get("status") or None,
            engine=request.query_params.get("engine") or None,
        )
        paginator = RunCursorPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        listing = paginator.get_paginated_response(RunSerializer(page, many=True).data)
        return conditional(request, listing.data)

    throttle_scope = "run_create"

    def get_throttles(self) -> list[Any]:
        return [AtomicScopedRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        request=RunInputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Replays the first response for the same key and body (kept 24 h).",
            )
        ],
        responses={
            201: RunCreatedSerializer, 400: E400, 403: E403, 409: E409, 422: E422, 429: E429,
            **COMMON,
        },
        summary="Create a training run",
        operation_id="training_runs_create",
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return Response(self._create(request)[1], status=status.HTTP_201_CREATED)
        try:
            replay = with_idempotency(
                owner=request.user, key=key, data=request.data, create=lambda: self._create(request)
            )
        except KeyConflict as exc:
            return Response(
                {"code": exc.code, "message": exc.message, "errors": []}, status=exc.status
            )
        return Response(replay.body, status=replay.status)

    def _create(self, request: Request) -> tuple[int, Any, TrainingRun]:
        data = RunInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        hook = data.validated_data["webhook"]
        # With a webhook, one transaction around both, so it exists before the run can be
        # submitted; without one, the create's own transaction is all there is (an outer block
        # would turn it into a savepoint: two more round trips on every create).
        block = transaction.atomic() if hook["url"] else nullcontext()
        try:
            with block:
                run = services.training_run_create(
                    owner=request.user, spec=data.validated_data["spec"]
                )
                if hook["url"]:
                    run_webhook_set(run=run, url=hook["url"], events=hook["events"])
        except services.ActiveRunLimit as exc:
            raise TooManyActiveRuns(str(exc)) from exc
        return status.HTTP_201_CREATED, RunCreatedSerializer(run).data, run


class TrainingRunDetailView(APIView):
    @extend_schema(
        parameters=[NOT_MODIFIED_PARAM],
        responses={200: RunDetailSerializer, 304: NOT_MODIFIED, 404: E404, **COMMON},
        summary="One run",
        operation_id="training_runs_get",
    )
    def get(self, request: Request, run_id: str) -> Response:
        # Signed output links expire: fetch fresh ones first when they are about to.
        run = lifecycle.run_outputs_fresh(_own_run(request, run_id))
        return conditional(request, RunDetailSerializer(run).data)


class TrainingRunPreviewView(APIView):
    @extend_schema(
        request=RunInputSerializer,
        responses={200: PreviewSerializer, 400: E400, 403: E403, **COMMON},
        summary="The exact workflow a run would send, without creating it",
        operation_id="training_runs_preview",
    )
    def post(self, request: Request) -> Response:
        data = RunInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        spec = data.validated_data["spec"]
        return Response(
            {
                "workflow": callback_tokens_redacted(services.training_run_preview(spec=spec)),
                "params": spec.params,
                "engine": spec.engine,
                "ecosystem": spec.ecosystem,
                "modelVariant": spec.model_variant,
            }
        )


class TrainingCatalogView(generics.GenericAPIView[Any]):
    serializer_class = CatalogSerializer

    @extend_schema(
        responses={200: CatalogSerializer, **COMMON},
        summary="Base models, engines, parameters",
        operation_id="training_catalog",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.training_catalog(user=request.user))


class EstimateSerializer(serializers.Serializer[Any]):
    cost = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    jobsAhead = serializers.IntegerField(allow_null=True)
    etaMinutes = serializers.FloatField(allow_null=True)
    workflow = serializers.DictField()
    warnings = serializers.ListField(child=serializers.CharField())
    cached = serializers.BooleanField()


E503 = OpenApiResponse(ErrorSerializer, description="The orchestrator is unavailable; retry.")


class ServiceUnavailable(APIException):
    status_code = 503
    default_code = "orchestrator_unavailable"
    default_detail = "The orchestrator is unavailable; try again shortly."


class TooManyActiveRuns(APIException):
    status_code = 429
    default_code = "too_many_active_runs"


class Conflict(APIException):
    status_code = 409
    default_code = "conflict"


def _own_run(request: Request, run_id: str) -> TrainingRun:
    try:
        return selectors.training_run_get(user=request.user, run_id=run_id)
    except TrainingRun.DoesNotExist:
        raise NotFound("No such training run among yours.") from None


class TrainingRunEstimateView(APIView):
    throttle_scope = "run_estimate"
    throttle_classes = [AtomicScopedRateThrottle]

    @extend_schema(
        request=RunInputSerializer,
        responses={200: EstimateSerializer, 400: E400, 403: E403, 429: E429, 503: E503, **COMMON},
        summary="Price, queue and ETA from the orchestrator for this run, without creating it",
    )
    def post(self, request: Request) -> Response:
        data = RunInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        try:
            estimate = services.training_run_estimate(spec=data.validated_data["spec"])
        except services.OrchestratorUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc
        answer = asdict(estimate)
        return Response({**answer, "workflow": callback_tokens_redacted(answer["workflow"])})


class TrainingRunCancelView(APIView):
    @extend_schema(
        request=None,
        responses={200: RunDetailSerializer, 404: E404, 409: E409, 503: E503, **COMMON},
        summary="Cancel a run (here if pending, at the orchestrator once submitted)",
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = _own_run(request, run_id)
        try:
            run = services.training_run_cancel(run=run)
        except services.RunConflict as exc:
            raise Conflict(str(exc)) from exc
        except services.OrchestratorUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from exc
        return Response(RunDetailSerializer(run).data)


class TrainingRunRetryView(APIView):
    @extend_schema(
        request=None,
        responses={
            201: RunDetailSerializer,
            400: E400,
            403: E403,
            404: E404,
            409: E409,
            429: E429,
            **COMMON,
        },
        summary="Start a new run with the configuration of a failed, expired or canceled one",
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = _own_run(request, run_id)
        try:
            new_run = services.training_run_retry(run=run, user=request.user)
        except services.RunConflict as exc:
            raise Conflict(str(exc)) from exc
        except services.ActiveRunLimit as exc:
            raise TooManyActiveRuns(str(exc)) from exc
        return Response(RunDetailSerializer(new_run).data, status=status.HTTP_201_CREATED)


WORKFLOW_STATUSES = tuple(lifecycle.FROM_ORCHESTRATOR)


class CallbackSerializer(serializers.Serializer[Any]):
    workflowId = serializers.CharField(max_length=128)
    status = serializers.ChoiceField(choices=list(WORKFLOW_STATUSES))
    progress = serializers.FloatField(required=False, allow_null=True, min_value=0)


CALLBACK_SOURCES = ("workflow", "step", "job")  # the event's `$type`; "workflow" when absent


class CallbackAckSerializer(serializers.Serializer[Any]):
    result = serializers.CharField()


class OrchestratorCallbackView(APIView):
    """Authenticated by the per-run token in its URL, not by a login (the orchestrator has none)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=CallbackSerializer,
        parameters=[OpenApiParameter("token", str, required=True)],
        responses={200: CallbackAckSerializer, 400: E400, 401: E401, 429: E429},
        summary="Orchestrator workflow events (callbacks)",
    )
    def post(self, request: Request, run_id: str) -> Response:
        if not callback_token_valid(run_id, request.query_params.get("token")):
            raise Unauthorized("Missing or wrong callback token.", code="bad_callback_token")
        event = CallbackSerializer(data=request.data)  # unknown keys are ignored on purpose
        event.is_valid(raise_exception=True)
        kind = request.data.get("$type") if isinstance(request.data, dict) else None
        try:
            result = progress.callback_receive(
                run_id=run_id,
                workflow_id=event.validated_data["workflowId"],
                status=event.validated_data["status"],
                source=kind if kind in CALLBACK_SOURCES else "workflow",
                progress=event.validated_data.get("progress"),
            )
        except progress.RateLimited:
            return Response(
                {"code": "callback_rate", "message": "Too many callbacks for this run.",
                 "errors": []},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": "60"},
            )  # fmt: skip
        return Response({"result": result})
