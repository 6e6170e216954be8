"""Every write of finishing: records of the operations done on a piece, waivers, the assay
office's step added to a route, and the hallmark exemptions. Each service is one transaction."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
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
from etabli.materials.models import Metal
from etabli.production.models import (
    OPEN_STEP_STATUSES,
    HoldReason,
    Piece,
    StepRun,
    StepStatus,
)
from etabli.workshops.models import StepKind, Workshop

from . import selectors
from .models import (
    CleaningMethod,
    EngravingPosition,
    Finish,
    FinishingRecord,
    HallmarkExemption,
    RecordOperation,
    RecordStatus,
)

ENGRAVING_MAX_CHARS = 40  # what fits inside a ring band in a legible script
SERIAL_MAX_CHARS = 30
MAKER_MARK_MAX_CHARS = 20
# Rhodium flash for white gold is 0.1–0.5 µm; under 0.05 µm it does not cover, over 1 µm the
# deposit cracks.
PLATING_MIN_UM = Decimal("0.05")
PLATING_MAX_UM = Decimal("1.00")
MAX_EXEMPTION_G = Decimal("1000")
RECORD_AUDIT_FIELDS = ["operation", "status", "step_run", "workshop", "finish",
                       "plating_thickness_um", "engraving_text", "engraving_position",
                       "maker_mark", "fineness_mark", "exemption", "hallmark_country",
                       "hallmark_weight_g", "cleaning_method", "reason", "comment"]
EXEMPTION_AUDIT_FIELDS = ["country", "metal", "under_weight_g", "legal_reference"]


# ---------------------------------------------------------------------------------------------
# helpers


def _text(value: Any, field: str, limit: int, *, one_line: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(_("%(field)s must be text.") % {"field": field},
                               details={"field": field})
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(
            _("%(field)s is too long (at most %(limit)s characters).")
            % {"field": field, "limit": limit}, details={"field": field})
    if one_line and any(ch in value for ch in "\r\n\t"):
        raise ValidationFailed(_("%(field)s must be on one line.") % {"field": field},
                               details={"field": field})
    return value


def _choice(value: Any, field: str, choices: type, *, required: bool = True) -> str:
    value = (value or "") if isinstance(value, str) or value is None else value
    if value == "" and not required:
        return ""
    if value not in choices.values:
        raise ValidationFailed(
            _("Choose %(field)s among: %(choices)s.")
            % {"field": field, "choices": ", ".join(choices.values)},
            details={"field": field, "choices": list(choices.values)})
    return value


def _client_ref(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = str(value).strip()
    if not value or len(value) > 64:
        raise ValidationFailed(_("client_ref must be 1 to 64 characters."),
                               details={"field": "client_ref"})
    return value


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationFailed(_("Give %(field)s.") % {"field": field}, details={"field": field})
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a number.") % {"value": value},
                               details={"field": field}) from exc
    if not number.is_finite():
        raise ValidationFailed(_("'%(value)s' is not a number.") % {"value": value},
                               details={"field": field})
    return number


def _lock_piece(actor, piece_id: int) -> Piece:
    """A piece the actor sees, locked. Finishing is the house's and its workshops' business:
    a client's contact is told there is no such piece."""
    piece = None
    if actor.role != Role.CLIENT:
        piece = (Piece.objects.visible_to(actor).select_for_update(of=("self",))
                 .select_related("line__alloy").filter(pk=piece_id).first())
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    return piece


def _open_finishing_run(piece: Piece) -> StepRun:
    run = selectors.open_finishing_run(piece)
    if run is None:
        raise TransitionNotAllowed(
            _("%(serial)s is not in a finishing step: finishing work is recorded while the "
              "piece is in one.") % {"serial": piece.serial},
            details={"step": piece.current_step})
    return run


def check_can_record(user, piece: Piece, run: StepRun) -> None:
    """The workshop member where the piece is, the quality inspector at the house's own
    finishing, or the production manager / administrator."""
    if user.runs_production:
        return
    if user.role == Role.WORKSHOP:
        if piece.location_id in user.workshop_ids() and run.workshop_id == piece.location_id:
            return
        raise PermissionDenied(
            _("This piece is not at your workshop for this step: receive it first."))
    if user.role == Role.QUALITY and run.workshop.is_house \
            and piece.location_id == run.workshop_id:
        return
    raise PermissionDenied(
        _("Your role (%(role)s) cannot record finishing work here.")
        % {"role": Role(user.role).label})


