"""Notifications: who hears of what, on which channel, in their own language.

Events (`pieces_sent`, `alert_opened`) are called by other apps' services inside their
transaction. They store one `Notification` per person (rendered later in that person's
language), queue e-mails in the outbox and webhook deliveries for integrations; the
`notifications.deliver` job sends them once the change has committed.

Everyone else's writes here are the person's own inbox and preferences, and (administrators
and production managers only) the webhook subscriptions.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.accounts.models import Role, User
from etabli.core import audit
from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.workshops.models import StepKind, WorkshopKind

from .models import (
    DEFAULT_EMAIL,
    DEFAULT_INBOX,
    DeliveryStatus,
    EmailMode,
    Event,
    Notification,
    OutgoingEmail,
    Preference,
    WebhookDelivery,
    WebhookSubscription,
)

# Who at the house hears that pieces are coming back for a step the house runs itself.
HOUSE_STEP_ROLES = {
    StepKind.DESIGN: Role.DESIGNER,
    StepKind.PROTOTYPING: Role.DESIGNER,
    StepKind.FINISHING: Role.QUALITY,
    StepKind.DELIVERY: Role.LOGISTICS,
}
WEBHOOK_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER})
MAX_WEBHOOKS = 50


def can_manage_webhooks(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and user.role in WEBHOOK_ROLES)


# ---------------------------------------------------------------------------------------------
# fan-out: one event → inbox rows, e-mails, webhook deliveries


def _kick_delivery() -> None:
    """Have the deliver job run as soon as this transaction commits (it also runs every 15 s)."""
    from etabli.core import jobs

    from .jobs import deliver

    jobs.on_commit(deliver)


def _choices(users: list[User], event: str) -> dict[int, tuple[bool, str]]:
    rows = Preference.objects.filter(user__in=[u.pk for u in users], event=event)
    return {p.user_id: (p.inbox, p.email) for p in rows}


def _notify(*, users: Iterable[User], event: str, params: dict, url_for, piece=None,
            order=None, workshop=None, alert_id: int | None = None) -> list[Notification]:
    users = [u for u in users if u.is_active]
    choices = _choices(users, event)
    now = timezone.now()
    notes, email_to = [], {}
    for user in users:
        inbox, email = choices.get(user.pk, (DEFAULT_INBOX, DEFAULT_EMAIL))
        if not inbox and email == EmailMode.OFF:
            continue
        notes.append(Notification(
            recipient=user, kind=event, params=params, url=url_for(user), piece=piece,
            order=order, workshop=workshop, alert_id=alert_id, in_inbox=inbox, created_at=now))
        email_to[user.pk] = email
    Notification.objects.bulk_create(notes)
    emails = [OutgoingEmail(recipient=n.recipient, kind=OutgoingEmail.Kind.NOTIFICATION,
                            notification=n, to_address=n.recipient.email, created_at=now,
                            next_attempt_at=now)
              for n in notes
              if email_to[n.recipient_id] == EmailMode.IMMEDIATE and n.recipient.email]
    OutgoingEmail.objects.bulk_create(emails)
    if emails:
        _kick_delivery()
    return notes


def _webhooks(*, event: str, data: dict) -> list[WebhookDelivery]:
    now = timezone.now()
    deliveries = []
    for sub in WebhookSubscription.objects.filter(active=True):
        if event not in (sub.events or []):
            continue
        uid = uuid.uuid4()
        deliveries.append(WebhookDelivery(
            subscription=sub, uid=uid, event=event, created_at=now, next_attempt_at=now,
            payload={"id": str(uid), "event": event, "occurred_at": now.isoformat(),
                     "data": data}))
    WebhookDelivery.objects.bulk_create(deliveries)
    if deliveries:
        _kick_delivery()
    return deliveries


def _pieces_sent_recipients(transfer, lines) -> list[User]:
    """The receiving workshop's members; at the house, the managers and the step's role."""
    target = transfer.to_workshop
    users = User.objects.filter(is_active=True)
    if target.kind != WorkshopKind.HOUSE:
        # Only members of the receiving workshop: nobody hears of another workshop's pieces.
        return list(users.filter(role=Role.WORKSHOP, workshops=target).order_by("id"))
    steps = {line.step_run.step for line in lines}
    roles = {Role.PRODUCTION_MANAGER} | {HOUSE_STEP_ROLES[s] for s in steps
                                         if s in HOUSE_STEP_ROLES}
    return list(users.filter(role__in=roles).order_by("id"))


@transaction.atomic
def pieces_sent(*, transfer) -> list[Notification]:
    """Tell the receiving workshop that pieces are on their way (and the webhooks)."""
    lines = list(transfer.lines.select_related("piece__order", "step_run")
                 .order_by("piece__serial"))
    if not lines:
        return []
    pieces = [line.piece for line in lines]
    step = lines[0].step_run.step
    origin, target = transfer.from_workshop, transfer.to_workshop
    params = {"transfer_id": transfer.pk, "slip": transfer.slip_number, "from": origin.name,
              "to": target.name, "step": step, "serials": [p.serial for p in pieces]}
    single = pieces[0] if len(pieces) == 1 else None
    orders = {p.order_id for p in pieces}

    def url_for(user) -> str:
        if user.role == Role.WORKSHOP:
            return (reverse("workshop:piece", args=[single.pk]) if single
                    else reverse("workshop:queue"))
        return reverse("production:piece", args=[pieces[0].pk])

    notes = _notify(users=_pieces_sent_recipients(transfer, lines), event=Event.PIECES_SENT,
                    params=params, url_for=url_for, piece=single or pieces[0],
                    order=pieces[0].order if len(orders) == 1 else None, workshop=target)
    _webhooks(event=Event.PIECES_SENT, data={
        "transfer_id": transfer.pk, "slip": transfer.slip_number, "step": step,
        "sent_at": transfer.sent_at.isoformat(),
        "from": {"id": origin.pk, "code": origin.code, "name": origin.name},
        "to": {"id": target.pk, "code": target.code, "name": target.name},
        "pieces": [{"id": p.pk, "serial": p.serial, "order": p.order.reference}
                   for p in pieces]})
    return notes


def _alert_audience(alerts: list) -> list[list[User]]:
    """For each alert, who is told: its owners (`alerts.selectors.owners`: the assignee, else
    the active users of its role, a workshop member only for an alert of a workshop kind about
    their own workshop), never a client contact. Two queries whatever the number of alerts:
    the people concerned, and the workshop memberships of the workshop members among them."""
    from etabli.alerts.models import WORKSHOP_KINDS

    roles = {a.assigned_role for a in alerts
             if not a.assignee_id and a.assigned_role and a.assigned_role != Role.CLIENT}
    assignees = {a.assignee_id for a in alerts if a.assignee_id}
    people: dict[int, User] = {}
    if roles or assignees:
        wanted = Q(is_active=True, role__in=roles) | Q(pk__in=assignees)
        people = {u.pk: u for u in User.objects.filter(wanted).order_by("id")}
    members = [u.pk for u in people.values() if u.role == Role.WORKSHOP]
    shops: dict[int, set[int]] = {pk: set() for pk in members}
    if members:
        through = User.workshops.through.objects.filter(user_id__in=members)
        for user_id, workshop_id in through.values_list("user_id", "workshop_id"):
            shops[user_id].add(workshop_id)
    for pk, ids in shops.items():
        people[pk]._workshop_ids = ids
    by_role: dict[str, list[User]] = {}
    by_workshop: dict[int, list[User]] = {}
    for u in people.values():  # in id order
        if u.is_active and u.role in roles:
            by_role.setdefault(u.role, []).append(u)
            if u.role == Role.WORKSHOP:
                for workshop_id in shops[u.pk]:
                    by_workshop.setdefault(workshop_id, []).append(u)

    def told(alert) -> list[User]:
        workshop_kind = alert.kind in WORKSHOP_KINDS
        if alert.assignee_id:
            person = people.get(alert.assignee_id)
            if person is None or not person.is_active or person.role == Role.CLIENT:
                return []
            if person.role == Role.WORKSHOP and not (
                    workshop_kind and alert.workshop_id in shops[person.pk]):
                return []
            return [person]
        role = alert.assigned_role
        if not role or role == Role.CLIENT:
            return []
        if role == Role.WORKSHOP:
            # Only the members of the alert's own workshop: nobody hears of another's pieces.
            if alert.workshop_id is None or not workshop_kind:
                return []
            return list(by_workshop.get(alert.workshop_id, []))
        return list(by_role.get(role, []))

    return [told(a) for a in alerts]


def _in_chunks(ids: set, size: int = 900):
    items = sorted(ids)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _names(model, ids: set, field: str) -> dict[int, str]:
    """`field` of each row of `model` by id (a few queries of 900 ids whatever the count)."""
    out: dict[int, str] = {}
    for chunk in _in_chunks(ids):
        out.update(model.objects.filter(pk__in=chunk).order_by().values_list("pk", field))
    return out


@transaction.atomic
def alert_opened(*, alert) -> list[Notification]:
    """Tell the alert's owners (inbox, and e-mail as they chose) and the webhooks."""
    return alerts_opened(alerts=[alert])


