from django.urls import URLPattern, path

from training.web import experiments as views

app_name = "experiments"

urlpatterns: list[URLPattern] = [
    path("", views.experiment_list, name="list"),
    path("<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("<int:experiment_id>/promote/", views.experiment_promote, name="promote"),
    path(
        "overrides/<int:override_id>/rollback/", views.override_rollback, name="override-rollback"
    ),
]
