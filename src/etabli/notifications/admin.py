"""Read-only views for administrators: changes go through the inbox, preferences and webhook
pages and API."""

from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import Notification, OutgoingEmail, WebhookDelivery, WebhookSubscription


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("kind", "recipient", "created_at", "read_at")
    list_filter = ("kind",)


@admin.register(OutgoingEmail)
class OutgoingEmailAdmin(ReadOnlyAdmin):
    list_display = ("recipient", "kind", "status", "attempts", "subject", "sent_at")
    list_filter = ("status", "kind")


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyAdmin):
    list_display = ("name", "url", "active")
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("uid", "subscription", "event", "status", "attempts", "last_status_code")
    list_filter = ("status", "event")
