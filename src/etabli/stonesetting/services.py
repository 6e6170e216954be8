"""Stone setting writes: the plan and its groups, the check before the setter, the control on
return. Stones are reserved, released and written off only through the materials services.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.materials import stone_services
from etabli.materials.access import manages_materials
from etabli.materials.models import (
    AllocationStatus,
    StoneAllocation,
    StoneLot,
    StoneShape,
    StoneType,
)
from etabli.materials.services import clean_carats, clean_count, clean_text
from etabli.production.models import Piece, PieceStatus

from . import selectors
from .models import (
    PlanStatus,
    SettingControl,
    SettingControlCount,
    SettingGroup,
    SettingPlan,
    SettingType,
    StonePosition,
    pieces_for_setting,
)

# The house drafts the plan: the production manager and the administrator, and the designer
# who knows the stones of the design. Checking it is a second pair of eyes: the production
# manager, the administrator or the quality inspector. Reopening a checked plan is the
# production manager's (or administrator's) decision.
EDIT_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.DESIGNER})
CHECK_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.QUALITY})
REOPEN_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER})
CONTROL_HOUSE_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.QUALITY})
MAX_GROUPS = 50
MAX_PHOTOS = 10
MG = Decimal("0.001")
GROUP_FIELDS = frozenset({"setting_type", "position", "stone_type", "shape", "size_mm", "sieve",
                          "count", "carats", "supplied_by_client", "lot_id", "allocation_id",
                          "note"})
PLAN_AUDIT_FIELDS = ["status", "revision", "stones_match", "preparation_checked", "check_note",
                     "checked_by", "checked_at"]


# ---------------------------------------------------------------------------------------------
# access


def may_edit_plan(user) -> bool:
    return bool(getattr(user, "is_active", False) and user.role in EDIT_ROLES)


def may_check_plan(user) -> bool:
    return bool(getattr(user, "is_active", False) and user.role in CHECK_ROLES)


def may_reopen_plan(user) -> bool:
    return bool(getattr(user, "is_active", False) and user.role in REOPEN_ROLES)


def control_refusal(user, piece: Piece) -> str | None:
    """Why `user` may not record the receipt control of `piece` (None when they may)."""
    if not getattr(user, "is_active", False):
        return _("Log in to record a control.")
    if user.runs_production:
        return None
    if user.role == Role.QUALITY:
        if Piece.objects.visible_to(user).filter(pk=piece.pk).exists():
            return None
        return _("The quality inspector controls pieces that are at finishing.")
    if user.role == Role.WORKSHOP:
        if piece.location_id is not None and piece.location_id in user.workshop_ids():
            return None
        return _("You can record the control only on a piece that is at your workshop.")
    return _("Your role cannot record a setting control.")


def may_book_stones(user, setter_workshop_id: int) -> bool:
    """The stone ledger lets the vault's keepers, or the setter, write off stones the setter
    held (materials.access.check_acts_for_workshop)."""
    if manages_materials(user):
        return True
    return bool(user.role == Role.WORKSHOP and setter_workshop_id in user.workshop_ids())


def _check_edit(actor) -> None:
    if not may_edit_plan(actor):
        raise PermissionDenied(_("Only a production manager, an administrator or a designer "
                                 "drafts a setting plan."))


# ---------------------------------------------------------------------------------------------
# helpers


def _int_id(value: Any) -> int | None:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _piece(actor, piece_id: Any) -> Piece:
    piece = (pieces_for_setting(actor).select_for_update(of=("self",))
             .select_related("line", "order").filter(pk=_int_id(piece_id)).first())
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id},
                       details={"field": "piece_id"})
    return piece


def _plan(piece: Piece) -> SettingPlan:
    plan = SettingPlan.objects.select_for_update().filter(piece=piece).first()
    if plan is None:
        raise NotFound(_("Piece %(serial)s has no setting plan yet.") % {"serial": piece.serial},
                       code="no_plan")
    return plan


def _check_draft(plan: SettingPlan, piece: Piece) -> None:
    if plan.status != PlanStatus.DRAFT:
        raise TransitionNotAllowed(
            _("The setting plan of %(serial)s has been checked: reopen it before changing it.")
            % {"serial": piece.serial})


def _check_not_delivered(piece: Piece) -> None:
    if piece.status == PieceStatus.DELIVERED:
        raise TransitionNotAllowed(_("Piece %(serial)s has been delivered.")
                                   % {"serial": piece.serial})


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "1", "on", "yes", 1):
        return True
    if value in (None, "", "false", "0", "off", "no", 0):
        return False
    raise ValidationFailed(_("%(field)s is yes or no.") % {"field": field},
                           details={"field": field})


def _choice(value: Any, choices, field: str, what: str) -> str:
    if value not in choices.values:
        raise ValidationFailed(
            _("Unknown %(what)s '%(value)s'. Choose one of: %(choices)s.")
            % {"what": what, "value": value, "choices": ", ".join(choices.values)},
            details={"field": field})
    return value


def _size(value: Any, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValidationFailed(_("'%(value)s' is not a size in millimetres.") % {"value": value},
                               details={"field": field})
    try:
        size = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a size in millimetres.")
                               % {"value": value}, details={"field": field}) from exc
    if not size.is_finite() or size <= 0 or size > 100:
        raise ValidationFailed(_("A stone's size is more than 0 and at most 100 mm."),
                               details={"field": field})
    if size != size.quantize(Decimal("0.01")):
        raise ValidationFailed(_("Sizes are given to the hundredth of a millimetre."),
                               details={"field": field})
    return size


def _lot_carats(lot: StoneLot, count: int) -> Decimal:
    """The carats of `count` average stones of the lot (at least a thousandth)."""
    per_stone = lot.carats_received / lot.count_received
    return max((per_stone * count).quantize(MG), MG)


def _plan_touch(plan: SettingPlan) -> None:
    plan.updated_at = timezone.now()
    plan.save(update_fields=["updated_at"])


# ---------------------------------------------------------------------------------------------
# the plan


@transaction.atomic
def setting_plan_create(*, actor, piece_id: Any, groups: list[dict] | None = None
                        ) -> SettingPlan:
    """Start the setting plan of a piece (with its groups, if given)."""
    piece = _piece(actor, piece_id)
    _check_edit(actor)
    _check_not_delivered(piece)
    if SettingPlan.objects.filter(piece=piece).exists():
        raise Conflict(_("Piece %(serial)s already has a setting plan.") % {"serial": piece.serial},
                       code="plan_exists")
    now = timezone.now()
    plan = SettingPlan.objects.create(piece=piece, created_by=actor, created_at=now,
                                      updated_at=now)
    audit.record(actor=actor, action="setting_plan.create", obj=plan,
                 after={"piece": piece.serial}, order_id=piece.order_id, piece_id=piece.pk)
    groups = groups or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise ValidationFailed(_("At most %(max)s groups per plan.") % {"max": MAX_GROUPS},
                               details={"field": "groups"})
    for i, data in enumerate(groups):
        _group_write(actor, plan, piece, data, None, prefix=f"groups[{i}].")
    return plan


@transaction.atomic
def setting_group_add(*, actor, piece_id: Any, **data: Any) -> SettingGroup:
    """Add a group of stones to a draft plan; with `lot_id`, its stones are reserved from the
    lot for the piece (never more than the lot has free)."""
    piece = _piece(actor, piece_id)
    _check_edit(actor)
    plan = _plan(piece)
    _check_draft(plan, piece)
    _check_not_delivered(piece)
    if plan.groups.count() >= MAX_GROUPS:
        raise ValidationFailed(_("At most %(max)s groups per plan.") % {"max": MAX_GROUPS},
                               details={"field": "groups"})
    group = _group_write(actor, plan, piece, data, None)
    _plan_touch(plan)
    return group


def _visible_group(actor, group_id: Any) -> tuple[Piece, SettingPlan, SettingGroup]:
    group = (SettingGroup.objects.filter(plan__in=SettingPlan.objects.visible_to(actor))
             .select_related("plan").filter(pk=_int_id(group_id)).first())
    if group is None:
        raise NotFound(_("No setting group with id %(id)s.") % {"id": group_id},
                       details={"field": "group_id"})
    piece = _piece(actor, group.plan.piece_id)
    plan = _plan(piece)
    group = (SettingGroup.objects.select_for_update(of=("self",))
             .select_related("lot", "allocation").get(pk=group.pk))
    return piece, plan, group


@transaction.atomic
def setting_group_update(*, actor, group_id: Any, **data: Any) -> SettingGroup:
    """Change a group of a draft plan (only the fields given). A new lot or count releases
    the stones reserved before and reserves the new ones."""
    piece, plan, group = _visible_group(actor, group_id)
    _check_edit(actor)
    _check_draft(plan, piece)
    _check_not_delivered(piece)
    group = _group_write(actor, plan, piece, data, group)
    _plan_touch(plan)
    return group


@transaction.atomic
def setting_group_remove(*, actor, group_id: Any) -> None:
    """Take a group out of a draft plan; stones still reserved for it go back to the lot."""
    piece, plan, group = _visible_group(actor, group_id)
    _check_edit(actor)
    _check_draft(plan, piece)
    _remove(actor, piece, group)
    _plan_touch(plan)


def _remove(actor, piece: Piece, group: SettingGroup) -> None:
    alloc = group.allocation
    if alloc is not None and alloc.status != AllocationStatus.RESERVED:
        raise TransitionNotAllowed(
            _("The stones of group %(n)s have been issued to the setter: the group stays on "
              "the plan.") % {"n": group.number}, details={"field": "group_id"})
    before = _group_snapshot(group)
    number = group.number
    group.delete()
    if alloc is not None:
        _release(actor, alloc)
    audit.record(actor=actor, action="setting_group.remove", obj=group.plan, before=before,
                 after={"removed": number}, order_id=piece.order_id, piece_id=piece.pk)


@transaction.atomic
def setting_plan_groups_set(*, actor, piece_id: Any, groups: list[dict]) -> SettingPlan:
    """Make the draft plan's groups the ones given: a group with an `id` is changed, one
    without is added, and groups not listed are taken out (their reserved stones released)."""
    piece = _piece(actor, piece_id)
    _check_edit(actor)
    plan = _plan(piece)
    _check_draft(plan, piece)
    _check_not_delivered(piece)
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise ValidationFailed(_("At most %(max)s groups per plan.") % {"max": MAX_GROUPS},
                               details={"field": "groups"})
    existing = {g.pk: g for g in plan.groups.select_for_update(of=("self",))
                .select_related("lot", "allocation")}
    keep: dict[int, dict] = {}
    for i, data in enumerate(groups):
        if not isinstance(data, dict):
            raise ValidationFailed(_("Each group is an object."), details={"field": f"groups[{i}]"})
        if data.get("id") is not None:
            gid = _int_id(data["id"])
            if gid not in existing:
                raise NotFound(_("Group %(id)s is not on this plan.") % {"id": data["id"]},
                               details={"field": f"groups[{i}].id"})
            if gid in keep:
                raise ValidationFailed(_("Group %(id)s is listed twice.") % {"id": gid},
                                       details={"field": f"groups[{i}].id"})
            keep[gid] = data
    # Groups taken out first: their stones are free again for the groups that follow.
    for gid, group in existing.items():
        if gid not in keep:
            _remove(actor, piece, group)
    for i, data in enumerate(groups):
        fields = {k: v for k, v in data.items() if k != "id"}
        gid = _int_id(data.get("id")) if data.get("id") is not None else None
        _group_write(actor, plan, piece, fields, existing.get(gid) if gid else None,
                     prefix=f"groups[{i}].")
    _plan_touch(plan)
    plan.refresh_from_db()
    return plan


def _group_snapshot(group: SettingGroup) -> dict:
    return audit.snapshot(group, ["number", "setting_type", "position", "stone_type", "shape",
                                  "size_mm", "sieve", "count", "carats", "supplied_by_client",
                                  "lot", "allocation", "note"])


def _release(actor, alloc: StoneAllocation) -> None:
    if alloc.status == AllocationStatus.RESERVED:
        stone_services.stone_allocation_release(actor=actor, allocation_id=alloc.pk)


def _need_vault_keeper(actor, prefix: str) -> None:
    if not manages_materials(actor):
        raise PermissionDenied(
            _("Only a production manager or an administrator reserves stones from a lot: "
              "leave the lot empty and they will allocate it."),
            details={"field": f"{prefix}lot_id"})


def _group_write(actor, plan: SettingPlan, piece: Piece, data: dict,
                 group: SettingGroup | None, prefix: str = "") -> SettingGroup:
    """Clean a group's fields (merged over `group`'s when it exists), reserve or release its
    stones through the materials services, and save it."""
    if not isinstance(data, dict):
        raise ValidationFailed(_("A group is an object."), details={"field": prefix or "group"})
    unknown = set(data) - GROUP_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(_("Unknown field '%(field)s'.") % {"field": name},
                               details={"field": f"{prefix}{name}"})
    old = _group_snapshot(group) if group is not None else {}

    def given(name: str) -> bool:
        return name in data

    def current(name: str, default: Any = None) -> Any:
        if given(name):
            return data[name]
        return getattr(group, name) if group is not None else default

    setting_type = current("setting_type")
    if setting_type in (None, ""):
        raise ValidationFailed(_("Say how the stones are set."),
                               details={"field": f"{prefix}setting_type"})
    _choice(setting_type, SettingType, f"{prefix}setting_type", _("setting type"))
    position = current("position")
    if position in (None, ""):
        raise ValidationFailed(_("Say where on the piece the stones go."),
                               details={"field": f"{prefix}position"})
    _choice(position, StonePosition, f"{prefix}position", _("position"))
    count = clean_count(current("count"), f"{prefix}count") if current("count") is not None \
        else None
    if count is None:
        raise ValidationFailed(_("Say how many stones the group has."),
                               details={"field": f"{prefix}count"})
    carats_raw = current("carats")
    carats = clean_carats(carats_raw, f"{prefix}carats") if carats_raw not in (None, "") \
        else None
    client_stones = _bool(current("supplied_by_client", False), f"{prefix}supplied_by_client")
    note = clean_text(current("note", ""), f"{prefix}note", 240)
    sieve = clean_text(current("sieve", ""), f"{prefix}sieve", 20)
    size = _size(current("size_mm"), f"{prefix}size_mm")

    # Where the stones come from: the client, an allocation already made, or a lot.
    lot: StoneLot | None = None
    adopt: StoneAllocation | None = None
    alloc_id = data.get("allocation_id") if given("allocation_id") else None
    if given("lot_id"):
        lot_id = data["lot_id"]
    elif given("allocation_id") or client_stones:
        lot_id = None
    else:
        lot_id = group.lot_id if group is not None else None
    if client_stones and (lot_id not in (None, "") or alloc_id not in (None, "")):
        raise ValidationFailed(_("The client's own stones come from no lot of the house."),
                               details={"field": f"{prefix}lot_id"})
    if alloc_id not in (None, ""):
        adopt = (StoneAllocation.objects.visible_to(actor).select_related("lot")
                 .filter(pk=_int_id(alloc_id), piece=piece).first())
        if adopt is None:
            raise NotFound(_("No stone allocation with id %(id)s for piece %(serial)s.")
                           % {"id": alloc_id, "serial": piece.serial},
                           details={"field": f"{prefix}allocation_id"})
        if adopt.status == AllocationStatus.RELEASED:
            raise ValidationFailed(_("These stones have been released: allocate them again."),
                                   details={"field": f"{prefix}allocation_id"})
        taken = SettingGroup.objects.filter(allocation=adopt).exclude(
            pk=group.pk if group is not None else None).first()
        if taken is not None:
            raise Conflict(_("These stones are already those of group %(n)s.")
                           % {"n": taken.number}, details={"field": f"{prefix}allocation_id"})
        if lot_id not in (None, "") and _int_id(lot_id) != adopt.lot_id:
            raise ValidationFailed(_("That allocation is of lot %(lot)s.")
                                   % {"lot": adopt.lot.number},
                                   details={"field": f"{prefix}lot_id"})
        if count > adopt.count:
            raise ValidationFailed(
                _("The allocation holds %(have)s stones; the group needs %(need)s.")
                % {"have": adopt.count, "need": count}, details={"field": f"{prefix}count"})
        lot = adopt.lot
    elif lot_id not in (None, ""):
        lot = StoneLot.objects.visible_to(actor).filter(pk=_int_id(lot_id)).first()
        if lot is None:
            raise NotFound(_("No stone lot with id %(id)s.") % {"id": lot_id},
                           details={"field": f"{prefix}lot_id"})

    stone_type = current("stone_type") or (lot.stone_type if lot else None)
    shape = current("shape") or (lot.shape if lot else None)
    if stone_type in (None, ""):
        raise ValidationFailed(_("Say which stones they are."),
                               details={"field": f"{prefix}stone_type"})
    _choice(stone_type, StoneType, f"{prefix}stone_type", _("stone type"))
    if shape in (None, ""):
        raise ValidationFailed(_("Say the stones' shape."), details={"field": f"{prefix}shape"})
    _choice(shape, StoneShape, f"{prefix}shape", _("shape"))
    if lot is not None:
        if stone_type != lot.stone_type:
            raise ValidationFailed(
                _("Lot %(lot)s holds %(lot_stone)s, not %(stone)s.")
                % {"lot": lot.number, "lot_stone": lot.get_stone_type_display().lower(),
                   "stone": StoneType(stone_type).label.lower()},
                details={"field": f"{prefix}stone_type"})
        if shape != lot.shape:
            raise ValidationFailed(
                _("Lot %(lot)s holds %(lot_shape)s stones, not %(shape)s.")
                % {"lot": lot.number, "lot_shape": lot.get_shape_display().lower(),
                   "shape": StoneShape(shape).label.lower()},
                details={"field": f"{prefix}shape"})
        if size is None and not sieve:  # the lot's size, unless the group gives its own
            size, sieve = lot.size_mm, lot.sieve
    if size is None and not sieve and not client_stones:
        raise ValidationFailed(_("Give the stones' size in millimetres or their sieve size."),
                               details={"field": f"{prefix}size_mm"})

    # The allocation: keep it when nothing that reserves stones has changed.
    old_alloc = group.allocation if group is not None else None
    new_alloc = old_alloc
    if adopt is not None:
        new_alloc = adopt
    elif lot is None:
        new_alloc = None
    elif not (old_alloc is not None and old_alloc.lot_id == lot.pk
              and old_alloc.status != AllocationStatus.RELEASED and old_alloc.count >= count
              # A smaller count gives back what is still reserved; stones already issued
              # to the setter stay issued (they still cover the group).
              and not (given("count") and count != group.count
                       and old_alloc.status == AllocationStatus.RESERVED
                       and old_alloc.count != count)):
        new_alloc = "new"
    if new_alloc is not old_alloc and old_alloc is not None:
        if old_alloc.status != AllocationStatus.RESERVED:
            raise TransitionNotAllowed(
                _("The stones of group %(n)s have been issued to the setter: their lot and "
                  "number can change only once they are back.") % {"n": group.number},
                details={"field": f"{prefix}count"})
        _need_vault_keeper(actor, prefix)
    if new_alloc == "new":
        _need_vault_keeper(actor, prefix)

    if group is None:
        last = plan.groups.order_by("-number").values_list("number", flat=True).first() or 0
        group = SettingGroup(plan=plan, number=last + 1)
    if old_alloc is not None and new_alloc is not old_alloc:
        group.allocation = None
        if group.pk:
            group.save(update_fields=["allocation"])
        _release(actor, old_alloc)
    if new_alloc == "new":
        new_alloc = stone_services.stone_allocate(
            actor=actor, piece_id=piece.pk, lot_id=lot.pk, count=count,
            carats=carats if carats is not None else _lot_carats(lot, count))
    group.setting_type, group.position = setting_type, position
    group.stone_type, group.shape = stone_type, shape
    group.size_mm, group.sieve, group.count, group.carats = size, sieve, count, carats
    group.supplied_by_client, group.note = client_stones, note
    group.lot, group.allocation = lot, new_alloc
    group.save()
    audit.record(actor=actor, action="setting_group.update" if old else "setting_group.add",
                 obj=plan, before=old, after=_group_snapshot(group), order_id=piece.order_id,
                 piece_id=piece.pk)
    return group


@transaction.atomic
def setting_plan_check(*, actor, piece_id: Any, stones_match: Any, preparation_checked: Any,
                       note: str = "") -> SettingPlan:
    """The check before the piece goes to the setter: a person confirms that the stones match
    the order and that the piece is prepared (seats cut, prongs raised). Every group must have
    its stones allocated (or be the client's own); a plan that departs from the order line's
    stone budget is checked only with a note saying why."""
    piece = _piece(actor, piece_id)
    if not may_check_plan(actor):
        raise PermissionDenied(_("Only a production manager, an administrator or the quality "
                                 "inspector checks a setting plan."))
    plan = _plan(piece)
    if plan.status == PlanStatus.CHECKED:
        raise TransitionNotAllowed(_("The setting plan of %(serial)s is already checked.")
                                   % {"serial": piece.serial}, code="already_checked")
    _check_not_delivered(piece)
    groups = list(plan.groups.select_related("lot", "allocation"))
    if not groups:
        raise ValidationFailed(_("The plan has no stones yet: add a group first."),
                               details={"field": "groups"})
    comparison = selectors.compare(plan, groups)
    if comparison.uncovered:
        names = "; ".join(_("group %(n)s (%(label)s)") % {"n": g.number,
                                                          "label": selectors.group_label(g)}
                          for g in comparison.uncovered)
        raise ValidationFailed(
            _("No stones are allocated for %(groups)s: choose the lot on the setting plan "
              "(a production manager reserves them).") % {"groups": names},
            code="allocations_missing",
            details={"field": "groups", "groups": [g.number for g in comparison.uncovered]})
    note = clean_text(note, "note", 2000)
    if not _bool(stones_match, "stones_match"):
        raise ValidationFailed(_("Confirm that the stones match the order."),
                               details={"field": "stones_match"})
    if not _bool(preparation_checked, "preparation_checked"):
        raise ValidationFailed(_("Confirm that the preparation (seats, prongs) is checked."),
                               details={"field": "preparation_checked"})
    if not comparison.matches_budget and not note:
        raise ValidationFailed(
            _("The plan has %(count)s stones (%(ct)s ct) where the order line budgets "
              "%(budget_count)s (%(budget_ct)s ct): say in the note why they still match the "
              "order.")
            % {"count": comparison.planned_count, "ct": comparison.planned_ct or "?",
               "budget_count": comparison.budget_count if comparison.budget_count is not None
               else "—",
               "budget_ct": comparison.budget_ct if comparison.budget_ct is not None else "—"},
            details={"field": "note"})
    before = audit.snapshot(plan, PLAN_AUDIT_FIELDS)
    now = timezone.now()
    plan.status = PlanStatus.CHECKED
    plan.stones_match = plan.preparation_checked = True
    plan.check_note = note
    plan.checked_by, plan.checked_at, plan.updated_at = actor, now, now
    plan.save()
    audit.record(actor=actor, action="setting_plan.check", obj=plan, before=before,
                 after=audit.snapshot(plan, PLAN_AUDIT_FIELDS) | {
                     "comparison": comparison.as_dict()},
                 order_id=piece.order_id, piece_id=piece.pk)
    return plan


@transaction.atomic
def setting_plan_reopen(*, actor, piece_id: Any, reason: str) -> SettingPlan:
    """Reopen a checked plan to change it; it must be checked again before the setter."""
    piece = _piece(actor, piece_id)
    if not may_reopen_plan(actor):
        raise PermissionDenied(_("Only a production manager or an administrator reopens a "
                                 "checked setting plan."))
    plan = _plan(piece)
    if plan.status != PlanStatus.CHECKED:
        raise TransitionNotAllowed(_("The setting plan of %(serial)s is not checked: it can "
                                     "be changed as it is.") % {"serial": piece.serial})
    _check_not_delivered(piece)
    reason = clean_text(reason, "reason", 2000)
    if not reason:
        raise ValidationFailed(_("Say why the checked plan must change."),
                               details={"field": "reason"})
    before = audit.snapshot(plan, PLAN_AUDIT_FIELDS)
    plan.status = PlanStatus.DRAFT
    plan.revision += 1
    plan.stones_match = plan.preparation_checked = False
    plan.checked_by = plan.checked_at = None
    plan.check_note = ""
    plan.updated_at = timezone.now()
    plan.save()
    audit.record(actor=actor, action="setting_plan.reopen", obj=plan, before=before,
                 after=audit.snapshot(plan, PLAN_AUDIT_FIELDS) | {"reason": reason},
                 order_id=piece.order_id, piece_id=piece.pk)
    return plan


# ---------------------------------------------------------------------------------------------
# the control on return from the setter


def _counts_by_group(counts: Any, groups: dict[int, SettingGroup]) -> dict[int, int]:
    if isinstance(counts, dict):
        counts = [{"group_id": k, "counted": v} for k, v in counts.items()]
    if not isinstance(counts, list):
        raise ValidationFailed(_("Give the count of every group."), details={"field": "counts"})
    out: dict[int, int] = {}
    for i, item in enumerate(counts):
        if not isinstance(item, dict):
            raise ValidationFailed(_("Each count is an object."),
                                   details={"field": f"counts[{i}]"})
        gid = _int_id(item.get("group_id"))
        if gid not in groups:
            raise ValidationFailed(_("Group %(id)s is not on this piece's plan.")
                                   % {"id": item.get("group_id")},
                                   details={"field": f"counts[{i}].group_id"})
        if gid in out:
            raise ValidationFailed(_("Group %(n)s is counted twice.") % {"n": groups[gid].number},
                                   details={"field": f"counts[{i}].group_id"})
        value = item.get("counted")
        if isinstance(value, bool) or value in (None, ""):
            raise ValidationFailed(_("Say how many stones of group %(n)s are in the piece.")
                                   % {"n": groups[gid].number},
                                   details={"field": f"counts[{i}].counted"})
        try:
            counted = int(str(value).strip())
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(_("'%(value)s' is not a number of stones.") % {"value": value},
                                   details={"field": f"counts[{i}].counted"}) from exc
        if counted < 0 or counted > 100000:
            raise ValidationFailed(_("A number of stones is between 0 and 100000."),
                                   details={"field": f"counts[{i}].counted"})
        out[gid] = counted
    missing = [g for gid, g in groups.items() if gid not in out]
    if missing:
        raise ValidationFailed(
            _("Count the stones of every group: %(groups)s not counted.")
            % {"groups": ", ".join(str(g.number) for g in sorted(missing,
                                                                 key=lambda g: g.number))},
            details={"field": "counts"})
    return out


def _clean_breakages(breakages: Any, groups: dict[int, SettingGroup]) -> list[dict]:
    if breakages in (None, ""):
        return []
    if not isinstance(breakages, list) or len(breakages) > 50:
        raise ValidationFailed(_("Breakages are a list (at most 50)."),
                               details={"field": "breakages"})
    out = []
    for i, item in enumerate(breakages):
        if not isinstance(item, dict):
            raise ValidationFailed(_("Each breakage is an object."),
                                   details={"field": f"breakages[{i}]"})
        gid = _int_id(item.get("group_id"))
        group = groups.get(gid)
        if group is None:
            raise ValidationFailed(_("Group %(id)s is not on this piece's plan.")
                                   % {"id": item.get("group_id")},
                                   details={"field": f"breakages[{i}].group_id"})
        if group.lot is None:
            raise ValidationFailed(
                _("Group %(n)s's stones come from no lot of the house (the client's own): "
                  "describe the damage in the notes.") % {"n": group.number},
                details={"field": f"breakages[{i}].group_id"})
        count = clean_count(item.get("count"), f"breakages[{i}].count")
        carats = clean_carats(item["carats"], f"breakages[{i}].carats") \
            if item.get("carats") not in (None, "") else _lot_carats(group.lot, count)
        reason = clean_text(item.get("reason"), f"breakages[{i}].reason", 240)
        if not reason:
            raise ValidationFailed(_("Say how the stones were broken or lost."),
                                   details={"field": f"breakages[{i}].reason"})
        out.append({"group": group, "count": count, "carats": carats, "reason": reason,
                    "lost": _bool(item.get("lost", False), f"breakages[{i}].lost")})
    return out


def _existing_control(actor, client_ref: str | None, piece: Piece) -> SettingControl | None:
    if client_ref is None:
        return None
    existing = SettingControl.objects.filter(client_ref=client_ref).first()
    if existing is None:
        return None
    if existing.piece_id != piece.pk:
        raise Conflict(_("This client_ref was already used for another control."),
                       details={"field": "client_ref"})
    existing.replayed = True
    return existing


def _clean_ref(value: Any) -> str | None:
    if value in (None, ""):
        return None
    value = str(value).strip()
    if not value or len(value) > 64:
        raise ValidationFailed(_("client_ref must be 1 to 64 characters."),
                               details={"field": "client_ref"})
    return value


@transaction.atomic
def setting_control_record(*, actor, piece_id: Any, stones_secure: Any, counts: Any,
                           breakages: Any = None, notes: str = "", photos: list | None = None,
                           client_ref: Any = None) -> SettingControl:
    """The control when a piece is back from the setter, before work starts at its next step.

    `counts`: [{"group_id", "counted"}] for every group of the plan; `breakages`:
    [{"group_id", "count", "lost", "reason", "carats"?}] stones broken or lost at the setter's,
    booked in the stone ledger from the setter's holding; `photos`: uploaded images. The
    control passes when the stones are secure and every group has its planned count; a failed
    control puts the piece on hold (quality stop) until it is sent back to setting.
    """
    client_ref = _clean_ref(client_ref)
    piece = _piece(actor, piece_id)
    if (dup := _existing_control(actor, client_ref, piece)) is not None:
        return dup
    refusal = control_refusal(actor, piece)
    if refusal:
        raise PermissionDenied(refusal)
    setting_run = selectors.setting_run_awaiting_control(piece)
    if setting_run is None:
        raise TransitionNotAllowed(_control_not_due(piece), code="control_not_due")
    plan = SettingPlan.objects.select_for_update().filter(piece=piece).first()
    if plan is None:
        raise TransitionNotAllowed(
            _("Piece %(serial)s has no setting plan to control it against.")
            % {"serial": piece.serial}, code="no_plan")
    groups = {g.pk: g for g in plan.groups.select_related("lot", "allocation")}
    counted = _counts_by_group(counts, groups)
    breaks = _clean_breakages(breakages, groups)
    secure = stones_secure
    if not isinstance(secure, bool):
        if secure in (None, ""):
            raise ValidationFailed(_("Say whether the stones are secure."),
                                   details={"field": "stones_secure"})
        secure = _bool(secure, "stones_secure")
    notes = clean_text(notes, "notes", 4000)
    photos = list(photos or [])
    if len(photos) > MAX_PHOTOS:
        raise ValidationFailed(_("At most %(max)s photos per control.") % {"max": MAX_PHOTOS},
                               details={"field": "photos"})
    if breaks and not may_book_stones(actor, setting_run.workshop_id):
        raise PermissionDenied(
            _("Broken or lost stones are booked in the stone ledger by the production manager "
              "or by the setter: record the counts here and tell the production manager."),
            details={"field": "breakages"})

    passed = secure and all(counted[gid] == g.count for gid, g in groups.items())
    now = timezone.now()
    control = SettingControl.objects.create(
        plan=plan, piece=piece, setting_run=setting_run, plan_revision=plan.revision,
        workshop_id=piece.location_id, stones_secure=secure, passed=passed, notes=notes,
        recorded_by=actor, recorded_at=now, client_ref=client_ref)
    broken: dict[int, int] = {}
    lost: dict[int, int] = {}
    entries = []
    for b in breaks:
        entries.append(stone_services.stone_breakage_record(
            actor=actor, workshop_id=setting_run.workshop_id, lot_id=b["group"].lot_id,
            count=b["count"], carats=b["carats"], reason=b["reason"], piece_id=piece.pk,
            lost=b["lost"]))
        tally = lost if b["lost"] else broken
        tally[b["group"].pk] = tally.get(b["group"].pk, 0) + b["count"]
    if entries:
        control.stone_entries.set(entries)
    SettingControlCount.objects.bulk_create([
        SettingControlCount(control=control, group=g, group_number=g.number,
                            description=selectors.group_label(g)[:200], planned=g.count,
                            counted=counted[gid], broken=broken.get(gid, 0),
                            lost=lost.get(gid, 0))
        for gid, g in sorted(groups.items(), key=lambda item: item[1].number)])
    if photos:
        from etabli.documents.models import DocumentKind, Visibility
        from etabli.documents.services import document_upload

        docs = [document_upload(actor=actor, order_id=piece.order_id, uploaded_file=f,
                                kind=DocumentKind.PHOTO, visibility=Visibility.WORKSHOPS,
                                piece_id=piece.pk) for f in photos]
        control.photos.set(docs)
    audit.record(actor=actor, action="setting_control.record", obj=control,
                 after={"passed": passed, "stones_secure": secure,
                        "counts": {str(groups[gid].number): n for gid, n in counted.items()},
                        "breakages": [{"group": b["group"].number, "count": b["count"],
                                       "lost": b["lost"]} for b in breaks],
                        "photos": len(photos), "setting_run": setting_run.pk},
                 order_id=piece.order_id, piece_id=piece.pk)
    if not passed:
        from etabli.production.services import piece_hold

        control.hold_event = piece_hold(actor=actor, piece_id=piece.pk, reason="quality_stop",
                                        comment=failure_summary(control, groups, counted))
        control.save(update_fields=["hold_event"])
    control.replayed = False
    return control


def failure_summary(control: SettingControl, groups: dict[int, SettingGroup],
                    counted: dict[int, int]) -> str:
    parts = [_("Setting control failed.")]
    if not control.stones_secure:
        parts.append(_("Stones not secure."))
    for gid, g in sorted(groups.items(), key=lambda item: item[1].number):
        if counted[gid] != g.count:
            parts.append(_("Group %(n)s: %(counted)s of %(planned)s stones.")
                         % {"n": g.number, "counted": counted[gid], "planned": g.count})
    parts.append(_("Send it back to setting (rework)."))
    return " ".join(parts)


def _control_not_due(piece: Piece) -> str:
    run = piece.current_run
    if run is None:
        return _("Piece %(serial)s has no open step: there is nothing to control.") \
            % {"serial": piece.serial}
    prev = selectors.previous_run(piece, run)
    if selectors.is_controlled_setting_run(prev) \
            and SettingControl.objects.filter(setting_run=prev).exists():
        return _("The control of %(serial)s on its return from setting is already recorded.") \
            % {"serial": piece.serial}
    if selectors.is_controlled_setting_run(prev) and piece.location_id != run.workshop_id:
        return _("Piece %(serial)s is not at %(workshop)s yet: receive it there, then record "
                 "the control.") % {"serial": piece.serial, "workshop": run.workshop.name}
    if selectors.is_controlled_setting_run(prev):
        return _("Work on %(serial)s has started: the control was due before.") \
            % {"serial": piece.serial}
    return _("Piece %(serial)s is not back from setting: the control is recorded when it "
             "arrives from the setter.") % {"serial": piece.serial}


@transaction.atomic
def setting_control_add_photos(*, actor, control_id: Any, photos: list) -> SettingControl:
    """Add photos to a control already recorded (by its author or the house)."""
    control = (SettingControl.objects.visible_to(actor).select_for_update(of=("self",))
               .filter(pk=_int_id(control_id)).first())
    if control is None:
        raise NotFound(_("No setting control with id %(id)s.") % {"id": control_id})
    piece = _piece(actor, control.piece_id)
    if control.recorded_by_id != actor.pk and not (actor.runs_production
                                                   or actor.role == Role.QUALITY):
        raise PermissionDenied(_("Only whoever recorded the control, or the house, adds "
                                 "photos to it."))
    photos = list(photos or [])
    if not photos:
        raise ValidationFailed(_("Choose a photo."), details={"field": "photos"})
    if control.photos.count() + len(photos) > MAX_PHOTOS:
        raise ValidationFailed(_("At most %(max)s photos per control.") % {"max": MAX_PHOTOS},
                               details={"field": "photos"})
    from etabli.documents.models import DocumentKind, Visibility
    from etabli.documents.services import document_upload

    docs = [document_upload(actor=actor, order_id=piece.order_id, uploaded_file=f,
                            kind=DocumentKind.PHOTO, visibility=Visibility.WORKSHOPS,
                            piece_id=piece.pk) for f in photos]
    control.photos.add(*docs)
    audit.record(actor=actor, action="setting_control.photos", obj=control,
                 after={"added": len(docs)}, order_id=piece.order_id, piece_id=piece.pk)
    return control
