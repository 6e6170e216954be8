"""The demo's stone setting work (called by core.demo.steps around each move).

Before a piece goes to its setter, its setting plan is drawn from the order line's stones: the
designer drafts the groups of a bespoke piece and the production manager chooses the lots,
the manager plans catalogue pieces directly; every group's stones are reserved from the house's
parcels (certified centre stones are bought for the piece), and the quality inspector (now and
then the manager) checks the plan. The stones then travel to the setter on a material slip,
with two spare melee when the piece has pavé; the setter receives the slip when starting,
returns the stones set in each piece (and the spares) when done, and the house receives that
slip and closes the job when the piece's control is recorded.

On the piece's return, the workshop that receives it (the polisher) counts every stone and
records the control, with a photo now and then. Twice in the story a spare did not come back:
one chipped while closing the prongs, one lost at another setter's bench; the production manager
records those controls, which book the stones out of the setter's holding in the stone ledger.
Every control passes: the story's reworks after setting are decided by quality at finishing.

The house's parcels here are its own (received when the first plan needs them). The materials
story (materials.py), played afterwards on the same clock, leaves to this module the stones of
the pieces that went to a setter.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from etabli.materials import services as material_services
from etabli.materials import stone_services
from etabli.materials.models import MaterialSlip, SlipStatus, StoneAllocation
from etabli.materials.services import lot_free_in_vault
from etabli.stonesetting import selectors, services
from etabli.stonesetting.models import PlanStatus, SettingControl, SettingPlan
from etabli.workshops.models import StepKind

from . import catalogue as cat
from .materials import COMPLIANCE

MG = Decimal("0.001")
SPARES = 2


@dataclass(frozen=True)
class Parcel:
    """A parcel the house buys: stone_lot_receive's arguments and one stone's weight."""

    stone_type: str
    shape: str
    size_mm: str
    per_stone: str
    count: int = 1
    sieve: str = ""
    colour: str = ""
    clarity: str = ""
    origin: str = ""
    supplier: str = ""
    certificate_lab: str = ""


ANTWERP = "Diamants Anvers BV"
PARCELS = {
    "melee-1.1": Parcel("diamond", "round", "1.10", "0.006", 600, "+2-2.5", "G", "VS",
                        "Botswana", ANTWERP),
    "melee-1.2": Parcel("diamond", "round", "1.20", "0.008", 600, "+3-3.5", "G", "VS",
                        "Botswana", ANTWERP),
    "melee-1.3": Parcel("diamond", "round", "1.30", "0.011", 400, "+4.5-5", "G", "VS",
                        "Canada", ANTWERP),
    "melee-1.5": Parcel("diamond", "round", "1.50", "0.015", 500, "+6.5-7", "G", "VS",
                        "Canada", ANTWERP),
    "melee-2.0": Parcel("diamond", "round", "2.00", "0.030", 200, "+9-9.5", "F", "VVS",
                        "Canada", ANTWERP),
    "melee-2.2": Parcel("diamond", "round", "2.20", "0.044", 600, "+11-11.5", "G", "VS",
                        "Botswana", ANTWERP),
    "pear-0.25": Parcel("diamond", "pear", "5.00", "0.250", 20, "", "F", "VS", "Namibia",
                        "Maison Lévy Diamants"),
    "round-0.30": Parcel("diamond", "round", "4.30", "0.300", 24, "", "G", "SI1", "Botswana",
                         "Maison Lévy Diamants"),
    "round-0.50": Parcel("diamond", "round", "5.10", "0.500", 16, "", "F", "VS2", "Canada",
                         "Maison Lévy Diamants"),
    "sapphire-pear": Parcel("sapphire", "pear", "8.00", "1.200", 8, "", "cornflower blue",
                            "eye clean", "Sri Lanka (Ratnapura)", "Ceylon Gems Colombo"),
    "sapphire-oval": Parcel("sapphire", "oval", "8.50", "2.100", 6, "", "royal blue",
                            "eye clean", "Sri Lanka (Ratnapura)", "Ceylon Gems Colombo"),
    # Certified stones are bought for the piece, one by one.
    "cert-0.50": Parcel("diamond", "round", "5.10", "0.500", 1, "", "F", "VS1", "Botswana",
                        "Maison Lévy Diamants", "GIA"),
    "cert-0.70": Parcel("diamond", "round", "5.70", "0.700", 1, "", "G", "VS2", "Canada",
                        "Maison Lévy Diamants", "GIA"),
    "cert-1.01": Parcel("diamond", "round", "6.45", "1.010", 1, "", "E", "VVS2", "Botswana",
                        "Maison Lévy Diamants", "GIA"),
    "cert-emerald": Parcel("emerald", "cushion", "9.20", "3.400", 1, "", "vivid green",
                           "minor oil", "Colombia (Muzo)", "Esmeraldas Bogotá SAS", "SSEF"),
}

# How each of the catalogue's stone descriptions is set: (setting, position, parcel or "client",
# count, client's carats per stone, stone type and shape for the client's stones).
G = tuple
PLANS: list[tuple[str, list[G]]] = [
    ("1 round brilliant diamond 0.50 ct", [("prong", "centre", "cert-0.50", 1)]),
    ("1 round brilliant diamond 0.70 ct", [("prong", "centre", "cert-0.70", 1)]),
    ("1 round brilliant diamond 1.01 ct", [("prong", "centre", "cert-1.01", 1)]),
    ("22 round diamonds 1.5 mm", [("bead", "band", "melee-1.5", 22)]),
    ("1 pear Ceylon sapphire 1.20 ct", [("prong", "centre", "sapphire-pear", 1),
                                        ("micro_pave", "halo", "melee-1.3", 16)]),
    ("2 round diamonds 0.30 ct", [("prong", "centre", "round-0.30", 2)]),
    ("2 round diamonds 0.50 ct", [("prong", "centre", "round-0.50", 2)]),
    ("36 round diamonds 1.2 mm", [("pave", "band", "melee-1.2", 36)]),
    ("48 round diamonds 2.2 mm", [("prong", "links", "melee-2.2", 48)]),
    ("1 oval Ceylon sapphire 2.10 ct", [("prong", "centre", "sapphire-oval", 1),
                                        ("prong", "shoulders", "pear-0.25", 2)]),
    ("1 cushion Colombian emerald 3.40 ct", [("bezel", "centre", "cert-emerald", 1),
                                             ("prong", "halo", "melee-2.0", 14)]),
    ("31 round diamonds 1.1 mm", [("micro_pave", "other", "melee-1.1", 31)]),
    ("Client's stones", [("bezel", "centre", "client", 1, "0.800", "diamond", "other"),
                         ("bead", "halo", "client", 12, "0.025", "diamond", "other")]),
]
NOTES = {"client": "The client's own stone: check it under the loupe with the client's receipt.",
         "cert": "Certified stone: keep the certificate with the job bag.",
         "micro_pave": "Micro-pavé under the microscope; grains even and closed."}


def _rng(scene, salt: int = 0) -> random.Random:
    return random.Random(scene.plan.no * 7919 + salt)


def _user(scene, username: str):
    return scene.story.user(username)


def _member(scene, workshop) -> object:
    return _user(scene, cat.WORKSHOP_MEMBER[workshop.code])


def _story_state(scene) -> dict:
    return scene.story.__dict__.setdefault("_stonesetting", {
        "lots": {}, "invoices": 0, "broken": None, "lost": None})


def _order_state(scene) -> dict:
    return scene.__dict__.setdefault("_stonesetting", {"slip": None, "returned": None,
                                                       "settled": False, "breakage": ""})


def _plan_for(stones: str) -> list[G]:
    for prefix, groups in PLANS:
        if stones.startswith(prefix):
            return groups
    return [("pave", "other", "melee-1.3", 12)]


# ---------------------------------------------------------------------------------------------
# the house's parcels


def _lot(scene, key: str, count: int):
    """A lot of the parcel `key` with `count` stones free, bought when none has."""
    state = _story_state(scene)
    lot = state["lots"].get(key)
    if lot is not None and lot_free_in_vault(lot)[0] >= count:
        return lot
    parcel = PARCELS[key]
    rng = _rng(scene, 17 * count + len(key))
    state["invoices"] += 1
    extra = {}
    if parcel.certificate_lab:
        extra = {"certificate_lab": parcel.certificate_lab,
                 "certificate_number": str(rng.randint(10 ** 9, 10 ** 10 - 1))}
    number = max(parcel.count, count)
    lot = stone_services.stone_lot_receive(
        actor=_user(scene, "manager"), stone_type=parcel.stone_type, shape=parcel.shape,
        count=number, carats=(Decimal(parcel.per_stone) * number).quantize(MG),
        size_mm=parcel.size_mm, sieve=parcel.sieve, colour=parcel.colour,
        clarity=parcel.clarity, origin=parcel.origin, supplier=parcel.supplier,
        supplier_invoice=f"{parcel.supplier[:2].upper()}-26-{4100 + state['invoices']}",
        compliance_statement=COMPLIANCE if parcel.stone_type == "diamond" else "",
        **extra)
    if not parcel.certificate_lab:
        state["lots"][key] = lot
    return lot


# ---------------------------------------------------------------------------------------------
# the plan, before the setter


def _draft(scene, piece) -> SettingPlan:
    """The plan of `piece`: drafted by the designer (bespoke) or the manager (catalogue), its
    lots chosen by the manager, checked by quality (now and then the manager)."""
    manager = _user(scene, "manager")
    line = piece.line
    bespoke = line.is_custom_design
    author = _user(scene, "designer") if bespoke else manager
    plan = services.setting_plan_create(actor=author, piece_id=piece.pk)
    for spec in _plan_for(line.stones or ""):
        setting, position, source, count = spec[:4]
        fields = {"setting_type": setting, "position": position, "count": count}
        if source == "client":
            per_stone, stone_type, shape = spec[4:7]
            fields |= {"supplied_by_client": True, "stone_type": stone_type, "shape": shape,
                       "carats": (Decimal(per_stone) * count).quantize(MG),
                       "note": NOTES["client"]}
            services.setting_group_add(actor=author, piece_id=piece.pk, **fields)
            continue
        parcel = PARCELS[source]
        carats = (Decimal(parcel.per_stone) * count).quantize(MG)
        if source.startswith("cert"):
            fields["note"] = NOTES["cert"]
        elif setting in NOTES:
            fields["note"] = NOTES[setting]
        if bespoke:
            # The designer knows the stones, not the vault: the manager picks the lot after.
            group = services.setting_group_add(
                actor=author, piece_id=piece.pk, stone_type=parcel.stone_type,
                shape=parcel.shape, size_mm=parcel.size_mm, carats=carats, **fields)
            services.setting_group_update(actor=manager, group_id=group.pk,
                                          lot_id=_lot(scene, source, count).pk)
        else:
            services.setting_group_add(actor=manager, piece_id=piece.pk, carats=carats,
                                       lot_id=_lot(scene, source, count).pk, **fields)
    comparison = selectors.compare(SettingPlan.objects.get(pk=plan.pk))
    note = ""
    if not comparison.matches_budget:
        note = ("The budget counts the rose-cut diamonds only; the old-mine centre stone is "
                "the client's too: all 13 stones checked against the client's receipt."
                if any(spec[2] == "client" for spec in _plan_for(line.stones or ""))
                else "Stones as on the approved design.")
    checker = _user(scene, "quality" if _rng(scene, piece.pk).random() < 0.75 else "manager")
    plan = services.setting_plan_check(actor=checker, piece_id=piece.pk, stones_match=True,
                                       preparation_checked=True, note=note)
    story = _story_state(scene)
    melee = plan.groups.filter(lot__count_received__gte=100).first()
    if not bespoke and melee is not None and not story.get("reopened"):
        # Once in the story the bench finds the seats cut for a bigger sieve than planned:
        # the manager reopens the checked plan, the setter is told, quality checks it again.
        story["reopened"] = True
        services.setting_plan_reopen(
            actor=manager, piece_id=piece.pk,
            reason="Seats drilled for the next sieve up: the setter must open them to size "
                   "before setting.")
        services.setting_group_update(
            actor=manager, group_id=melee.pk,
            note="Seats a little large: open each one to the stone before closing the grains.")
        plan = services.setting_plan_check(actor=_user(scene, "quality"), piece_id=piece.pk,
                                           stones_match=True, preparation_checked=True,
                                           note="Seats re-checked with the setter's gauge.")
    return plan


def _issue(scene, run) -> None:
    """The stones of the order's pieces go to the setter on one slip, spares with them."""
    order = _order_state(scene)
    pieces = scene.pieces()
    allocations = list(StoneAllocation.objects.filter(
        piece__in=pieces, status="reserved").select_related("lot").order_by("piece_id", "id"))
    if not allocations:
        return
    melee = next((a.lot for a in allocations if a.lot.count_received >= 100), None)
    stones = []
    if melee is not None and lot_free_in_vault(melee)[0] >= SPARES:
        per_stone = (melee.carats_received / melee.count_received).quantize(MG)
        stones = [{"lot_id": melee.pk, "count": SPARES, "carats": per_stone * SPARES}]
    slip = material_services.material_issue(
        actor=_user(scene, "manager"), workshop_id=run.workshop_id, operation="setting",
        allocation_ids=[a.pk for a in allocations], stones=stones,
        comment="Stones per the setting plans; two spare melee in the envelope."
        if stones else "Stones per the setting plans.")
    order["slip"] = slip.pk


