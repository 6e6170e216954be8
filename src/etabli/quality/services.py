"""Every change quality control makes: templates, inspections, sign-off, nonconformities.

Each service is keyword-only, runs in one transaction and raises a DomainError on a guard.
Quality inspectors, production managers and administrators write; other house staff read;
workshops and clients do not see quality records at all (404).

Theoretical weight (the ±2 % check): the piece's own theoretical weight when it has one (kept by
designers and production managers, see materials.cad_services) and then it cannot be changed
from an inspection; otherwise the design's CAD estimate in the line's alloy, which the inspector
may correct; otherwise the inspector enters it. Until there is one, the weight criterion is
incomplete and a passing inspection cannot be signed.

Inspections are made on the piece's open finishing run: the one whose route lists the
`inspection` operation (the gate requires a signed pass there) or an earlier one, for an
in-process check at the polisher's.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q
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
from etabli.core.sequences import yearly_reference
from etabli.production.models import (
    OPEN_STEP_STATUSES,
    HoldReason,
    Piece,
    StepRun,
    StepStatus,
)
from etabli.workshops.models import StepKind

from .models import (
    CRITERION_ORDER,
    OPEN_NONCONFORMITY_STATUSES,
    TOLERANCES,
    CriterionKind,
    FinenessMethod,
    FunctionResult,
    Inspection,
    InspectionCriterion,
    InspectionDimension,
    InspectionPhoto,
    InspectionStatus,
    InspectionTemplate,
    Nonconformity,
    NonconformityStatus,
    PhotoMoment,
    RootCause,
    Verdict,
    WeightSource,
)
from .verdicts import assess

WRITER_ROLES = frozenset({Role.QUALITY, Role.PRODUCTION_MANAGER, Role.ADMIN})
MAX_DIMENSIONS = 20
MAX_PHOTOS = 12
MAX_WEIGHT_G = Decimal("5000")
MAX_DIMENSION_MM = Decimal("1000")
INSPECTION_OPERATION = "inspection"
MEASUREMENT_FIELDS = ["theoretical_weight_g", "theoretical_weight_source", "measured_weight_g",
                      "fineness_method", "fineness_reading_permille", "surface_defects",
                      "stones_mechanical_test", "loose_stones", "function_result", "notes",
                      "verdict"]


# ---------------------------------------------------------------------------------------------
# who


def reads_quality(user) -> bool:
    """House staff read quality records; workshops and clients never see them."""
    return bool(user is not None and getattr(user, "is_authenticated", False)
                and user.is_active and user.sees_clients)


def can_inspect(user) -> bool:
    return reads_quality(user) and user.role in WRITER_ROLES


def _check_writer(actor, missing: str) -> None:
    if not reads_quality(actor):
        raise NotFound(missing)
    if not can_inspect(actor):
        raise PermissionDenied(_("Only quality inspectors, production managers and "
                                 "administrators record inspections and nonconformities."))


# ---------------------------------------------------------------------------------------------
# input


def _decimal(value: Any, *, field: str, places: int, low: Decimal, high: Decimal,
             what: str, low_inclusive: bool = True) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationFailed(_("%(what)s must be a number.") % {"what": what},
                               details={"field": field})
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(_("'%(value)s' is not a number (%(what)s).")
                               % {"value": value, "what": what},
                               details={"field": field}) from None
    if not number.is_finite():
        raise ValidationFailed(_("%(what)s must be a number.") % {"what": what},
                               details={"field": field})
    too_low = number < low if low_inclusive else number <= low
    if too_low or number > high:
        raise ValidationFailed(
            _("%(what)s must be between %(low)s and %(high)s.")
            % {"what": what, "low": low, "high": high}, details={"field": field})
    step = Decimal(1).scaleb(-places)
    if number != number.quantize(step):
        raise ValidationFailed(
            _("%(what)s is recorded to %(places)s decimals.") % {"what": what, "places": places},
            details={"field": field})
    return number.quantize(step)


def _count(value: Any, *, field: str, what: str, high: int = 1000) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationFailed(_("%(what)s must be a whole number.") % {"what": what},
                               details={"field": field})
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(_("%(what)s must be a whole number.") % {"what": what},
                               details={"field": field}) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise ValidationFailed(_("%(what)s must be a whole number.") % {"what": what},
                               details={"field": field})
    if not 0 <= number <= high:
        raise ValidationFailed(_("%(what)s must be between 0 and %(high)s.")
                               % {"what": what, "high": high}, details={"field": field})
    return int(number)


def _text(value: str | None, field: str, limit: int = 4000) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationFailed(_("%(field)s is too long (at most %(limit)s characters).")
                               % {"field": field, "limit": limit}, details={"field": field})
    return value


def _choice(value: str | None, choices, field: str) -> str:
    value = (value or "").strip()
    if value and value not in choices.values:
        raise ValidationFailed(
            _("Unknown value '%(value)s'. Choose one of: %(choices)s.")
            % {"value": value, "choices": ", ".join(choices.values)}, details={"field": field})
    return value


def _clean_ref(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = str(value).strip()
    if not value or len(value) > 64:
        raise ValidationFailed(_("client_ref must be 1 to 64 characters."),
                               details={"field": "client_ref"})
    return value


# ---------------------------------------------------------------------------------------------
# what a piece brings to its inspection


def piece_has_stones(piece: Piece) -> bool:
    """Stones asked for on the line, allocated to the piece, or a setting step on its route."""
    line = piece.line
    if (line.stones or "").strip() or (line.budget_stone_count or 0) > 0:
        return True
    if piece.stone_allocations.exists():
        return True
    return piece.runs.filter(step=StepKind.SETTING).exclude(status=StepStatus.SKIPPED).exists()


def cad_weight_estimate(piece: Piece) -> Decimal | None:
    """The newest closed CAD mesh for this piece (or its line, or its one-line order), weighed
    in the line's alloy."""
    from etabli.materials.cad import line_of
    from etabli.materials.models import MeshAnalysis
    from etabli.materials.units import volume_weight_g

    alloy = piece.line.alloy
    if alloy is None:
        return None
    analyses = (MeshAnalysis.objects.filter(volume_mm3__isnull=False,
                                            document__order_id=piece.order_id)
                .filter(Q(document__piece=piece) | Q(document__piece__isnull=True))
                .select_related("document__line", "document__order")
                .order_by("-document__uploaded_at", "-id")[:20])
    ranked = sorted(analyses, key=lambda a: a.document.piece_id is None)  # the piece's own first
    for analysis in ranked:
        line = line_of(analysis.document)
        if line is not None and line.pk == piece.line_id:
            return volume_weight_g(analysis.volume_mm3, alloy.density_g_cm3)
    return None


