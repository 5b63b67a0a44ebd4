from django.urls import path

from training.api import features as api

urlpatterns = [
    path("features/", api.FeatureListView.as_view(), name="features-list"),
    path("features/<str:key>/", api.FeaturePreferenceView.as_view(), name="features-detail"),
]
