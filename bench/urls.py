"""The project's URLs plus the baseline endpoint bench/submit_api.py measures against."""

from django.urls import URLPattern, URLResolver, path

from bench.baseline import BenchBaselineView
from config.urls import urlpatterns as project

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/bench/baseline/", BenchBaselineView.as_view(), name="bench-baseline"),
    *project,
]