def before_send(scene, piece, run) -> None:
    if run.step != StepKind.SETTING:
        return
    plan = SettingPlan.objects.filter(piece=piece).first()
    if plan is None and selectors.plan_required(piece):
        _draft(scene, piece)
    elif plan is not None and plan.status != PlanStatus.CHECKED:
        services.setting_plan_check(actor=_user(scene, "quality"), piece_id=piece.pk,
                                    stones_match=True, preparation_checked=True,
                                    note="Checked again after the change.")
    if piece.pk == scene.pieces()[-1].pk and _order_state(scene)["slip"] is None:
        _issue(scene, run)


# ---------------------------------------------------------------------------------------------
# at the setter's


def before_start(scene, piece, run) -> None:
    order = _order_state(scene)
    if run.step == StepKind.SETTING:
        slip = MaterialSlip.objects.filter(pk=order["slip"], status=SlipStatus.SENT).first()
        if slip is not None:
            material_services.material_slip_receive(
                actor=_member(scene, run.workshop), slip_id=slip.pk,
                lines=[{"line_id": ln.pk, "count": ln.stone_count, "carats": ln.carats_sent}
                       for ln in slip.lines.all()])
        return
    prev = selectors.previous_run(piece, run)
    if not selectors.is_controlled_setting_run(prev) \
            or SettingControl.objects.filter(setting_run=prev).exists() \
            or not SettingPlan.objects.filter(piece=piece).exists():
        return
    _close_job(scene)
    _control(scene, piece, run, prev)


