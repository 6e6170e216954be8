"""Pages for CAD → weight, under /cad/."""

from django.urls import path

from . import cad_views

app_name = "cad"

urlpatterns = [
    path("upload/", cad_views.cad_upload_page, name="upload"),
    path("<int:document_id>/", cad_views.cad_page, name="page"),
    path("<int:document_id>/mesh", cad_views.cad_mesh, name="mesh"),
    path("<int:document_id>/analyse/", cad_views.cad_analyse, name="analyse"),
    path("<int:document_id>/stones/", cad_views.cad_stone_count, name="stones"),
    path("<int:document_id>/apply-weight/", cad_views.cad_apply_weight, name="apply_weight"),
    path("pieces/<int:piece_id>/theoretical-weight/", cad_views.piece_weight,
         name="piece_weight"),
]
