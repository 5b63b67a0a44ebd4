from django.urls import path

from training.api import views

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("training-runs/", views.TrainingRunListCreateView.as_view(), name="run-list"),
    path("training-runs/preview/", views.TrainingRunPreviewView.as_view(), name="run-preview"),
    path("training-runs/<uuid:run_id>/", views.TrainingRunDetailView.as_view(), name="run-detail"),
    path("training-catalog/", views.TrainingCatalogView.as_view(), name="training-catalog"),
]
