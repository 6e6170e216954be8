"""Notification pages under /inbox/."""

from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("read-all/", views.read_all, name="read_all"),
    path("<int:notification_id>/read/", views.read, name="read"),
    path("<int:notification_id>/open/", views.open_notification, name="open"),
    path("preferences/", views.preferences, name="preferences"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<int:subscription_id>/", views.webhook, name="webhook"),
    path("webhooks/deliveries/<int:delivery_id>/retry/", views.delivery_retry,
         name="delivery_retry"),
]
