"""The client portal (mounted at /portal/): client contacts only."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.orders, name="orders"),
    path("<int:order_id>/", views.order_detail, name="order"),
    path("<int:order_id>/confirm-reception/", views.confirm_reception, name="confirm_reception"),
]
