"""Thin API views: parse with a serializer, call one service or selector, render."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from training import selectors, services
from training.api.errors import ErrorSerializer
from training.api.serializers import (
    CatalogSerializer,
    PreviewSerializer,
    RunDetailSerializer,
    RunInputSerializer,
    RunSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from training.models import RunStatus, TrainingRun

E400 = OpenApiResponse(ErrorSerializer, description="Invalid input: every problem with its field.")
E401 = OpenApiResponse(ErrorSerializer, description="Not logged in.")
E403 = OpenApiResponse(ErrorSerializer, description="Not allowed (e.g. AI Toolkit not enabled).")
E404 = OpenApiResponse(ErrorSerializer, description="No such run among yours.")
COMMON = {401: E401}


class RunCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 20
    max_page_size = 100
    page_size_query_param = "pageSize"


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenSerializer, 400: E400, 401: E401},
        summary="Exchange a username and password for an API token",
    )
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if user is None or not user.is_active:
            raise AuthenticationFailed("Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class TrainingRunListCreateView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s.value for s in RunStatus]),
            OpenApiParameter("engine", str, enum=["kohya", "rapid", "musubi", "ai-toolkit"]),
            OpenApiParameter("cursor", str),
            OpenApiParameter("pageSize", int),
        ],
        responses={200: RunSerializer(many=True), **COMMON},
        summary="Your training runs, newest first",
    )
    def get(self, request: Request) -> Response:
        runs = selectors.training_run_list(
            user=request.user,
            status=request.query_params.get("status") or None,
            engine=request.query_params.get("engine") or None,
        )
        paginator = RunCursorPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(
        request=RunInputSerializer,
        responses={201: RunDetailSerializer, 400: E400, 403: E403, **COMMON},
        summary="Create a training run",
    )
    def post(self, request: Request) -> Response:
        data = RunInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        run = services.training_run_create(owner=request.user, spec=data.validated_data["spec"])
        return Response(RunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailView(APIView):
    @extend_schema(responses={200: RunDetailSerializer, 404: E404, **COMMON}, summary="One run")
    def get(self, request: Request, run_id: str) -> Response:
        try:
            run = selectors.training_run_get(user=request.user, run_id=run_id)
        except TrainingRun.DoesNotExist:
            raise NotFound("No such training run among yours.") from None
        return Response(RunDetailSerializer(run).data)


class TrainingRunPreviewView(APIView):
    @extend_schema(
        request=RunInputSerializer,
        responses={200: PreviewSerializer, 400: E400, 403: E403, **COMMON},
        summary="The exact workflow a run would send, without creating it",
    )
    def post(self, request: Request) -> Response:
        data = RunInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        spec = data.validated_data["spec"]
        return Response(
            {
                "workflow": services.training_run_preview(spec=spec),
                "params": spec.params,
                "engine": spec.engine,
                "ecosystem": spec.ecosystem,
                "modelVariant": spec.model_variant,
            }
        )


class TrainingCatalogView(generics.GenericAPIView[Any]):
    serializer_class = CatalogSerializer

    @extend_schema(responses={200: CatalogSerializer, **COMMON}, summary="Base models, engines, parameters")
    def get(self, request: Request) -> Response:
        return Response(selectors.training_catalog(user=request.user))