def before_complete(scene, piece, run) -> None:
    if run.step != StepKind.SETTING:
        return
    order = _order_state(scene)
    if order["slip"] is None or order["returned"] is not None:
        return
    issue = MaterialSlip.objects.get(pk=order["slip"])
    stones, spares = [], None
    for ln in issue.lines.select_related("lot").order_by("id"):
        if ln.piece_id:
            stones.append({"lot_id": ln.lot_id, "count": ln.stone_count,
                           "carats": ln.carats_sent, "piece_id": ln.piece_id})
        else:
            spares = ln
    if spares is not None:
        kept = _breakage_here(scene, run)
        back = spares.stone_count - kept
        if back:
            per_stone = (spares.carats_sent / spares.stone_count).quantize(MG)
            stones.append({"lot_id": spares.lot_id, "count": back, "carats": per_stone * back})
    ret = material_services.material_return(
        actor=_member(scene, run.workshop), issue_id=issue.pk, stones=stones,
        closes_issue=True, comment="Stones set per the plans; spares back in their paper.")
    order["returned"] = ret.pk


def _breakage_here(scene, run) -> int:
    """Whether a spare of this job is the story's broken or lost one (kept aside by the setter
    for the control to book). Only jobs whose order goes on to delivery are chosen."""
    if scene.plan.scenario.step != "delivered":
        return 0
    story, order = _story_state(scene), _order_state(scene)
    if story["broken"] is None:
        story["broken"] = run.workshop_id
        order["breakage"] = "broken"
        return 1
    if story["lost"] is None and run.workshop_id != story["broken"]:
        story["lost"] = run.workshop_id
        order["breakage"] = "lost"
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# the control on return