@transaction.atomic
def alerts_opened(*, alerts: Iterable) -> list[Notification]:
    """Tell each new alert's owners (inbox, and e-mail as they chose) and the webhooks: the
    same rows `alert_opened` makes for each alert, in a fixed number of queries for the whole
    batch (people, preferences, subjects, subscriptions, then one bulk insert per table).
    Words are not rendered here: a notification keeps kind + params and is rendered in its
    reader's language when shown or sent."""
    from etabli.orders.models import Order
    from etabli.production.models import Piece
    from etabli.workshops.models import Workshop

    alerts = [a for a in alerts if a.pk is not None]
    if not alerts:
        return []
    event = Event.ALERT_OPENED
    audience = _alert_audience(alerts)
    recipients = {u.pk: u for users in audience for u in users if u.is_active}
    choices = _choices(list(recipients.values()), event)
    serials = _names(Piece, {a.piece_id for a in alerts if a.piece_id}, "serial")
    references = _names(Order, {a.order_id for a in alerts if a.order_id}, "reference")
    # One reverse() per batch: the link differs only by the alert's id.
    marker = 9_876_543_210
    link = reverse("alerts:detail", args=[marker]) if _has_url("alerts:detail") else ""
    now = timezone.now()
    notes: list[Notification] = []
    email_to: dict[int, str] = {}
    for alert, users in zip(alerts, audience, strict=True):
        params = {"alert_kind": alert.kind, "severity": alert.severity,
                  "subject": (serials.get(alert.piece_id) if alert.piece_id else
                              references.get(alert.order_id) if alert.order_id else alert.kind)}
        url = link.replace(str(marker), str(alert.pk))
        for user in users:
            if not user.is_active:
                continue
            inbox, email = choices.get(user.pk, (DEFAULT_INBOX, DEFAULT_EMAIL))
            if not inbox and email == EmailMode.OFF:
                continue
            notes.append(Notification(
                recipient=user, kind=event, params=params, url=url, piece_id=alert.piece_id,
                order_id=alert.order_id, workshop_id=alert.workshop_id, alert_id=alert.pk,
                in_inbox=inbox, created_at=now))
            email_to[user.pk] = email
    Notification.objects.bulk_create(notes, batch_size=500)
    emails = [OutgoingEmail(recipient=n.recipient, kind=OutgoingEmail.Kind.NOTIFICATION,
                            notification=n, to_address=n.recipient.email, created_at=now,
                            next_attempt_at=now)
              for n in notes
              if email_to[n.recipient_id] == EmailMode.IMMEDIATE and n.recipient.email]
    OutgoingEmail.objects.bulk_create(emails, batch_size=500)

    subscriptions = [sub for sub in WebhookSubscription.objects.filter(active=True)
                     if event in (sub.events or [])]
    deliveries = []
    if subscriptions:
        codes = _names(Workshop, {a.workshop_id for a in alerts if a.workshop_id}, "code")
        for alert in alerts:
            data = {
                "alert_id": alert.pk, "kind": alert.kind, "severity": alert.severity,
                "status": alert.status, "title": str(alert.title()),
                "message": str(alert.message()),
                "opened_at": alert.opened_at.isoformat() if alert.opened_at else None,
                "piece": serials.get(alert.piece_id) if alert.piece_id else None,
                "order": references.get(alert.order_id) if alert.order_id else None,
                "workshop": codes.get(alert.workshop_id) if alert.workshop_id else None,
                "params": alert.params}
            for sub in subscriptions:
                uid = uuid.uuid4()
                deliveries.append(WebhookDelivery(
                    subscription=sub, uid=uid, event=event, created_at=now, next_attempt_at=now,
                    payload={"id": str(uid), "event": event, "occurred_at": now.isoformat(),
                             "data": data}))
        WebhookDelivery.objects.bulk_create(deliveries, batch_size=500)
    if emails or deliveries:
        _kick_delivery()
    return notes


