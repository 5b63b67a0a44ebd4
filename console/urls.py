from django.urls import URLPattern, URLResolver, path

from console import views

# Included under mod/ by config/urls.py.
urlpatterns: list[URLPattern | URLResolver] = [
    path("training/", views.training_console, name="console-training"),
]
