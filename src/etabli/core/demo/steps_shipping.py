"""The demo's delivery work (called by core.demo.steps around each move).

When logistics starts an order's delivery step, the pieces are packed in their cases and leave
together on one shipment — by specialised courier or value transport for the shops, insured
parcel for the small ones, a pickup at the house for some private clients — and sales issues
the invoice. When the step is completed, the carrier has delivered: the shipment's delivery ends
the delivery step of every piece on it. The clients then confirm reception; most accept, one
noted a reservation the house has since resolved, and one's reservation is still open.

Choices come from `random.Random(order number)`, so the story's own draws are untouched.
"""

from __future__ import annotations

import random

from etabli.core.errors import TransitionNotAllowed
from etabli.production.models import Piece, StepStatus
from etabli.shipping import invoicing, services
from etabli.shipping.models import ShipmentItem, ShipmentStatus
from etabli.shipping.reception import follow_up_resolve, reception_record
from etabli.workshops.models import StepKind

from . import catalogue as cat

# (method, carrier, tracking number pattern: L = letter, D = digit)
SHOPS_FRANCE = [("courier", "Ferrari Group", "FG DDDDDDDDDD"),
                ("value_transport", "Brink's Global Services", "BGS-DDDDDDDD"),
                ("insured_parcel", "Chronopost", "LLDDDDDDDDDFR")]
SHOPS_ABROAD = [("courier", "Malca-Amit", "MA-DDDDDDDDD"),
                ("courier", "Ferrari Group", "FG DDDDDDDDDD"),
                ("value_transport", "Brink's Global Services", "BGS-DDDDDDDD")]
PRIVATE = [("pickup", "", ""), ("value_transport", "Malca-Amit", "MA-DDDDDDDDD")]
CASES = {"ring": "ring_box", "band": "ring_box", "alliance": "ring_box", "earring": "earring_box",
         "stud": "earring_box", "hoop": "earring_box", "necklace": "necklace_case",
         "pendant": "pendant_box", "bracelet": "bracelet_case", "bangle": "bracelet_case",
         "brooch": "brooch_box", "cufflink": "pouch"}
RESERVATIONS = [
    ("The clasp is stiff and hard to close; could you look at it?",
     "Clasp spring adjusted at the house and the piece sent back by courier; the client is "
     "satisfied."),
    ("One of the small diamonds looks dull under the loupe.",
     "Stone cleaned and checked under the microscope: no damage; returned with a note."),
]
# Which receptions of the story note a reservation (and which one), and at which later
# reception the house has resolved the first of them.
RESERVED_AT = {2: 0, 7: 1}
RESOLVED_BY = 5


def _rng(scene) -> random.Random:
    return random.Random(scene.plan.no * 7919 + 17)


def _tracking(rng: random.Random, pattern: str) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(rng.choice(letters) if c == "L" else str(rng.randint(0, 9)) if c == "D"
                   else c for c in pattern)


def _case(description: str) -> str:
    text = description.lower()
    return next((case for word, case in CASES.items() if word in text), "pouch")


def _method(scene, rng: random.Random) -> tuple[str, str, str]:
    client = scene.order.client
    if client.kind == "b2c":
        return rng.choice(PRIVATE)
    if "France" in client.address:
        return rng.choice(SHOPS_FRANCE)
    return rng.choice(SHOPS_ABROAD)


def _ship(scene, pieces) -> None:
    """Pack the order's pieces waiting at the house and send them on one shipment."""
    rng = _rng(scene)
    logistics = scene.story.user("logistics")
    method, carrier, pattern = _method(scene, rng)
    shipment = services.shipment_create(
        actor=logistics, order_id=scene.order.pk, piece_ids=[p.pk for p in pieces],
        method=method, carrier=carrier, signature_required=True,
        neutral_outer_packaging=method != "pickup")
    services.shipment_pack(actor=logistics, shipment_id=shipment.pk, pieces=[
        {"piece_id": p.pk, "case": _case(p.line.description),
         "protection": "foam_insert" if method != "pickup" else "tissue"} for p in pieces])
    if method != "pickup":
        services.shipment_ship(actor=logistics, shipment_id=shipment.pk,
                               tracking_number=_tracking(rng, pattern))
    _invoice(scene)


def _invoice(scene) -> None:
    sales = scene.story.user("sales")
    invoice = invoicing.invoice_prepare(actor=sales, order_id=scene.order.pk)
    if not invoice.is_issued and not invoice.lines.filter(unit_price=None).exists():
        invoicing.invoice_issue(actor=sales, invoice_id=invoice.pk)


def before_send(scene, piece, run) -> None:
    pass


def _waiting(scene) -> list[Piece]:
    """The order's pieces at the house for their delivery step, on no shipment yet."""
    out = []
    for p in Piece.objects.filter(pk__in=[p.pk for p in scene.pieces()]).order_by("serial"):
        if ShipmentItem.objects.filter(piece=p, active=True).exists():
            continue
        try:
            services.delivery_run(p)
        except TransitionNotAllowed:
            continue
        out.append(p)
    return out


def before_start(scene, piece, run) -> None:
    if run is None or run.step != StepKind.DELIVERY:
        return
    if ShipmentItem.objects.filter(piece=piece, active=True).exists():
        return
    _ship(scene, _waiting(scene))


def before_complete(scene, piece, run) -> None:
    if run is None or run.step != StepKind.DELIVERY or run.status != StepStatus.IN_PROGRESS:
        return
    item = (ShipmentItem.objects.filter(piece=piece, active=True).select_related("shipment")
            .first())
    if item is None:
        before_start(scene, piece, run)
        item = ShipmentItem.objects.select_related("shipment").get(piece=piece, active=True)
    shipment = item.shipment
    if shipment.status == ShipmentStatus.DELIVERED:
        return
    # Whoever is at the shop signs for the parcel: one of the client's contacts, as a rule.
    contacts = list(scene.order.client.contacts.order_by("id").values_list("name", flat=True))
    signed = _rng(scene).choice(contacts) if contacts else scene.order.client.name
    services.shipment_deliver(actor=scene.story.user("logistics"), shipment_id=shipment.pk,
                              signed_by=signed)


def confirm_reception(scene) -> None:
    """The client's contact confirms reception (sales records it, for clients without one);
    the second and seventh receptions of the story note a reservation, and the first of them is
    resolved by the house by the time of the fifth."""
    story = scene.story
    count = getattr(story, "shipping_receptions", 0) + 1
    story.shipping_receptions = count
    opened: list = getattr(story, "shipping_follow_ups", [])
    story.shipping_follow_ups = opened
    if count == RESOLVED_BY and opened:
        follow_up, resolution = opened[0]
        follow_up_resolve(actor=story.user("sales"), follow_up_id=follow_up.pk,
                          resolution=resolution)
    contact = next((u.username for u in cat.DEMO_USERS if u.client == scene.plan.client), None)
    actor = story.user(contact or "sales")
    note = "" if contact else "Confirmed by phone."
    if count in RESERVED_AT:
        text, resolution = RESERVATIONS[RESERVED_AT[count]]
        piece = scene.pieces()[0]
        reception = reception_record(actor=actor, order_id=scene.order.pk,
                                     outcome="reservations", note=note,
                                     reservations=[{"piece_id": piece.pk, "text": text}])
        opened.append((reception.follow_ups.get(), resolution))
    else:
        reception_record(actor=actor, order_id=scene.order.pk, note=note)
