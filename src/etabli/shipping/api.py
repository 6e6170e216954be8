"""Delivery: the /api/v1/ endpoints (shipments, packaging, documents, invoices, reception,
follow-ups). Thin: every read starts from a `visible_to`, every write is one service call."""

import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from etabli.core.api import Pagination
from etabli.core.errors import NotFound
from etabli.core.printing import pdf_response
from etabli.core.schemas import request_user
from etabli.orders.models import Order

from . import documents, invoicing, reception, selectors, services
from .access import is_client, sees_shipments
from .models import (
    CaseKind,
    FollowUp,
    FollowUpStatus,
    Invoice,
    InvoiceStatus,
    Protection,
    Reception,
    ReceptionOutcome,
    ShipmentStatus,
    ShippingMethod,
)

router = Router(tags=["Delivery"])

PDF_RESPONSE = {"responses": {200: {"description": "A PDF document",
                                    "content": {"application/pdf": {}}}}}


# ---------------------------------------------------------------------------------------------
# schemas


class ShipmentItemOut(Schema):
    piece_id: int
    serial: str
    description: str
    case: str
    case_label: str
    protection: str
    protection_label: str
    packed_at: dt.datetime | None

    @staticmethod
    def resolve_serial(obj):
        return obj.piece.serial

    @staticmethod
    def resolve_description(obj):
        return obj.piece.line.description

    @staticmethod
    def resolve_case_label(obj):
        return str(CaseKind(obj.case).label) if obj.case else ""

    @staticmethod
    def resolve_protection_label(obj):
        return str(Protection(obj.protection).label) if obj.protection else ""


def _house(context) -> bool:
    user = request_user(context)
    return bool(user is not None and sees_shipments(user))


def _prices(context) -> bool:
    user = request_user(context)
    return bool(user is not None and user.sees_prices)


class ShipmentBase(Schema):
    id: int
    number: str
    order_id: int
    order_reference: str
    status: ShipmentStatus
    status_label: str
    method: ShippingMethod
    method_label: str
    carrier: str
    tracking_number: str
    address: str
    signature_required: bool
    neutral_outer_packaging: bool
    currency: str
    declared_value: Decimal | None = Field(None, description="Only for roles that see prices")
    insurance_value: Decimal | None = Field(None, description="Only for roles that see prices")
    note: str = Field("", description="The house's note (not shown to clients)")
    created_at: dt.datetime
    packed_at: dt.datetime | None
    shipped_at: dt.datetime | None
    delivered_at: dt.datetime | None
    signed_by: str
    cancelled_at: dt.datetime | None
    cancel_reason: str

    @staticmethod
    def resolve_order_reference(obj):
        return obj.order.reference

    @staticmethod
    def resolve_status_label(obj):
        return str(ShipmentStatus(obj.status).label)

    @staticmethod
    def resolve_method_label(obj):
        return str(ShippingMethod(obj.method).label)

    @staticmethod
    def resolve_declared_value(obj, context):
        return obj.declared_value if _prices(context) else None

    @staticmethod
    def resolve_insurance_value(obj, context):
        return obj.insurance_value if _prices(context) else None

    @staticmethod
    def resolve_note(obj, context):
        return obj.note if _house(context) else ""


class ShipmentOut(ShipmentBase):
    items: list[ShipmentItemOut]

    @staticmethod
    def resolve_items(obj):
        items = getattr(obj, "active_items", None)
        if items is None:
            items = list(obj.items.filter(active=True).select_related("piece__line")
                         .order_by("piece__serial"))
        return items


class ShipmentListOut(ShipmentBase):
    piece_count: int


