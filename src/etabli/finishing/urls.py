"""Finishing pages, under /finishing/."""

from django.urls import path

from . import views

app_name = "finishing"

urlpatterns = [
    path("hallmarks/", views.hallmarks, name="hallmarks"),
    path("pieces/<int:piece_id>/record/<str:operation>/", views.record, name="record"),
    path("pieces/<int:piece_id>/waive/", views.waive, name="waive"),
    path("pieces/<int:piece_id>/assay-step/", views.assay_step, name="assay_step"),
]