def _template_criteria(template: InspectionTemplate) -> list[dict]:
    rows = sorted(template.criteria.filter(enabled=True),
                  key=lambda c: CRITERION_ORDER.index(c.kind))
    return [{"kind": c.kind,
             "tolerance": None if c.kind not in TOLERANCES or c.tolerance is None
             else str(c.tolerance.quantize(Decimal(1).scaleb(-TOLERANCES[c.kind]["places"])))}
            for c in rows]


def _open_run(piece: Piece) -> StepRun | None:
    return piece.runs.filter(status__in=OPEN_STEP_STATUSES).select_related("workshop").first()


def inspection_possible(piece: Piece, run: StepRun | None) -> str | None:
    """Why a new inspection cannot be opened on `piece` now (None when it can)."""
    if run is None:
        return _("%(serial)s has no open step: it has been delivered.") % {"serial": piece.serial}
    if run.step != StepKind.FINISHING:
        return _("%(serial)s is at %(step)s, not in finishing: it is inspected in finishing.") \
            % {"serial": piece.serial, "step": StepKind(run.step).label}
    if run.status == StepStatus.ON_HOLD:
        return _("%(serial)s is on hold: release it, or send it to rework from its "
                 "nonconformity, before inspecting it again.") % {"serial": piece.serial}
    if run.status == StepStatus.IN_TRANSIT or piece.location_id != run.workshop_id:
        return _("%(serial)s has not arrived at %(workshop)s yet: receive it first.") % {
            "serial": piece.serial, "workshop": run.workshop.name}
    return None


# ---------------------------------------------------------------------------------------------
# locking


def _lock_piece(piece_id: int) -> Piece:
    return (Piece.objects.select_for_update(of=("self",))
            .select_related("line__alloy", "order").get(pk=piece_id))


def _lock_inspection(actor, inspection_id: int) -> tuple[Piece, Inspection]:
    """The piece, then the inspection, both locked (always in that order)."""
    missing = _("No inspection with id %(id)s.") % {"id": inspection_id}
    piece_id = (Inspection.objects.visible_to(actor).filter(pk=inspection_id)
                .values_list("piece_id", flat=True).first())
    if piece_id is None:
        raise NotFound(missing)
    _check_writer(actor, missing)
    piece = _lock_piece(piece_id)
    ins = (Inspection.objects.select_for_update(of=("self",)).select_related("run__workshop")
           .get(pk=inspection_id))
    return piece, ins


def _require_draft(ins: Inspection) -> None:
    if ins.is_signed:
        raise TransitionNotAllowed(
            _("Inspection %(ref)s was signed by %(who)s on %(at)s: it cannot change. Open a "
              "new inspection if the piece must be checked again.")
            % {"ref": ins.reference, "who": ins.signed_by.get_full_name()
               or ins.signed_by.username,
               "at": timezone.localtime(ins.signed_at).strftime("%Y-%m-%d %H:%M")},
            details={"status": ins.status})


def _require_current(piece: Piece, ins: Inspection) -> None:
    run = ins.run
    if run.status not in OPEN_STEP_STATUSES or piece.current_run_id != run.pk:
        raise TransitionNotAllowed(
            _("%(serial)s has left the step this inspection was opened on; open a new "
              "inspection at its current finishing step.") % {"serial": piece.serial},
            details={"step_status": run.status})


