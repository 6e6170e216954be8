"""Reads for delivery, already scoped to the user: the pieces waiting to be shipped, the
shipments, and everything delivery says about one order."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Prefetch, Q, QuerySet
from ninja import Schema

from etabli.orders.models import Order, OrderStatus
from etabli.production.models import Piece, PieceStatus
from etabli.workshops.models import StepKind

from .access import sees_shipments
from .models import (
    FollowUp,
    FollowUpStatus,
    Invoice,
    Reception,
    Shipment,
    ShipmentItem,
    ShipmentStatus,
)

READY_PIECE_STATUSES = (PieceStatus.READY, PieceStatus.RECEIVED, PieceStatus.IN_PROGRESS)


class ShipmentFilters(Schema):
    """The one definition of the shipment list's filters, shared by the API and the pages."""

    status: ShipmentStatus | None = None
    order_id: int | None = None
    q: str | None = None


def active_items() -> Prefetch:
    return Prefetch("items", to_attr="active_items",
                    queryset=ShipmentItem.objects.filter(active=True)
                    .select_related("piece__line").order_by("piece__serial"))


def shipment_list(user, filters: ShipmentFilters | None = None) -> QuerySet[Shipment]:
    f = filters or ShipmentFilters()
    qs = (Shipment.objects.visible_to(user).select_related("order__client")
          .annotate(piece_count=Count("items", filter=Q(items__active=True))))
    if f.status:
        qs = qs.filter(status=f.status)
    if f.order_id is not None:
        qs = qs.filter(order_id=f.order_id)
    if f.q:
        term = f.q.strip()
        qs = qs.filter(Q(number__icontains=term) | Q(tracking_number__icontains=term)
                       | Q(order__reference__icontains=term)
                       | Q(items__piece__serial__iexact=term)).distinct()
    return qs.order_by("-created_at", "-id")


def shipment_get(user, shipment_id: int) -> Shipment | None:
    return (Shipment.objects.visible_to(user)
            .select_related("order__client", "created_by", "packed_by", "shipped_by",
                            "delivered_by", "cancelled_by")
            .prefetch_related(active_items()).filter(pk=shipment_id).first())


def ready_pieces(user) -> QuerySet[Piece]:
    """Pieces at their delivery step, at the house where it is done, not on hold and on no
    shipment yet: what logistics can pack now."""
    if not sees_shipments(user):
        return Piece.objects.none()
    return (Piece.objects.visible_to(user)
            .filter(current_step=StepKind.DELIVERY, status__in=READY_PIECE_STATUSES,
                    location_id=F("current_run__workshop_id"))
            .exclude(shipment_items__active=True)
            .select_related("order__client", "line", "current_run")
            .order_by("order__reference", "serial"))


def pieces_on_their_way(user) -> QuerySet[Piece]:
    """Pieces whose next step is delivery but which are not at the house yet (or on hold)."""
    if not sees_shipments(user):
        return Piece.objects.none()
    return (Piece.objects.visible_to(user).filter(current_step=StepKind.DELIVERY)
            .exclude(status=PieceStatus.DELIVERED)
            .exclude(status__in=READY_PIECE_STATUSES, location_id=F("current_run__workshop_id"))
            .select_related("order", "line").order_by("current_due", "serial"))


def open_follow_ups(user) -> QuerySet[FollowUp]:
    return (FollowUp.objects.visible_to(user).filter(status=FollowUpStatus.OPEN)
            .select_related("order__client", "piece").order_by("opened_at", "id"))


@dataclass
class OrderDelivery:
    """What delivery says about one order, for one user (a fixed number of queries)."""

    shipments: list[Shipment] = field(default_factory=list)
    ready: list[Piece] = field(default_factory=list)
    invoice: Invoice | None = None
    reception: Reception | None = None
    follow_ups: list[FollowUp] = field(default_factory=list)

    @property
    def open_follow_ups(self) -> list[FollowUp]:
        return [f for f in self.follow_ups if f.status == FollowUpStatus.OPEN]


def order_shipments(user, order: Order) -> list[Shipment]:
    return list(Shipment.objects.visible_to(user).filter(order=order)
                .prefetch_related(active_items()).order_by("created_at", "id"))


def order_delivery(user, order: Order, shipments: list[Shipment] | None = None
                   ) -> OrderDelivery:
    if shipments is None:
        shipments = order_shipments(user, order)
    ready = list(ready_pieces(user).filter(order=order)) \
        if sees_shipments(user) and order.status == OrderStatus.LAUNCHED else []
    invoice = (Invoice.objects.visible_to(user).filter(order=order)
               .select_related("issued_by").first())
    reception, follow_ups = None, []
    if order.status in (OrderStatus.DELIVERED, OrderStatus.CLOSED):  # received only then
        reception = (Reception.objects.visible_to(user).filter(order=order)
                     .select_related("recorded_by").first())
        if reception is not None:
            follow_ups = list(FollowUp.objects.visible_to(user).filter(order=order)
                              .select_related("piece", "resolved_by")
                              .order_by("opened_at", "id"))
    return OrderDelivery(shipments, ready, invoice, reception, follow_ups)
