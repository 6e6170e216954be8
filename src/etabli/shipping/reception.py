"""The client's reception of a delivered order, its follow-ups, and the closing of the order.

The client confirms reception in the portal (or the house records it for them, saying how they
were told): the pieces are accepted, or reservations are noted, each opening a follow-up the
house resolves. The order closes when every piece is delivered and accepted: at reception when
nothing is reserved, else when the last follow-up is resolved.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.orders.models import Order, OrderStatus
from etabli.production.models import Piece, PieceStatus

from .access import check_handles_receptions, handles_receptions, is_client
from .models import FollowUp, FollowUpStatus, Reception, ReceptionOutcome
from .services import clean_choice, clean_text

RECEPTION_FIELDS = ["reception_confirmed_at", "reception_confirmed_by", "reception_note"]
MAX_RESERVATIONS = 50


def _lock_order(actor, order_id: int) -> Order:
    order = (Order.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=order_id).first())
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return order


def _clean_reservations(order: Order, reservations: Any) -> list[tuple[Piece | None, str]]:
    if reservations in (None, ""):
        return []
    if not isinstance(reservations, list | tuple):
        raise ValidationFailed(_("Reservations are a list."), details={"field": "reservations"})
    if len(reservations) > MAX_RESERVATIONS:
        raise ValidationFailed(_("At most %(n)s reservations.") % {"n": MAX_RESERVATIONS},
                               details={"field": "reservations"})
    pieces = {p.pk: p for p in order.pieces.all()}
    out = []
    for row in reservations:
        if not isinstance(row, dict):
            raise ValidationFailed(_("Each reservation says what is wrong."),
                                   details={"field": "reservations"})
        text = clean_text(row.get("text"), "text")
        if not text:
            raise ValidationFailed(_("Say what is wrong."), details={"field": "reservations"})
        pid = row.get("piece_id")
        piece = None
        if pid is not None:
            piece = pieces.get(pid) if isinstance(pid, int) and not isinstance(pid, bool) \
                else None
            if piece is None:
                raise ValidationFailed(
                    _("Piece %(id)s is not part of order %(ref)s.")
                    % {"id": pid, "ref": order.reference}, details={"field": "reservations"})
        out.append((piece, text))
    return out


@transaction.atomic
def reception_record(*, actor, order_id: int, outcome: str = ReceptionOutcome.ACCEPTED,
                     note: str = "", reservations: list[dict] | None = None) -> Reception:
    """The client's reception of a delivered order (by the client, or by the house for them).

    `reservations` (with outcome "reservations"): `[{"text": …, "piece_id": …}]`, the piece
    optional; each opens a follow-up.
    """
    order = _lock_order(actor, order_id)
    if is_client(actor):
        on_behalf = False
    elif handles_receptions(actor):
        on_behalf = True
    else:
        raise PermissionDenied(_("Only the client, or the house's sales, logistics, production "
                                 "managers and administrators for them, confirm reception."))
    note = clean_text(note, "note")
    existing = Reception.objects.filter(order=order).first()
    if existing is not None:
        raise Conflict(_("Reception of order %(ref)s is already confirmed.")
                       % {"ref": order.reference},
                       details={"reception_confirmed_at": existing.recorded_at.isoformat()})
    if order.status != OrderStatus.DELIVERED:
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s: reception can be confirmed once every piece has "
              "been delivered.")
            % {"ref": order.reference, "status": OrderStatus(order.status).label.lower()},
            details={"status": order.status})
    outcome = clean_choice(outcome, ReceptionOutcome, "outcome")
    if on_behalf and not note:
        raise ValidationFailed(_("Say how the client told you (by phone, by e-mail, in "
                                 "person…)."), details={"field": "note"})
    rows = _clean_reservations(order, reservations)
    if outcome == ReceptionOutcome.RESERVATIONS and not rows:
        raise ValidationFailed(_("Say what is wrong: reservations need a description."),
                               details={"field": "reservations"})
    if outcome == ReceptionOutcome.ACCEPTED and rows:
        raise ValidationFailed(_("Reservations go with the outcome 'reservations'."),
                               details={"field": "outcome"})
    at = timezone.now()
    reception = Reception.objects.create(order=order, outcome=outcome, note=note,
                                         on_behalf=on_behalf, recorded_by=actor,
                                         recorded_at=at)
    before = audit.snapshot(order, RECEPTION_FIELDS)
    order.reception_confirmed_at, order.reception_confirmed_by = at, actor
    order.reception_note = note
    order.save(update_fields=RECEPTION_FIELDS)
    audit.record(actor=actor, action="order.confirm_reception", obj=order, before=before,
                 after=audit.snapshot(order, RECEPTION_FIELDS)
                 | {"outcome": outcome, "on_behalf": on_behalf}, order_id=order.pk)
    for piece, text in rows:
        follow_up = FollowUp.objects.create(order=order, reception=reception, piece=piece,
                                            description=text, opened_at=at)
        audit.record(actor=actor, action="follow_up.open", obj=follow_up,
                     after={"description": text, "piece": piece.serial if piece else None},
                     order_id=order.pk, piece_id=piece.pk if piece else None)
    order_close_if_complete(order=order, actor=actor, at=at)
    return reception


@transaction.atomic
def follow_up_resolve(*, actor, follow_up_id: int, resolution: str) -> FollowUp:
    """The house resolves a reservation; the order closes with its last open follow-up."""
    follow_up = (FollowUp.objects.visible_to(actor).select_for_update(of=("self",))
                 .filter(pk=follow_up_id).first())
    if follow_up is None:
        raise NotFound(_("No follow-up with id %(id)s.") % {"id": follow_up_id})
    check_handles_receptions(actor)
    resolution = clean_text(resolution, "resolution")
    if follow_up.status == FollowUpStatus.RESOLVED:
        raise TransitionNotAllowed(
            _("This follow-up was already resolved on %(when)s.")
            % {"when": timezone.localtime(follow_up.resolved_at).strftime("%Y-%m-%d %H:%M")},
            details={"status": follow_up.status})
    if not resolution:
        raise ValidationFailed(_("Say how the reservation was resolved."),
                               details={"field": "resolution"})
    order = Order.objects.select_for_update().get(pk=follow_up.order_id)
    at = timezone.now()
    follow_up.status = FollowUpStatus.RESOLVED
    follow_up.resolution = resolution
    follow_up.resolved_by, follow_up.resolved_at = actor, at
    follow_up.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])
    audit.record(actor=actor, action="follow_up.resolve", obj=follow_up,
                 before={"status": FollowUpStatus.OPEN},
                 after={"status": follow_up.status, "resolution": resolution},
                 order_id=order.pk, piece_id=follow_up.piece_id)
    order_close_if_complete(order=order, actor=actor, at=at)
    return follow_up


def order_close_if_complete(*, order: Order, actor, at: dt.datetime) -> bool:
    """Close the order (inside the caller's transaction) when every piece is delivered and
    accepted: reception recorded, no follow-up open."""
    if order.status != OrderStatus.DELIVERED:
        return False
    if not Reception.objects.filter(order=order).exists():
        return False
    if FollowUp.objects.filter(order=order, status=FollowUpStatus.OPEN).exists():
        return False
    if Piece.objects.filter(order=order).exclude(status=PieceStatus.DELIVERED).exists():
        return False
    order.status = OrderStatus.CLOSED
    order.closed_at = at
    order.save(update_fields=["status", "closed_at"])
    audit.record(actor=actor, action="order.close", obj=order,
                 before={"status": OrderStatus.DELIVERED},
                 after={"status": order.status, "closed_at": at}, order_id=order.pk)
    return True