def _audit(actor, action: str, obj, *, piece: Piece, before=None, after=None) -> None:
    audit.record(actor=actor, action=action, obj=obj, before=before, after=after,
                 order_id=piece.order_id, piece_id=piece.pk)


# ---------------------------------------------------------------------------------------------
# templates


def _clean_tolerance(kind: str, value: Any) -> Decimal | None:
    spec = TOLERANCES.get(kind)
    label = CriterionKind(kind).label
    if spec is None:
        if value not in (None, ""):
            raise ValidationFailed(
                _("%(criterion)s has no tolerance: it is passed or failed as such.")
                % {"criterion": label}, details={"field": f"criteria.{kind}.tolerance"})
        return None
    tolerance = _decimal(value, field=f"criteria.{kind}.tolerance", places=spec["places"],
                         low=Decimal(spec["min"]), high=Decimal(spec["max"]),
                         what=_("The tolerance of %(criterion)s") % {"criterion": label})
    if tolerance is None:
        raise ValidationFailed(_("Give the tolerance of %(criterion)s.") % {"criterion": label},
                               details={"field": f"criteria.{kind}.tolerance"})
    return tolerance


def _apply_criteria(template: InspectionTemplate, criteria: list[dict]) -> None:
    seen = set()
    existing = {c.kind: c for c in template.criteria.all()}
    for item in criteria:
        kind = item.get("kind")
        if kind not in CriterionKind.values:
            raise ValidationFailed(_("Unknown criterion '%(kind)s'.") % {"kind": kind},
                                   details={"field": "criteria"})
        if kind in seen:
            raise ValidationFailed(_("A criterion is listed twice."),
                                   details={"field": "criteria"})
        seen.add(kind)
        row = existing.get(kind) or InspectionCriterion(
            template=template, kind=kind, position=CRITERION_ORDER.index(kind) + 1)
        if "enabled" in item:
            if not isinstance(item["enabled"], bool):
                raise ValidationFailed(_("'enabled' is true or false."),
                                       details={"field": f"criteria.{kind}.enabled"})
            row.enabled = item["enabled"]
        if "tolerance" in item or kind in TOLERANCES and row.tolerance is None:
            row.tolerance = _clean_tolerance(kind, item.get("tolerance"))
        row.save()
    if not template.criteria.filter(enabled=True).exists():
        raise ValidationFailed(_("A template checks at least one criterion."),
                               details={"field": "criteria"})


def _template_snapshot(template: InspectionTemplate) -> dict:
    return {"name": template.name, "description": template.description,
            "is_active": template.is_active, "is_default": template.is_default,
            "criteria": {c.kind: {"enabled": c.enabled, "tolerance": c.tolerance}
                         for c in template.criteria.all()}}


@transaction.atomic
def template_update(*, actor, template_id: int, name: str | None = None,
                    description: str | None = None, is_active: bool | None = None,
                    is_default: bool | None = None,
                    criteria: list[dict] | None = None) -> InspectionTemplate:
    """Change a template's name, description, criteria checked and tolerances. Inspections
    already opened keep the criteria and tolerances they copied."""
    missing = _("No inspection template with id %(id)s.") % {"id": template_id}
    template = (InspectionTemplate.objects.visible_to(actor).select_for_update()
                .filter(pk=template_id).first())
    if template is None:
        raise NotFound(missing)
    _check_writer(actor, missing)
    before = _template_snapshot(template)
    if name is not None:
        name = _text(name, "name", 120)
        if not name:
            raise ValidationFailed(_("Give the template a name."), details={"field": "name"})
        template.name = name
    if description is not None:
        template.description = _text(description, "description")
    if is_default is not None:
        if is_default and not template.is_default:
            InspectionTemplate.objects.filter(is_default=True).update(is_default=False)
            template.is_default = True
        elif not is_default and template.is_default:
            raise ValidationFailed(_("Make another template the default instead."),
                                   details={"field": "is_default"})
    if is_active is not None:
        template.is_active = is_active
    if template.is_default and not template.is_active:
        raise ValidationFailed(_("The default template stays active."),
                               details={"field": "is_active"})
    template.updated_by = actor
    template.updated_at = timezone.now()
    template.save()
    if criteria is not None:
        _apply_criteria(template, criteria)
    audit.record(actor=actor, action="quality.template.update", obj=template, before=before,
                 after=_template_snapshot(template))
    return template


