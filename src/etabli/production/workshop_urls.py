"""The workshop portal (mounted at /workshop/): workshop members only."""

from django.urls import path

from . import workshop_views as views

app_name = "workshop"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("scan/", views.scan, name="scan"),
    path("find/", views.find, name="find"),
    path("pieces/<int:piece_id>/", views.piece_detail, name="piece"),
    path("pieces/<int:piece_id>/act/<slug:action>/", views.act, name="act"),
]
