"""Notifications: /api/v1/notifications/... — my inbox, my preferences, and the webhooks
(administrators and production managers only; 404 for everybody else)."""

import datetime as dt
import uuid
from typing import Literal

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import StrictBool

from etabli.core.api import Pagination
from etabli.core.errors import NotFound

from . import rendering, selectors, services
from .models import DeliveryStatus, EmailMode, Event

router = Router(tags=["Notifications"])

EventName = Literal[tuple(Event.values)]  # type: ignore[valid-type]
EmailName = Literal[tuple(EmailMode.values)]  # type: ignore[valid-type]


# ---------------------------------------------------------------------------------------------
# the inbox


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str
    params: dict
    piece_id: int | None
    order_id: int | None
    workshop_id: int | None
    alert_id: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationPage(Schema):
    items: list[NotificationOut]
    count: int
    unread: int


class InboxQuery(Schema):
    unread: bool = False
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000_000)


def _out(n) -> dict:
    return {"id": n.pk, "kind": n.kind, "title": rendering.title(n), "body": rendering.body(n),
            "url": n.url, "params": n.params, "piece_id": n.piece_id, "order_id": n.order_id,
            "workshop_id": n.workshop_id, "alert_id": n.alert_id, "created_at": n.created_at,
            "read_at": n.read_at}


@router.get("/notifications", response=NotificationPage, summary="My inbox, newest first")
def list_notifications(request, q: Query[InboxQuery]):
    qs = selectors.inbox(request.auth, unread=q.unread)
    items = list(qs[q.offset:q.offset + q.limit])
    rendering.attach_alerts(items)
    with rendering.in_language_of(request.auth):
        out = [_out(n) for n in items]
    return {"items": out, "count": qs.count(),
            "unread": selectors.unread_count(request.auth)}


class UnreadOut(Schema):
    unread: int


@router.get("/notifications/unread-count", response=UnreadOut, summary="How many unread")
def unread_count(request):
    return {"unread": selectors.unread_count(request.auth)}


@router.post("/notifications/{notification_id}/read", response=NotificationOut,
             summary="Mark one notification read")
def read(request, notification_id: int):
    note = services.notification_read(actor=request.auth, notification_id=notification_id)
    with rendering.in_language_of(request.auth):
        return _out(note)


class ReadAllOut(Schema):
    marked: int


@router.post("/notifications/read-all", response=ReadAllOut, summary="Mark all read")
def read_all(request):
    return {"marked": services.notifications_read_all(actor=request.auth)}


# ---------------------------------------------------------------------------------------------
# preferences


class PreferenceOut(Schema):
    event: str
    label: str
    inbox: bool
    email: str


class PreferenceIn(Schema):
    event: EventName
    inbox: StrictBool
    email: EmailName


class PreferencesIn(Schema):
    preferences: list[PreferenceIn] = Field(min_length=1, max_length=20)


@router.get("/notifications/preferences", response=list[PreferenceOut],
            summary="My notification preferences, one per event")
def get_preferences(request):
    return [c.__dict__ for c in selectors.preferences_for(request.auth)]


@router.put("/notifications/preferences", response=list[PreferenceOut],
            summary="Set my preferences for the events listed (others unchanged)")
def put_preferences(request, payload: PreferencesIn):
    _set_all(request.auth, payload.preferences)
    return [c.__dict__ for c in selectors.preferences_for(request.auth)]


def _set_all(user, payload) -> None:
    from django.db import transaction

    with transaction.atomic():  # all or nothing
        for item in payload:
            services.preference_set(actor=user, event=item.event, inbox=item.inbox,
                                    email=item.email)


# ---------------------------------------------------------------------------------------------
# webhooks


def _webhook_admin(request) -> None:
    if not services.can_manage_webhooks(request.auth):
        raise NotFound(_("Not found."))


class WebhookOut(Schema):
    id: int
    name: str
    url: str
    events: list[str]
    active: bool
    secret: str
    owner_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookIn(Schema):
    name: str = Field(min_length=1, max_length=80)
    url: str = Field(min_length=1, max_length=500)
    events: list[EventName] = Field(min_length=1, max_length=10)
    secret: str | None = Field(None, max_length=128, description="16 to 128 characters; "
                                                                "made for you when left out")
    active: StrictBool = True


class WebhookPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=80)
    url: str | None = Field(None, min_length=1, max_length=500)
    events: list[EventName] | None = Field(None, min_length=1, max_length=10)
    active: StrictBool | None = None
    secret: str | None = Field(None, max_length=128)
    new_secret: StrictBool = False


class DeliveryOut(Schema):
    id: int
    uid: uuid.UUID
    subscription_id: int
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    payload: dict


class DeliveryQuery(Schema):
    status: Literal[tuple(DeliveryStatus.values)] | None = None  # type: ignore[valid-type]


@router.get("/notifications/webhooks", response=list[WebhookOut], summary="Webhooks")
@paginate(Pagination)
def list_webhooks(request):
    _webhook_admin(request)
    return selectors.webhooks_for(request.auth)


@router.post("/notifications/webhooks", response={201: WebhookOut}, summary="A new webhook")
def create_webhook(request, payload: WebhookIn):
    _webhook_admin(request)
    return 201, services.webhook_create(actor=request.auth, **payload.dict())


def _get_webhook(request, subscription_id: int):
    _webhook_admin(request)
    sub = selectors.webhook_get(request.auth, subscription_id)
    if sub is None:
        raise NotFound(_("No webhook with id %(id)s.") % {"id": subscription_id})
    return sub


@router.get("/notifications/webhooks/{subscription_id}", response=WebhookOut,
            summary="A webhook")
def get_webhook(request, subscription_id: int):
    return _get_webhook(request, subscription_id)


@router.patch("/notifications/webhooks/{subscription_id}", response=WebhookOut,
              summary="Change a webhook (new_secret=true makes a fresh secret)")
def update_webhook(request, subscription_id: int, payload: WebhookPatch):
    _webhook_admin(request)
    return services.webhook_update(actor=request.auth, subscription_id=subscription_id,
                                   **payload.dict(exclude_unset=True))


@router.delete("/notifications/webhooks/{subscription_id}", response={204: None},
               summary="Remove a webhook and its delivery log")
def delete_webhook(request, subscription_id: int):
    _webhook_admin(request)
    services.webhook_delete(actor=request.auth, subscription_id=subscription_id)
    return 204, None


@router.get("/notifications/webhooks/{subscription_id}/deliveries", response=list[DeliveryOut],
            summary="A webhook's delivery log, newest first")
@paginate(Pagination)
def list_deliveries(request, subscription_id: int, filters: Query[DeliveryQuery]):
    sub = _get_webhook(request, subscription_id)
    return selectors.deliveries_for(request.auth, sub.pk, filters.status)


@router.post("/notifications/webhooks/deliveries/{delivery_id}/retry", response=DeliveryOut,
             summary="Try a failed delivery again")
def retry_delivery(request, delivery_id: int):
    _webhook_admin(request)
    return services.webhook_delivery_retry(actor=request.auth, delivery_id=delivery_id)
