"""House pages for pieces: the dashboard, the piece list and page, actions, job bags."""

from django.urls import path

from . import printing_views, views

app_name = "production"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/board/", views.dashboard_board, name="dashboard_board"),
    path("pieces/", views.piece_list_page, name="pieces"),
    path("pieces/<int:piece_id>/", views.piece_page, name="piece"),
    path("pieces/<int:piece_id>/act/<str:action>/", views.piece_action, name="piece_action"),
    path("pieces/<int:piece_id>/job-bag.pdf", views.job_bag, name="job_bag"),
    path("pieces/<int:piece_id>/technical-sheet.pdf", printing_views.piece_technical_sheet,
         name="piece_technical_sheet"),
    path("orders/<int:order_id>/job-bags.pdf", views.order_job_bags, name="order_job_bags"),
    path("transfers/<int:transfer_id>/slip.pdf", printing_views.transfer_slip,
         name="transfer_slip"),
    path("p/<str:serial>/", views.scan_serial, name="scan_serial"),
]
