from django.urls import URLPattern, URLResolver, path

from console import views

# Included at the root by config/urls.py: no login (load balancers, Prometheus).
urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics, name="ops-metrics"),
    path("healthz", views.healthz, name="ops-healthz"),
]
