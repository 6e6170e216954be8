"""Shipments through their services: every guard, every transition, the delivery step's gate."""

from __future__ import annotations

import re
from decimal import Decimal

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
from etabli.production.models import EventKind, HoldReason, PieceStatus, StepStatus
from etabli.production.services import piece_complete, piece_hold, piece_release, piece_start
from etabli.shipping import services
from etabli.shipping.models import Shipment, ShipmentItem, ShipmentStatus
from etabli.workshops.models import StepKind
from tests.factories import default_line
from tests.shipping.conftest import at_delivery

pytestmark = pytest.mark.django_db

PACKED = {"case": "ring_box", "protection": "foam_insert"}


def create(h, order, pieces, actor=None, **kwargs):
    kwargs.setdefault("method", "courier")
    kwargs.setdefault("carrier", "Ferrari Group")
    return services.shipment_create(actor=actor or h.logistics, order_id=order.pk,
                                    piece_ids=[p.pk for p in pieces], **kwargs)


def pack_all(h, shipment, actor=None):
    ids = shipment.items.filter(active=True).values_list("piece_id", flat=True)
    return services.shipment_pack(actor=actor or h.logistics, shipment_id=shipment.pk,
                                  pieces=[{"piece_id": pid, **PACKED} for pid in ids])


def shipped(h, order, pieces, **kwargs):
    shipment = create(h, order, pieces, **kwargs)
    pack_all(h, shipment)
    return services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                                  tracking_number="FG123456789FR")


def delivery_run(piece):
    return piece.runs.get(step=StepKind.DELIVERY)


# ---------------------------------------------------------------------------------------------
# preparing


def test_create_a_shipment_for_pieces_at_the_house(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces, signature_required=True)
    assert re.fullmatch(r"SH-\d{4}-\d{5}", shipment.number)
    assert shipment.status == ShipmentStatus.PREPARED
    assert shipment.order == order and shipment.currency == order.currency
    assert shipment.address == order.client.address
    assert sorted(shipment.items.values_list("piece_id", flat=True)) == [p.pk for p in pieces]
    # The declared value follows the agreed prices, even when logistics (who does not see
    # prices) prepares the shipment; everything but a pickup is insured for it.
    assert shipment.declared_value == Decimal("2400.00")
    assert shipment.insurance_value == Decimal("2400.00")
    assert shipment.created_by == h.logistics
    item = shipment.items.first()
    assert item.step_run == delivery_run(item.piece) and item.active
    entry = AuditEntry.objects.get(action="shipment.create")
    assert entry.order_id == order.pk and entry.actor == h.logistics
    assert entry.after["number"] == shipment.number
    # Preparing a shipment does not move the pieces.
    for p in pieces:
        p.refresh_from_db()
        assert delivery_run(p).status in (StepStatus.READY, StepStatus.RECEIVED)


def test_numbers_follow_each_other(h, ready):
    order, (a, b) = ready
    first = create(h, order, [a])
    second = create(h, order, [b])
    assert int(second.number[-5:]) == int(first.number[-5:]) + 1


def test_a_pickup_goes_to_the_house_and_is_not_insured(h, ready, settings):
    settings.ETABLI_HOUSE_ADDRESS = "1 place Vendôme\n75001 Paris"
    order, pieces = ready
    shipment = create(h, order, pieces, method="pickup", carrier="")
    assert "place Vendôme" in shipment.address
    assert shipment.insurance_value is None and shipment.declared_value == Decimal("2400.00")


def test_only_logistics_managers_and_admins_prepare(h, ready):
    order, pieces = ready
    for user in (h.sales, h.client_contact):
        with pytest.raises(PermissionDenied):
            create(h, order, pieces, actor=user)
    for user in (h.caster_member, h.other_client_contact):
        with pytest.raises(NotFound):
            create(h, order, pieces, actor=user)
    assert not Shipment.objects.exists()
    assert create(h, order, pieces[:1], actor=h.manager).created_by == h.manager
    assert create(h, order, pieces[1:], actor=h.admin).created_by == h.admin


