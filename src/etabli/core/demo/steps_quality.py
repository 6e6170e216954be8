"""The demo's quality control work (called by core.demo.steps around each move).

Before a finishing step that includes the inspection is completed, the house's inspector
weighs and measures each piece, tests the metal, checks the surface under the loupe, the
stones and the clasps, and signs a passing sheet. When a scene sends a piece back from
finishing, the inspector first signs the failed inspection that found the problem, records its
root cause and sends the piece to rework from the nonconformity (see `fail_and_rework`).

Each piece's numbers come from its own seeded generator, so the demo stays deterministic and
the other scenes' draws are left alone.
"""

from __future__ import annotations

import io
import random
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from etabli.quality import services
from etabli.quality.gates import needs_inspection
from etabli.quality.models import Inspection, InspectionStatus, Verdict

INSPECTOR = "quality"
MG = Decimal("0.001")

# Dimensions measured per kind of piece: (name, target in mm).
RING_DIMENSIONS = [("Band width", Decimal("2.500")), ("Band thickness", Decimal("1.800"))]
DIMENSIONS = {
    "pendant": [("Height", Decimal("14.000")), ("Width", Decimal("9.000"))],
    "bespoke-initial": [("Height", Decimal("12.000")), ("Width", Decimal("10.000"))],
    "heirloom": [("Height", Decimal("28.000")), ("Width", Decimal("21.000"))],
    "studs": [("Setting diameter", Decimal("5.200"))],
    "hoops": [("Outer diameter", Decimal("20.000")), ("Tube width", Decimal("2.500"))],
    "tennis": [("Length", Decimal("180.000")), ("Link width", Decimal("3.000"))],
    "bangle": [("Inner width", Decimal("60.000")), ("Profile width", Decimal("4.000"))],
    "chain-bracelet": [("Length", Decimal("190.000"))],
    "bespoke-cufflinks": [("Oval length", Decimal("16.000")), ("Oval width", Decimal("12.000"))],
}
# Pieces with a clasp or a hinge to try.
WITH_FUNCTION = {"pendant", "bespoke-initial", "heirloom", "studs", "hoops", "tennis",
                 "bangle", "chain-bracelet", "bespoke-cufflinks"}
ROOT_CAUSE_OF_STEP = {"setting": "setting", "manufacturing": "assembly",
                      "finishing": "polishing", "prototyping": "design", "design": "design"}


def _rng(scene, piece) -> random.Random:
    return random.Random(f"quality-{scene.plan.no}-{piece.serial}")


def _ring_dimensions(size: str) -> list[tuple[str, Decimal]]:
    dims = list(RING_DIMENSIONS)
    try:
        circumference = Decimal(str(size).strip())
    except ArithmeticError:
        return dims
    if 40 <= circumference <= 75:  # a French ring size is the inner circumference in mm
        diameter = (circumference / Decimal("3.14159")).quantize(MG)
        dims.append(("Inner diameter", diameter))
    return dims


def _dimensions(scene, piece, rng: random.Random, spread: float = 0.12) -> list[dict]:
    key = scene.plan.model.key
    targets = DIMENSIONS.get(key) or _ring_dimensions(piece.line.size)
    return [{"name": name, "target_mm": str(target),
             "measured_mm": str((target + Decimal(str(round(rng.uniform(-spread, spread), 3))))
                                .quantize(MG))}
            for name, target in targets]


def _weights(scene, piece, ins, rng: random.Random) -> tuple[Decimal | None, Decimal]:
    """(theoretical weight to enter, or None when the inspection has one; weight on the
    scale) — within ±1.5 % of each other, as a well-made piece is."""
    drift = Decimal(str(round(rng.uniform(-0.015, 0.015), 4)))
    if ins.theoretical_weight_g is not None:
        return None, (ins.theoretical_weight_g * (1 + drift)).quantize(MG)
    measured = scene.weight.get(piece.pk)
    if measured is None:
        base, stones_g = scene.nominal.get(piece.pk, (scene.plan.model.weight_g, Decimal(0)))
        measured = base + stones_g
    measured = Decimal(measured).quantize(MG)
    return (measured / (1 + drift)).quantize(MG), measured


