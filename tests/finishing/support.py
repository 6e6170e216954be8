"""What tests do so a piece satisfies finishing's gates (called by tests.gate_support)."""

from __future__ import annotations

from etabli.finishing import selectors, services
from etabli.finishing.models import RecordOperation


def record_all(h, piece, run, *, actor=None) -> None:
    """Record every finishing operation `run` still needs, as the person at the bench would:
    a bright polish, 0.25 µm of rhodium (waived by the manager on a metal that is not white),
    the engraving, the serial, the hallmark (struck, or exempt when light enough), an
    ultrasonic clean."""
    actor = actor or h.actor_at(run.workshop_id, run.step)
    piece.refresh_from_db()
    for op in selectors.missing_records(run):
        data: dict = {}
        if op == RecordOperation.POLISHING:
            data = {"finish": "bright"}
        elif op == RecordOperation.PLATING:
            alloy = piece.line.alloy
            if alloy is None or alloy.colour != "white":
                services.finishing_operation_waive(actor=h.manager, piece_id=piece.pk,
                                                   operation=op, reason="Not white metal.")
                continue
            data = {"thickness_um": "0.25"}
        elif op == RecordOperation.ENGRAVING:
            data = {"text": "Toujours", "position": "inside_band"}
        elif op == RecordOperation.SERIAL_ENGRAVING:
            data = {}
        elif op == RecordOperation.HALLMARKING:
            if selectors.hallmark_requirement(piece).required:
                data = {"status": "done", "maker_mark": "EB ◇"}
            else:
                data = {"status": "exempt"}
        elif op == RecordOperation.CLEANING:
            data = {"method": "ultrasonic"}
        services.finishing_record_create(actor=actor, piece_id=piece.pk, operation=op,
                                         data=data)


def before_send(h, piece, run) -> None:
    pass


def before_start(h, piece, run) -> None:
    pass


def before_complete(h, piece, run) -> None:
    if selectors.required_records(run):
        record_all(h, piece, run)
