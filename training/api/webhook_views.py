"""Webhook endpoints of the API: the user's signing secret and a run's delivery log."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from training.api.views import COMMON, E404, _own_run
from training.webhooks.services import delivery_log, webhook_secret_get, webhook_secret_rotate


class WebhookSecretSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text="whsec_…: verify each delivery's webhook-signature.")


class WebhookAttemptSerializer(serializers.Serializer[Any]):
    webhookId = serializers.CharField(source="delivery.id", help_text="The webhook-id header.")
    event = serializers.CharField(source="delivery.event")
    attempt = serializers.IntegerField(source="number")
    statusCode = serializers.IntegerField(source="status_code", allow_null=True)
    error = serializers.CharField(help_text="Why it did not arrive (timeout, connection), or ''.")
    at = serializers.DateTimeField()
    deliveryState = serializers.CharField(
        source="delivery.state", help_text="pending (will be retried), delivered or failed."
    )


class WebhookSecretView(APIView):
    @extend_schema(
        responses={200: WebhookSecretSerializer, **COMMON},
        summary="Your webhook signing secret (made on first use)",
        operation_id="webhooks_secret_get",
    )
    def get(self, request: Request) -> Response:
        return Response({"key": webhook_secret_get(user=request.user).key})


class WebhookSecretRotateView(APIView):
    @extend_schema(
        request=None,
        responses={200: WebhookSecretSerializer, **COMMON},
        summary="Replace your webhook signing secret; every delivery from now on uses the new one",
        operation_id="webhooks_secret_rotate",
    )
    def post(self, request: Request) -> Response:
        return Response({"key": webhook_secret_rotate(user=request.user).key})


class RunWebhookDeliveriesView(APIView):
    @extend_schema(
        responses={200: WebhookAttemptSerializer(many=True), 404: E404, **COMMON},
        summary="The run's webhook delivery log: every attempt, oldest first",
        operation_id="training_runs_webhook_deliveries",
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = _own_run(request, run_id)
        return Response(WebhookAttemptSerializer(delivery_log(run.pk), many=True).data)