def can_record(user, piece: Piece, run: StepRun | None) -> bool:
    if run is None:
        return False
    try:
        check_can_record(user, piece, run)
    except PermissionDenied:
        return False
    return True


def _operation_label(code: str) -> str:
    return str(RecordOperation(code).label) if code in RecordOperation.values else code


def _check_on_route(run: StepRun, operation: str) -> None:
    needed = selectors.required_records(run)
    if operation not in needed:
        listed = ", ".join(_operation_label(op) for op in needed) or _("nothing to record")
        raise ValidationFailed(
            _("%(operation)s is not an operation of this finishing step (it lists: "
              "%(listed)s).") % {"operation": _operation_label(operation), "listed": listed},
            details={"field": "operation", "expected": needed})


def _replayed(client_ref: str | None, piece: Piece, operation: str) -> FinishingRecord | None:
    if client_ref is None:
        return None
    existing = FinishingRecord.objects.filter(client_ref=client_ref).first()
    if existing is None:
        return None
    if existing.piece_id != piece.pk or existing.operation != operation:
        raise Conflict(_("This client_ref was already used for another record."),
                       details={"field": "client_ref"})
    existing.replayed = True
    return existing


def _check_not_recorded(run: StepRun, operation: str) -> None:
    existing = (FinishingRecord.objects.filter(step_run=run, operation=operation)
                .exclude(status=RecordStatus.REFUSED).select_related("actor").first())
    if existing is not None:
        raise Conflict(
            _("%(operation)s is already recorded for this step (%(status)s, %(when)s).")
            % {"operation": _operation_label(operation),
               "status": RecordStatus(existing.status).label.lower(),
               "when": timezone.localtime(existing.recorded_at).strftime("%Y-%m-%d %H:%M")},
            details={"record_id": existing.pk})


def _save(record: FinishingRecord, actor, piece: Piece, action: str) -> FinishingRecord:
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError as exc:  # the same operation recorded at the same moment
        raise Conflict(_("%(operation)s was just recorded by someone else.")
                       % {"operation": _operation_label(record.operation)}) from exc
    audit.record(actor=actor, action=action, obj=record,
                 after=audit.snapshot(record, RECORD_AUDIT_FIELDS),
                 order_id=piece.order_id, piece_id=piece.pk)
    record.replayed = False
    return record


# ---------------------------------------------------------------------------------------------
# the operations' own rules


def _polishing(record: FinishingRecord, piece: Piece, data: dict) -> None:
    record.finish = _choice(data.get("finish"), "finish", Finish)


def _plating(record: FinishingRecord, piece: Piece, data: dict) -> None:
    alloy = piece.line.alloy
    if alloy is None or (alloy.colour or "").strip().lower() != "white":
        raise ValidationFailed(
            _("Rhodium plating is only for white metal; this piece is %(alloy)s. Leave it "
              "unplated, or ask the production manager to waive plating for this step.")
            % {"alloy": _(alloy.name) if alloy else _("of no stated alloy")},
            details={"field": "thickness_um", "alloy": alloy.code if alloy else None})
    thickness = _decimal(data.get("thickness_um"), "thickness_um")
    if not PLATING_MIN_UM <= thickness <= PLATING_MAX_UM:
        raise ValidationFailed(
            _("Rhodium is plated %(min)s to %(max)s µm thick; %(value)s µm is outside that.")
            % {"min": PLATING_MIN_UM, "max": PLATING_MAX_UM, "value": thickness},
            details={"field": "thickness_um"})
    if thickness != thickness.quantize(Decimal("0.01")):
        raise ValidationFailed(_("Give the thickness to the hundredth of a µm (e.g. 0.25)."),
                               details={"field": "thickness_um"})
    record.plating_thickness_um = thickness


def _engraving(record: FinishingRecord, piece: Piece, data: dict) -> None:
    text = _text(data.get("text"), "text", ENGRAVING_MAX_CHARS, one_line=True)
    if not text:
        raise ValidationFailed(_("Give the engraved text, as engraved."),
                               details={"field": "text"})
    record.engraving_text = text
    record.engraving_position = _choice(data.get("position"), "position", EngravingPosition)


