"""The delivery's printed documents, generated from the order in the order's language: the
delivery slip (per shipment), the invoice, the certificates (stones and warranty) and the care
card. Who may read which is decided here, once, for the pages and the API alike."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from etabli.core.errors import NotFound
from etabli.core.printing import render_order_pdf
from etabli.orders.models import Order, OrderStatus

from . import invoicing
from .access import is_client, sees_shipments
from .models import Invoice, Shipment, ShipmentItem, ShipmentStatus

WARRANTY_YEARS = 2
LEFT_HOUSE = (ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED)
PRINTABLE_ORDER = (OrderStatus.LAUNCHED, OrderStatus.DELIVERED, OrderStatus.CLOSED)


@dataclass
class Doc:
    kind: str
    title: str
    url: str
    filename: str


# ---------------------------------------------------------------------------------------------
# who may read what


def slip_visible(user, shipment: Shipment) -> bool:
    """The house sees every slip; the client once the parcel has left."""
    if sees_shipments(user):
        return True
    return is_client(user) and shipment.status in LEFT_HOUSE


def order_papers_visible(user, order: Order, shipments: list[Shipment]) -> bool:
    """Certificates and care card: the house once the order is launched, the client once a
    parcel has left for them."""
    if order.status not in PRINTABLE_ORDER:
        return False
    if sees_shipments(user):
        return True
    return is_client(user) and any(s.status in LEFT_HOUSE for s in shipments)


def _order(user, order_id: int) -> Order:
    order = Order.objects.visible_to(user).select_related("client").filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return order


def get_slip_shipment(user, shipment_id: int) -> Shipment:
    shipment = (Shipment.objects.visible_to(user).select_related("order__client")
                .filter(pk=shipment_id).first())
    if shipment is None or not slip_visible(user, shipment):
        raise NotFound(_("No shipment with id %(id)s.") % {"id": shipment_id})
    return shipment


def get_invoice(user, order_id: int) -> Invoice:
    invoice = (Invoice.objects.visible_to(user).select_related("order__client")
               .filter(order_id=order_id).first())
    if invoice is None:
        raise NotFound(_("Order %(id)s has no invoice you can read.") % {"id": order_id})
    return invoice


def get_papers_order(user, order_id: int) -> Order:
    order = _order(user, order_id)
    shipments = list(Shipment.objects.visible_to(user).filter(order=order))
    if not order_papers_visible(user, order, shipments):
        raise NotFound(_("The certificates of order %(id)s are not available yet.")
                       % {"id": order_id})
    return order


def order_documents(user, order: Order, shipments: list[Shipment],
                    invoice: Invoice | None) -> list[Doc]:
    """The documents `user` may open for `order` (shipments and invoice already scoped)."""
    docs = []
    for s in shipments:
        if s.status != ShipmentStatus.CANCELLED and slip_visible(user, s):
            docs.append(Doc("delivery_slip",
                            str(_("Delivery slip %(number)s") % {"number": s.number}),
                            reverse("shipping:slip_pdf", args=[s.pk]),
                            f"delivery-slip-{s.number}.pdf"))
    if invoice is not None:
        title = (_("Invoice %(number)s") % {"number": invoice.number} if invoice.is_issued
                 else _("Draft invoice"))
        docs.append(Doc("invoice", str(title), reverse("shipping:invoice_pdf", args=[order.pk]),
                        f"invoice-{invoice.number or order.reference}.pdf"))
    if order_papers_visible(user, order, shipments):
        docs.append(Doc("certificates", str(_("Certificates (stones and warranty)")),
                        reverse("shipping:certificates_pdf", args=[order.pk]),
                        f"certificates-{order.reference}.pdf"))
        docs.append(Doc("care_card", str(_("Care instructions")),
                        reverse("shipping:care_card_pdf", args=[order.pk]),
                        f"care-card-{order.reference}.pdf"))
    return docs


# ---------------------------------------------------------------------------------------------
# rendering


def delivery_slip_pdf(shipment: Shipment, request=None) -> bytes:
    items = list(ShipmentItem.objects.filter(shipment=shipment, active=True)
                 .select_related("piece__line__alloy").order_by("piece__serial"))
    return render_order_pdf("shipping/pdf/delivery_slip.html",
                            {"shipment": shipment, "items": items,
                             "client": shipment.order.client},
                            order=shipment.order, request=request)


def invoice_pdf(invoice: Invoice, request=None) -> bytes:
    figures = invoicing.figures(invoice)
    return render_order_pdf("shipping/pdf/invoice.html",
                            {"invoice": invoice, "figures": figures,
                             "client": invoice.order.client,
                             "sow_statement": invoicing.SOW_STATEMENT},
                            order=invoice.order, request=request)


def _stone_lots_by_piece(order: Order) -> dict[int, list]:
    from etabli.materials.models import AllocationStatus, StoneAllocation

    out: dict[int, list] = {}
    allocations = (StoneAllocation.objects.filter(piece__order=order)
                   .exclude(status=AllocationStatus.RELEASED).select_related("lot")
                   .order_by("piece_id", "lot__number", "id"))
    for a in allocations:
        out.setdefault(a.piece_id, []).append(a)
    return out


def certificates_pdf(order: Order, request=None) -> bytes:
    pieces = list(order.pieces.select_related("line__alloy").order_by("serial"))
    stones = _stone_lots_by_piece(order)
    for piece in pieces:
        piece.allocations = stones.get(piece.pk, [])
    return render_order_pdf("shipping/pdf/certificates.html",
                            {"pieces": pieces, "warranty_years": WARRANTY_YEARS,
                             "client": order.client},
                            order=order, request=request)


# What a stone's name looks like in a line's free text (English and French).
STONE_WORDS = {
    "diamond": ("diamond", "diamant"), "ruby": ("ruby", "rubies", "rubis"),
    "sapphire": ("sapphire", "saphir"), "emerald": ("emerald", "émeraude", "emeraude"),
    "pearl": ("pearl", "perle"),
}
CORUNDUM = {"ruby", "sapphire"}


def care_topics(order: Order) -> dict:
    """Which care advice applies: the metals of the order's lines, the stones in its pieces."""
    from etabli.materials.models import AllocationStatus, StoneAllocation

    metals: list[str] = []
    white_gold = False
    stone_types: set[str] = set()
    for line in order.lines.select_related("alloy").order_by("position"):
        if line.alloy_id:
            if line.alloy.metal not in metals:
                metals.append(line.alloy.metal)
            white_gold |= line.alloy.metal == "gold" and "white" in line.alloy.colour.lower()
        text = (line.stones or "").lower()
        stone_types |= {kind for kind, words in STONE_WORDS.items()
                        if any(w in text for w in words)}
    stone_types |= set(StoneAllocation.objects.filter(piece__order=order)
                       .exclude(status=AllocationStatus.RELEASED)
                       .values_list("lot__stone_type", flat=True))
    return {
        "metals": metals, "white_gold": white_gold,
        "diamond": "diamond" in stone_types, "corundum": bool(stone_types & CORUNDUM),
        "emerald": "emerald" in stone_types, "pearl": "pearl" in stone_types,
        "coloured": bool(stone_types - {"diamond", "ruby", "sapphire", "emerald", "pearl"}),
        "has_stones": bool(stone_types),
    }


def care_card_pdf(order: Order, request=None) -> bytes:
    return render_order_pdf("shipping/pdf/care_card.html",
                            {"care": care_topics(order), "client": order.client},
                            order=order, request=request)