def test_amounts_are_for_the_roles_that_see_prices(h, ready):
    order, pieces = ready
    with pytest.raises(PermissionDenied) as exc:
        create(h, order, pieces, declared_value="5000")
    assert exc.value.details["field"] == "declared_value"
    with pytest.raises(PermissionDenied):
        create(h, order, pieces, insurance_value="5000")
    shipment = create(h, order, pieces, actor=h.manager, declared_value="5000.00",
                      insurance_value="4500")
    assert shipment.declared_value == Decimal("5000.00")
    assert shipment.insurance_value == Decimal("4500.00")


@pytest.mark.parametrize("value", ["-1", "12.345", "abc", "1e40", "NaN", True])
def test_bad_amounts(h, ready, value):
    order, pieces = ready
    with pytest.raises(ValidationFailed) as exc:
        create(h, order, pieces, actor=h.manager, declared_value=value)
    assert exc.value.details["field"] == "declared_value"


def test_a_piece_not_yet_at_delivery_cannot_be_shipped(h):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.SETTING, arrive=True)
    with pytest.raises(TransitionNotAllowed, match="setting step") as exc:
        create(h, piece.order, [piece], actor=h.manager)
    assert exc.value.details["piece"] == piece.serial


def test_a_piece_still_at_the_polisher_or_travelling_cannot_be_shipped(h):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.DELIVERY)  # READY, still at the polisher
    with pytest.raises(TransitionNotAllowed, match="not at .* yet"):
        create(h, piece.order, [piece], actor=h.manager)
    h.advance(piece)  # sent to the house
    piece.refresh_from_db()
    assert piece.status == PieceStatus.IN_TRANSIT
    with pytest.raises(TransitionNotAllowed, match="not at .* yet"):
        create(h, piece.order, [piece])
    h.advance(piece)  # received by logistics
    assert create(h, piece.order, [piece]).items.count() == 1


def test_a_held_piece_cannot_be_shipped(h, ready):
    order, (a, b) = ready
    piece_hold(actor=h.manager, piece_id=a.pk, reason=HoldReason.OTHER, comment="Scratch")
    with pytest.raises(TransitionNotAllowed, match="on hold"):
        create(h, order, [a, b])
    assert not Shipment.objects.exists()


def test_pieces_listed_wrong(h, ready):
    order, pieces = ready
    other_order, other_pieces = at_delivery(h)
    with pytest.raises(ValidationFailed, match="not a piece of order"):
        create(h, order, [pieces[0], other_pieces[0]])
    with pytest.raises(NotFound) as exc:
        services.shipment_create(actor=h.logistics, order_id=order.pk, piece_ids=[999999],
                                 method="courier")
    assert exc.value.details["field"] == "piece_ids"
    for ids in ([], [pieces[0].pk, pieces[0].pk], ["1"], [True], [-3], [2**70], "12"):
        with pytest.raises(ValidationFailed):
            services.shipment_create(actor=h.logistics, order_id=order.pk, piece_ids=ids,
                                     method="courier")
    with pytest.raises(ValidationFailed) as exc:
        create(h, order, pieces, method="pigeon")
    assert exc.value.details["field"] == "method"
    with pytest.raises(ValidationFailed):
        create(h, order, pieces, tracking_number="#!")
    with pytest.raises(ValidationFailed):
        create(h, order, pieces, carrier="x" * 81)
    with pytest.raises(NotFound):
        services.shipment_create(actor=h.logistics, order_id=999999, piece_ids=[1],
                                 method="courier")
    assert not Shipment.objects.exists()


def test_a_piece_is_on_one_active_shipment_at_a_time(h, ready):
    order, (a, b) = ready
    first = create(h, order, [a])
    with pytest.raises(Conflict, match=first.number):
        create(h, order, [a, b])
    assert Shipment.objects.count() == 1
    services.shipment_cancel(actor=h.logistics, shipment_id=first.pk, reason="Wrong box")
    second = create(h, order, [a, b])
    assert second.items.count() == 2
    assert ShipmentItem.objects.filter(piece=a).count() == 2
    assert ShipmentItem.objects.filter(piece=a, active=True).get().shipment == second


def test_client_ref_makes_a_repeated_submission_count_once(h, ready):
    order, pieces = ready
    first = create(h, order, pieces, client_ref="form-1")
    again = create(h, order, pieces, client_ref="form-1")
    assert again.pk == first.pk and again.replayed and not first.replayed
    assert Shipment.objects.count() == 1
    with pytest.raises(Conflict):
        create(h, order, pieces[:1], client_ref="form-1")
    with pytest.raises(ValidationFailed):
        create(h, order, pieces, client_ref="x" * 65)


