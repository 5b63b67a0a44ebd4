from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    # Pages link the icon themselves; this answers browsers and tools that ask the old address.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns: list[URLPattern | URLResolver] = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("training.api.urls")),
    path("api/v1/", include("training.api.feature_urls")),
    path("mod/experiments/", include("training.web.experiment_urls")),
    path("mod/", include("console.urls")),  # moderator console
    path(
        "", include("console.ops_urls")
    ),  # /metrics and /healthz  # moderator console and ops endpoints
    path("", include("training.web.urls")),  # the pages
]