def _close_job(scene) -> None:
    """The house receives the setter's return and closes the stones job."""
    order = _order_state(scene)
    if order["returned"] is None or order["settled"]:
        return
    manager = _user(scene, "manager")
    ret = MaterialSlip.objects.get(pk=order["returned"])
    if ret.status == SlipStatus.SENT:
        material_services.material_slip_receive(
            actor=manager, slip_id=ret.pk,
            lines=[{"line_id": ln.pk, "count": ln.stone_count, "carats": ln.carats_sent}
                   for ln in ret.lines.all()])
    if MaterialSlip.objects.get(pk=order["slip"]).settled_at is None:
        # The last return of a job settles it when received; otherwise the house closes it.
        material_services.material_issue_settle(actor=manager, issue_id=order["slip"])
    order["settled"] = True


def _photo(piece, rng: random.Random) -> SimpleUploadedFile:
    """A small picture of the set piece under the loupe (drawn, not photographed)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (240, 180), "#20242a")
    draw = ImageDraw.Draw(image)
    draw.ellipse((50, 30, 190, 170), outline="#d4af37", width=10)
    for i in range(12):
        x = 62 + i * 10 + rng.randint(-1, 1)
        draw.ellipse((x, 36, x + 7, 43), fill="#eef4ff")
    draw.text((8, 6), f"{piece.serial} - control", fill="#ffffff")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return SimpleUploadedFile(f"control-{piece.serial}.png", buffer.getvalue(), "image/png")


def _control(scene, piece, run, setting_run) -> None:
    plan = SettingPlan.objects.get(piece=piece)
    groups = list(plan.groups.select_related("lot").order_by("number"))
    order = _order_state(scene)
    rng = _rng(scene, piece.pk + setting_run.pk)
    breakages, notes = [], "Every stone counted under the loupe and tested with the tweezers."
    if order["breakage"] and piece.pk == scene.pieces()[0].pk:
        melee = next((g for g in groups if g.lot and g.lot.count_received >= 100), None)
        if melee is not None:
            lost = order["breakage"] == "lost"
            breakages.append({
                "group_id": melee.pk, "count": 1, "lost": lost,
                "reason": "Spare sprang from the tweezers while setting; not found in the "
                          "sweeps." if lost else "Spare chipped on the girdle while closing "
                                                 "the prongs; replaced from the envelope."})
            notes += (" The setter reports one spare lost; the piece has all its stones."
                      if lost else " One spare chipped at the setter's, kept aside; the "
                                   "piece has all its stones.")
        order["breakage"] = ""
    if breakages or run.workshop.code == "house":
        actor = _user(scene, "manager")
    else:
        actor = _member(scene, run.workshop)
    photos = [_photo(piece, rng)] if (piece.line.is_custom_design or rng.random() < 0.3) \
        else []
    services.setting_control_record(
        actor=actor, piece_id=piece.pk, stones_secure=True,
        counts=[{"group_id": g.pk, "counted": g.count} for g in groups],
        breakages=breakages, notes=notes, photos=photos)