def test_a_replay_is_only_for_who_prepared_the_shipment(h, ready):
    order, pieces = ready
    first = create(h, order, pieces, client_ref="form-2")
    # sales reads shipments but never prepares one: refused, never handed the shipment
    with pytest.raises(PermissionDenied):
        create(h, order, pieces, actor=h.sales, client_ref="form-2")
    for user in (h.caster_member, h.other_client_contact):
        with pytest.raises(NotFound):
            create(h, order, pieces, actor=user, client_ref="form-2")
    # another member of logistics' roles reusing the reference: not their submission
    with pytest.raises(Conflict):
        create(h, order, pieces, actor=h.manager, client_ref="form-2")
    again = create(h, order, pieces, client_ref="form-2")
    assert again.pk == first.pk and again.replayed
    assert Shipment.objects.count() == 1


def test_update_a_prepared_shipment(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces)
    services.shipment_update(actor=h.logistics, shipment_id=shipment.pk,
                             method="value_transport", carrier="Brink's",
                             tracking_number="BR 2024-77", address="Client's shop",
                             signature_required=False, neutral_outer_packaging=False,
                             note="Call before")
    shipment.refresh_from_db()
    assert (shipment.method, shipment.carrier, shipment.tracking_number, shipment.address,
            shipment.signature_required, shipment.neutral_outer_packaging, shipment.note) == \
        ("value_transport", "Brink's", "BR 2024-77", "Client's shop", False, False,
         "Call before")
    with pytest.raises(PermissionDenied):
        services.shipment_update(actor=h.logistics, shipment_id=shipment.pk,
                                 declared_value="10")
    with pytest.raises(PermissionDenied):
        services.shipment_update(actor=h.sales, shipment_id=shipment.pk, carrier="x")
    services.shipment_update(actor=h.sales, shipment_id=shipment.pk, declared_value="3100",
                             insurance_value="3000")
    shipment.refresh_from_db()
    assert shipment.declared_value == Decimal("3100.00")
    with pytest.raises(ValidationFailed):
        services.shipment_update(actor=h.logistics, shipment_id=shipment.pk, colour="red")
    with pytest.raises(NotFound):
        services.shipment_update(actor=h.caster_member, shipment_id=shipment.pk, carrier="x")
    entry = AuditEntry.objects.filter(action="shipment.update").last()
    assert entry.before["declared_value"] == "2400.00"
    assert entry.after["declared_value"] == "3100.00"


def test_add_and_remove_pieces(h, ready):
    order, (a, b) = ready
    shipment = create(h, order, [a])
    assert shipment.declared_value == Decimal("1200.00")
    services.shipment_add_pieces(actor=h.logistics, shipment_id=shipment.pk, piece_ids=[b.pk])
    shipment.refresh_from_db()
    assert shipment.items.filter(active=True).count() == 2
    assert shipment.declared_value == Decimal("2400.00")
    with pytest.raises(Conflict):
        services.shipment_add_pieces(actor=h.logistics, shipment_id=shipment.pk,
                                     piece_ids=[b.pk])
    services.shipment_remove_piece(actor=h.logistics, shipment_id=shipment.pk, piece_id=b.pk)
    shipment.refresh_from_db()
    assert list(shipment.items.filter(active=True).values_list("piece_id", flat=True)) == [a.pk]
    assert shipment.declared_value == Decimal("1200.00")
    with pytest.raises(NotFound):
        services.shipment_remove_piece(actor=h.logistics, shipment_id=shipment.pk,
                                       piece_id=b.pk)
    with pytest.raises(ValidationFailed, match="cancel the shipment"):
        services.shipment_remove_piece(actor=h.logistics, shipment_id=shipment.pk,
                                       piece_id=a.pk)
    with pytest.raises(PermissionDenied):
        services.shipment_add_pieces(actor=h.sales, shipment_id=shipment.pk,
                                     piece_ids=[b.pk])
    other_order, other = at_delivery(h)
    with pytest.raises(ValidationFailed):
        services.shipment_add_pieces(actor=h.logistics, shipment_id=shipment.pk,
                                     piece_ids=[other[0].pk])


