"""The demo's design work (called by core.demo.steps around each move).

When the designer starts a line's design step, sales writes the brief (the client's intent and
the material budget) and the designer sends round 1: a render and the CAD mesh (an STL ring or
block whose volume gives the estimated metal weight). When the step is to end, the client
decides: a client with a portal account (Bijouterie Lemaire, Camille Rousseau) in the portal,
the others by e-mail, which sales records on their behalf with the signed renders attached.
Some clients ask for changes first, so the designer sends a second round (and one demanding
client goes past the house's limit of rounds). Pieces still at design today wait for the
client's decision. At a prototyping step, the prototypist records the prototype (with a fit
test for a ring) before completing it.

Everything is generated here (small PNG renders drawn with Pillow, meshes built with trimesh),
and every choice comes from `random.Random(plan.no)`, so the demo stays the same for a seed.
"""

from __future__ import annotations

import io
import random
import re
from decimal import ROUND_HALF_UP, Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from etabli.design import selectors, services
from etabli.design.models import Prototype
from etabli.documents.models import DocumentKind, Visibility
from etabli.workshops.models import StepKind

from . import catalogue as cat

# Colours of the metal in the renders.
METAL_COLOURS = {"750y": "#d4af37", "585y": "#c9a74a", "750r": "#c98b6b", "750w": "#d9d9d6",
                 "950pt": "#cfd2d4", "925ag": "#c0c0c0"}
CHANGE_REQUESTS = [
    "Could the band be a little thinner? It looks heavy on the render.",
    "We would like the centre stone set a bit lower, closer to the finger.",
    "Please try a softer, rounder profile for the shoulders.",
    "The engraving should be in a script font, as on our sketch.",
    "Could we see it with a brushed finish on the sides?",
]
INTENTS = {
    "bespoke-engagement": "An engagement ring built around a Ceylon sapphire, with two pear "
                          "diamonds; to be worn every day.",
    "bespoke-cocktail": "A statement cocktail ring for evenings, around the client's emerald.",
    "bespoke-initial": "A light pendant with the initial, for a birthday.",
    "heirloom": "Turn the grandmother's brooch into a pendant the client will wear; keep the "
                "old stones.",
    "bespoke-signet": "A family signet ring; the crest must read well as a seal.",
    "bespoke-cufflinks": "A pair of cufflinks for a wedding, engine-turned, with initials.",
}


def _rng(scene, salt: int = 0) -> random.Random:
    return random.Random(scene.plan.no * 1009 + salt)


def _model(line) -> cat.Model | None:
    return next((m for m in cat.MODELS if m.description == line.description), None)


def _user(scene, username: str):
    return scene.story.user(username)


def _client_contact(scene) -> str | None:
    return next((u.username for u in cat.DEMO_USERS if u.client == scene.plan.client), None)


# ---------------------------------------------------------------------------------------------
# generated files


def _render(line, number: int, view: str) -> SimpleUploadedFile:
    """A small PNG 'render': the metal's colour with a stone, the round and the view written."""
    from PIL import Image, ImageDraw

    colour = METAL_COLOURS.get(line.alloy.code if line.alloy else "", "#d4af37")
    image = Image.new("RGB", (240, 180), "#f6f3ee")
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 40, 180, 160), outline=colour, width=14)
    if line.stones:
        draw.ellipse((102, 22, 138, 58), fill="#2a4d9b" if "sapphire" in line.stones
                     else "#1f7a4d" if "emerald" in line.stones else "#e8f0f7",
                     outline="#888888")
    draw.text((8, 160), f"R{number} - {view}", fill="#555555")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile(f"render-r{number}-{view}.png", buffer.getvalue(), "image/png")


def _mesh(line, weight_g: Decimal, number: int) -> SimpleUploadedFile:
    """An STL with the volume of `weight_g` in the line's alloy: a band for a ring, a block for
    anything else (millimetres)."""
    import math

    import trimesh

    density = Decimal(str(line.alloy.density_g_cm3)) if line.alloy else Decimal("15.50")
    volume = float(weight_g / density * 1000)  # mm³
    if selectors.needs_fit_test(line):
        inner = 8.3  # radius of a size 52 ring, mm
        height = 2.2
        outer = math.sqrt(volume / (math.pi * height) + inner * inner)
        mesh = trimesh.creation.annulus(r_min=inner, r_max=outer, height=height, sections=48)
    else:
        side = (volume / 2.5) ** 0.5
        mesh = trimesh.creation.box(extents=(side, side, 2.5))
    return SimpleUploadedFile(f"design-r{number}.stl", mesh.export(file_type="stl"),
                              "application/octet-stream")


