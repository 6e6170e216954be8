"""House pages for stones (mounted at /stones/)."""

from django.urls import path

from . import stone_views as views

app_name = "stones"

urlpatterns = [
    path("", views.lot_list, name="lots"),
    path("receive/", views.lot_receive, name="receive"),
    path("breakage/", views.breakage_rates, name="breakage"),
    path("<int:lot_id>/", views.lot_detail, name="lot"),
    path("<int:lot_id>/allocate/", views.lot_allocate, name="allocate"),
    path("<int:lot_id>/allocations/<int:allocation_id>/release/", views.allocation_release,
         name="release"),
    path("<int:lot_id>/issue/", views.lot_issue, name="issue"),
    path("<int:lot_id>/breakage/", views.lot_breakage, name="record_breakage"),
]