# ---------------------------------------------------------------------------------------------
# packing


def test_pack_each_piece_and_the_outer_box(h, ready):
    order, (a, b) = ready
    shipment = create(h, order, [a, b])
    services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk,
                           pieces=[{"piece_id": a.pk, **PACKED}])
    shipment.refresh_from_db()
    assert shipment.packed_at is None  # b is not packed yet
    item = shipment.items.get(piece=a)
    assert (item.case, item.protection, item.packed_by) == ("ring_box", "foam_insert",
                                                            h.logistics)
    services.shipment_pack(actor=h.manager, shipment_id=shipment.pk,
                           pieces=[{"piece_id": b.pk, "case": "pouch",
                                    "protection": "anti_tarnish"}],
                           neutral_outer_packaging=False)
    shipment.refresh_from_db()
    assert shipment.packed_at is not None and shipment.packed_by == h.manager
    assert shipment.neutral_outer_packaging is False
    assert AuditEntry.objects.filter(action="shipment.pack").count() == 2
    # Packed again (a better case): the last word counts.
    services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk,
                           pieces=[{"piece_id": b.pk, "case": "ring_box",
                                    "protection": "tissue"}])
    assert shipment.items.get(piece=b).protection == "tissue"


@pytest.mark.parametrize("row, field", [
    ({"case": "ring_box", "protection": "foam_insert"}, "pieces"),  # no piece_id
    ({"piece_id": 0, "case": "ring_box", "protection": "foam_insert"}, "pieces"),
    ({"piece_id": "PIECE", "case": "ring_box", "protection": "foam_insert"}, "pieces"),
    ({"piece_id": "A", "case": "shoe_box", "protection": "foam_insert"}, "case"),
    ({"piece_id": "A", "case": "ring_box", "protection": ""}, "protection"),
])
def test_bad_packaging(h, ready, row, field):
    order, (a, b) = ready
    shipment = create(h, order, [a])
    row = {k: (a.pk if v == "A" else b.pk if v == "PIECE" else v) for k, v in row.items()}
    with pytest.raises(ValidationFailed) as exc:
        services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk, pieces=[row])
    assert exc.value.details["field"] == field
    assert not shipment.items.filter(packed_at__isnull=False).exists()


def test_packing_needs_something_and_the_right_role(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces)
    with pytest.raises(ValidationFailed):
        services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk, pieces=[])
    with pytest.raises(ValidationFailed, match="twice"):
        services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk,
                               pieces=[{"piece_id": pieces[0].pk, **PACKED}] * 2)
    with pytest.raises(PermissionDenied):
        pack_all(h, shipment, actor=h.sales)
    with pytest.raises(NotFound):
        pack_all(h, shipment, actor=h.polisher_member)


def test_adding_a_piece_unpacks_the_shipment(h, ready):
    order, (a, b) = ready
    shipment = create(h, order, [a])
    pack_all(h, shipment)
    shipment.refresh_from_db()
    assert shipment.packed_at is not None
    services.shipment_add_pieces(actor=h.logistics, shipment_id=shipment.pk, piece_ids=[b.pk])
    shipment.refresh_from_db()
    assert shipment.packed_at is None
    services.shipment_remove_piece(actor=h.logistics, shipment_id=shipment.pk, piece_id=b.pk)
    shipment.refresh_from_db()
    assert shipment.packed_at is not None and shipment.packed_by == h.logistics


# ---------------------------------------------------------------------------------------------
# shipping


def test_ship_with_a_tracking_number(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces)
    pack_all(h, shipment)
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                           tracking_number="  FG 1234 5678  ")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.SHIPPED
    assert shipment.tracking_number == "FG 1234 5678"
    assert shipment.shipped_at is not None and shipment.shipped_by == h.logistics
    assert AuditEntry.objects.filter(action="shipment.ship", object_id=str(shipment.pk)).exists()
    # Shipping does not end the delivery step: the delivery does.
    for p in pieces:
        p.refresh_from_db()
        assert p.status != PieceStatus.DELIVERED


