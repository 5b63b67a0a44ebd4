"""The pages, included at the site root by config/urls.py."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, path

from training.web import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("train/new", views.new_run, name="page-train-new"),
    path("train/estimate", views.EstimateView.as_view(), name="page-train-estimate"),
    path("train/upload", views.UploadView.as_view(), name="page-train-upload"),
    path(
        "train/data/<str:key>/<int:index>.webp",
        views.data_thumbnail,
        name="page-train-thumbnail",
    ),
    path("runs/", views.run_list, name="page-runs"),
    path("runs/<uuid:run_id>", views.run_detail, name="page-run"),
    path("runs/<uuid:run_id>/cancel", views.run_cancel, name="page-run-cancel"),
    path("runs/<uuid:run_id>/retry", views.run_retry, name="page-run-retry"),
    path("settings/features", views.features, name="page-features"),
    # The same page with a trailing slash: either spelling works.
    path("settings/features/", views.features),
]

if settings.DEBUG:
    # Development only: uploaded training zips (the orchestrator downloads them from here) and
    # static files under gunicorn. Production serves both from the storage / a proxy.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
    urlpatterns += staticfiles_urlpatterns()
