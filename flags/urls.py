from django.urls import path

from flags import api

urlpatterns = [
    path("features/", api.FeatureListView.as_view(), name="features-list"),
    path("features/<str:key>/", api.FeaturePreferenceView.as_view(), name="features-detail"),
]
