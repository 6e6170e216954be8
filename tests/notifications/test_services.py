"""Notification services: who hears of what, preferences, the inbox, webhook subscriptions."""

from __future__ import annotations

import pytest

from etabli.accounts.models import Role
from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.core.models import AuditEntry
from etabli.notifications import services
from etabli.notifications.models import (
    DeliveryStatus,
    Event,
    Notification,
    OutgoingEmail,
    Preference,
    WebhookDelivery,
    WebhookSubscription,
)
from etabli.production.models import Transfer
from tests.factories import make_user
from tests.notifications.conftest import make_alert, piece_sent_to_setter, with_email

pytestmark = pytest.mark.django_db


def sent_notes(piece):
    return Notification.objects.filter(kind=Event.PIECES_SENT, params__serials=[piece.serial],
                                       workshop__code="setter")


# ---------------------------------------------------------------------------------------------
# pieces on their way


def test_the_receiving_workshop_hears_that_a_piece_is_on_its_way(house_setup):
    h = house_setup
    with_email(h.setter_member)
    piece = piece_sent_to_setter(h)
    note = sent_notes(piece).get()
    transfer = Transfer.objects.get(lines__piece=piece, to_workshop=h.setter)
    assert note.recipient == h.setter_member
    assert note.piece == piece and note.order == piece.order and note.workshop == h.setter
    assert note.params["slip"] == transfer.slip_number
    assert note.params["from"] == h.caster.name and note.params["step"] == "setting"
    assert note.url == f"/workshop/pieces/{piece.pk}/"
    assert note.read_at is None and note.in_inbox
    from etabli.notifications import rendering
    assert rendering.title(note) == f"Piece {piece.serial} is on its way to you"
    assert transfer.slip_number in rendering.body(note)
    # An e-mail waits in the outbox (the setter has an address).
    mail = OutgoingEmail.objects.get(notification=note)
    assert mail.status == DeliveryStatus.PENDING and mail.to_address.endswith("@example.test")


def test_workshop_members_hear_only_of_their_own_workshops_pieces(house_setup):
    h = house_setup
    other_setter = make_user(Role.WORKSHOP, workshops=[h.setter])
    piece = piece_sent_to_setter(h)
    to_setter = Notification.objects.filter(workshop=h.setter)
    assert set(to_setter.values_list("recipient", flat=True)) == {h.setter_member.pk,
                                                                  other_setter.pk}
    # Every notification a workshop member got is about their own workshop's pieces.
    for member in (h.caster_member, h.setter_member, h.polisher_member, other_setter):
        for note in Notification.objects.filter(recipient=member):
            assert note.workshop_id in member.workshop_ids()
    assert not Notification.objects.filter(recipient=h.polisher_member).exists()
    assert not Notification.objects.filter(recipient__role__in=[Role.CLIENT, Role.SALES])\
        .exists()
    # The caster heard of the piece coming to it for manufacturing, never of the setter's.
    assert not Notification.objects.filter(recipient=h.caster_member,
                                           params__serials=[piece.serial],
                                           workshop=h.setter).exists()


def test_one_slip_of_several_pieces_makes_one_notification(house_setup):
    h = house_setup
    order = h.launched_order(quantity=2)
    pieces = list(order.pieces.order_by("serial"))
    for p in pieces:
        h.walk(p, to="setting")
    from etabli.production.services import pieces_send
    pieces_send(actor=h.caster_member, piece_ids=[p.pk for p in pieces])
    note = Notification.objects.get(recipient=h.setter_member)
    assert note.params["serials"] == [p.serial for p in pieces]
    from etabli.notifications import rendering
    assert rendering.title(note) == "2 pieces are on their way to you"
    assert note.url == "/workshop/"


def test_pieces_coming_to_the_house_are_told_to_the_managers_and_the_steps_role(house_setup):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to="finishing")
    h.finish_step(piece)  # finishing at the polisher; delivery is next, at the house
    h.advance(piece)  # the polisher sends it back to the house
    notes = Notification.objects.filter(kind=Event.PIECES_SENT, workshop=h.house)
    assert set(notes.values_list("recipient", flat=True)) == {h.manager.pk, h.logistics.pk}
    assert notes.get(recipient=h.manager).url == f"/pieces/{piece.pk}/"


