"""Page routes; config/urls.py includes them at the site root (`settings/features/`)."""

from django.urls import path

from flags import views

urlpatterns = [
    path("settings/features/", views.feature_settings, name="feature-settings"),
]
