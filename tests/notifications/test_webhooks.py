"""Webhooks against a real HTTP receiver: signature, retries with back-off, the log."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from etabli.accounts.models import Role
from etabli.notifications import delivery, services
from etabli.notifications.models import DeliveryStatus, WebhookDelivery
from tests.notifications.conftest import make_alert, piece_sent_to_setter, verify

pytestmark = pytest.mark.django_db


def subscribe(h, receiver, events=("pieces_sent", "alert_opened"), **kw):
    return services.webhook_create(actor=h.admin, name="Receiver", url=receiver.url,
                                   events=list(events), secret=receiver.secret, **kw)


def test_a_signed_webhook_arrives(house_setup, receiver):
    h = house_setup
    subscribe(h, receiver)
    piece = piece_sent_to_setter(h)
    result = delivery.deliver_webhooks()
    assert result["sent"] >= 1 and result["retry"] == result["failed"] == 0
    last = receiver.received[-1]
    assert last.signature_ok
    assert last.path == "/hooks/etabli"
    assert last.headers["Content-Type"].startswith("application/json")
    assert last.headers["X-Etabli-Event"] == "pieces_sent"
    assert abs(int(last.headers["X-Etabli-Timestamp"]) - time.time()) < 60
    assert last.headers["X-Etabli-Signature"].startswith("sha256=")
    body = last.json
    assert body["event"] == "pieces_sent"
    assert body["id"] == last.headers["X-Etabli-Delivery"]
    assert body["data"]["pieces"] == [{"id": piece.pk, "serial": piece.serial,
                                       "order": piece.order.reference}]
    assert body["data"]["to"]["code"] == "setter"
    row = WebhookDelivery.objects.get(uid=body["id"])
    assert row.status == DeliveryStatus.SENT and row.last_status_code == 200
    assert row.attempts == 1 and row.delivered_at
    # A receiver with the wrong secret would refuse it.
    assert not verify("another-secret-entirely", last.headers, last.body)
    # And a body changed on the way no longer matches.
    assert not verify(receiver.secret, last.headers, last.body + b" ")


def test_alert_webhook(house_setup, receiver):
    h = house_setup
    subscribe(h, receiver, events=["alert_opened"])
    piece = h.launched_piece()
    alert = make_alert(h, piece=piece, role=Role.PRODUCTION_MANAGER, workshop=h.setter)
    assert delivery.deliver_webhooks()["sent"] == 1
    [got] = receiver.received
    assert got.signature_ok
    data = got.json["data"]
    assert data["alert_id"] == alert.pk and data["kind"] == "step_overdue"
    assert data["piece"] == piece.serial and data["workshop"] == "setter"
    assert data["severity"] == "warning" and data["status"] == "open"


def test_receiver_down_then_up_retries_with_backoff(house_setup, receiver):
    h = house_setup
    subscribe(h, receiver, events=["alert_opened"])
    receiver.statuses = [500, 503]
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    row = WebhookDelivery.objects.get()
    t0 = timezone.now()
    assert delivery.deliver_webhooks(now=t0) == {"sent": 0, "retry": 1, "failed": 0}
    row.refresh_from_db()
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1
    assert row.last_status_code == 500 and "receiver is down" in row.last_error
    assert row.next_attempt_at == t0 + dt.timedelta(seconds=30)
    # Not yet due: not tried.
    assert delivery.deliver_webhooks(now=t0 + dt.timedelta(seconds=10))["retry"] == 0
    assert len(receiver.received) == 1
    t1 = t0 + dt.timedelta(seconds=31)
    delivery.deliver_webhooks(now=t1)
    row.refresh_from_db()
    assert row.attempts == 2 and row.last_status_code == 503
    assert row.next_attempt_at == t1 + dt.timedelta(seconds=60)  # twice as long
    t2 = row.next_attempt_at
    assert delivery.deliver_webhooks(now=t2) == {"sent": 1, "retry": 0, "failed": 0}
    row.refresh_from_db()
    assert row.status == DeliveryStatus.SENT and row.attempts == 3
    assert row.last_status_code == 200 and row.last_error == ""
    assert [r.signature_ok for r in receiver.received] == [True, True, True]
    # The same delivery id each time, so the receiver can drop a repeat.
    assert len({r.headers["X-Etabli-Delivery"] for r in receiver.received}) == 1


def test_gives_up_after_the_last_attempt_and_can_be_retried(house_setup, receiver):
    h = house_setup
    subscribe(h, receiver, events=["alert_opened"])
    receiver.statuses = [500] * delivery.WEBHOOK_MAX_ATTEMPTS
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    row = WebhookDelivery.objects.get()
    waits = []
    now = timezone.now()
    for _ in range(delivery.WEBHOOK_MAX_ATTEMPTS):
        delivery.deliver_webhooks(now=now)
        row.refresh_from_db()
        if row.next_attempt_at:
            waits.append(row.next_attempt_at - now)
            now = row.next_attempt_at
    assert row.status == DeliveryStatus.FAILED and row.next_attempt_at is None
    assert row.attempts == delivery.WEBHOOK_MAX_ATTEMPTS
    assert waits[:4] == [dt.timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert all(b >= a for a, b in zip(waits, waits[1:], strict=False))
    assert max(waits) <= delivery.MAX_RETRY_DELAY
    services.webhook_delivery_retry(actor=h.admin, delivery_id=row.pk)
    assert delivery.deliver_webhooks()["sent"] == 1


def test_unreachable_receiver_is_logged(house_setup):
    h = house_setup
    from tests.notifications.conftest import free_port
    services.webhook_create(actor=h.admin, name="Nobody", events=["alert_opened"],
                            url=f"http://127.0.0.1:{free_port()}/hook")
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    assert delivery.deliver_webhooks()["retry"] == 1
    row = WebhookDelivery.objects.get()
    assert row.last_status_code is None and "refused" in row.last_error.lower()


def test_redirects_are_not_followed(house_setup, receiver):
    h = house_setup
    receiver.statuses = [302]
    subscribe(h, receiver, events=["alert_opened"])
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    assert delivery.deliver_webhooks()["retry"] == 1
    assert WebhookDelivery.objects.get().last_status_code == 302


def test_a_switched_off_webhook_waits(house_setup, receiver):
    h = house_setup
    sub = subscribe(h, receiver, events=["alert_opened"])
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    services.webhook_update(actor=h.admin, subscription_id=sub.pk, active=False)
    assert delivery.deliver_webhooks() == {"sent": 0, "retry": 0, "failed": 0}
    assert not receiver.received
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