def _has_url(name: str) -> bool:
    from django.urls import NoReverseMatch

    try:
        reverse(name, args=[1])
    except NoReverseMatch:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the inbox


@transaction.atomic
def notification_read(*, actor, notification_id: int) -> Notification:
    """Mark one of my notifications read (reading it twice changes nothing)."""
    note = (Notification.objects.visible_to(actor).select_for_update()
            .filter(pk=notification_id).first())
    if note is None:
        raise NotFound(_("No notification with id %(id)s.") % {"id": notification_id})
    if note.read_at is None:
        note.read_at = timezone.now()
        note.save(update_fields=["read_at"])
        audit.record(actor=actor, action="notification.read", obj=note,
                     before={"read_at": None}, after={"read_at": note.read_at})
    return note


@transaction.atomic
def notifications_read_all(*, actor) -> int:
    """Mark every unread notification of my inbox read; return how many."""
    if not (getattr(actor, "is_authenticated", False) and actor.is_active):
        raise PermissionDenied(_("Sign in to read your notifications."))
    now = timezone.now()
    count = Notification.objects.visible_to(actor).unread().update(read_at=now)
    if count:
        audit.record(actor=actor, action="notification.read_all", obj=actor,
                     after={"count": count, "read_at": now})
    return count


# ---------------------------------------------------------------------------------------------
# preferences