def test_inbox_off_and_no_email_means_nothing_is_stored(house_setup):
    h = house_setup
    services.preference_set(actor=h.setter_member, event="pieces_sent", inbox=False,
                            email="off")
    piece = piece_sent_to_setter(h)
    assert not sent_notes(piece).exists()


def test_email_only_keeps_the_notification_out_of_the_inbox(house_setup):
    h = house_setup
    with_email(h.setter_member)
    services.preference_set(actor=h.setter_member, event="pieces_sent", inbox=False,
                            email="immediate")
    piece = piece_sent_to_setter(h)
    note = sent_notes(piece).get()
    assert not note.in_inbox
    assert OutgoingEmail.objects.filter(notification=note).exists()
    from etabli.notifications import selectors
    assert selectors.unread_count(h.setter_member) == 0


def test_digest_choice_sends_no_email_at_once(house_setup):
    h = house_setup
    with_email(h.setter_member)
    services.preference_set(actor=h.setter_member, event="pieces_sent", inbox=True,
                            email="digest")
    piece = piece_sent_to_setter(h)
    assert sent_notes(piece).exists()
    assert not OutgoingEmail.objects.filter(recipient=h.setter_member).exists()


def test_no_address_no_email(house_setup):
    h = house_setup
    piece = piece_sent_to_setter(h)
    assert sent_notes(piece).exists()
    assert not OutgoingEmail.objects.exists()


def test_an_inactive_member_hears_nothing(house_setup):
    h = house_setup
    h.setter_member.is_active = False
    h.setter_member.save()
    piece = piece_sent_to_setter(h)
    assert not sent_notes(piece).exists()


# ---------------------------------------------------------------------------------------------
# alerts


def test_alert_owners_are_told(house_setup):
    h = house_setup
    second_manager = make_user(Role.PRODUCTION_MANAGER)
    piece = h.launched_piece()
    alert = make_alert(h, piece=piece, role=Role.PRODUCTION_MANAGER, workshop=h.caster)
    notes = Notification.objects.filter(kind=Event.ALERT_OPENED, alert_id=alert.pk)
    assert set(notes.values_list("recipient", flat=True)) == {h.manager.pk, second_manager.pk}
    note = notes.get(recipient=h.manager)
    assert note.piece == piece and note.order == piece.order and note.workshop == h.caster
    assert note.url == f"/alerts/{alert.pk}/"
    from etabli.notifications import rendering
    assert rendering.title(note) == f"Step overdue: {piece.serial}"
    assert "days late" in rendering.body(note)


def test_alert_to_the_workshop_role_reaches_only_that_workshops_members(house_setup):
    h = house_setup
    piece = h.launched_piece()
    alert = make_alert(h, piece=piece, role=Role.WORKSHOP, workshop=h.setter)
    recipients = set(Notification.objects.filter(alert_id=alert.pk)
                     .values_list("recipient", flat=True))
    assert recipients == {h.setter_member.pk}


def test_alert_assigned_to_a_member_of_another_workshop_is_not_told_to_them(house_setup):
    h = house_setup
    alert = make_alert(h, assignee=h.caster_member, workshop=h.setter)
    assert not Notification.objects.filter(alert_id=alert.pk).exists()


def test_alert_assigned_to_one_person(house_setup):
    h = house_setup
    alert = make_alert(h, kind="qc_failure", assignee=h.quality)
    assert list(Notification.objects.filter(alert_id=alert.pk)
                .values_list("recipient", flat=True)) == [h.quality.pk]


def test_alert_preferences_are_per_event(house_setup):
    h = house_setup
    services.preference_set(actor=h.manager, event="alert_opened", inbox=False, email="off")
    alert = make_alert(h, role=Role.PRODUCTION_MANAGER)
    assert not Notification.objects.filter(alert_id=alert.pk).exists()
    piece_sent_to_setter(h)  # another event: still delivered as before
    assert Notification.objects.filter(kind=Event.PIECES_SENT).exists()


