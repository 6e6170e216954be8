"""Stone setting: the /api/v1/ endpoints.

A piece's setting plan (its groups of stones, each from a lot with the piece's allocation),
the check before the piece goes to the setter, reopening a checked plan, and the control on
return from the setter. House staff see every plan; a workshop member the plans of the pieces
at or coming to their workshop; clients none (404). No prices and no client names here.
"""

import datetime as dt
from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Router, Schema
from ninja.files import UploadedFile

from etabli.core.errors import NotFound
from etabli.materials.models import StoneShape, StoneType

from . import selectors, services
from .models import (
    PlanStatus,
    SettingControl,
    SettingGroup,
    SettingPlan,
    SettingType,
    StonePosition,
)

router = Router(tags=["Stone setting"])


# ---------------------------------------------------------------------------------------------
# schemas


class GroupIn(Schema):
    setting_type: SettingType | None = None
    position: StonePosition | None = None
    stone_type: StoneType | None = None
    shape: StoneShape | None = None
    size_mm: Decimal | None = None
    sieve: str | None = None
    count: int | None = None
    carats: Decimal | None = None
    supplied_by_client: bool | None = None
    lot_id: int | None = None
    allocation_id: int | None = None
    note: str | None = None


class GroupSetIn(GroupIn):
    id: int | None = None


class PlanCreateIn(Schema):
    groups: list[GroupIn] = []


class GroupsSetIn(Schema):
    groups: list[GroupSetIn]


class CheckIn(Schema):
    stones_match: bool
    preparation_checked: bool
    note: str = ""


class ReopenIn(Schema):
    reason: str


class CountIn(Schema):
    group_id: int
    counted: int


class BreakageIn(Schema):
    group_id: int
    count: int
    lost: bool = False
    reason: str
    carats: Decimal | None = None


class ControlIn(Schema):
    stones_secure: bool
    counts: list[CountIn]
    breakages: list[BreakageIn] = []
    notes: str = ""
    client_ref: str | None = None


class LotRef(Schema):
    id: int
    number: str


class AllocationOut(Schema):
    id: int
    count: int
    carats: Decimal
    status: str


class GroupOut(Schema):
    id: int
    number: int
    label: str
    setting_type: str
    position: str
    stone_type: str
    shape: str
    size_mm: Decimal | None
    sieve: str
    count: int
    carats: Decimal | None
    supplied_by_client: bool
    lot: LotRef | None
    allocation: AllocationOut | None
    covered: bool
    note: str


class ComparisonOut(Schema):
    planned_count: int
    planned_ct: Decimal | None
    budget_count: int | None
    budget_ct: Decimal | None
    count_matches: bool | None
    ct_matches: bool | None
    carat_tolerance_percent: Decimal
    allocations_missing: list[int]
    line_stones: str


class PieceRef(Schema):
    id: int
    serial: str
    description: str


class PlanOut(Schema):
    id: int
    piece: PieceRef
    status: PlanStatus
    revision: int
    groups: list[GroupOut]
    comparison: ComparisonOut
    stones_match: bool
    preparation_checked: bool
    check_note: str
    checked_by: str | None
    checked_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    control_due: bool
    url: str


class CountOut(Schema):
    group_id: int | None
    group_number: int
    description: str
    planned: int
    counted: int
    matches: bool
    broken: int
    lost: int


class PhotoOut(Schema):
    id: int
    name: str
    url: str


class ControlOut(Schema):
    id: int
    piece_id: int
    setting_run_id: int
    plan_revision: int
    passed: bool
    stones_secure: bool
    counts: list[CountOut]
    notes: str
    photos: list[PhotoOut]
    stone_entry_ids: list[int]
    recorded_at: dt.datetime
    recorded_by: str | None
    workshop: str | None
    on_hold: bool


def _group_out(g: SettingGroup, piece_id: int) -> dict:
    alloc = g.allocation
    return {"id": g.pk, "number": g.number, "label": selectors.group_label(g),
            "setting_type": g.setting_type, "position": g.position, "stone_type": g.stone_type,
            "shape": g.shape, "size_mm": g.size_mm, "sieve": g.sieve, "count": g.count,
            "carats": g.carats, "supplied_by_client": g.supplied_by_client,
            "lot": {"id": g.lot.pk, "number": g.lot.number} if g.lot else None,
            "allocation": {"id": alloc.pk, "count": alloc.count, "carats": alloc.carats,
                           "status": alloc.status} if alloc else None,
            "covered": selectors.group_covered(g, piece_id), "note": g.note}


