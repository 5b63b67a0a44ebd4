"""Baseline endpoint for bench/submit_api.py, mounted only by the benchmarks' own settings
(bench/settings.py, never the production ones): the floor of what creating a run must cost (authentication, one insert, one enqueue), to measure against."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from training.models import TrainingRun
from training.tasks import bench_noop_task


class BenchBaselineView(APIView):
    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        run = TrainingRun.objects.create(
            owner=request.user,  # type: ignore[misc]  # authenticated: IsAuthenticated
            base_model="sdxl",
            engine="kohya",
            training_data_url="https://bench.example/d.zip",
            image_count=1,
            lora_name="baseline",
            status="succeeded",  # never picked up by the reconciler
        )
        bench_noop_task.delay(str(run.pk))
        body: dict[str, Any] = {"id": str(run.pk)}
        return Response(body, status=status.HTTP_201_CREATED)