def _event(value) -> Event:
    try:
        return Event(value)
    except ValueError:
        raise ValidationFailed(
            _("Unknown event '%(event)s' (one of: %(events)s).")
            % {"event": value, "events": ", ".join(Event.values)},
            details={"field": "event"}) from None


def _email_mode(value) -> EmailMode:
    try:
        return EmailMode(value)
    except ValueError:
        raise ValidationFailed(
            _("Unknown e-mail choice '%(value)s' (one of: %(values)s).")
            % {"value": value, "values": ", ".join(EmailMode.values)},
            details={"field": "email"}) from None


@transaction.atomic
def preference_set(*, actor, event: str, inbox: bool, email: str) -> Preference:
    """Choose, for one event, whether it goes to my inbox and whether (and when) by e-mail."""
    if not (getattr(actor, "is_authenticated", False) and actor.is_active):
        raise PermissionDenied(_("Sign in to choose your notifications."))
    event, email = _event(event), _email_mode(email)
    if not isinstance(inbox, bool):
        raise ValidationFailed(_("inbox must be true or false."), details={"field": "inbox"})
    if email != EmailMode.OFF and not actor.email:
        raise ValidationFailed(_("Add an e-mail address to your account to receive e-mails."),
                               details={"field": "email"})
    pref = Preference.objects.select_for_update().filter(user=actor, event=event).first()
    before = {"inbox": pref.inbox, "email": pref.email} if pref else \
        {"inbox": DEFAULT_INBOX, "email": str(DEFAULT_EMAIL)}
    if pref is None:
        pref = Preference.objects.create(user=actor, event=event, inbox=inbox, email=email)
    else:
        pref.inbox, pref.email = inbox, email
        pref.save(update_fields=["inbox", "email"])
    audit.record(actor=actor, action="notification.preference", obj=pref, before=before,
                 after={"event": str(event), "inbox": inbox, "email": str(email)})
    return pref


# ---------------------------------------------------------------------------------------------
# webhook subscriptions


def _check_webhook_admin(actor) -> None:
    if not can_manage_webhooks(actor):
        raise PermissionDenied(_("Only administrators and production managers manage "
                                 "webhooks."))


