from django.urls import path

from training.api import views, webhook_views

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("training-runs/", views.TrainingRunListCreateView.as_view(), name="run-list"),
    path("training-runs/preview/", views.TrainingRunPreviewView.as_view(), name="run-preview"),
    path("training-runs/estimate/", views.TrainingRunEstimateView.as_view(), name="run-estimate"),
    path("training-runs/<uuid:run_id>/", views.TrainingRunDetailView.as_view(), name="run-detail"),
    path(
        "training-runs/<uuid:run_id>/cancel/",
        views.TrainingRunCancelView.as_view(),
        name="run-cancel",
    ),
    path(
        "training-runs/<uuid:run_id>/retry/", views.TrainingRunRetryView.as_view(), name="run-retry"
    ),
    path(
        "training-runs/<uuid:run_id>/webhook-deliveries/",
        webhook_views.RunWebhookDeliveriesView.as_view(),
        name="run-webhook-deliveries",
    ),
    path("webhooks/secret/", webhook_views.WebhookSecretView.as_view(), name="webhook-secret"),
    path(
        "webhooks/secret/rotate/",
        webhook_views.WebhookSecretRotateView.as_view(),
        name="webhook-secret-rotate",
    ),
    path("training-catalog/", views.TrainingCatalogView.as_view(), name="training-catalog"),
    path(
        "orchestrator/callbacks/<uuid:run_id>/",
        views.OrchestratorCallbackView.as_view(),
        name="orchestrator-callback",
    ),
]
