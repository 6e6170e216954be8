"""What delivery adds to shared pages (see core.panels): a list of dicts, each with a
`template` to include and whatever that template needs. Each panel costs a fixed, small number
of queries."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.orders.models import OrderStatus
from etabli.workshops.models import StepKind

from . import documents, selectors
from .access import is_client, runs_shipments, sees_shipments
from .models import FollowUp, ShipmentItem


def piece_panels(request, piece) -> list[dict]:
    user = request.user
    if not sees_shipments(user) or piece.current_step != StepKind.DELIVERY:
        return []
    items = list(ShipmentItem.objects.filter(piece=piece).select_related("shipment")
                 .order_by("-id")[:5])
    current = next((i for i in items if i.active), None)
    follow_ups = list(FollowUp.objects.visible_to(user).filter(piece=piece)
                      .order_by("opened_at", "id"))
    ready = current is None and selectors.ready_pieces(user).filter(pk=piece.pk).exists()
    return [{"template": "shipping/_piece_panel.html", "item": current,
             "past": [i for i in items if not i.active], "follow_ups": follow_ups,
             "ready": ready, "can_ship": runs_shipments(user)}]


def order_panels(request, order) -> list[dict]:
    user = request.user
    if not sees_shipments(user) or order.status in (OrderStatus.DRAFT, OrderStatus.CANCELLED):
        return []
    data = selectors.order_delivery(user, order)
    return [{"template": "shipping/_order_panel.html", "delivery": data,
             "documents": documents.order_documents(user, order, data.shipments,
                                                    data.invoice),
             "can_ship": runs_shipments(user)}]


def portal_order_panels(request, order) -> list[dict]:
    user = request.user
    if not is_client(user) or order.status in (OrderStatus.DRAFT, OrderStatus.CANCELLED):
        return []
    shipments = selectors.order_shipments(user, order)
    if not shipments and order.status == OrderStatus.LAUNCHED:
        return []  # nothing has left for the client yet (one query for most orders)
    data = selectors.order_delivery(user, order, shipments)
    docs = documents.order_documents(user, order, data.shipments, data.invoice)
    if not (data.shipments or docs or data.follow_ups):
        return []
    return [{"template": "shipping/_portal_panel.html", "delivery": data, "documents": docs}]


def workshop_piece_panels(request, piece) -> list[dict]:
    return []


def nav_items(user) -> list[tuple[str, str]]:
    if sees_shipments(user):
        return [(_("Shipments"), reverse("shipping:list"))]
    return []
