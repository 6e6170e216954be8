"""Printed production documents: the transfer slip that travels with pieces, and the technical
sheet of a piece.

A slip is printed by whoever may see the transfer (`Transfer.objects.visible_to`); a workshop's
print never names the client. Both print in the order's language with the house's letterhead.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404
from django.urls import reverse
from django.views.decorators.http import require_GET

from etabli.accounts.models import Role
from etabli.core import printing
from etabli.workshops.models import StepKind

from .models import Piece, Transfer, TransferLine
from .technical_sheet import technical_sheet_context


def _transfer_or_404(user, transfer_id: int) -> Transfer:
    transfer = (Transfer.objects.visible_to(user)
                .select_related("from_workshop", "to_workshop", "sent_by")
                .prefetch_related(Prefetch(
                    "lines", queryset=TransferLine.objects
                    .select_related("piece__order__client", "piece__line__alloy", "step_run",
                                    "received_by")
                    .order_by("piece__serial", "id")))
                .filter(pk=transfer_id).first())
    if transfer is None:
        raise Http404("No such slip.")
    return transfer


def transfer_slip_context(request, transfer: Transfer) -> dict:
    user = request.user
    url = request.build_absolute_uri(reverse("production:transfer_slip", args=[transfer.pk]))
    lines = []
    for ln in transfer.lines.all():
        piece = ln.piece
        run = ln.step_run
        lines.append({
            "serial": piece.serial, "order_reference": piece.order.reference,
            "client_reference": piece.order.client_reference if user.sees_clients else "",
            "client_name": piece.order.client.name if user.sees_clients else "",
            "description": piece.line.description,
            "alloy": piece.line.alloy,
            "step": StepKind(run.step).label if run.step in StepKind.values else run.step,
            "operations": run.operations or [],
            "weight_sent_g": ln.weight_sent_g, "weight_received_g": ln.weight_received_g,
            "difference_g": (ln.weight_received_g - ln.weight_sent_g
                             if ln.weight_sent_g is not None
                             and ln.weight_received_g is not None else None),
            "flagged": ln.weight_flagged,
            "received_by": printing.person(ln.received_by), "received_at": ln.received_at,
        })
    return {
        "transfer": transfer, "lines": lines, "url": url, "qr": printing.qr_data_uri(url),
        "sent_by": printing.person(transfer.sent_by),
        "flagged": any(ln["flagged"] for ln in lines),
    }


def _slip_order(transfer: Transfer):
    """The order whose language the slip is printed in: its pieces' order when they share one,
    else (pieces of several orders) the house's default language."""
    orders = {ln.piece.order_id: ln.piece.order for ln in transfer.lines.all()}
    if len(orders) == 1:
        return next(iter(orders.values()))
    languages = {o.language for o in orders.values()}
    return next(iter(orders.values())) if len(languages) == 1 else None


@require_GET
@login_required
def transfer_slip(request, transfer_id: int):
    """The transfer slip as PDF (the QR code on it leads back here)."""
    transfer = _transfer_or_404(request.user, transfer_id)
    context = transfer_slip_context(request, transfer)
    pdf = printing.render_order_pdf("pdf/transfer_slip.html", context,
                                    order=_slip_order(transfer), request=request)
    return printing.pdf_response(pdf, f"slip-{transfer.slip_number}.pdf")


@require_GET
@login_required
def piece_technical_sheet(request, piece_id: int):
    """The technical sheet of one piece: whoever sees the piece but its client (a workshop's
    print has no prices and no client)."""
    user = request.user
    if user.role == Role.CLIENT:
        raise Http404("No such page.")
    piece = (Piece.objects.visible_to(user)
             .select_related("order__client", "line__alloy").filter(pk=piece_id).first())
    if piece is None:
        raise Http404("No such piece.")
    pdf = printing.render_order_pdf("pdf/technical_sheet.html",
                                    technical_sheet_context(user, line=piece.line, piece=piece),
                                    order=piece.order, request=request)
    return printing.pdf_response(pdf, f"technical-sheet-{piece.serial}.pdf")