def test_a_removed_alert_still_reads(house_setup):
    h = house_setup
    alert = make_alert(h, role=Role.PRODUCTION_MANAGER)
    note = Notification.objects.get(alert_id=alert.pk)
    alert.delete()
    note = Notification.objects.get(pk=note.pk)
    from etabli.notifications import rendering
    assert rendering.title(note).startswith("Alert: ")
    assert rendering.body(note) == "This alert no longer exists."


# ---------------------------------------------------------------------------------------------
# the inbox


def test_read_and_read_all(house_setup):
    h = house_setup
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    first, second = Notification.objects.filter(recipient=h.manager).order_by("id")
    services.notification_read(actor=h.manager, notification_id=first.pk)
    first.refresh_from_db()
    read_at = first.read_at
    assert read_at is not None
    services.notification_read(actor=h.manager, notification_id=first.pk)  # again: unchanged
    first.refresh_from_db()
    assert first.read_at == read_at
    assert AuditEntry.objects.filter(action="notification.read").count() == 1
    assert services.notifications_read_all(actor=h.manager) == 1
    assert services.notifications_read_all(actor=h.manager) == 0
    second.refresh_from_db()
    assert second.read_at is not None


def test_nobody_reads_anothers_notification(house_setup):
    h = house_setup
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    note = Notification.objects.get(recipient=h.manager)
    for other in (h.admin, h.sales, h.setter_member, h.client_contact):
        with pytest.raises(NotFound):
            services.notification_read(actor=other, notification_id=note.pk)
        assert services.notifications_read_all(actor=other) == 0
    note.refresh_from_db()
    assert note.read_at is None
    with pytest.raises(NotFound):
        services.notification_read(actor=h.manager, notification_id=10**9)


# ---------------------------------------------------------------------------------------------
# preferences


def test_preferences_are_kept_and_audited(house_setup):
    h = house_setup
    with_email(h.sales)
    pref = services.preference_set(actor=h.sales, event="alert_opened", inbox=True,
                                   email="digest")
    assert (pref.inbox, pref.email) == (True, "digest")
    pref = services.preference_set(actor=h.sales, event="alert_opened", inbox=False,
                                   email="off")
    assert Preference.objects.filter(user=h.sales).count() == 1
    assert AuditEntry.objects.filter(action="notification.preference").count() == 2


@pytest.mark.parametrize("kwargs,field", [
    ({"event": "nope", "inbox": True, "email": "off"}, "event"),
    ({"event": "alert_opened", "inbox": True, "email": "weekly"}, "email"),
    ({"event": "alert_opened", "inbox": "yes", "email": "off"}, "inbox"),
    ({"event": "alert_opened", "inbox": True, "email": "immediate"}, "email"),  # no address
])
def test_preference_guards(house_setup, kwargs, field):
    with pytest.raises(ValidationFailed) as err:
        services.preference_set(actor=house_setup.sales, **kwargs)
    assert err.value.details["field"] == field
    assert not Preference.objects.exists()


# ---------------------------------------------------------------------------------------------
# webhook subscriptions


@pytest.mark.parametrize("who", ["admin", "manager"])
def test_admins_and_managers_manage_webhooks(house_setup, who):
    actor = getattr(house_setup, who)
    sub = services.webhook_create(actor=actor, name="ERP", url="https://erp.example/hook",
                                  events=["pieces_sent", "pieces_sent"])
    assert sub.events == ["pieces_sent"] and len(sub.secret) == 64 and sub.owner == actor
    old_secret = sub.secret
    sub = services.webhook_update(actor=actor, subscription_id=sub.pk, active=False,
                                  events=["alert_opened", "pieces_sent"], new_secret=True)
    assert not sub.active and sub.secret != old_secret
    assert sub.events == ["alert_opened", "pieces_sent"]
    services.webhook_delete(actor=actor, subscription_id=sub.pk)
    assert not WebhookSubscription.objects.exists()
    assert list(AuditEntry.objects.filter(object_type="notifications.webhooksubscription")
                .order_by("id").values_list("action", flat=True)) == [
        "webhook.create", "webhook.update", "webhook.delete"]