def _plan_out(user, plan: SettingPlan) -> dict:
    plan = selectors.plan_for(plan.piece)
    piece = plan.piece
    groups = list(plan.groups.all())
    comparison = selectors.compare(plan, groups)
    return {"id": plan.pk,
            "piece": {"id": piece.pk, "serial": piece.serial,
                      "description": piece.line.description},
            "status": plan.status, "revision": plan.revision,
            "groups": [_group_out(g, piece.pk) for g in groups],
            "comparison": comparison.as_dict() | {"line_stones": comparison.line_stones},
            "stones_match": plan.stones_match,
            "preparation_checked": plan.preparation_checked, "check_note": plan.check_note,
            "checked_by": plan.checked_by.username if plan.checked_by and user.sees_clients
            else None,
            "checked_at": plan.checked_at, "created_at": plan.created_at,
            "updated_at": plan.updated_at,
            "control_due": selectors.setting_run_awaiting_control(piece) is not None,
            "url": reverse("stonesetting:plan", args=[piece.pk])}


def _control_out(user, control: SettingControl) -> dict:
    from etabli.documents.models import Document

    photos = list(Document.objects.visible_to(user).filter(pk__in=control.photos.all()))
    own = user.sees_clients or control.workshop_id in (
        user.workshop_ids() if user.role == "workshop" else set())
    return {"id": control.pk, "piece_id": control.piece_id,
            "setting_run_id": control.setting_run_id, "plan_revision": control.plan_revision,
            "passed": control.passed, "stones_secure": control.stones_secure,
            "counts": [{"group_id": c.group_id, "group_number": c.group_number,
                        "description": c.description, "planned": c.planned,
                        "counted": c.counted, "matches": c.matches, "broken": c.broken,
                        "lost": c.lost} for c in control.counts.order_by("group_number")],
            "notes": control.notes,
            "photos": [{"id": d.pk, "name": d.original_name,
                        "url": reverse("document", args=[d.token])} for d in photos],
            "stone_entry_ids": list(control.stone_entries.values_list("pk", flat=True)),
            "recorded_at": control.recorded_at,
            "recorded_by": control.recorded_by.username if own else None,
            "workshop": control.workshop.name if own else None,
            "on_hold": control.hold_event_id is not None}


def _piece(request, piece_id: int):
    piece = selectors.piece_for_setting(request.auth, piece_id)
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    return piece


def _plan(request, piece_id: int) -> SettingPlan:
    piece = _piece(request, piece_id)
    plan = SettingPlan.objects.filter(piece=piece).first()
    if plan is None:
        raise NotFound(_("Piece %(serial)s has no setting plan yet.") % {"serial": piece.serial},
                       code="no_plan")
    return plan


def _group_fields(payload: GroupIn) -> dict:
    data = payload.model_dump(exclude_unset=True)
    for name in ("setting_type", "position", "stone_type", "shape"):
        if data.get(name) is not None:
            data[name] = str(getattr(data[name], "value", data[name]))
    return data


# ---------------------------------------------------------------------------------------------
# the plan


@router.get("/setting/pieces/{piece_id}/plan", response=PlanOut,
            summary="A piece's setting plan")
def get_plan(request, piece_id: int):
    """Its groups of stones (setting, position, stones, the lot and the piece's allocation of
    it), the totals against the order line's stone budget, and the check."""
    return _plan_out(request.auth, _plan(request, piece_id))


@router.post("/setting/pieces/{piece_id}/plan", response={201: PlanOut},
             summary="Start a piece's setting plan")
def create_plan(request, piece_id: int, payload: PlanCreateIn):
    """Production manager, administrator or designer. A group with `lot_id` reserves its
    stones from the lot for the piece (production manager and administrator only; never more
    than the lot has free in the vault). 409 when the piece already has a plan."""
    plan = services.setting_plan_create(actor=request.auth, piece_id=piece_id,
                                        groups=[_group_fields(g) for g in payload.groups])
    return 201, _plan_out(request.auth, plan)


@router.put("/setting/pieces/{piece_id}/plan/groups", response=PlanOut,
            summary="Set a draft plan's groups")
def set_groups(request, piece_id: int, payload: GroupsSetIn):
    """The plan's groups become those given: with `id` a group is changed (only the fields
    sent), without it one is added, and groups left out are removed (stones still reserved
    for them go back to their lot). Only while the plan is a draft."""
    plan = services.setting_plan_groups_set(actor=request.auth, piece_id=piece_id,
                                            groups=[_group_fields(g) for g in payload.groups])
    return _plan_out(request.auth, plan)


@router.post("/setting/pieces/{piece_id}/plan/groups", response={201: GroupOut},
             summary="Add a group to a draft plan")