@transaction.atomic
def template_create(*, actor, code: str, name: str, description: str = "",
                    copy_from_id: int | None = None) -> InspectionTemplate:
    """A new template, with the criteria and tolerances of another (the default unless said)."""
    from django.utils.text import slugify

    _check_writer(actor, _("Not found."))
    code = _text(code, "code", 40)
    if not code or slugify(code) != code:
        raise ValidationFailed(_("The code is lower-case letters, digits and dashes."),
                               details={"field": "code"})
    name = _text(name, "name", 120)
    if not name:
        raise ValidationFailed(_("Give the template a name."), details={"field": "name"})
    if InspectionTemplate.objects.filter(code=code).exists():
        raise Conflict(_("A template with the code '%(code)s' already exists.") % {"code": code},
                       details={"field": "code"})
    source = (InspectionTemplate.objects.filter(pk=copy_from_id).first()
              if copy_from_id is not None
              else InspectionTemplate.objects.filter(is_default=True).first())
    if source is None:
        raise NotFound(_("No inspection template with id %(id)s.") % {"id": copy_from_id},
                       details={"field": "copy_from_id"})
    template = InspectionTemplate.objects.create(
        code=code, name=name, description=_text(description, "description"),
        updated_by=actor, updated_at=timezone.now())
    for c in source.criteria.all():
        InspectionCriterion.objects.create(template=template, kind=c.kind, position=c.position,
                                           enabled=c.enabled, tolerance=c.tolerance)
    audit.record(actor=actor, action="quality.template.create", obj=template,
                 after=_template_snapshot(template) | {"copied_from": source.code})
    return template


# ---------------------------------------------------------------------------------------------
# inspections


@transaction.atomic
def inspection_create(*, actor, piece_id: int, template_id: int | None = None) -> Inspection:
    """Open an inspection of a piece at its current finishing step."""
    missing = _("No piece with id %(id)s.") % {"id": piece_id}
    _check_writer(actor, missing)
    if not Piece.objects.visible_to(actor).filter(pk=piece_id).exists():
        raise NotFound(missing)
    piece = _lock_piece(piece_id)
    run = _open_run(piece)
    refusal = inspection_possible(piece, run)
    if refusal:
        raise TransitionNotAllowed(refusal, details={"step": run.step if run else None})
    draft = Inspection.objects.filter(run=run, status=InspectionStatus.DRAFT).first()
    if draft is not None:
        raise Conflict(_("Inspection %(ref)s of this step is already open: complete it.")
                       % {"ref": draft.reference},
                       details={"inspection_id": draft.pk, "reference": draft.reference})
    passed = Inspection.objects.filter(run=run, status=InspectionStatus.SIGNED,
                                       verdict=Verdict.PASS).first()
    if passed is not None:
        raise Conflict(_("%(serial)s already passed inspection %(ref)s at this step.")
                       % {"serial": piece.serial, "ref": passed.reference},
                       details={"inspection_id": passed.pk, "reference": passed.reference})
    templates = InspectionTemplate.objects.filter(is_active=True)
    template = (templates.filter(pk=template_id).first() if template_id is not None
                else templates.filter(is_default=True).first())
    if template is None:
        raise NotFound(_("No active inspection template with id %(id)s.") % {"id": template_id},
                       details={"field": "template_id"})
    if piece.theoretical_weight_g is not None:
        weight, source = piece.theoretical_weight_g, WeightSource.PIECE
    else:
        weight = cad_weight_estimate(piece)
        source = WeightSource.CAD if weight is not None else ""
    alloy = piece.line.alloy
    at = timezone.now()
    ins = Inspection(
        reference=yearly_reference("QC", 5), piece=piece, run=run, template=template,
        criteria=_template_criteria(template), theoretical_weight_g=weight,
        theoretical_weight_source=source, alloy_name=str(alloy.name) if alloy else "",
        hallmark_fineness_permille=alloy.fineness_permille if alloy else None,
        stones_applicable=piece_has_stones(piece), created_by=actor, created_at=at,
        updated_at=at)
    ins.verdict = assess(ins, []).verdict
    ins.save()
    _audit(actor, "quality.inspection.create", ins, piece=piece,
           after={"reference": ins.reference, "run": run.pk, "template": template.code,
                  "criteria": ins.criteria, "theoretical_weight_g": weight,
                  "theoretical_weight_source": source})
    return ins


def _clean_dimensions(dimensions: list[dict] | None) -> list[dict]:
    rows = []
    names = set()
    for i, d in enumerate(dimensions or []):
        if not isinstance(d, dict):
            raise ValidationFailed(_("Each dimension has a name, a target and a measure."),
                                   details={"field": f"dimensions.{i}"})
        name = _text(d.get("name"), f"dimensions.{i}.name", 60)
        target = _decimal(d.get("target_mm"), field=f"dimensions.{i}.target_mm", places=3,
                          low=Decimal(0), high=MAX_DIMENSION_MM, low_inclusive=False,
                          what=_("A dimension's target (mm)"))
        measured = _decimal(d.get("measured_mm"), field=f"dimensions.{i}.measured_mm",
                            places=3, low=Decimal(0), high=MAX_DIMENSION_MM,
                            what=_("A measured dimension (mm)"))
        if not name and target is None and measured is None:
            continue  # an empty row of the form
        if not name:
            raise ValidationFailed(_("Name the dimension (e.g. band width)."),
                                   details={"field": f"dimensions.{i}.name"})
        if target is None:
            raise ValidationFailed(_("Give the target of %(name)s in mm.") % {"name": name},
                                   details={"field": f"dimensions.{i}.target_mm"})
        if name.casefold() in names:
            raise ValidationFailed(_("The dimension %(name)s is listed twice.") % {"name": name},
                                   details={"field": f"dimensions.{i}.name"})
        names.add(name.casefold())
        rows.append({"name": name, "target_mm": target, "measured_mm": measured})
    if len(rows) > MAX_DIMENSIONS:
        raise ValidationFailed(_("At most %(n)s dimensions per inspection.")
                               % {"n": MAX_DIMENSIONS}, details={"field": "dimensions"})
    return rows