class ShipmentIn(Schema):
    order_id: int
    piece_ids: list[int] = Field(min_length=1, max_length=services.MAX_PIECES)
    method: ShippingMethod
    carrier: str = Field("", max_length=80)
    tracking_number: str = Field("", max_length=60)
    address: str | None = Field(None, max_length=4000,
                                description="Default: the client's address (the house's for "
                                            "a pickup)")
    signature_required: bool = True
    neutral_outer_packaging: bool = True
    note: str = Field("", max_length=4000)
    declared_value: Decimal | None = Field(
        None, ge=0, max_digits=12, decimal_places=2,
        description="Roles that see prices only; default: the pieces' agreed prices")
    insurance_value: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    client_ref: str | None = Field(None, min_length=1, max_length=64,
                                   description="Your id for this request: sent again, it "
                                               "answers the same shipment")


class ShipmentPatch(Schema):
    method: ShippingMethod | None = None
    carrier: str | None = Field(None, max_length=80)
    tracking_number: str | None = Field(None, max_length=60)
    address: str | None = Field(None, max_length=4000)
    signature_required: bool | None = None
    neutral_outer_packaging: bool | None = None
    note: str | None = Field(None, max_length=4000)
    declared_value: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    insurance_value: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)


class PiecesIn(Schema):
    piece_ids: list[int] = Field(min_length=1, max_length=services.MAX_PIECES)


class PackedPieceIn(Schema):
    piece_id: int
    case: CaseKind
    protection: Protection


class PackagingIn(Schema):
    pieces: list[PackedPieceIn] = Field(default_factory=list, max_length=services.MAX_PIECES)
    neutral_outer_packaging: bool | None = None


class ShipIn(Schema):
    carrier: str | None = Field(None, max_length=80)
    tracking_number: str | None = Field(None, max_length=60)


class DeliverIn(Schema):
    signed_by: str = Field("", max_length=120, description="Who signed for the parcel "
                                                           "(required when a signature is)")
    comment: str = Field("", max_length=4000)


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=4000)


class ReadyPieceOut(Schema):
    id: int
    serial: str
    order_id: int
    order_reference: str
    description: str
    status: str

    @staticmethod
    def resolve_order_reference(obj):
        return obj.order.reference

    @staticmethod
    def resolve_description(obj):
        return obj.line.description


class InvoiceLineOut(Schema):
    id: int
    position: int
    description: str
    quantity: int
    unit_price: Decimal | None
    amount: Decimal | None


class InvoiceOut(Schema):
    id: int
    order_id: int
    status: InvoiceStatus
    number: str | None
    currency: str
    issued_at: dt.datetime | None
    # The figures are worked out once per invoice (`Invoice.figures`): read from there.
    lines: list[InvoiceLineOut] = Field(alias="figures.lines")
    vat_percent: Decimal = Field(alias="figures.vat_percent")
    subtotal: Decimal | None = Field(alias="figures.subtotal")
    vat_amount: Decimal | None = Field(alias="figures.vat_amount")
    total: Decimal | None = Field(alias="figures.total")
    includes_diamonds: bool = Field(alias="figures.includes_diamonds")
    system_of_warranties: str | None = Field(
        None, description="The statement printed on the invoice for diamond jewellery")

    @staticmethod
    def resolve_system_of_warranties(obj):
        return invoicing.SOW_STATEMENT if obj.figures.includes_diamonds else None


class UnitPriceIn(Schema):
    unit_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)


class FollowUpOut(Schema):
    id: int
    order_id: int
    order_reference: str
    piece_id: int | None
    serial: str | None
    description: str
    status: FollowUpStatus
    opened_at: dt.datetime
    resolution: str
    resolved_at: dt.datetime | None

    @staticmethod
    def resolve_order_reference(obj):
        return obj.order.reference

    @staticmethod
    def resolve_serial(obj):
        return obj.piece.serial if obj.piece_id else None