def _signed_pdf(title: str) -> SimpleUploadedFile:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (420, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 30), title[:60], fill="black")
    draw.text((20, 240), "Signed: ____________", fill="black")
    draw.line((90, 250, 200, 235), fill="#1a3c8c", width=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PDF")
    return SimpleUploadedFile(f"{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}.pdf",
                              buffer.getvalue(), "application/pdf")


def written_acceptance(story, order, reference: str):
    """The client's signed acceptance of the risk of skipping the prototype, scanned and
    attached to the order by sales (house only)."""
    from etabli.documents.services import document_upload

    kind = "client_acceptance" if "client_acceptance" in DocumentKind.values \
        else DocumentKind.OTHER
    return document_upload(actor=story.user("sales"), order_id=order.pk,
                           uploaded_file=_signed_pdf(f"Risk acceptance {reference}"),
                           kind=kind, visibility=Visibility.HOUSE)


# ---------------------------------------------------------------------------------------------
# the brief and the rounds


def _budget(line) -> tuple[Decimal, int | None, Decimal | None]:
    """The material budget sales sets from the model: metal per piece in the line's alloy with
    a little margin, and the stones asked for."""
    model = _model(line)
    base = model.weight_g if model else Decimal("5.000")
    density = Decimal(str(line.alloy.density_g_cm3)) if line.alloy else Decimal("15.50")
    metal = (base * density / Decimal("15.50") * Decimal("1.05")).quantize(Decimal("0.1"),
                                                                           ROUND_HALF_UP)
    count = sum(int(n) for n in re.findall(r"(?:^|[;,]\s*)(\d+)\s+[A-Za-z]", line.stones or ""))
    carats = None
    if model:
        carats = next((s.carats for s in model.stones if s.description == line.stones), None)
    return metal, count or None, carats


def _write_brief(scene, line) -> None:
    if hasattr(line, "design_brief"):
        return
    model = _model(line)
    metal, count, carats = _budget(line)
    services.design_brief_save(
        actor=_user(scene, "sales"), line_id=line.pk,
        client_intent=INTENTS.get(model.key if model else "", line.description),
        technical_constraints="; ".join(x for x in (line.customisations, line.specifications)
                                        if x),
        aesthetic_constraints=(model.references.replace("\n", "; ") if model else ""),
        budget_metal_g=metal, budget_stone_count=count, budget_stone_ct=carats)


def _rounds_wanted(scene, line) -> int:
    """How many rounds this line's client needs: most approve the first or the second; one
    demanding client of a high-jewellery piece goes past the house's limit."""
    rng = _rng(scene, line.position)
    model = _model(line)
    if model and model.key == "bespoke-cocktail" and scene.plan.no % 2 == 0:
        return selectors.round_limit() + 1
    if not line.is_custom_design:
        return 1
    return 2 if rng.random() < 0.45 else 1


def _send_round(scene, line, number: int) -> None:
    designer = _user(scene, "designer")
    metal, count, carats = _budget(line)
    rng = _rng(scene, line.position * 31 + number)
    # The design lands near the budget: mostly under it, now and then a little over.
    weight = (metal * Decimal(str(round(rng.uniform(0.9, 1.04), 3)))).quantize(Decimal("0.001"))
    note = ("First proposal: front and side views, CAD attached." if number == 1
            else "Revised as you asked; the changes are on the side view.")
    rnd = services.design_round_create(actor=designer, line_id=line.pk, designer_note=note,
                                       estimated_stone_count=count, estimated_stone_ct=carats)
    previous = (line.design_rounds.filter(number=number - 1).first() if number > 1 else None)
    old_cad = previous.files.filter(kind=DocumentKind.CAD).first() if previous else None
    services.design_round_add_file(actor=designer, round_id=rnd.pk, kind="cad",
                                   uploaded_file=_mesh(line, weight, number),
                                   replaces_id=old_cad.pk if old_cad else None)
    for view in ("front", "side"):
        services.design_round_add_file(actor=designer, round_id=rnd.pk, kind="render",
                                       uploaded_file=_render(line, number, view))
    services.design_round_send(actor=designer, round_id=rnd.pk)


def _decide(scene, line, rnd, approve: bool) -> None:
    contact = _client_contact(scene)
    comment = "" if approve else CHANGE_REQUESTS[(scene.plan.no + rnd.number)
                                                 % len(CHANGE_REQUESTS)]
    if contact:
        services.design_round_decide(actor=_user(scene, contact), round_id=rnd.pk,
                                     approve=approve, comment=comment)
    elif approve:
        services.design_round_decide(
            actor=_user(scene, "sales"), round_id=rnd.pk, approve=True,
            comment="The client returned the renders signed by e-mail.",
            uploaded_file=_signed_pdf(f"Signed renders round {rnd.number}"))
    else:
        services.design_round_decide(actor=_user(scene, "sales"), round_id=rnd.pk,
                                     approve=False, comment=f"By phone: {comment}")


def before_send(scene, piece, run) -> None:
    pass


def before_start(scene, piece, run) -> None:
    if run.step != StepKind.DESIGN:
        return
    line = piece.line
    state = selectors.line_state(line)
    if state.approved or state.waiting_for_client or state.draft is not None:
        return  # another piece of the line started it, or a round is already out
    _write_brief(scene, line)
    _send_round(scene, line, state.rounds_sent + 1)


def before_complete(scene, piece, run) -> None:
    if run.step == StepKind.DESIGN:
        _complete_design(scene, piece.line)
    elif run.step == StepKind.PROTOTYPING:
        _record_prototype(scene, piece, run)


def _complete_design(scene, line) -> None:
    wanted = _rounds_wanted(scene, line)
    for _ in range(wanted + 1):
        state = selectors.line_state(line)
        if state.approved:
            return
        if not state.waiting_for_client:
            _write_brief(scene, line)
            _send_round(scene, line, state.rounds_sent + 1)
            state = selectors.line_state(line)
        rnd = state.latest
        _decide(scene, line, rnd, approve=rnd.number >= wanted)


def _record_prototype(scene, piece, run) -> None:
    if Prototype.objects.filter(run=run).exists():
        return
    if run.workshop.code == "house":
        actor = _user(scene, "designer")
    else:
        actor = _user(scene, cat.WORKSHOP_MEMBER[run.workshop.code])
    method = next((op for op in run.operations
                   if op in ("wax_print", "resin_print", "prototype_casting", "cnc")), "wax_print")
    ring = selectors.needs_fit_test(piece.line)
    services.prototype_record(
        actor=actor, piece_id=piece.pk, method=method, result="approved",
        fit_ok=True if ring else None,
        fit_notes=f"Tried on the size {piece.line.size} gauge: comfortable." if ring else "",
        notes="Proportions as on the renders.")

