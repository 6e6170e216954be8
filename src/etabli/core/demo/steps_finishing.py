"""The demo's finishing work (called by core.demo.steps around each move).

Before a finishing step is completed, whoever works there records each operation the step
lists, as they would at the bench: the polisher her finish and the rhodium on white metal, the
engraver the text the client asked for and the marks, the assay office the marks struck — or
the exemption of a piece too light to need the guarantee mark. Where the route asks for an
operation that does not apply (rhodium on yellow gold, an engraving nobody asked for), the
production manager waives it with the reason.
"""

from __future__ import annotations

import random

from etabli.finishing import selectors, services
from etabli.finishing.forms import suggested_engraving
from etabli.finishing.models import RecordOperation

from . import catalogue as cat

MAKER_MARK = "ME ◇"  # the house's registered mark: its initials in a lozenge
HOUSE_ROLE = "quality"  # who finishes at the house (cleaning after the inspection)


def before_send(scene, piece, run) -> None:
    pass


def before_start(scene, piece, run) -> None:
    pass


def before_complete(scene, piece, run) -> None:
    missing = selectors.missing_records(run)
    if not missing:
        return
    piece.refresh_from_db()
    rng = random.Random(f"finishing-{scene.plan.no}-{piece.serial}-{run.position}")
    code = run.workshop.code
    worker = scene.story.user(cat.WORKSHOP_MEMBER.get(code, HOUSE_ROLE))
    manager = scene.story.user("manager")
    for op in missing:
        data = _work(op, piece, scene.plan.model, rng)
        if isinstance(data, str):  # not done on this piece: the reason
            services.finishing_operation_waive(actor=manager, piece_id=piece.pk,
                                               operation=op, reason=data)
        else:
            services.finishing_record_create(actor=worker, piece_id=piece.pk, operation=op,
                                             data=data)


def _work(op: str, piece, model: cat.Model, rng: random.Random) -> dict | str:
    """What was done for `op` (the record's fields), or why it was not (a waiver)."""
    line = piece.line
    wish = (line.customisations or "").lower()
    if op == RecordOperation.POLISHING:
        finish = rng.choices(["bright", "satin", "brushed"], weights=[16, 3, 1])[0]
        if "satin" in wish:
            finish = "satin"
        return {"finish": finish}
    if op == RecordOperation.PLATING:
        if line.alloy is None or line.alloy.colour != "white":
            return "%s: rhodium is for white metal only." % (line.alloy.name if line.alloy
                                                           else "No alloy")
        return {"thickness_um": rng.choice(["0.15", "0.20", "0.25", "0.25", "0.30"])}
    if op in (RecordOperation.ENGRAVING, RecordOperation.SERIAL_ENGRAVING):
        return _engraving(op, piece, model, rng)
    if op == RecordOperation.HALLMARKING:
        if selectors.hallmark_requirement(piece).required:
            return {"status": "done", "maker_mark": MAKER_MARK}
        return {"status": "exempt", "maker_mark": MAKER_MARK}
    # Oiled emeralds and old stones never go in the ultrasonic bath.
    stones = (line.stones or "").lower()
    if "emerald" in stones or "client's stones" in stones:
        return {"method": "hand"}
    return {"method": rng.choice(["ultrasonic_steam", "ultrasonic_steam", "ultrasonic",
                                  "steam"])}


def _engraving(op: str, piece, model: cat.Model, rng: random.Random) -> dict | str:
    if op == RecordOperation.SERIAL_ENGRAVING:
        return {"text": piece.serial, "position": _position(model)}
    wish = piece.line.customisations or ""
    low = wish.lower()
    if "left plain" in low:
        return "The client wants the table left plain."
    if "letter" in low:
        return "The letter is the pendant itself: the maker's mark only."
    text = suggested_engraving(wish)
    if not text and "crest" in low:
        text = "Family crest (reversed seal)" if "reverse" in low else "Family crest"
    elif not text and "monogram" in low:
        text = "Monogram (reversed seal)"
    elif not text and "initials" in low:
        first, second = rng.sample("ABCDEFGHJLMNPRSTV", 2)
        text = f"{first} & {second} {rng.randint(1, 28):02d}.{rng.randint(5, 9):02d}.2026"
    if not text:
        return "No engraving asked for on this piece; the marks only."
    return {"text": text[:services.ENGRAVING_MAX_CHARS], "position": _position(model)}


def _position(model: cat.Model) -> str:
    if model.key in ("signet", "bespoke-signet"):
        return "table"
    if model.key in cat.RINGS:
        return "inside_band"
    if model.key in ("chain-bracelet", "tennis"):
        return "clasp"
    return "back"
