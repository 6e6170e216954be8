"""Pieces in a finishing step, built through the services, for the finishing tests."""

from __future__ import annotations

from decimal import Decimal

from etabli.orders.services import order_launch
from etabli.production.models import Piece, StepRun, StepStatus
from etabli.production.routing import order_route_step_update
from etabli.production.services import piece_note
from tests.factories import default_line, make_user, make_workshop

ALL_OPERATIONS = ["polishing", "plating", "engraving", "serial_engraving", "hallmarking",
                  "cleaning", "inspection"]


def assay_office(h, code: str = "assay"):
    """An assay office (does hallmarking) with its member, registered on `h`."""
    office = make_workshop(code, name="Bureau de garantie", skills=["hallmarking"])
    member = make_user("workshop", username=f"{code}1", workshops=[office])
    h.members[office.pk] = member
    return office, member


def finishing_piece(h, *, operations: list[str] | None = None, alloy: str = "750y",
                    workshop=None, started: bool = True, **line) -> Piece:
    """A one-piece order walked to its finishing step at the polisher (or `workshop`), with
    that step's operations set to `operations`; received there and (by default) started."""
    order = h.draft_order(lines=[default_line(alloy=alloy, **line)])
    rs = order.route.get(step="finishing")
    order_route_step_update(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                            workshop_id=(workshop or h.polisher).pk,
                            operations=operations)
    h.assign_route(order)
    h.check_all(order)
    h.promise_realistic(order)
    order = order_launch(actor=h.sales, order_id=order.pk)
    piece = h.walk(order.pieces.get(), to="finishing", arrive=True)
    if started:
        h.advance(piece)
    return Piece.objects.select_related("line__alloy").get(pk=piece.pk)


def open_run(piece: Piece) -> StepRun:
    return piece.runs.get(status__in=[StepStatus.READY, StepStatus.IN_TRANSIT,
                                      StepStatus.RECEIVED, StepStatus.IN_PROGRESS,
                                      StepStatus.ON_HOLD])


def weigh(h, piece: Piece, grams: str) -> None:
    """The workshop where the piece is weighs it (a note with a weight)."""
    piece.refresh_from_db()
    actor = h.actor_at(piece.location_id, piece.current_step)
    piece_note(actor=actor, piece_id=piece.pk, comment="Weighed", weight_g=grams)


def set_theoretical(piece: Piece, grams: str | None) -> None:
    # No service writes the theoretical weight yet (it comes from the CAD); set it as data.
    Piece.objects.filter(pk=piece.pk).update(
        theoretical_weight_g=Decimal(grams) if grams is not None else None)
    piece.refresh_from_db()