class ReceptionOut(Schema):
    order_id: int
    outcome: ReceptionOutcome
    outcome_label: str
    note: str
    on_behalf: bool
    recorded_by: str | None
    recorded_at: dt.datetime
    follow_ups: list[FollowUpOut]

    @staticmethod
    def resolve_outcome_label(obj):
        return str(ReceptionOutcome(obj.outcome).label)

    @staticmethod
    def resolve_recorded_by(obj, context):
        # Who recorded it is the house's to know; a client reads only their own name.
        user = request_user(context)
        if user is None or not obj.recorded_by_id:
            return None
        if not (user.sees_clients or obj.recorded_by_id == user.pk):
            return None
        return obj.recorded_by.username

    @staticmethod
    def resolve_follow_ups(obj):
        return list(obj.follow_ups.select_related("order", "piece").order_by("opened_at", "id"))


class ReservationIn(Schema):
    text: str = Field(min_length=1, max_length=4000)
    piece_id: int | None = Field(None, description="Empty for the whole order")


class ReceptionIn(Schema):
    outcome: ReceptionOutcome = ReceptionOutcome.ACCEPTED
    note: str = Field("", max_length=4000, description=(
        "Anything to say about the delivery; required when the house records the reception "
        "for the client (how the client told you)"))
    reservations: list[ReservationIn] = Field(default_factory=list, max_length=50)


class ResolveIn(Schema):
    resolution: str = Field(min_length=1, max_length=4000)


class FollowUpFilters(Schema):
    status: FollowUpStatus | None = None
    order_id: int | None = None


class DocOut(Schema):
    kind: str
    title: str
    url: str


class OrderDeliveryOut(Schema):
    order_id: int
    order_reference: str
    order_status: str
    shipments: list[ShipmentOut]
    invoice_number: str | None
    reception: ReceptionOut | None
    documents: list[DocOut]


# ---------------------------------------------------------------------------------------------
# shipments


def _shipment(request, shipment_id: int):
    shipment = selectors.shipment_get(request.auth, shipment_id)
    if shipment is None:
        raise NotFound(_("No shipment with id %(id)s.") % {"id": shipment_id})
    return shipment


@router.get("/delivery/shipments", response=list[ShipmentListOut], summary="List shipments")
@paginate(Pagination)
def list_shipments(request, filters: Query[selectors.ShipmentFilters]):
    """Shipments you may see, newest first. `q` searches the shipment number, the tracking
    number, the order reference and piece serials."""
    return selectors.shipment_list(request.auth, filters)


@router.get("/delivery/ready-pieces", response=list[ReadyPieceOut],
            summary="Pieces waiting at the house to be shipped")
@paginate(Pagination)
def list_ready_pieces(request):
    return selectors.ready_pieces(request.auth)


@router.post("/delivery/shipments", response={200: ShipmentOut, 201: ShipmentOut},
             summary="Prepare a shipment for pieces of one order")
def create_shipment(request, payload: ShipmentIn):
    """201 with the new shipment; 200 with the same shipment when `client_ref` was already
    used for this request."""
    shipment = services.shipment_create(actor=request.auth, **payload.dict())
    return (200 if shipment.replayed else 201), _shipment(request, shipment.pk)


@router.get("/delivery/shipments/{shipment_id}", response=ShipmentOut, summary="A shipment")
def get_shipment(request, shipment_id: int):
    return _shipment(request, shipment_id)


@router.patch("/delivery/shipments/{shipment_id}", response=ShipmentOut,
              summary="Change a prepared shipment")
def update_shipment(request, shipment_id: int, payload: ShipmentPatch):
    services.shipment_update(actor=request.auth, shipment_id=shipment_id,
                             **payload.dict(exclude_unset=True))
    return _shipment(request, shipment_id)


@router.post("/delivery/shipments/{shipment_id}/pieces", response=ShipmentOut,
             summary="Add pieces to a prepared shipment")
def add_pieces(request, shipment_id: int, payload: PiecesIn):
    services.shipment_add_pieces(actor=request.auth, shipment_id=shipment_id,
                                 piece_ids=payload.piece_ids)
    return _shipment(request, shipment_id)


@router.delete("/delivery/shipments/{shipment_id}/pieces/{piece_id}", response=ShipmentOut,
               summary="Take a piece off a prepared shipment")
