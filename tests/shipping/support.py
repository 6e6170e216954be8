"""What tests do so a piece satisfies delivery's gates (called by tests.gate_support).

A piece leaves its delivery step only when its shipment is delivered: before the completion,
logistics ships the piece on its own (or goes on with the shipment a test already prepared for
it) and records the delivery, which completes the step itself — `HouseSetup.advance` notices.
"""

from __future__ import annotations

from etabli.shipping import services
from etabli.shipping.models import ShipmentItem, ShipmentStatus
from etabli.workshops.models import StepKind

CARRIER = "Ferrari Group"
SIGNED_BY = "J. Roux"


def before_send(h, piece, run) -> None:
    pass


def before_start(h, piece, run) -> None:
    pass


def ship_and_deliver(h, piece, *, actor=None):
    """Take `piece` (at its delivery step, at the house) through a delivered shipment."""
    actor = actor or h.logistics
    item = (ShipmentItem.objects.filter(piece=piece, active=True)
            .select_related("shipment").first())
    if item is None:
        shipment = services.shipment_create(actor=actor, order_id=piece.order_id,
                                            piece_ids=[piece.pk], method="courier",
                                            carrier=CARRIER)
    else:
        shipment = item.shipment
    if shipment.status == ShipmentStatus.PREPARED:
        unpacked = [i.piece_id for i in shipment.items.filter(active=True, packed_at=None)]
        if unpacked:
            services.shipment_pack(actor=actor, shipment_id=shipment.pk, pieces=[
                {"piece_id": pid, "case": "ring_box", "protection": "foam_insert"}
                for pid in unpacked])
        shipment.refresh_from_db()
        if not shipment.is_pickup:
            services.shipment_ship(actor=actor, shipment_id=shipment.pk,
                                   carrier=shipment.carrier or CARRIER,
                                   tracking_number=shipment.tracking_number
                                   or f"FG{shipment.pk:08d}FR")
    shipment.refresh_from_db()
    if shipment.status != ShipmentStatus.DELIVERED:
        services.shipment_deliver(actor=actor, shipment_id=shipment.pk, signed_by=SIGNED_BY)
    shipment.refresh_from_db()
    return shipment


def before_complete(h, piece, run) -> None:
    if run.step == StepKind.DELIVERY:
        ship_and_deliver(h, piece)