def _dimension_snapshot(ins: Inspection) -> list:
    return [[d.name, d.target_mm, d.measured_mm] for d in ins.dimensions.order_by("position")]


def clean_measurements(ins: Inspection, piece: Piece, *, measured_weight_g: Any = None,
                       theoretical_weight_g: Any = None, fineness_method: str = "",
                       fineness_reading_permille: Any = None, surface_defects: Any = None,
                       stones_mechanical_test: bool | None = None, loose_stones: Any = None,
                       function_result: str = "", dimensions: list[dict] | None = None,
                       notes: str = "") -> tuple[dict, list[dict]]:
    """The measurements as they will be stored (fields, dimension rows), or ValidationFailed
    naming the field. Changes nothing: the page's live verdict uses it too."""
    measured = _decimal(measured_weight_g, field="measured_weight_g", places=3,
                        low=Decimal(0), high=MAX_WEIGHT_G, low_inclusive=False,
                        what=_("The measured weight (g)"))
    theoretical = _decimal(theoretical_weight_g, field="theoretical_weight_g", places=3,
                           low=Decimal(0), high=MAX_WEIGHT_G, low_inclusive=False,
                           what=_("The theoretical weight (g)"))
    method = _choice(fineness_method, FinenessMethod, "fineness_method")
    reading = _decimal(fineness_reading_permille, field="fineness_reading_permille", places=1,
                       low=Decimal(0), high=Decimal(1000), what=_("The fineness reading (‰)"))
    if reading is not None and not method:
        raise ValidationFailed(_("Say how the fineness was tested (touchstone or XRF)."),
                               details={"field": "fineness_method"})
    defects = _count(surface_defects, field="surface_defects", what=_("Visible defects"))
    if stones_mechanical_test is not None and not isinstance(stones_mechanical_test, bool):
        raise ValidationFailed(_("The mechanical test is passed (true) or failed (false)."),
                               details={"field": "stones_mechanical_test"})
    loose = _count(loose_stones, field="loose_stones", what=_("Loose stones"))
    function = _choice(function_result, FunctionResult, "function_result")
    if not ins.stones_applicable and (stones_mechanical_test is not None or loose):
        raise ValidationFailed(_("This piece has no stones: there is no stone security to "
                                 "record."), details={"field": "stones_mechanical_test"})
    rows = _clean_dimensions(dimensions)
    fields = {"measured_weight_g": measured, "fineness_method": method,
              "fineness_reading_permille": reading, "surface_defects": defects,
              "stones_mechanical_test": stones_mechanical_test if ins.stones_applicable
              else None,
              "loose_stones": loose if ins.stones_applicable else None,
              "function_result": function, "notes": _text(notes, "notes")}
    if piece.theoretical_weight_g is not None:
        # The piece's own theoretical weight is the target; an inspection cannot move it.
        if theoretical is not None and theoretical != piece.theoretical_weight_g:
            raise ValidationFailed(
                _("%(serial)s has a theoretical weight of %(weight)s g, kept on the piece by "
                  "its designer or the production manager: it cannot be changed from an "
                  "inspection.") % {"serial": piece.serial, "weight": piece.theoretical_weight_g},
                details={"field": "theoretical_weight_g"})
        fields |= {"theoretical_weight_g": piece.theoretical_weight_g,
                   "theoretical_weight_source": WeightSource.PIECE}
    elif theoretical is not None and theoretical != ins.theoretical_weight_g:
        fields |= {"theoretical_weight_g": theoretical,
                   "theoretical_weight_source": WeightSource.ENTERED}
    elif theoretical is None and ins.theoretical_weight_source == WeightSource.ENTERED:
        fields |= {"theoretical_weight_g": None, "theoretical_weight_source": ""}
    return fields, rows


@transaction.atomic
def inspection_measure(*, actor, inspection_id: int, **measurements: Any) -> Inspection:
    """Record what was measured (all of it: a value left out is cleared); the verdict of each
    criterion and of the inspection follows. Keywords: those of `clean_measurements`."""
    piece, ins = _lock_inspection(actor, inspection_id)
    _require_draft(ins)
    _require_current(piece, ins)
    fields, rows = clean_measurements(ins, piece, **measurements)
    before = audit.snapshot(ins, MEASUREMENT_FIELDS) | {"dimensions": _dimension_snapshot(ins)}
    for name, value in fields.items():
        setattr(ins, name, value)
    ins.dimensions.all().delete()
    dims = InspectionDimension.objects.bulk_create([
        InspectionDimension(inspection=ins, position=i, **row)
        for i, row in enumerate(rows, start=1)])
    ins.verdict = assess(ins, dims).verdict
    ins.updated_at = timezone.now()
    ins.save()
    _audit(actor, "quality.inspection.measure", ins, piece=piece, before=before,
           after=audit.snapshot(ins, MEASUREMENT_FIELDS)
           | {"dimensions": [[d.name, d.target_mm, d.measured_mm] for d in dims]})
    return ins