def _clean_url(url) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(_("A webhook URL starts with http:// or https:// and names a "
                                 "host."), details={"field": "url"})
    if len(url) > 500:
        raise ValidationFailed(_("The URL is too long (at most 500 characters)."),
                               details={"field": "url"})
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise ValidationFailed(_("The URL's port is not valid."),
                               details={"field": "url"}) from None
    return url


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 80:
        raise ValidationFailed(_("Give the webhook a name (at most 80 characters)."),
                               details={"field": "name"})
    return name


def _clean_events(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationFailed(_("Choose at least one event."), details={"field": "events"})
    chosen = []
    for value in events:
        event = _event(value)
        if event not in chosen:
            chosen.append(event)
    return [str(e) for e in chosen]


def _clean_secret(secret) -> str:
    if secret is None or secret == "":
        return secrets.token_hex(32)
    if not isinstance(secret, str) or not 16 <= len(secret.strip()) <= 128:
        raise ValidationFailed(_("A secret has 16 to 128 characters (leave it empty to have "
                                 "one made for you)."), details={"field": "secret"})
    return secret.strip()


SUBSCRIPTION_FIELDS = ["name", "url", "events", "active"]


@transaction.atomic
def webhook_create(*, actor, name: str, url: str, events: list[str], secret: str | None = None,
                   active: bool = True) -> WebhookSubscription:
    _check_webhook_admin(actor)
    name, url, events = _clean_name(name), _clean_url(url), _clean_events(events)
    secret = _clean_secret(secret)
    if WebhookSubscription.objects.count() >= MAX_WEBHOOKS:
        raise TransitionNotAllowed(_("At most %(n)d webhooks.") % {"n": MAX_WEBHOOKS})
    now = timezone.now()
    sub = WebhookSubscription.objects.create(name=name, url=url, events=events, secret=secret,
                                             active=bool(active), owner=actor, created_at=now,
                                             updated_at=now)
    audit.record(actor=actor, action="webhook.create", obj=sub,
                 after=audit.snapshot(sub, SUBSCRIPTION_FIELDS))
    return sub


def _locked_subscription(actor, subscription_id: int) -> WebhookSubscription:
    _check_webhook_admin(actor)
    sub = WebhookSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    if sub is None:
        raise NotFound(_("No webhook with id %(id)s.") % {"id": subscription_id})
    return sub


@transaction.atomic
def webhook_update(*, actor, subscription_id: int, name: str | None = None,
                   url: str | None = None, events: list[str] | None = None,
                   active: bool | None = None, secret: str | None = None,
                   new_secret: bool = False) -> WebhookSubscription:
    """Change a subscription; `new_secret=True` makes a fresh secret (or sets `secret`)."""
    sub = _locked_subscription(actor, subscription_id)
    before = audit.snapshot(sub, SUBSCRIPTION_FIELDS)
    if name is not None:
        sub.name = _clean_name(name)
    if url is not None:
        sub.url = _clean_url(url)
    if events is not None:
        sub.events = _clean_events(events)
    if active is not None:
        sub.active = bool(active)
    secret_changed = new_secret or bool(secret)
    if secret_changed:
        sub.secret = _clean_secret(secret)
    sub.updated_at = timezone.now()
    sub.save()
    after = audit.snapshot(sub, SUBSCRIPTION_FIELDS) | ({"secret": "changed"}
                                                        if secret_changed else {})
    audit.record(actor=actor, action="webhook.update", obj=sub, before=before, after=after)
    return sub


@transaction.atomic
def webhook_delete(*, actor, subscription_id: int) -> None:
    sub = _locked_subscription(actor, subscription_id)
    audit.record(actor=actor, action="webhook.delete", obj=sub,
                 before=audit.snapshot(sub, SUBSCRIPTION_FIELDS))
    sub.delete()


@transaction.atomic
def webhook_delivery_retry(*, actor, delivery_id: int) -> WebhookDelivery:
    """Try a failed delivery again now (its attempts start again from zero)."""
    _check_webhook_admin(actor)
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound(_("No webhook delivery with id %(id)s.") % {"id": delivery_id})
    if delivery.status != DeliveryStatus.FAILED:
        raise TransitionNotAllowed(_("Only a failed delivery can be tried again."))
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    audit.record(actor=actor, action="webhook.retry", obj=delivery,
                 before={"status": DeliveryStatus.FAILED},
                 after={"status": DeliveryStatus.PENDING})
    _kick_delivery()
    return delivery