def test_ship_guards(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces, carrier="")
    with pytest.raises(ValidationFailed) as exc:
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                               tracking_number="FG1")
    assert exc.value.details["field"] == "carrier"
    with pytest.raises(ValidationFailed) as exc:
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, carrier="Ferrari")
    assert exc.value.details["field"] == "tracking_number"
    with pytest.raises(TransitionNotAllowed, match="Pack every piece"):
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, carrier="Ferrari",
                               tracking_number="FG123")
    pack_all(h, shipment)
    with pytest.raises(PermissionDenied):
        services.shipment_ship(actor=h.sales, shipment_id=shipment.pk, carrier="Ferrari",
                               tracking_number="FG123")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.PREPARED and shipment.carrier == ""
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, carrier="Ferrari",
                           tracking_number="FG123")
    with pytest.raises(TransitionNotAllowed, match="already been shipped"):
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk)
    with pytest.raises(TransitionNotAllowed):
        services.shipment_cancel(actor=h.logistics, shipment_id=shipment.pk, reason="Oops")
    with pytest.raises(TransitionNotAllowed):
        services.shipment_update(actor=h.logistics, shipment_id=shipment.pk, carrier="x")
    with pytest.raises(TransitionNotAllowed):
        pack_all(h, shipment)


def test_an_insured_parcel_needs_a_declared_value(h):
    order, pieces = at_delivery(h, lines=[default_line(target_price=None)])
    shipment = create(h, order, pieces, method="insured_parcel", carrier="La Poste")
    assert shipment.declared_value is None
    pack_all(h, shipment)
    with pytest.raises(ValidationFailed) as exc:
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                               tracking_number="6A12345678901")
    assert exc.value.details["field"] == "declared_value"
    services.shipment_update(actor=h.manager, shipment_id=shipment.pk, declared_value="950")
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                           tracking_number="6A12345678901")


def test_a_piece_held_after_packing_stops_the_shipment(h, ready):
    order, (a, b) = ready
    shipment = create(h, order, [a, b])
    pack_all(h, shipment)
    piece_hold(actor=h.manager, piece_id=b.pk, reason=HoldReason.OTHER, comment="Check clasp")
    with pytest.raises(TransitionNotAllowed, match="on hold"):
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                               tracking_number="FG1234")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.PREPARED
    piece_release(actor=h.manager, piece_id=b.pk)
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, tracking_number="FG1234")


# ---------------------------------------------------------------------------------------------
# delivering


def test_delivery_completes_each_piece_and_the_order(h, ready):
    order, (a, b) = ready
    piece_start(actor=h.logistics, piece_id=a.pk)  # one started, the other not
    shipment = shipped(h, order, [a, b])
    services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="M. Roux",
                              comment="Left at the counter")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert shipment.signed_by == "M. Roux" and shipment.delivered_by == h.logistics
    for p in (a, b):
        p.refresh_from_db()
        assert p.status == PieceStatus.DELIVERED and p.delivered_at is not None
        run = delivery_run(p)
        assert run.status == StepStatus.DONE
        kinds = list(run.events.values_list("kind", flat=True))
        assert kinds[-2:] == [EventKind.STARTED, EventKind.COMPLETED]
        completed = run.events.get(kind=EventKind.COMPLETED)
        assert completed.actor == h.logistics and shipment.number in completed.comment
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.delivered_at is not None
    assert AuditEntry.objects.filter(action="order.delivered", order_id=order.pk).exists()


def test_an_order_is_delivered_with_its_last_shipment(h, ready):
    order, (a, b) = ready
    first = shipped(h, order, [a])
    services.shipment_deliver(actor=h.logistics, shipment_id=first.pk, signed_by="A")
    order.refresh_from_db()
    assert order.status == OrderStatus.LAUNCHED
    second = shipped(h, order, [b])
    services.shipment_deliver(actor=h.manager, shipment_id=second.pk, signed_by="B")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_delivery_guards(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces)
    pack_all(h, shipment)
    with pytest.raises(TransitionNotAllowed, match="ship it"):
        services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="X")
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, tracking_number="FG1")
    with pytest.raises(ValidationFailed) as exc:
        services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk)
    assert exc.value.details["field"] == "signed_by"
    with pytest.raises(PermissionDenied):
        services.shipment_deliver(actor=h.sales, shipment_id=shipment.pk, signed_by="X")
    with pytest.raises(NotFound):
        services.shipment_deliver(actor=h.setter_member, shipment_id=shipment.pk,
                                  signed_by="X")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.SHIPPED
    services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="X")
    with pytest.raises(TransitionNotAllowed, match="already been delivered"):
        services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="X")
    with pytest.raises(TransitionNotAllowed):
        services.shipment_cancel(actor=h.logistics, shipment_id=shipment.pk, reason="x")