def _measurements(scene, piece, ins, rng: random.Random) -> dict:
    theoretical, measured = _weights(scene, piece, ins, rng)
    fineness = ins.hallmark_fineness_permille or 750
    values = {
        "measured_weight_g": measured,
        "fineness_method": "xrf" if rng.random() < 0.7 else "touch",
        "fineness_reading_permille": (Decimal(fineness)
                                      + Decimal(str(round(rng.uniform(0.3, 3.0), 1)))),
        "surface_defects": 0,
        "stones_mechanical_test": True if ins.stones_applicable else None,
        "loose_stones": 0 if ins.stones_applicable else None,
        "function_result": "ok" if scene.plan.model.key in WITH_FUNCTION else "na",
        "dimensions": _dimensions(scene, piece, rng),
    }
    if theoretical is not None:
        values["theoretical_weight_g"] = theoretical
    return values


def _photo(piece, moment: str, rng: random.Random) -> SimpleUploadedFile:
    """The piece on the inspection mat under the daylight lamp (drawn, not photographed):
    dull and scratched before finishing, bright after."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (240, 180), "#f2f2f0")
    draw = ImageDraw.Draw(image)
    metal = "#b8a272" if moment == "before" else "#e2bf4a"
    draw.ellipse((60, 30, 180, 150), outline=metal, width=14)
    if moment == "before":
        for _ in range(6):
            x, y = rng.randint(70, 170), rng.randint(40, 140)
            draw.line((x, y, x + rng.randint(4, 12), y + rng.randint(-3, 3)), fill="#8a7a55")
    else:
        draw.arc((66, 36, 174, 144), 200, 250, fill="#fff8dc", width=4)
    draw.text((8, 6), f"{piece.serial} - {moment} finishing", fill="#333333")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile(f"{piece.serial}-{moment}.png", buffer.getvalue(), "image/png")


def _open(piece, run, inspector) -> Inspection:
    draft = Inspection.objects.filter(run=run, status=InspectionStatus.DRAFT).first()
    return draft or services.inspection_create(actor=inspector, piece_id=piece.pk)


def before_send(scene, piece, run) -> None:
    pass


def before_start(scene, piece, run) -> None:
    pass


def before_complete(scene, piece, run) -> None:
    """A signed passing inspection, before a finishing step with the inspection ends."""
    if not needs_inspection(run) or Inspection.objects.filter(
            run=run, status=InspectionStatus.SIGNED, verdict=Verdict.PASS).exists():
        return
    inspector = scene.story.user(INSPECTOR)
    rng = _rng(scene, piece)
    ins = _open(piece, run, inspector)
    services.inspection_measure(actor=inspector, inspection_id=ins.pk,
                                **_measurements(scene, piece, ins, rng))
    if piece.line.is_custom_design or rng.random() < 0.25:
        # Bespoke work is photographed before and after finishing; catalogue pieces now and
        # then.
        for moment in ("before", "after"):
            services.inspection_photo_add(actor=inspector, inspection_id=ins.pk,
                                          uploaded_file=_photo(piece, moment, rng),
                                          moment=moment)
    signed = services.inspection_sign(actor=inspector, inspection_id=ins.pk)
    if signed.verdict != Verdict.PASS:
        raise RuntimeError(f"demo order {scene.plan.no}: {piece.serial} failed its inspection")


def fail_and_rework(scene, piece, run, target, comment: str) -> None:
    """What sends a piece back from finishing: the inspector's failed inspection, signed (the
    piece stops, a nonconformity opens), its root cause and corrective action, and the rework
    to `target` chosen on the nonconformity."""
    inspector = scene.story.user(INSPECTOR)
    rng = _rng(scene, piece)
    ins = _open(piece, run, inspector)
    values = _measurements(scene, piece, ins, rng)
    stones_problem = ins.stones_applicable and (target.step == "setting"
                                                or "stone" in comment.lower())
    if stones_problem:
        values["loose_stones"] = 2 if "pavé" in comment else 1
        values["stones_mechanical_test"] = False
    else:
        values["surface_defects"] = rng.randint(2, 4)
    services.inspection_measure(actor=inspector, inspection_id=ins.pk, **values)
    signed = services.inspection_sign(actor=inspector, inspection_id=ins.pk)
    if signed.verdict != Verdict.FAIL:
        raise RuntimeError(f"demo order {scene.plan.no}: {piece.serial} was meant to fail")
    nc = signed.nonconformity
    cause = ROOT_CAUSE_OF_STEP.get(target.step, "other")
    if cause == "polishing" and "plating" in comment.lower():
        cause = "plating"
    services.nonconformity_record_cause(actor=inspector, nc_id=nc.pk, root_cause=cause,
                                        corrective_action=comment)
    services.nonconformity_send_to_rework(actor=inspector, nc_id=nc.pk,
                                          target_run_id=target.pk)
