"""What tests do so a piece satisfies quality control's gates (called by tests.gate_support):
before a finishing step that includes the inspection is completed, the quality inspector
inspects the piece, measures everything within tolerance and signs a passing sheet."""

from __future__ import annotations

from decimal import Decimal

from etabli.quality import services
from etabli.quality.gates import needs_inspection
from etabli.quality.models import Inspection, InspectionStatus, Verdict

THEORETICAL_G = Decimal("10.000")


def passing_measurements(inspection: Inspection, **overrides) -> dict:
    """Measurements that pass every criterion of `inspection` (weight exactly on target)."""
    values = {
        "measured_weight_g": inspection.theoretical_weight_g or THEORETICAL_G,
        "theoretical_weight_g": None if inspection.theoretical_weight_source in ("piece",)
        else (inspection.theoretical_weight_g or THEORETICAL_G),
        "fineness_method": "xrf",
        "fineness_reading_permille": Decimal(inspection.hallmark_fineness_permille or 750)
        + Decimal("0.5"),
        "surface_defects": 0,
        "stones_mechanical_test": True if inspection.stones_applicable else None,
        "loose_stones": 0 if inspection.stones_applicable else None,
        "function_result": "na",
        "dimensions": [{"name": "Band width", "target_mm": "2.500", "measured_mm": "2.520"}],
    }
    return values | overrides


def inspect_and_sign(h, piece, *, actor=None, **overrides) -> Inspection:
    """Open (or take up) the inspection of `piece` at its open step, measure and sign it."""
    actor = actor or h.quality
    run = h.open_run(piece)
    ins = Inspection.objects.filter(run=run, status=InspectionStatus.DRAFT).first() \
        or services.inspection_create(actor=actor, piece_id=piece.pk)
    services.inspection_measure(actor=actor, inspection_id=ins.pk,
                                **passing_measurements(ins, **overrides))
    return services.inspection_sign(actor=actor, inspection_id=ins.pk)


def before_send(h, piece, run) -> None:
    pass


def before_start(h, piece, run) -> None:
    pass


def before_complete(h, piece, run) -> None:
    if not needs_inspection(run):
        return
    if Inspection.objects.filter(run=run, status=InspectionStatus.SIGNED,
                                 verdict=Verdict.PASS).exists():
        return
    inspect_and_sign(h, piece)