def remove_piece(request, shipment_id: int, piece_id: int):
    services.shipment_remove_piece(actor=request.auth, shipment_id=shipment_id,
                                   piece_id=piece_id)
    return _shipment(request, shipment_id)


@router.post("/delivery/shipments/{shipment_id}/packaging", response=ShipmentOut,
             summary="Record how the pieces are packed")
def pack(request, shipment_id: int, payload: PackagingIn):
    services.shipment_pack(actor=request.auth, shipment_id=shipment_id,
                           pieces=[p.dict() for p in payload.pieces],
                           neutral_outer_packaging=payload.neutral_outer_packaging)
    return _shipment(request, shipment_id)


@router.post("/delivery/shipments/{shipment_id}/ship", response=ShipmentOut,
             summary="The shipment leaves with its carrier and tracking number")
def ship(request, shipment_id: int, payload: ShipIn):
    services.shipment_ship(actor=request.auth, shipment_id=shipment_id,
                           carrier=payload.carrier, tracking_number=payload.tracking_number)
    return _shipment(request, shipment_id)


@router.post("/delivery/shipments/{shipment_id}/deliver", response=ShipmentOut,
             summary="The client has the shipment: its pieces are delivered")
def deliver(request, shipment_id: int, payload: DeliverIn):
    services.shipment_deliver(actor=request.auth, shipment_id=shipment_id,
                              signed_by=payload.signed_by, comment=payload.comment)
    return _shipment(request, shipment_id)


@router.post("/delivery/shipments/{shipment_id}/cancel", response=ShipmentOut,
             summary="Cancel a prepared shipment (its pieces may go on another)")
def cancel(request, shipment_id: int, payload: CancelIn):
    services.shipment_cancel(actor=request.auth, shipment_id=shipment_id,
                             reason=payload.reason)
    return _shipment(request, shipment_id)


@router.get("/delivery/shipments/{shipment_id}/delivery-slip.pdf",
            summary="The shipment's delivery slip (PDF, no prices)", openapi_extra=PDF_RESPONSE)
def delivery_slip(request, shipment_id: int):
    shipment = documents.get_slip_shipment(request.auth, shipment_id)
    return pdf_response(documents.delivery_slip_pdf(shipment, request),
                        f"delivery-slip-{shipment.number}.pdf")


# ---------------------------------------------------------------------------------------------
# one order: summary, invoice, papers, reception


def _order(request, order_id: int) -> Order:
    order = Order.objects.visible_to(request.auth).filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return order


def _invoice_out(invoice: Invoice) -> Invoice:
    invoice.figures = invoicing.figures(invoice)
    return invoice


@router.get("/delivery/orders/{order_id}", response=OrderDeliveryOut,
            summary="An order's shipments, reception and the documents you may open")
def order_delivery(request, order_id: int):
    user = request.auth
    order = _order(request, order_id)
    if not (sees_shipments(user) or is_client(user)):
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    data = selectors.order_delivery(user, order)
    docs = documents.order_documents(user, order, data.shipments, data.invoice)
    return {"order_id": order.pk, "order_reference": order.reference,
            "order_status": order.status, "shipments": data.shipments,
            "invoice_number": data.invoice.number if data.invoice else None,
            "reception": data.reception,
            "documents": [{"kind": d.kind, "title": d.title, "url": d.url} for d in docs]}


@router.get("/delivery/orders/{order_id}/invoice", response=InvoiceOut,
            summary="The order's invoice (clients: once issued)")
def get_invoice(request, order_id: int):
    return _invoice_out(documents.get_invoice(request.auth, order_id))


@router.post("/delivery/orders/{order_id}/invoice", response={200: InvoiceOut, 201: InvoiceOut},
             summary="Prepare the order's draft invoice (at the lines' agreed prices)")
