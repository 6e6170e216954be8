from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from ninja import Schema

from etabli.core.models import AuditEntry

from .models import Order, OrderStatus


class OrderFilters(Schema):
    """The one definition of the order list's filters, shared by the API and the pages."""

    status: OrderStatus | None = None
    client_id: int | None = None
    q: str | None = None


def order_list(user, filters: OrderFilters | None = None) -> QuerySet[Order]:
    f = filters or OrderFilters()
    qs = Order.objects.visible_to(user).select_related("client", "route_template").annotate(
        piece_count=Count("pieces", distinct=True),
        line_count=Count("lines", distinct=True))
    if f.status:
        qs = qs.filter(status=f.status)
    if f.client_id is not None:
        qs = qs.filter(client_id=f.client_id)
    if f.q:
        term = f.q.strip()
        qs = qs.filter(Q(reference__icontains=term) | Q(client__name__icontains=term)
                       | Q(client_reference__icontains=term)
                       | Q(pieces__serial__iexact=term)).distinct()
    return qs.order_by("-created_at", "-id")


def order_get(user, order_id: int) -> Order | None:
    return (Order.objects.visible_to(user).select_related("client", "route_template")
            .filter(pk=order_id).first())


def order_audit(order: Order) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(order_id=order.pk).select_related("actor").order_by("at", "id")


def piece_audit(piece) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(piece_id=piece.pk).select_related("actor").order_by("at", "id")


def orders_with_lateness(qs: QuerySet[Order], user, today) -> QuerySet[Order]:
    """Mark each order that has a piece (one the user may see) past its step's due date, in
    the same query as the list (no query per order)."""
    from django.db.models import Exists, OuterRef

    from etabli.production.models import ACTIVE_PIECE_STATUSES, Piece

    late = Piece.objects.visible_to(user).filter(order_id=OuterRef("pk"), current_due__lt=today,
                                                 status__in=ACTIVE_PIECE_STATUSES)
    return qs.annotate(has_late_piece=Exists(late))