def _serial_engraving(record: FinishingRecord, piece: Piece, data: dict) -> None:
    text = _text(data.get("text"), "text", SERIAL_MAX_CHARS, one_line=True) or piece.serial
    record.engraving_text = text
    record.engraving_position = _choice(data.get("position"), "position", EngravingPosition,
                                        required=False)


def _hallmarking(record: FinishingRecord, piece: Piece, data: dict) -> None:
    status = data.get("status") or RecordStatus.DONE
    if status not in (RecordStatus.DONE, RecordStatus.EXEMPT, RecordStatus.REFUSED):
        raise ValidationFailed(
            _("A hallmark is struck (done), exempt or refused."),
            details={"field": "status", "choices": ["done", "exempt", "refused"]})
    requirement = selectors.hallmark_requirement(piece)
    record.status = status
    record.hallmark_country = requirement.country
    record.hallmark_weight_g = requirement.weight_g
    record.exemption = requirement.rule
    maker = _text(data.get("maker_mark"), "maker_mark", MAKER_MARK_MAX_CHARS, one_line=True)
    fineness = _text(data.get("fineness_mark"), "fineness_mark", 10, one_line=True)
    if status == RecordStatus.REFUSED:
        reason = _text(data.get("reason"), "reason", 2000)
        if not reason:
            raise ValidationFailed(_("Say why the assay office refused to hallmark the piece."),
                                   details={"field": "reason"})
        record.reason = reason
        return
    if status == RecordStatus.EXEMPT:
        if requirement.required:
            raise ValidationFailed(
                _("This piece is not exempt. %(why)s") % {"why": requirement.explanation},
                details={"field": "status", "requirement": requirement.status})
        record.maker_mark = maker  # the maker's mark is still struck on exempt pieces
        return
    if not maker:
        raise ValidationFailed(_("Give the maker's mark struck (its initials and symbol)."),
                               details={"field": "maker_mark"})
    if not requirement.fineness_mark:
        raise ValidationFailed(
            _("The order line names no alloy: there is no fineness to strike."),
            details={"field": "fineness_mark"})
    if fineness and fineness != requirement.fineness_mark:
        raise ValidationFailed(
            _("The alloy is %(expected)s‰: the fineness mark must say %(expected)s, not "
              "%(given)s.") % {"expected": requirement.fineness_mark, "given": fineness},
            details={"field": "fineness_mark", "expected": requirement.fineness_mark})
    record.maker_mark = maker
    record.fineness_mark = requirement.fineness_mark


def _cleaning(record: FinishingRecord, piece: Piece, data: dict) -> None:
    record.cleaning_method = _choice(data.get("method"), "method", CleaningMethod)


RULES = {
    RecordOperation.POLISHING: _polishing,
    RecordOperation.PLATING: _plating,
    RecordOperation.ENGRAVING: _engraving,
    RecordOperation.SERIAL_ENGRAVING: _serial_engraving,
    RecordOperation.HALLMARKING: _hallmarking,
    RecordOperation.CLEANING: _cleaning,
}


# ---------------------------------------------------------------------------------------------
# records


@transaction.atomic
def finishing_record_create(*, actor, piece_id: int, operation: str,
                            data: dict[str, Any] | None = None, comment: str = "",
                            client_ref: str | None = None) -> FinishingRecord:
    """Record one finishing operation done on a piece in its open finishing step.

    `data` holds the operation's own fields: polishing `finish`; plating `thickness_um`;
    engraving `text`, `position`; serial_engraving `text` (defaults to the serial), `position`;
    hallmarking `status` (done, exempt, refused), `maker_mark`, `fineness_mark`, `reason`;
    cleaning `method`. A refused hallmark puts the piece on hold (quality stop).
    """
    client_ref = _client_ref(client_ref)
    if operation not in RULES:
        raise ValidationFailed(
            _("Unknown finishing operation '%(operation)s'. Choose one of: %(choices)s.")
            % {"operation": operation, "choices": ", ".join(RecordOperation.values)},
            details={"field": "operation"})
    piece = _lock_piece(actor, piece_id)
    if (dup := _replayed(client_ref, piece, operation)) is not None:
        return dup
    run = _open_finishing_run(piece)
    check_can_record(actor, piece, run)
    _check_on_route(run, operation)
    if run.status != StepStatus.IN_PROGRESS:
        raise TransitionNotAllowed(
            _("Start the step before recording its work (it is %(status)s).")
            % {"status": StepStatus(run.status).label.lower()},
            details={"step_status": run.status})
    _check_not_recorded(run, operation)
    record = FinishingRecord(piece=piece, step_run=run, operation=operation,
                             workshop_id=run.workshop_id, actor=actor,
                             recorded_at=timezone.now(), client_ref=client_ref,
                             comment=_text(comment, "comment", 4000))
    RULES[operation](record, piece, data or {})
    record = _save(record, actor, piece, "finishing.record")
    if record.status == RecordStatus.REFUSED:
        from etabli.production.services import piece_hold

        piece_hold(actor=actor, piece_id=piece.pk, reason=HoldReason.QUALITY_STOP,
                   comment=_("Hallmark refused by the assay office: %(reason)s")
                   % {"reason": record.reason})
    return record