def _is_image(uploaded_file) -> bool:
    from etabli.documents.services import sniff

    head = uploaded_file.read(2048)
    uploaded_file.seek(0)
    try:
        ctype, _ext = sniff(head, uploaded_file.name or "")
    except ValidationFailed:
        return False
    return ctype.startswith("image/")


@transaction.atomic
def inspection_photo_add(*, actor, inspection_id: int, uploaded_file, moment: str,
                         client_ref: str | None = None) -> InspectionPhoto:
    """A photo of the piece before or after finishing, kept as a house document of the piece.
    The same `client_ref` twice gives the first photo back (`.replayed`)."""
    from etabli.documents.models import DocumentKind, Visibility
    from etabli.documents.services import document_upload

    client_ref = _clean_ref(client_ref)
    piece, ins = _lock_inspection(actor, inspection_id)
    if client_ref is not None:
        existing = InspectionPhoto.objects.filter(client_ref=client_ref).first()
        if existing is not None:
            if existing.inspection_id != ins.pk:
                raise Conflict(_("This client_ref was already used for another photo."),
                               details={"field": "client_ref"})
            existing.replayed = True
            return existing
    _require_draft(ins)
    _require_current(piece, ins)
    if moment not in PhotoMoment.values:
        raise ValidationFailed(_("Say whether the photo is from before or after finishing."),
                               details={"field": "moment"})
    if uploaded_file is None:
        raise ValidationFailed(_("Choose a photo."), details={"field": "file"})
    if ins.photos.count() >= MAX_PHOTOS:
        raise ValidationFailed(_("At most %(n)s photos per inspection.") % {"n": MAX_PHOTOS},
                               details={"field": "file"})
    if not _is_image(uploaded_file):
        raise ValidationFailed(_("An inspection photo is a JPEG, PNG or WebP image."),
                               details={"field": "file"})
    doc = document_upload(actor=actor, order_id=piece.order_id, uploaded_file=uploaded_file,
                          kind=DocumentKind.PHOTO, visibility=Visibility.HOUSE,
                          piece_id=piece.pk)
    photo = InspectionPhoto.objects.create(inspection=ins, document=doc, moment=moment,
                                           client_ref=client_ref, added_by=actor,
                                           added_at=timezone.now())
    _audit(actor, "quality.inspection.photo", ins, piece=piece,
           after={"document": doc.pk, "moment": moment, "sha256": doc.sha256})
    photo.replayed = False
    return photo


@transaction.atomic
def inspection_photo_remove(*, actor, inspection_id: int, photo_id: int) -> None:
    """Take a photo off an inspection not yet signed (the document stays with the piece)."""
    piece, ins = _lock_inspection(actor, inspection_id)
    _require_draft(ins)
    photo = ins.photos.filter(pk=photo_id).first()
    if photo is None:
        raise NotFound(_("No photo with id %(id)s on this inspection.") % {"id": photo_id})
    _audit(actor, "quality.inspection.photo_remove", ins, piece=piece,
           before={"document": photo.document_id, "moment": photo.moment})
    photo.delete()


@transaction.atomic
def inspection_discard(*, actor, inspection_id: int) -> None:
    """Drop an inspection that was never signed (opened by mistake, or on a step left since)."""
    piece, ins = _lock_inspection(actor, inspection_id)
    _require_draft(ins)
    _audit(actor, "quality.inspection.discard", ins, piece=piece,
           before={"reference": ins.reference, "run": ins.run_id}
           | audit.snapshot(ins, MEASUREMENT_FIELDS))
    ins.delete()


def earlier_finishing_photos(ins: Inspection, limit: int = 4) -> list:
    """Photos taken on the piece's tracking events earlier in this pass through finishing
    (since its last rework): the "before" pictures when the inspector took none."""
    from etabli.documents.models import Document

    runs = list(ins.piece.runs.filter(position__lte=ins.run.position).order_by("position")
                .values("id", "step", "position", "reworked"))
    since = max((r["position"] for r in runs if r["reworked"] and r["id"] != ins.run_id),
                default=0)
    finishing = [r["id"] for r in runs if r["step"] == StepKind.FINISHING
                 and r["position"] > since]
    docs = (Document.objects.filter(piece_id=ins.piece_id, event__step_run_id__in=finishing,
                                    content_type__in=["image/jpeg", "image/png", "image/webp"],
                                    uploaded_at__lte=ins.signed_at or timezone.now())
            .order_by("uploaded_at", "id"))
    return list(docs[:limit])