def prepare_invoice(request, order_id: int):
    invoice = invoicing.invoice_prepare(actor=request.auth, order_id=order_id)
    return (201 if invoice.created else 200), _invoice_out(invoice)


@router.patch("/delivery/invoices/{invoice_id}/lines/{line_id}", response=InvoiceOut,
              summary="Set a line's unit price on a draft invoice")
def price_line(request, invoice_id: int, line_id: int, payload: UnitPriceIn):
    line = invoicing.invoice_line_price(actor=request.auth, invoice_id=invoice_id,
                                        line_id=line_id, unit_price=payload.unit_price)
    return _invoice_out(Invoice.objects.get(pk=line.invoice_id))


@router.post("/delivery/invoices/{invoice_id}/issue", response=InvoiceOut,
             summary="Issue the invoice: numbered once, then it never changes")
def issue_invoice(request, invoice_id: int):
    return _invoice_out(invoicing.invoice_issue(actor=request.auth, invoice_id=invoice_id))


@router.get("/delivery/orders/{order_id}/invoice.pdf", summary="The invoice (PDF)",
            openapi_extra=PDF_RESPONSE)
def invoice_pdf(request, order_id: int):
    invoice = documents.get_invoice(request.auth, order_id)
    return pdf_response(documents.invoice_pdf(invoice, request),
                        f"invoice-{invoice.number or invoice.order.reference}.pdf")


@router.get("/delivery/orders/{order_id}/certificates.pdf",
            summary="Stone and warranty certificates (PDF)", openapi_extra=PDF_RESPONSE)
def certificates_pdf(request, order_id: int):
    order = documents.get_papers_order(request.auth, order_id)
    return pdf_response(documents.certificates_pdf(order, request),
                        f"certificates-{order.reference}.pdf")


@router.get("/delivery/orders/{order_id}/care-card.pdf", summary="Care instructions (PDF)",
            openapi_extra=PDF_RESPONSE)
def care_card_pdf(request, order_id: int):
    order = documents.get_papers_order(request.auth, order_id)
    return pdf_response(documents.care_card_pdf(order, request),
                        f"care-card-{order.reference}.pdf")


@router.get("/delivery/orders/{order_id}/reception", response=ReceptionOut,
            summary="The client's reception of the order")
def get_reception(request, order_id: int):
    found = (Reception.objects.visible_to(request.auth).select_related("recorded_by")
             .filter(order_id=order_id).first())
    if found is None:
        raise NotFound(_("No reception recorded for order %(id)s.") % {"id": order_id})
    return found


@router.post("/delivery/orders/{order_id}/reception", response={201: ReceptionOut},
             summary="Confirm reception: accepted, or with reservations (client, or the house "
                     "for them)")
def record_reception(request, order_id: int, payload: ReceptionIn):
    """Reservations open follow-ups; the order closes when everything is accepted. Recorded
    once: a second reception answers 409."""
    found = reception.reception_record(
        actor=request.auth, order_id=order_id, outcome=payload.outcome, note=payload.note,
        reservations=[r.dict() for r in payload.reservations])
    return 201, found


@router.get("/delivery/follow-ups", response=list[FollowUpOut],
            summary="Follow-ups of reservations noted at reception")
@paginate(Pagination)
def list_follow_ups(request, filters: Query[FollowUpFilters]):
    qs = FollowUp.objects.visible_to(request.auth).select_related("order", "piece")
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.order_id is not None:
        qs = qs.filter(order_id=filters.order_id)
    return qs.order_by("opened_at", "id")


@router.post("/delivery/follow-ups/{follow_up_id}/resolve", response=FollowUpOut,
             summary="Resolve a follow-up (the order closes with its last one)")
def resolve_follow_up(request, follow_up_id: int, payload: ResolveIn):
    follow_up = reception.follow_up_resolve(actor=request.auth, follow_up_id=follow_up_id,
                                            resolution=payload.resolution)
    return FollowUp.objects.select_related("order", "piece").get(pk=follow_up.pk)
