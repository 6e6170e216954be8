"""Reads for the inbox, the preferences and the webhooks, scoped to the person asking."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from . import services
from .models import (
    DEFAULT_EMAIL,
    DEFAULT_INBOX,
    Event,
    Notification,
    Preference,
    WebhookDelivery,
    WebhookSubscription,
)


def inbox(user, *, unread: bool = False) -> QuerySet[Notification]:
    """My inbox, newest first (call `rendering.attach_alerts` on a page before rendering)."""
    qs = Notification.objects.visible_to(user).inbox()
    if unread:
        qs = qs.unread()
    return qs.order_by("-created_at", "-id")


def unread_count(user) -> int:
    """One query: the header of every page shows it."""
    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return 0
    return Notification.objects.visible_to(user).inbox().unread().count()


@dataclass
class Choice:
    event: str
    label: str
    inbox: bool
    email: str


def preferences_for(user) -> list[Choice]:
    """Every event with my choice for it (the defaults where I have not chosen)."""
    mine = {p.event: p for p in Preference.objects.filter(user=user)}
    out = []
    for event in Event:
        pref = mine.get(event.value)
        out.append(Choice(event=event.value, label=str(event.label),
                          inbox=pref.inbox if pref else DEFAULT_INBOX,
                          email=pref.email if pref else str(DEFAULT_EMAIL)))
    return out


def webhooks_for(user) -> QuerySet[WebhookSubscription]:
    if not services.can_manage_webhooks(user):
        return WebhookSubscription.objects.none()
    return WebhookSubscription.objects.select_related("owner").order_by("name", "id")


def webhook_get(user, subscription_id: int) -> WebhookSubscription | None:
    return webhooks_for(user).filter(pk=subscription_id).first()


def deliveries_for(user, subscription_id: int | None = None,
                   status: str | None = None) -> QuerySet[WebhookDelivery]:
    if not services.can_manage_webhooks(user):
        return WebhookDelivery.objects.none()
    qs = WebhookDelivery.objects.select_related("subscription").order_by("-created_at", "-id")
    if subscription_id is not None:
        qs = qs.filter(subscription_id=subscription_id)
    if status:
        qs = qs.filter(status=status)
    return qs