@pytest.mark.parametrize("who", ["sales", "designer", "quality", "logistics", "setter_member",
                                 "client_contact"])
def test_others_may_not_manage_webhooks(house_setup, who):
    actor = getattr(house_setup, who)
    with pytest.raises(PermissionDenied):
        services.webhook_create(actor=actor, name="x", url="https://x.example/",
                                events=["pieces_sent"])
    sub = services.webhook_create(actor=house_setup.admin, name="x", url="https://x.example/",
                                  events=["pieces_sent"])
    with pytest.raises(PermissionDenied):
        services.webhook_update(actor=actor, subscription_id=sub.pk, active=False)
    with pytest.raises(PermissionDenied):
        services.webhook_delete(actor=actor, subscription_id=sub.pk)


@pytest.mark.parametrize("changes,field", [
    ({"url": "ftp://files.example/x"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "http://host.example:99999/"}, "url"),
    ({"url": "https://e.example/" + "a" * 500}, "url"),
    ({"name": "  "}, "name"),
    ({"events": []}, "events"),
    ({"events": ["pieces_sent", "bogus"]}, "event"),
    ({"secret": "short"}, "secret"),
])
def test_webhook_input_guards(house_setup, changes, field):
    body = {"name": "ERP", "url": "https://erp.example/hook", "events": ["pieces_sent"]}
    with pytest.raises(ValidationFailed) as err:
        services.webhook_create(actor=house_setup.admin, **(body | changes))
    assert err.value.details["field"] == field
    assert not WebhookSubscription.objects.exists()


def test_unknown_webhook_is_not_found(house_setup):
    with pytest.raises(NotFound):
        services.webhook_update(actor=house_setup.admin, subscription_id=12345, active=False)


def test_events_queue_deliveries_for_matching_active_webhooks(house_setup):
    h = house_setup
    pieces = services.webhook_create(actor=h.admin, name="P", url="https://p.example/",
                                     events=["pieces_sent"])
    alerts = services.webhook_create(actor=h.admin, name="A", url="https://a.example/",
                                     events=["alert_opened"])
    services.webhook_create(actor=h.admin, name="Off", url="https://o.example/",
                            events=["pieces_sent", "alert_opened"], active=False)
    piece = piece_sent_to_setter(h)
    alert = make_alert(h, piece=piece, role=Role.PRODUCTION_MANAGER, workshop=h.setter)
    sent = WebhookDelivery.objects.filter(subscription=pieces)
    last = sent.order_by("-id").first()
    assert last.payload["event"] == "pieces_sent"
    assert last.payload["id"] == str(last.uid)
    assert last.payload["data"]["pieces"][0]["serial"] == piece.serial
    assert last.payload["data"]["to"]["code"] == "setter"
    delivery = WebhookDelivery.objects.get(subscription=alerts)
    assert delivery.payload["data"]["alert_id"] == alert.pk
    assert delivery.payload["data"]["piece"] == piece.serial
    assert not WebhookDelivery.objects.filter(subscription__active=False).exists()


def test_only_a_failed_delivery_is_retried(house_setup):
    h = house_setup
    sub = services.webhook_create(actor=h.admin, name="P", url="https://p.example/",
                                  events=["pieces_sent"])
    piece_sent_to_setter(h)
    delivery = WebhookDelivery.objects.filter(subscription=sub).first()
    with pytest.raises(TransitionNotAllowed):
        services.webhook_delivery_retry(actor=h.admin, delivery_id=delivery.pk)
    delivery.status, delivery.attempts, delivery.next_attempt_at = "failed", 8, None
    delivery.save()
    with pytest.raises(PermissionDenied):
        services.webhook_delivery_retry(actor=h.sales, delivery_id=delivery.pk)
    delivery = services.webhook_delivery_retry(actor=h.manager, delivery_id=delivery.pk)
    assert delivery.status == "pending" and delivery.attempts == 0
    with pytest.raises(NotFound):
        services.webhook_delivery_retry(actor=h.manager, delivery_id=10**9)