def test_without_a_signature(h, ready):
    order, pieces = ready
    shipment = shipped(h, order, pieces, signature_required=False)
    services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED and shipment.signed_by == ""


def test_a_held_piece_is_not_delivered_and_nothing_is_half_written(h, ready):
    order, (a, b) = ready
    shipment = shipped(h, order, [a, b])
    piece_hold(actor=h.manager, piece_id=b.pk, reason=HoldReason.OTHER, comment="Lost?")
    with pytest.raises(TransitionNotAllowed):
        services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="X")
    shipment.refresh_from_db()
    a.refresh_from_db()
    assert shipment.status == ShipmentStatus.SHIPPED
    assert a.status != PieceStatus.DELIVERED


def test_a_pickup_is_handed_over_without_shipping(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces, method="pickup", carrier="")
    with pytest.raises(TransitionNotAllowed, match="Pack"):
        services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk,
                                  signed_by="Mme Roux")
    pack_all(h, shipment)
    services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="Mme Roux")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED and shipment.tracking_number == ""
    assert shipment.shipped_at == shipment.delivered_at
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_a_pickup_may_also_be_marked_shipped_without_tracking(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces, method="pickup", carrier="")
    pack_all(h, shipment)
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.SHIPPED and shipment.tracking_number == ""


def test_cancel(h, ready):
    order, pieces = ready
    shipment = create(h, order, pieces)
    with pytest.raises(ValidationFailed):
        services.shipment_cancel(actor=h.logistics, shipment_id=shipment.pk, reason="  ")
    with pytest.raises(PermissionDenied):
        services.shipment_cancel(actor=h.sales, shipment_id=shipment.pk, reason="x")
    services.shipment_cancel(actor=h.logistics, shipment_id=shipment.pk, reason="Client away")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.CANCELLED and shipment.cancel_reason
    assert not shipment.items.filter(active=True).exists()
    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        services.shipment_cancel(actor=h.logistics, shipment_id=shipment.pk, reason="x")
    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk)


# ---------------------------------------------------------------------------------------------
# the delivery step's gate


def test_the_delivery_step_ends_only_with_a_delivered_shipment(h, ready):
    order, (a, b) = ready
    piece_start(actor=h.logistics, piece_id=a.pk)
    with pytest.raises(TransitionNotAllowed, match="/delivery/") as exc:
        piece_complete(actor=h.logistics, piece_id=a.pk)
    assert "prepare one" in exc.value.message
    shipment = create(h, order, [a])
    pack_all(h, shipment)
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, tracking_number="FG12")
    with pytest.raises(TransitionNotAllowed, match=f"/delivery/shipments/{shipment.pk}/") \
            as exc:
        piece_complete(actor=h.manager, piece_id=a.pk)
    assert shipment.number in exc.value.message
    a.refresh_from_db()
    assert a.status == PieceStatus.IN_PROGRESS
    services.shipment_deliver(actor=h.logistics, shipment_id=shipment.pk, signed_by="X")
    a.refresh_from_db()
    assert a.status == PieceStatus.DELIVERED


def test_a_cancelled_shipment_does_not_open_the_gate(h, ready):
    order, (a, _b) = ready
    shipment = create(h, order, [a])
    services.shipment_cancel(actor=h.logistics, shipment_id=shipment.pk, reason="x")
    piece_start(actor=h.logistics, piece_id=a.pk)
    with pytest.raises(TransitionNotAllowed, match="prepare one"):
        piece_complete(actor=h.logistics, piece_id=a.pk)


def test_the_gate_leaves_other_steps_alone(h):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.FINISHING)  # design, manufacturing, setting completed
    piece.refresh_from_db()
    assert piece.current_step == StepKind.FINISHING