def add_group(request, piece_id: int, payload: GroupIn):
    group = services.setting_group_add(actor=request.auth, piece_id=piece_id,
                                       **_group_fields(payload))
    group = SettingGroup.objects.select_related("lot", "allocation", "plan").get(pk=group.pk)
    return 201, _group_out(group, group.plan.piece_id)


@router.patch("/setting/groups/{group_id}", response=GroupOut,
              summary="Change a group of a draft plan")
def update_group(request, group_id: int, payload: GroupIn):
    group = services.setting_group_update(actor=request.auth, group_id=group_id,
                                          **_group_fields(payload))
    group = SettingGroup.objects.select_related("lot", "allocation", "plan").get(pk=group.pk)
    return _group_out(group, group.plan.piece_id)


@router.delete("/setting/groups/{group_id}", response={204: None},
               summary="Remove a group from a draft plan")
def remove_group(request, group_id: int):
    services.setting_group_remove(actor=request.auth, group_id=group_id)
    return 204, None


@router.post("/setting/pieces/{piece_id}/plan/check", response=PlanOut,
             summary="Check the plan before the piece goes to the setter")
def check_plan(request, piece_id: int, payload: CheckIn):
    """Production manager, administrator or quality inspector: the stones match the order
    (`stones_match`) and the preparation (seats, prongs) is checked (`preparation_checked`).
    Refused while a group has no stones allocated; a plan that departs from the order line's
    stone budget needs a `note`."""
    plan = services.setting_plan_check(actor=request.auth, piece_id=piece_id,
                                       stones_match=payload.stones_match,
                                       preparation_checked=payload.preparation_checked,
                                       note=payload.note)
    return _plan_out(request.auth, plan)


@router.post("/setting/pieces/{piece_id}/plan/reopen", response=PlanOut,
             summary="Reopen a checked plan")
def reopen_plan(request, piece_id: int, payload: ReopenIn):
    """Production manager or administrator, with a `reason` (kept in the audit trail). The
    plan must be checked again before the piece goes to the setter."""
    plan = services.setting_plan_reopen(actor=request.auth, piece_id=piece_id,
                                        reason=payload.reason)
    return _plan_out(request.auth, plan)


# ---------------------------------------------------------------------------------------------
# the control on return


@router.post("/setting/pieces/{piece_id}/control", response={200: ControlOut, 201: ControlOut},
             summary="Record the control of a piece back from the setter")
def record_control(request, piece_id: int, payload: ControlIn):
    """When the piece has arrived at the workshop of the step after setting (production
    manager, administrator, quality inspector, or a member of that workshop). `counts`: the
    stones counted in every group; `breakages`: stones broken or lost at the setter's, booked
    in the stone ledger from the setter's holding (production manager or administrator).
    `passed` is computed; a failed control puts the piece on hold (quality stop). The same
    `client_ref` again answers 200 with the control already recorded. Photos:
    `POST /setting/controls/{id}/photos`."""
    control = services.setting_control_record(
        actor=request.auth, piece_id=piece_id, stones_secure=payload.stones_secure,
        counts=[c.model_dump() for c in payload.counts],
        breakages=[b.model_dump() for b in payload.breakages], notes=payload.notes,
        client_ref=payload.client_ref)
    return (200 if getattr(control, "replayed", False) else 201), \
        _control_out(request.auth, control)


@router.get("/setting/pieces/{piece_id}/controls", response=list[ControlOut],
            summary="A piece's controls on return from the setter")
def list_controls(request, piece_id: int):
    piece = _piece(request, piece_id)
    return [_control_out(request.auth, c) for c in selectors.controls_for(piece)]


def _control(request, control_id: int) -> SettingControl:
    control = SettingControl.objects.visible_to(request.auth).filter(pk=control_id).first()
    if control is None:
        raise NotFound(_("No setting control with id %(id)s.") % {"id": control_id})
    return control


@router.get("/setting/controls/{control_id}", response=ControlOut,
            summary="One control on return from the setter")
def get_control(request, control_id: int):
    return _control_out(request.auth, _control(request, control_id))


@router.post("/setting/controls/{control_id}/photos", response={201: ControlOut},
             summary="Add photos to a control")
def add_photos(request, control_id: int, photos: File[list[UploadedFile]]):
    """Multipart form: one or more `photos` (JPEG, PNG or WebP; at most 10 per control), by
    whoever recorded the control, the production manager or the quality inspector."""
    control = services.setting_control_add_photos(actor=request.auth, control_id=control_id,
                                                  photos=photos)
    return 201, _control_out(request.auth, control)
