from django.urls import path

from . import views

app_name = "design"

urlpatterns: list = [
    path("", views.home, name="home"),
    path("lines/<int:line_id>/", views.line_page, name="line"),
    path("lines/<int:line_id>/brief/", views.brief_save, name="brief"),
    path("lines/<int:line_id>/rounds/", views.round_new, name="round_new"),
    path("rounds/<int:round_id>/edit/", views.round_edit, name="round_edit"),
    path("rounds/<int:round_id>/files/", views.round_file, name="round_file"),
    path("rounds/<int:round_id>/files/<int:document_id>/remove/", views.round_file_remove,
         name="round_file_remove"),
    path("rounds/<int:round_id>/send/", views.round_send, name="round_send"),
    path("rounds/<int:round_id>/decide/", views.round_decide, name="round_decide"),
    path("pieces/<int:piece_id>/prototype/", views.prototype_record, name="prototype"),
    path("portal/rounds/<int:round_id>/", views.portal_round, name="portal_round"),
    path("portal/rounds/<int:round_id>/decide/", views.portal_decide, name="portal_decide"),
]