def sheet_photos(ins: Inspection) -> list[dict]:
    """The photos on the sheet: the inspection's own, and for "before" the earlier finishing
    photos when the inspector took none."""
    own = list(ins.photos.select_related("document").order_by("moment", "id"))
    rows = [{"moment": p.moment, "document": p.document, "source": "inspection"} for p in own]
    if not any(p.moment == PhotoMoment.BEFORE for p in own):
        rows = [{"moment": PhotoMoment.BEFORE, "document": d, "source": "event"}
                for d in earlier_finishing_photos(ins)] + rows
    return rows


def canonical_json(content: dict) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def content_sha256(content: dict) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


def _signed_content(ins: Inspection, piece: Piece, dims, assessment, actor, at) -> dict:
    def plain(v):
        return None if v is None else str(v)

    return {
        "inspection": ins.reference,
        "piece": piece.serial,
        "order": piece.order.reference,
        "step_run": {"id": ins.run_id, "position": ins.run.position,
                     "attempt": ins.run.attempt, "workshop": ins.run.workshop.code,
                     "operations": list(ins.run.operations)},
        "template": {"code": ins.template.code, "name": ins.template.name},
        "criteria": ins.criteria,
        "theoretical_weight_g": plain(ins.theoretical_weight_g),
        "theoretical_weight_source": ins.theoretical_weight_source,
        "measured_weight_g": plain(ins.measured_weight_g),
        "alloy": ins.alloy_name,
        "hallmark_fineness_permille": ins.hallmark_fineness_permille,
        "fineness_method": ins.fineness_method,
        "fineness_reading_permille": plain(ins.fineness_reading_permille),
        "surface_defects": ins.surface_defects,
        "stones_applicable": ins.stones_applicable,
        "stones_mechanical_test": ins.stones_mechanical_test,
        "loose_stones": ins.loose_stones,
        "function_result": ins.function_result,
        "dimensions": [{"name": d.name, "target_mm": plain(d.target_mm),
                        "measured_mm": plain(d.measured_mm)} for d in dims],
        "notes": ins.notes,
        "results": {c.kind: c.verdict for c in assessment.criteria},
        "verdict": assessment.verdict,
        "photos": [{"moment": p["moment"], "document": p["document"].pk,
                    "name": p["document"].original_name, "sha256": p["document"].sha256,
                    "source": p["source"]} for p in sheet_photos(ins)],
        "signed_by": {"id": actor.pk, "username": actor.username,
                      "name": actor.get_full_name() or actor.username},
        "signed_at": at.isoformat(),
    }


@transaction.atomic
def inspection_sign(*, actor, inspection_id: int) -> Inspection:
    """The inspector signs: the content is frozen with its SHA-256. A pass closes the piece's
    open nonconformities; a fail stops the piece (quality stop) and opens a nonconformity."""
    piece, ins = _lock_inspection(actor, inspection_id)
    _require_draft(ins)
    _require_current(piece, ins)
    dims = list(ins.dimensions.order_by("position"))
    assessment = assess(ins, dims)
    if assessment.verdict == Verdict.PENDING:
        names = ", ".join(str(c.label) for c in assessment.pending)
        raise ValidationFailed(
            _("Not everything has been checked yet: %(criteria)s. Complete the measurements "
              "before signing.") % {"criteria": names},
            details={"field": "measurements",
                     "pending": [c.kind for c in assessment.pending]})
    at = timezone.now()
    content = _signed_content(ins, piece, dims, assessment, actor, at)
    ins.status = InspectionStatus.SIGNED
    ins.verdict = assessment.verdict
    ins.signed_by = actor
    ins.signed_at = at
    ins.signed_content = content
    ins.signed_sha256 = content_sha256(content)
    ins.updated_at = at
    ins.save()
    _audit(actor, "quality.inspection.sign", ins, piece=piece,
           before={"status": InspectionStatus.DRAFT},
           after={"status": ins.status, "verdict": ins.verdict, "sha256": ins.signed_sha256})
    if assessment.verdict == Verdict.PASS:
        _close_nonconformities(actor, piece, ins, at)
    else:
        _open_nonconformity(actor, piece, ins, assessment, at)
    return ins


def _close_nonconformities(actor, piece: Piece, ins: Inspection, at) -> None:
    for nc in (Nonconformity.objects.select_for_update()
               .filter(piece=piece, status__in=OPEN_NONCONFORMITY_STATUSES)):
        before = {"status": nc.status}
        nc.status = NonconformityStatus.CLOSED
        nc.closed_by_inspection = ins
        nc.closed_at = at
        nc.save(update_fields=["status", "closed_by_inspection", "closed_at"])
        _audit(actor, "quality.nonconformity.close", nc, piece=piece, before=before,
               after={"status": nc.status, "inspection": ins.reference})


