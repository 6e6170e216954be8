"""The client's reception, its reservations and follow-ups, and the closing of the order."""

from __future__ import annotations

import pytest

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.orders.models import OrderStatus
from etabli.orders.services import order_confirm_reception
from etabli.shipping.models import FollowUp, FollowUpStatus, Reception, ReceptionOutcome
from etabli.shipping.reception import follow_up_resolve, reception_record
from tests.shipping.conftest import delivered

pytestmark = pytest.mark.django_db


def test_the_client_accepts_and_the_order_closes(h):
    order = delivered(h)
    reception = reception_record(actor=h.client_contact, order_id=order.pk,
                                 note="All good, thank you")
    assert reception.outcome == ReceptionOutcome.ACCEPTED and not reception.on_behalf
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED and order.closed_at is not None
    assert order.reception_confirmed_by == h.client_contact
    assert order.reception_note == "All good, thank you"
    confirm = AuditEntry.objects.get(action="order.confirm_reception", order_id=order.pk)
    assert confirm.after["outcome"] == "accepted" and confirm.actor == h.client_contact
    close = AuditEntry.objects.get(action="order.close", order_id=order.pk)
    assert close.before == {"status": "delivered"} and close.after["status"] == "closed"


def test_reception_twice_is_a_conflict(h):
    order = delivered(h)
    reception_record(actor=h.client_contact, order_id=order.pk)
    with pytest.raises(Conflict, match="already confirmed"):
        reception_record(actor=h.client_contact, order_id=order.pk)
    with pytest.raises(Conflict):
        reception_record(actor=h.sales, order_id=order.pk, note="By phone")
    assert Reception.objects.count() == 1


def test_not_before_every_piece_is_delivered(h):
    order = h.launched_order(quantity=2)
    first, _second = order.pieces.order_by("serial")
    h.walk(first)
    with pytest.raises(TransitionNotAllowed, match="once every piece"):
        reception_record(actor=h.client_contact, order_id=order.pk)
    assert not Reception.objects.exists()


def test_the_house_records_it_for_the_client_saying_how(h):
    order = delivered(h)
    with pytest.raises(ValidationFailed) as exc:
        reception_record(actor=h.sales, order_id=order.pk)
    assert exc.value.details["field"] == "note"
    reception = reception_record(actor=h.logistics, order_id=order.pk,
                                 note="Client phoned on Monday")
    assert reception.on_behalf and reception.recorded_by == h.logistics
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED


def test_who_may_record_it(h):
    order = delivered(h)
    with pytest.raises(NotFound):
        reception_record(actor=h.other_client_contact, order_id=order.pk)
    for user in (h.caster_member, h.designer, h.quality):
        with pytest.raises(NotFound):
            reception_record(actor=user, order_id=order.pk, note="x")
    with pytest.raises(NotFound):
        reception_record(actor=h.client_contact, order_id=999999)
    assert not Reception.objects.exists()


def test_reservations_open_follow_ups_and_the_last_resolution_closes(h):
    order = delivered(h, quantity=2)
    first, second = order.pieces.order_by("serial")
    reception = reception_record(
        actor=h.client_contact, order_id=order.pk, outcome="reservations",
        note="Parcel fine", reservations=[
            {"piece_id": first.pk, "text": "Scratch on the band"},
            {"text": "The certificates were missing"}])
    assert reception.outcome == ReceptionOutcome.RESERVATIONS
    follow_ups = list(FollowUp.objects.order_by("id"))
    assert [(f.piece_id, f.description, f.status) for f in follow_ups] == [
        (first.pk, "Scratch on the band", FollowUpStatus.OPEN),
        (None, "The certificates were missing", FollowUpStatus.OPEN)]
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.closed_at is None
    assert AuditEntry.objects.filter(action="follow_up.open").count() == 2

    follow_up_resolve(actor=h.sales, follow_up_id=follow_ups[1].pk,
                      resolution="Certificates e-mailed")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    with pytest.raises(TransitionNotAllowed, match="already resolved"):
        follow_up_resolve(actor=h.sales, follow_up_id=follow_ups[1].pk, resolution="Again")

    resolved = follow_up_resolve(actor=h.logistics, follow_up_id=follow_ups[0].pk,
                                 resolution="Band repolished and sent back")
    assert resolved.resolved_by == h.logistics and resolved.resolved_at is not None
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED and order.closed_at == resolved.resolved_at
    assert AuditEntry.objects.filter(action="order.close", order_id=order.pk).count() == 1
    assert second.pk != first.pk


def test_resolution_guards(h):
    order = delivered(h)
    reception_record(actor=h.client_contact, order_id=order.pk, outcome="reservations",
                     reservations=[{"text": "Wrong size"}])
    follow_up = FollowUp.objects.get()
    with pytest.raises(ValidationFailed):
        follow_up_resolve(actor=h.sales, follow_up_id=follow_up.pk, resolution="  ")
    with pytest.raises(PermissionDenied):
        follow_up_resolve(actor=h.client_contact, follow_up_id=follow_up.pk, resolution="ok")
    for user in (h.other_client_contact, h.caster_member, h.designer):
        with pytest.raises(NotFound):
            follow_up_resolve(actor=user, follow_up_id=follow_up.pk, resolution="ok")
    with pytest.raises(NotFound):
        follow_up_resolve(actor=h.sales, follow_up_id=999999, resolution="ok")
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.OPEN


@pytest.mark.parametrize("outcome, reservations, field", [
    ("reservations", [], "reservations"),
    ("reservations", [{"text": "  "}], "reservations"),
    ("reservations", [{"piece_id": 999999, "text": "x"}], "reservations"),
    ("reservations", [{"piece_id": True, "text": "x"}], "reservations"),
    ("reservations", "scratched", "reservations"),
    ("reservations", ["scratched"], "reservations"),
    ("accepted", [{"text": "Scratched"}], "outcome"),
    ("maybe", [], "outcome"),
])
def test_bad_receptions(h, outcome, reservations, field):
    order = delivered(h)
    with pytest.raises(ValidationFailed) as exc:
        reception_record(actor=h.client_contact, order_id=order.pk, outcome=outcome,
                         reservations=reservations)
    assert exc.value.details["field"] == field
    assert not Reception.objects.exists() and not FollowUp.objects.exists()
    order.refresh_from_db()
    assert order.reception_confirmed_at is None and order.status == OrderStatus.DELIVERED


def test_a_reservation_about_another_orders_piece(h):
    order = delivered(h)
    other = delivered(h)
    with pytest.raises(ValidationFailed, match="not part of order"):
        reception_record(actor=h.client_contact, order_id=order.pk, outcome="reservations",
                         reservations=[{"piece_id": other.pieces.get().pk, "text": "x"}])


def test_the_orders_service_still_confirms(h):
    order = delivered(h)
    with pytest.raises(PermissionDenied):
        order_confirm_reception(actor=h.caster_member, order_id=order.pk)
    confirmed = order_confirm_reception(actor=h.client_contact, order_id=order.pk,
                                        note="Fine")
    assert confirmed.status == OrderStatus.CLOSED
    assert Reception.objects.get(order=order).outcome == ReceptionOutcome.ACCEPTED
