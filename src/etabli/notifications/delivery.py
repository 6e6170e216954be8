"""Sending: the e-mail outbox, webhook deliveries (signed, retried with back-off), digests.

Run by the `notifications.deliver` and `notifications.digest` jobs, never inside a request.
Rows due are claimed first (a short transaction moves their next attempt a few minutes ahead,
with `SKIP LOCKED` on PostgreSQL), then sent outside any transaction, then the outcome is
saved: two workers never send the same row at once, and a crash mid-send only delays it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import smtplib
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from etabli import __version__
from etabli.accounts.models import User

from . import rendering
from .models import (
    DeliveryStatus,
    DigestLog,
    EmailMode,
    Event,
    Notification,
    OutgoingEmail,
    Preference,
    WebhookDelivery,
)

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
EMAIL_MAX_ATTEMPTS = 6
EMAIL_FIRST_RETRY = dt.timedelta(minutes=1)
WEBHOOK_MAX_ATTEMPTS = 8
WEBHOOK_FIRST_RETRY = dt.timedelta(seconds=30)
MAX_RETRY_DELAY = dt.timedelta(hours=6)
WEBHOOK_TIMEOUT_S = 10
BATCH = 100
SIGNATURE_HEADER = "X-Etabli-Signature"
TIMESTAMP_HEADER = "X-Etabli-Timestamp"


def backoff(attempts: int, first: dt.timedelta) -> dt.timedelta:
    """The wait before the next try after `attempts` failures: first, 2×, 4×… (capped)."""
    return min(first * (2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def _claim(model, now: dt.datetime, limit: int) -> list[int]:
    with transaction.atomic():
        ids = list(model.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
                   .order_by("next_attempt_at", "id")
                   .select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
        model.objects.filter(id__in=ids).update(next_attempt_at=now + LEASE)
    return ids


def _failed(row, now: dt.datetime, error: str, max_attempts: int, first: dt.timedelta) -> None:
    row.attempts += 1
    row.last_error = error[:2000]
    if row.attempts >= max_attempts:
        row.status = DeliveryStatus.FAILED
        row.next_attempt_at = None
    else:
        row.next_attempt_at = now + backoff(row.attempts, first)


# ---------------------------------------------------------------------------------------------
# e-mail


def _compose(row: OutgoingEmail) -> tuple[str, str]:
    if row.kind == OutgoingEmail.Kind.NOTIFICATION:
        return rendering.notification_email(row.notification)
    notes = list(Notification.objects.filter(id__in=row.params.get("notification_ids", []))
                 .order_by("created_at", "id"))
    alerts = []
    if row.params.get("alert_ids"):
        from etabli.alerts.models import Alert

        alerts = list(Alert.objects.filter(id__in=row.params["alert_ids"])
                      .order_by("-opened_at", "-id"))
    return rendering.digest_email(row.recipient, notes, alerts)


def deliver_emails(*, now: dt.datetime | None = None, limit: int = BATCH) -> dict:
    """Send the e-mails that are due; return how many were sent, retried and given up."""
    now = now or timezone.now()
    ids = _claim(OutgoingEmail, now, limit)
    out = {"sent": 0, "retry": 0, "failed": 0}
    if not ids:
        return out
    rows = OutgoingEmail.objects.filter(id__in=ids).select_related(
        "recipient", "notification__recipient").order_by("id")
    connection = get_connection(fail_silently=False)
    try:
        for row in rows:
            to = row.to_address or row.recipient.email
            try:
                if not to:
                    raise ValueError("the recipient has no e-mail address")
                subject, body = _compose(row)
                row.subject = subject[:300]
                EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to],
                             connection=connection).send()
            except (smtplib.SMTPException, OSError, ValueError) as exc:
                log.warning("e-mail %s to %s failed: %s", row.pk, to, exc)
                _failed(row, now, f"{type(exc).__name__}: {exc}", EMAIL_MAX_ATTEMPTS,
                        EMAIL_FIRST_RETRY)
                out["failed" if row.status == DeliveryStatus.FAILED else "retry"] += 1
                # The connection may be broken: open a new one for the next message.
                connection.close()
            else:
                row.status, row.sent_at, row.next_attempt_at = DeliveryStatus.SENT, now, None
                row.attempts += 1
                row.last_error = ""
                out["sent"] += 1
            row.save(update_fields=["status", "attempts", "next_attempt_at", "last_error",
                                    "subject", "sent_at"])
    finally:
        connection.close()
    return out


# ---------------------------------------------------------------------------------------------
# webhooks


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 with the subscription's secret of `<timestamp>.<body>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook is posted to the address given, never to where a redirect points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST one delivery; return (status code or None, error text — empty on a 2xx)."""
    sub = delivery.subscription
    body = json.dumps(delivery.payload, cls=DjangoJSONEncoder, ensure_ascii=False,
                      separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(sub.url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"Etabli-Webhooks/{__version__}",
        "X-Etabli-Event": delivery.event,
        "X-Etabli-Delivery": str(delivery.uid),
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(sub.secret, timestamp, body),
    })
    try:
        with _opener.open(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        text = exc.read(500).decode("utf-8", "replace")
        return exc.code, f"HTTP {exc.code}: {text}".strip()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"


def deliver_webhooks(*, now: dt.datetime | None = None, limit: int = BATCH) -> dict:
    """Post the webhook deliveries that are due; failures wait longer and longer."""
    now = now or timezone.now()
    ids = _claim(WebhookDelivery, now, limit)
    out = {"sent": 0, "retry": 0, "failed": 0}
    rows = WebhookDelivery.objects.filter(id__in=ids).select_related("subscription") \
        .order_by("id")
    for row in rows:
        if not row.subscription.active:
            # Switched off after it was queued: keep it waiting for when it is back on.
            row.next_attempt_at = now + WEBHOOK_FIRST_RETRY
            row.save(update_fields=["next_attempt_at"])
            continue
        code, error = post_webhook(row)
        row.last_status_code = code
        if code is not None and 200 <= code < 300:
            row.attempts += 1
            row.status, row.delivered_at, row.next_attempt_at = DeliveryStatus.SENT, now, None
            row.last_error = ""
            out["sent"] += 1
        else:
            log.warning("webhook %s to %s failed: %s", row.uid, row.subscription.url, error)
            _failed(row, now, error or f"HTTP {code}", WEBHOOK_MAX_ATTEMPTS, WEBHOOK_FIRST_RETRY)
            out["failed" if row.status == DeliveryStatus.FAILED else "retry"] += 1
        row.save(update_fields=["status", "attempts", "next_attempt_at", "last_status_code",
                                "last_error", "delivered_at"])
    return out


def deliver(*, now: dt.datetime | None = None) -> dict:
    return {"emails": deliver_emails(now=now), "webhooks": deliver_webhooks(now=now)}


# ---------------------------------------------------------------------------------------------
# the daily digest


def digest_hour() -> int:
    """The local hour (0–23) from which the day's digests go out (ETABLI_DIGEST_HOUR)."""
    value = getattr(settings, "ETABLI_DIGEST_HOUR", None)
    if value is None:
        value = os.environ.get("ETABLI_DIGEST_HOUR", "7")
    try:
        hour = int(value)
    except (TypeError, ValueError):
        return 7
    return hour if 0 <= hour <= 23 else 7


def _open_alerts(user, since: dt.datetime) -> list:
    """The person's own open alerts (assigned to them or their role) opened since then."""
    from django.db.models import Q

    from etabli.alerts.models import Alert

    mine = Q(assignee=user) | Q(assignee__isnull=True, assigned_role=user.role)
    return list(Alert.objects.visible_to(user).filter(mine, opened_at__gte=since)
                .exclude(status="resolved").order_by("-opened_at", "-id")[:50])


def digest_for(user, *, now: dt.datetime, events: list[str]) -> OutgoingEmail | None:
    """Queue `user`'s digest for today (once a day); None when there is nothing to say."""
    day = timezone.localtime(now).date()
    since = now - dt.timedelta(days=1)
    with transaction.atomic():
        try:
            with transaction.atomic():
                log_row = DigestLog.objects.create(user=user, day=day, created_at=now)
        except IntegrityError:  # another worker did it already
            return None
        note_ids = list(Notification.objects.filter(
            recipient=user, kind__in=events, read_at__isnull=True, created_at__gte=since)
            .order_by("created_at", "id").values_list("id", flat=True)[:100])
        alert_ids = ([a.pk for a in _open_alerts(user, since)]
                     if Event.ALERT_OPENED in events else [])
        log_row.items = len(note_ids) + len(alert_ids)
        log_row.save(update_fields=["items"])
        if not log_row.items or not user.email:
            return None
        return OutgoingEmail.objects.create(
            recipient=user, kind=OutgoingEmail.Kind.DIGEST, to_address=user.email,
            params={"notification_ids": note_ids, "alert_ids": alert_ids, "day": day.isoformat()},
            created_at=now, next_attempt_at=now)


def digest_run(*, now: dt.datetime | None = None) -> dict:
    """Queue today's digest of everyone who chose one, once the digest hour has come."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < digest_hour():
        return {"queued": 0, "waiting_until_hour": digest_hour()}
    done = DigestLog.objects.filter(day=local.date()).values("user_id")
    users = (User.objects.filter(is_active=True,
                                 notification_preferences__email=EmailMode.DIGEST)
             .exclude(pk__in=done).distinct().order_by("id"))
    chosen: dict[int, list[str]] = {}
    for user_id, event in Preference.objects.filter(
            user__in=users, email=EmailMode.DIGEST).values_list("user_id", "event"):
        chosen.setdefault(user_id, []).append(event)
    queued = 0
    for user in users:
        if digest_for(user, now=now, events=chosen.get(user.pk, [])) is not None:
            queued += 1
    return {"queued": queued}
