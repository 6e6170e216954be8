"""Helpers for the stone setting tests: pieces with stones on their way to the setter, lots to
take their stones from, bringing a piece back from setting for its control."""

from __future__ import annotations

import io
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from etabli.materials import services as material_services
from etabli.production.models import Piece
from etabli.stonesetting import services
from etabli.workshops.models import StepKind
from tests.factories import default_line
from tests.stonesetting.support import stone_lot

D = Decimal
CATALOGUE_SKIPS = {
    StepKind.DESIGN: {"reason": "exact_reproduction", "comment": "Catalogue model."},
    StepKind.PROTOTYPING: {"reason": "exact_reproduction"},
}
PAVE_LINE = {"description": "Pavé band 'Constellation'", "model_reference": "PAV-1",
             "stones": "12 round diamonds 1.3 mm, G VS (0.120 ct total)",
             "budget_stone_count": 12, "budget_stone_ct": "0.120"}


def stones_line(**overrides) -> dict:
    return default_line(**(PAVE_LINE | overrides))


def piece_at_setting(h, *, arrive: bool = False, line: dict | None = None,
                     **order_kwargs) -> Piece:
    """A catalogue piece with stones, walked to its setting step (still at the caster unless
    `arrive`; the walk checks a plan on the way only when it is sent)."""
    order_kwargs.setdefault("skip", CATALOGUE_SKIPS)
    order = h.launched_order(lines=[line or stones_line()], **order_kwargs)
    piece = order.pieces.order_by("serial").first()
    h.walk(piece, to=StepKind.SETTING)
    if arrive:
        h.bring(piece)
    piece.refresh_from_db()
    return piece


def group(count=12, **fields) -> dict:
    return {"setting_type": "bead", "position": "band", "count": count} | fields


def plan_with_lot(h, piece, *, count=12, carats="0.120", lot=None, actor=None):
    lot = lot or stone_lot(h, count=100, carats="1.000", size_mm="1.30")
    plan = services.setting_plan_create(
        actor=actor or h.manager, piece_id=piece.pk,
        groups=[group(count=count, carats=carats, lot_id=lot.pk)])
    return plan, lot


def check(h, piece, actor=None, **kwargs):
    kwargs.setdefault("stones_match", True)
    kwargs.setdefault("preparation_checked", True)
    return services.setting_plan_check(actor=actor or h.manager, piece_id=piece.pk, **kwargs)


def back_from_setting(h, piece) -> Piece:
    """Send `piece` (with a checked plan) to the setter, set it, and bring it to the polisher
    (the next step): its control is then due."""
    piece.refresh_from_db()
    assert h.open_run(piece).step == StepKind.SETTING
    h.finish_step(piece)
    h.bring(piece)
    piece.refresh_from_db()
    assert piece.location_id == h.polisher.pk and h.open_run(piece).step == StepKind.FINISHING
    return piece


def issue_stones_to_setter(h, piece):
    """The vault issues the piece's reserved stones to the setter, who receives the slip."""
    from etabli.materials.models import StoneAllocation

    ids = list(StoneAllocation.objects.filter(piece=piece).values_list("pk", flat=True))
    slip = material_services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                            operation="setting", allocation_ids=ids)
    material_services.material_slip_receive(
        actor=h.setter_member, slip_id=slip.pk,
        lines=[{"line_id": ln.pk, "count": ln.stone_count, "carats": ln.carats_sent}
               for ln in slip.lines.all()])
    return slip


def counts(plan, **by_number) -> list[dict]:
    """Every group counted as planned, except those named `g<number>=<counted>`."""
    return [{"group_id": g.pk, "counted": by_number.get(f"g{g.number}", g.count)}
            for g in plan.groups.order_by("number")]


def png(name: str = "photo.png", colour: str = "green") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")