@transaction.atomic
def finishing_operation_waive(*, actor, piece_id: int, operation: str, reason: str,
                              client_ref: str | None = None) -> FinishingRecord:
    """The production manager decides an operation of the open finishing step is not done on
    this piece (plating on yellow gold, an engraving the client no longer wants…)."""
    client_ref = _client_ref(client_ref)
    if operation not in RULES:
        raise ValidationFailed(
            _("Unknown finishing operation '%(operation)s'. Choose one of: %(choices)s.")
            % {"operation": operation, "choices": ", ".join(RecordOperation.values)},
            details={"field": "operation"})
    piece = _lock_piece(actor, piece_id)
    if not actor.runs_production:
        raise PermissionDenied(_("Only a production manager or administrator can waive a "
                                 "finishing operation."))
    if (dup := _replayed(client_ref, piece, operation)) is not None:
        return dup
    run = _open_finishing_run(piece)
    _check_on_route(run, operation)
    reason = _text(reason, "reason", 2000)
    if not reason:
        raise ValidationFailed(_("Say why this operation is not done."),
                               details={"field": "reason"})
    _check_not_recorded(run, operation)
    record = FinishingRecord(piece=piece, step_run=run, operation=operation,
                             status=RecordStatus.WAIVED, workshop_id=run.workshop_id,
                             actor=actor, recorded_at=timezone.now(), reason=reason,
                             client_ref=client_ref)
    return _save(record, actor, piece, "finishing.waive")


# ---------------------------------------------------------------------------------------------
# the assay office


def assay_offices() -> list[Workshop]:
    return list(Workshop.objects.filter(is_active=True, skills__code=selectors.ASSAY_OPERATION)
                .distinct().order_by("name"))


@transaction.atomic
def assay_step_add(*, actor, piece_id: int, workshop_id: int | None = None,
                   planned_days: int = 2) -> StepRun:
    """Add the assay office's hallmarking step to a piece that must carry the guarantee mark
    and whose route has none: a finishing step before the inspection, reached on its own
    transfer slip like any other step."""
    from etabli.production.services import step_run_add

    if not actor.runs_production:
        raise PermissionDenied(_("Only a production manager or administrator can change "
                                 "routes."))
    piece = _lock_piece(actor, piece_id)
    requirement = selectors.hallmark_requirement(piece)
    if not requirement.required:
        raise ValidationFailed(
            _("No assay office trip is needed. %(why)s") % {"why": requirement.explanation},
            details={"field": "piece_id", "requirement": requirement.status})
    if selectors.route_has_hallmarking(piece):
        raise Conflict(_("The route of %(serial)s already has a hallmarking step.")
                       % {"serial": piece.serial})
    offices = assay_offices()
    if workshop_id is None:
        if len(offices) != 1:
            raise ValidationFailed(
                _("Choose the assay office (workshops doing hallmarking: %(names)s).")
                % {"names": ", ".join(w.name for w in offices) or _("none yet — give a "
                                                                   "workshop that skill")},
                details={"field": "workshop_id"})
        workshop_id = offices[0].pk
    elif workshop_id not in {w.pk for w in offices}:
        raise ValidationFailed(_("That workshop is not an assay office (it does not do "
                                 "hallmarking)."), details={"field": "workshop_id"})
    after = _assay_anchor(piece)
    return step_run_add(actor=actor, piece_id=piece.pk, step=StepKind.FINISHING,
                        workshop_id=workshop_id, planned_days=planned_days,
                        after_run_id=after.pk, operations=[selectors.ASSAY_OPERATION])


