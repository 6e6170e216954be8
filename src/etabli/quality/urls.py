"""Quality pages under /quality/."""

from django.urls import path

from . import views

app_name = "quality"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("inspections/", views.inspection_list, name="inspections"),
    path("pieces/<int:piece_id>/inspect/", views.inspect, name="inspect"),
    path("inspections/<int:inspection_id>/", views.inspection_page, name="inspection"),
    path("inspections/<int:inspection_id>/preview/", views.preview, name="preview"),
    path("inspections/<int:inspection_id>/photos/", views.photo_add, name="photo_add"),
    path("inspections/<int:inspection_id>/photos/<int:photo_id>/remove/", views.photo_remove,
         name="photo_remove"),
    path("inspections/<int:inspection_id>/sign/", views.sign, name="sign"),
    path("inspections/<int:inspection_id>/discard/", views.discard, name="discard"),
    path("inspections/<int:inspection_id>/sheet.pdf", views.sheet, name="sheet"),
    path("nonconformities/", views.nonconformity_list, name="nonconformities"),
    path("nonconformities/<int:nc_id>/", views.nonconformity_page, name="nonconformity"),
    path("nonconformities/<int:nc_id>/rework/", views.nonconformity_rework, name="nc_rework"),
    path("templates/", views.template_list, name="templates"),
    path("templates/<int:template_id>/", views.template_page, name="template"),
]
