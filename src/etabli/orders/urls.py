from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("", views.order_list, name="list"),
    path("new/", views.order_new, name="new"),
    path("<int:order_id>/", views.order_detail, name="detail"),
    path("<int:order_id>/edit/<str:step>/", views.order_edit, name="edit"),
    path("<int:order_id>/cancel/", views.order_cancel, name="cancel"),
    path("<int:order_id>/documents/", views.order_documents, name="documents"),
    path("<int:order_id>/change-requests/", views.change_request_new,
         name="change_request_new"),
    path("<int:order_id>/change-requests/<int:cr_id>/assess/", views.change_request_assess,
         name="change_request_assess"),
    path("<int:order_id>/change-requests/<int:cr_id>/decide/", views.change_request_decide,
         name="change_request_decide"),
]
