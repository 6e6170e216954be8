"""The workshop portal's metal and stones (mounted at /workshop/materials/): members only."""

from django.urls import path

from . import workshop_views as views

app_name = "workshop_materials"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("slips/<int:slip_id>/", views.slip_detail, name="slip"),
    path("slips/<int:slip_id>/receive/", views.slip_receive, name="receive"),
    path("slips/<int:slip_id>/return/", views.slip_return, name="return"),
    path("slips/<int:slip_id>/tree-return/", views.tree_return, name="tree_return"),
    path("workshops/<int:workshop_id>/breakage/", views.breakage, name="breakage"),
]
