from django.urls import path

from . import printing_views, views

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/", views.order_new, name="new"),
    path("<int:order_id>/", views.order_detail, name="detail"),
    path("<int:order_id>/edit/<str:step>/", views.order_edit, name="edit"),
    path("<int:order_id>/cancel/", views.order_cancel, name="cancel"),
    path("<int:order_id>/documents/", views.order_documents, name="documents"),
    path("<int:order_id>/launch-sheet.pdf", printing_views.launch_sheet, name="launch_sheet"),
    path("<int:order_id>/lines/<int:line_id>/technical-sheet.pdf",
         printing_views.line_technical_sheet, name="line_technical_sheet"),
    path("<int:order_id>/change-requests/", views.change_request_new,
         name="change_request_new"),
    path("<int:order_id>/change-requests/<int:cr_id>/assess/", views.change_request_assess,
         name="change_request_assess"),
    path("<int:order_id>/change-requests/<int:cr_id>/decide/", views.change_request_decide,
         name="change_request_decide"),
]