def _assay_anchor(piece: Piece) -> StepRun:
    """The step after which the assay office comes: the last finishing step before the
    inspection (so the inspector checks the marks), or the open step."""
    runs = list(piece.runs.order_by("position"))
    current = next((r for r in runs if r.status in OPEN_STEP_STATUSES), None)
    if current is None:
        raise TransitionNotAllowed(_("The piece has no open step: it has been delivered."))
    ahead = [r for r in runs if r.position >= current.position
             and r.status != StepStatus.SKIPPED and r.step != StepKind.DELIVERY]
    anchor = current
    for r in ahead:
        if r.step == StepKind.FINISHING and "inspection" in (r.operations or []) \
                and r.pk != current.pk:
            break
        anchor = r
    return anchor


# ---------------------------------------------------------------------------------------------
# hallmark exemptions


def _check_manages(actor) -> None:
    if not actor.runs_production:
        raise PermissionDenied(_("Only a production manager or administrator can change "
                                 "hallmark exemptions."))


def _clean_threshold(value: Any) -> Decimal:
    weight = _decimal(value, "under_weight_g")
    if weight <= 0 or weight > MAX_EXEMPTION_G:
        raise ValidationFailed(_("The threshold is more than 0 g and at most 1000 g."),
                               details={"field": "under_weight_g"})
    if weight != weight.quantize(Decimal("0.001")):
        raise ValidationFailed(_("Weights are given to the milligram (3 decimals)."),
                               details={"field": "under_weight_g"})
    return weight.quantize(Decimal("0.001"))


def _clean_country(value: Any) -> str:
    code = (value or "").strip().upper() if isinstance(value, str) else ""
    code = selectors.COUNTRY_ALIASES.get(code, code)
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValidationFailed(_("Give the country as its two-letter ISO code (FR, GB, …)."),
                               details={"field": "country"})
    return code


@transaction.atomic
def hallmark_exemption_create(*, actor, country: str, metal: str, under_weight_g: Any,
                              legal_reference: str = "") -> HallmarkExemption:
    _check_manages(actor)
    country = _clean_country(country)
    metal = _choice(metal, "metal", Metal)
    weight = _clean_threshold(under_weight_g)
    reference = _text(legal_reference, "legal_reference", 200, one_line=True)
    if HallmarkExemption.objects.filter(country=country, metal=metal).exists():
        raise Conflict(_("%(country)s already has an exemption for %(metal)s: change it "
                         "instead.") % {"country": country, "metal": Metal(metal).label},
                       details={"field": "metal"})
    try:
        with transaction.atomic():
            row = HallmarkExemption.objects.create(country=country, metal=metal,
                                                   under_weight_g=weight,
                                                   legal_reference=reference)
    except IntegrityError as exc:
        raise Conflict(_("%(country)s already has an exemption for %(metal)s.")
                       % {"country": country, "metal": Metal(metal).label}) from exc
    audit.record(actor=actor, action="hallmark_exemption.create", obj=row,
                 after=audit.snapshot(row, EXEMPTION_AUDIT_FIELDS))
    return row


def _lock_exemption(actor, exemption_id: int) -> HallmarkExemption:
    row = (HallmarkExemption.objects.visible_to(actor).select_for_update()
           .filter(pk=exemption_id).first())
    if row is None:
        raise NotFound(_("No hallmark exemption with id %(id)s.") % {"id": exemption_id})
    return row


@transaction.atomic
def hallmark_exemption_update(*, actor, exemption_id: int, under_weight_g: Any = None,
                              legal_reference: str | None = None) -> HallmarkExemption:
    _check_manages(actor)
    row = _lock_exemption(actor, exemption_id)
    before = audit.snapshot(row, EXEMPTION_AUDIT_FIELDS)
    if under_weight_g is not None:
        row.under_weight_g = _clean_threshold(under_weight_g)
    if legal_reference is not None:
        row.legal_reference = _text(legal_reference, "legal_reference", 200, one_line=True)
    row.save()
    audit.record(actor=actor, action="hallmark_exemption.update", obj=row, before=before,
                 after=audit.snapshot(row, EXEMPTION_AUDIT_FIELDS))
    return row


@transaction.atomic
def hallmark_exemption_delete(*, actor, exemption_id: int) -> None:
    _check_manages(actor)
    row = _lock_exemption(actor, exemption_id)
    before = audit.snapshot(row, EXEMPTION_AUDIT_FIELDS)
    audit.record(actor=actor, action="hallmark_exemption.delete", obj=row, before=before)
    row.delete()