def _open_nonconformity(actor, piece: Piece, ins: Inspection, assessment, at) -> Nonconformity:
    from etabli.production.services import piece_hold

    failed = assessment.failed
    held = False
    run = StepRun.objects.get(pk=ins.run_id)
    if run.status != StepStatus.ON_HOLD:  # already stopped for another reason: stays stopped
        # Stored in English, like every tracking event comment the services write.
        piece_hold(actor=actor, piece_id=piece.pk, reason=HoldReason.QUALITY_STOP,
                   comment=f"Inspection {ins.reference} failed: "
                           + ", ".join(c.kind for c in failed))
        held = True
    nc = Nonconformity.objects.create(
        reference=yearly_reference("NC", 5), piece=piece, inspection=ins,
        failed_criteria=[{"kind": c.kind, "expected": c.expected, "measured": c.measured,
                          "detail": c.detail} for c in failed],
        held=held, created_by=actor, created_at=at)
    _audit(actor, "quality.nonconformity.open", nc, piece=piece,
           after={"reference": nc.reference, "inspection": ins.reference,
                  "failed": [c.kind for c in failed], "held": held})
    return nc


# ---------------------------------------------------------------------------------------------
# nonconformities


def _lock_nonconformity(actor, nc_id: int) -> tuple[Piece, Nonconformity]:
    missing = _("No nonconformity with id %(id)s.") % {"id": nc_id}
    piece_id = (Nonconformity.objects.visible_to(actor).filter(pk=nc_id)
                .values_list("piece_id", flat=True).first())
    if piece_id is None:
        raise NotFound(missing)
    _check_writer(actor, missing)
    piece = _lock_piece(piece_id)
    nc = (Nonconformity.objects.select_for_update(of=("self",))
          .select_related("inspection__run").get(pk=nc_id))
    return piece, nc


@transaction.atomic
def nonconformity_record_cause(*, actor, nc_id: int, root_cause: str,
                               corrective_action: str) -> Nonconformity:
    """Why the piece failed (one of the root cause categories) and what is done about it."""
    piece, nc = _lock_nonconformity(actor, nc_id)
    if nc.status == NonconformityStatus.CLOSED:
        raise TransitionNotAllowed(_("Nonconformity %(ref)s is closed.") % {"ref": nc.reference},
                                   details={"status": nc.status})
    root_cause = (root_cause or "").strip()
    if root_cause not in RootCause.values:
        raise ValidationFailed(
            _("Choose the root cause: %(choices)s.") % {"choices": ", ".join(RootCause.values)},
            details={"field": "root_cause"})
    action = _text(corrective_action, "corrective_action")
    if not action:
        raise ValidationFailed(_("Say what will be done to correct it."),
                               details={"field": "corrective_action"})
    before = audit.snapshot(nc, ["root_cause", "corrective_action"])
    nc.root_cause, nc.corrective_action = root_cause, action
    nc.cause_recorded_by, nc.cause_recorded_at = actor, timezone.now()
    nc.save(update_fields=["root_cause", "corrective_action", "cause_recorded_by",
                           "cause_recorded_at"])
    _audit(actor, "quality.nonconformity.cause", nc, piece=piece, before=before,
           after=audit.snapshot(nc, ["root_cause", "corrective_action"]))
    return nc


@transaction.atomic
def nonconformity_send_to_rework(*, actor, nc_id: int, target_run_id: int,
                                 comment: str = "") -> Nonconformity:
    """Send the piece back to the step that must redo the work (production's rework: the
    piece no longer counts as right first time). It is inspected again when it comes back."""
    from etabli.production.services import piece_rework

    piece, nc = _lock_nonconformity(actor, nc_id)
    if nc.status != NonconformityStatus.OPEN:
        raise TransitionNotAllowed(
            _("Nonconformity %(ref)s is %(status)s: the piece was already sent back.")
            % {"ref": nc.reference, "status": NonconformityStatus(nc.status).label.lower()},
            details={"status": nc.status})
    if not nc.root_cause or not nc.corrective_action:
        raise TransitionNotAllowed(_("Record the root cause and the corrective action first."),
                                   details={"field": "root_cause"})
    run = nc.inspection.run
    if piece.current_run_id != run.pk or run.status not in OPEN_STEP_STATUSES:
        raise TransitionNotAllowed(
            _("%(serial)s has left the step where it failed: it cannot be sent back from "
              "this nonconformity any more.") % {"serial": piece.serial},
            details={"step_status": run.status})
    comment = _text(comment, "comment", 3000)
    text = f"{nc.reference} ({RootCause(nc.root_cause).label}): {nc.corrective_action}"
    if comment:
        text += f" — {comment}"
    piece_rework(actor=actor, piece_id=piece.pk, target_run_id=target_run_id,
                 comment=text[:4000])
    nc.status = NonconformityStatus.IN_REWORK
    nc.rework_run_id = target_run_id
    nc.sent_to_rework_by, nc.sent_to_rework_at = actor, timezone.now()
    nc.save(update_fields=["status", "rework_run", "sent_to_rework_by", "sent_to_rework_at"])
    _audit(actor, "quality.nonconformity.rework", nc, piece=piece,
           before={"status": NonconformityStatus.OPEN},
           after={"status": nc.status, "rework_run": target_run_id})
    return nc
