"""Printed order documents: the launch sheet (one per order) and the technical sheet of a line.

Both are for the house's staff who may open the order page; they print in the order's language
with the house's letterhead (`core.printing`). Prices only for those who see prices.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404
from django.views.decorators.http import require_GET

from etabli.accounts.models import Role
from etabli.core import printing
from etabli.production.models import Piece

from . import selectors
from .models import LAUNCH_CHECKLIST, ChecklistSection, Order, OrderStatus


def _staff_order_or_404(user, order_id: int) -> Order:
    """The order, for the house's staff who may see it (workshops and clients have portals)."""
    if not user.is_active or user.role in (Role.WORKSHOP, Role.CLIENT):
        raise Http404("No such page.")
    order = selectors.order_get(user, order_id)
    if order is None:
        raise Http404("No such order.")
    return order


def _route(order: Order) -> list:
    steps = list(order.route.select_related("workshop").order_by("position"))
    for rs in steps:
        rs.workshop_name = rs.workshop.name if rs.workshop else ""
    return steps


def _checklist(order: Order) -> list[dict]:
    """The three parts of the mandatory checklist, each item with who checked it and when."""
    items = {i.code: i for i in order.checklist.select_related("checked_by")}
    sections = []
    for section in ChecklistSection:
        rows = []
        for code, sec, label in LAUNCH_CHECKLIST:
            if sec != section:
                continue
            item = items.get(code)
            rows.append({"label": label, "checked": bool(item and item.checked),
                         "by": printing.person(item.checked_by) if item else "",
                         "at": item.checked_at if item else None,
                         "note": item.note if item else ""})
        sections.append({"label": section.label, "items": rows})
    return sections


def launch_sheet_context(user, order: Order) -> dict:
    lines = list(order.lines.select_related("alloy").order_by("position")
                 .prefetch_related(Prefetch("pieces", queryset=Piece.objects.order_by("serial")
                                            .only("id", "serial", "line_id"))))
    checklist = _checklist(order)
    return {
        "lines": lines, "route": _route(order), "checklist": checklist,
        "is_draft": order.status == OrderStatus.DRAFT,
        "is_cancelled": order.status == OrderStatus.CANCELLED,
        "all_checked": all(i["checked"] for s in checklist for i in s["items"]),
        "show_client": user.sees_clients, "show_prices": user.sees_prices,
        "created_by": printing.person(order.created_by),
        "launched_by": printing.person(order.launched_by),
    }


@require_GET
@login_required
def launch_sheet(request, order_id: int):
    """The launch sheet as PDF, once the order has lines (a draft prints as a draft)."""
    order = _staff_order_or_404(request.user, order_id)
    if not order.lines.exists():
        raise Http404("The order has no lines yet.")
    pdf = printing.render_order_pdf("pdf/launch_sheet.html",
                                    launch_sheet_context(request.user, order),
                                    order=order, request=request)
    return printing.pdf_response(pdf, f"launch-sheet-{order.reference}.pdf")


@require_GET
@login_required
def line_technical_sheet(request, order_id: int, line_id: int):
    """The technical sheet of one order line, for the house's staff who see the order."""
    from etabli.production.technical_sheet import technical_sheet_context

    order = _staff_order_or_404(request.user, order_id)
    line = order.lines.select_related("alloy").filter(pk=line_id).first()
    if line is None:
        raise Http404("No such line.")
    line.order = order
    pdf = printing.render_order_pdf("pdf/technical_sheet.html",
                                    technical_sheet_context(request.user, line=line),
                                    order=order, request=request)
    return printing.pdf_response(pdf, f"technical-sheet-{order.reference}-{line.position}.pdf")
