"""Finishing over the API: a piece's finishing records (one endpoint per operation), waivers,
whether the piece must carry the guarantee mark, the assay office's step, and the hallmark
exemptions.

Handlers are thin: they parse the body, call one service or read through `visible_to()`.
"""

import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from pydantic import field_validator

from etabli.accounts.models import Role
from etabli.core.api import Pagination
from etabli.core.errors import NotFound, PermissionDenied
from etabli.core.schemas import WorkshopRef
from etabli.production.models import Piece

from . import selectors, services
from .models import (
    CleaningMethod,
    EngravingPosition,
    Finish,
    FinishingRecord,
    RecordOperation,
)

router = Router(tags=["Finishing"])


# ---------------------------------------------------------------------------------------------
# schemas


class RecordOut(Schema):
    id: int
    piece_id: int
    step_run_id: int
    step_position: int
    attempt: int
    operation: str
    operation_label: str
    status: str
    status_label: str
    workshop: WorkshopRef
    recorded_by: str
    recorded_at: dt.datetime
    finish: str | None
    thickness_um: Decimal | None
    text: str | None
    position: str | None
    maker_mark: str | None
    fineness_mark: str | None
    hallmark_country: str | None
    weight_judged_g: Decimal | None
    exemption_id: int | None
    method: str | None
    reason: str
    comment: str
    client_ref: str | None

    @staticmethod
    def resolve_step_position(obj) -> int:
        return obj.step_run.position

    @staticmethod
    def resolve_attempt(obj) -> int:
        return obj.step_run.attempt

    @staticmethod
    def resolve_operation_label(obj) -> str:
        return str(obj.get_operation_display())

    @staticmethod
    def resolve_status_label(obj) -> str:
        return str(obj.get_status_display())

    @staticmethod
    def resolve_recorded_by(obj) -> str:
        return obj.actor.username

    @staticmethod
    def resolve_finish(obj):
        return obj.finish or None

    @staticmethod
    def resolve_thickness_um(obj):
        return obj.plating_thickness_um

    @staticmethod
    def resolve_text(obj):
        return obj.engraving_text or None

    @staticmethod
    def resolve_position(obj):
        return obj.engraving_position or None

    @staticmethod
    def resolve_maker_mark(obj):
        return obj.maker_mark or None

    @staticmethod
    def resolve_fineness_mark(obj):
        return obj.fineness_mark or None

    @staticmethod
    def resolve_hallmark_country(obj):
        return obj.hallmark_country or None

    @staticmethod
    def resolve_weight_judged_g(obj):
        return obj.hallmark_weight_g

    @staticmethod
    def resolve_method(obj):
        return obj.cleaning_method or None


class RecordIn(Schema):
    comment: str = Field("", max_length=4000)
    client_ref: str | None = Field(
        None, max_length=64,
        description="Your id for this submission; sending it again returns the first record "
                    "instead of recording twice.")


class PolishingIn(RecordIn):
    finish: Finish


def _not_bool(v):
    if isinstance(v, bool):
        raise ValueError("a thickness is a number of micrometres")
    return v


class PlatingIn(RecordIn):
    thickness_um: Decimal = Field(description="Rhodium thickness in µm (0.05 to 1.00)")

    _t = field_validator("thickness_um", mode="before")(_not_bool)


class EngravingIn(RecordIn):
    text: str = Field(max_length=services.ENGRAVING_MAX_CHARS,
                      description="The text as engraved")
    position: EngravingPosition


class SerialEngravingIn(RecordIn):
    text: str = Field("", max_length=services.SERIAL_MAX_CHARS,
                      description="As engraved; the piece's serial when left empty")
    position: EngravingPosition | None = None


class HallmarkingIn(RecordIn):
    status: str = Field("done", description="done (marks struck), exempt, or refused")
    maker_mark: str = Field("", max_length=services.MAKER_MARK_MAX_CHARS)
    fineness_mark: str = Field("", max_length=10,
                               description="Optional check: must be the alloy's fineness")
    reason: str = Field("", max_length=2000, description="Why the assay office refused")


class CleaningIn(RecordIn):
    method: CleaningMethod


class WaiverIn(Schema):
    operation: RecordOperation
    reason: str = Field(max_length=2000)
    client_ref: str | None = Field(None, max_length=64)


class ExemptionRef(Schema):
    id: int
    country: str
    metal: str
    under_weight_g: Decimal
    legal_reference: str


class HallmarkOut(Schema):
    status: str
    required: bool
    country: str
    metal: str | None
    fineness: int | None
    weight_g: Decimal | None
    weight_source: str
    rule: ExemptionRef | None
    explanation: str
    route_has_hallmarking: bool


class AssayStepIn(Schema):
    workshop_id: int | None = Field(None, description="The assay office; optional when the "
                                                      "house has only one")
    planned_days: int = Field(2, ge=1, le=120)


class AssayStepOut(Schema):
    id: int
    position: int
    step: str
    operations: list[str]
    workshop: WorkshopRef
    status: str
    planned_start: dt.date | None
    planned_due: dt.date | None


class ExemptionOut(ExemptionRef):
    metal_label: str
    in_force: bool
    updated_at: dt.datetime

    @staticmethod
    def resolve_metal_label(obj) -> str:
        return str(obj.get_metal_display())

    @staticmethod
    def resolve_in_force(obj) -> bool:
        return obj.country == selectors.hallmark_country()


class ExemptionIn(Schema):
    country: str = Field(max_length=8)
    metal: str = Field(max_length=20)
    under_weight_g: Decimal
    legal_reference: str = Field("", max_length=200)

    _w = field_validator("under_weight_g", mode="before")(_not_bool)


class ExemptionPatch(Schema):
    under_weight_g: Decimal | None = None
    legal_reference: str | None = Field(None, max_length=200)

    _w = field_validator("under_weight_g", mode="before")(_not_bool)


# ---------------------------------------------------------------------------------------------
# helpers


def _piece_or_404(user, piece_id: int) -> Piece:
    """A piece the caller sees, on the house side or at their workshop (clients: none)."""
    piece = None
    if user.role != Role.CLIENT:
        piece = (Piece.objects.visible_to(user).select_related("line__alloy")
                 .filter(pk=piece_id).first())
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    return piece


def _record_out(record: FinishingRecord):
    record = (FinishingRecord.objects.select_related("step_run", "workshop", "actor")
              .get(pk=record.pk))
    return 201, record


RECORD_RESPONSES = {200: RecordOut, 201: RecordOut}


def _create(request, piece_id: int, operation: str, payload: RecordIn, data: dict):
    record = services.finishing_record_create(
        actor=request.auth, piece_id=piece_id, operation=operation, data=data,
        comment=payload.comment, client_ref=payload.client_ref)
    status, out = _record_out(record)
    return (200 if getattr(record, "replayed", False) else status), out


# ---------------------------------------------------------------------------------------------
# records


@router.get("/finishing/pieces/{piece_id}/records", response=list[RecordOut],
            summary="A piece's finishing records")
@paginate(Pagination)
def list_records(request, piece_id: int):
    """The operations recorded on the piece in its finishing steps, oldest first. A workshop
    sees only what was recorded at its own benches."""
    piece = _piece_or_404(request.auth, piece_id)
    return selectors.records_for(request.auth, piece)


@router.post("/finishing/pieces/{piece_id}/polishing", response=RECORD_RESPONSES,
             summary="Record the polishing (bright, satin or brushed)")
def record_polishing(request, piece_id: int, payload: PolishingIn):
    return _create(request, piece_id, RecordOperation.POLISHING, payload,
                   {"finish": payload.finish})


@router.post("/finishing/pieces/{piece_id}/plating", response=RECORD_RESPONSES,
             summary="Record the rhodium plating (white metal only)")
def record_plating(request, piece_id: int, payload: PlatingIn):
    return _create(request, piece_id, RecordOperation.PLATING, payload,
                   {"thickness_um": payload.thickness_um})


@router.post("/finishing/pieces/{piece_id}/engraving", response=RECORD_RESPONSES,
             summary="Record the engraving (custom text)")
def record_engraving(request, piece_id: int, payload: EngravingIn):
    return _create(request, piece_id, RecordOperation.ENGRAVING, payload,
                   {"text": payload.text, "position": payload.position})


@router.post("/finishing/pieces/{piece_id}/serial-engraving", response=RECORD_RESPONSES,
             summary="Record the serial number engraved")
def record_serial_engraving(request, piece_id: int, payload: SerialEngravingIn):
    return _create(request, piece_id, RecordOperation.SERIAL_ENGRAVING, payload,
                   {"text": payload.text, "position": payload.position or ""})


@router.post("/finishing/pieces/{piece_id}/hallmarking", response=RECORD_RESPONSES,
             summary="Record the hallmark: marks struck, exempt, or refused (puts it on hold)")
def record_hallmarking(request, piece_id: int, payload: HallmarkingIn):
    return _create(request, piece_id, RecordOperation.HALLMARKING, payload,
                   {"status": payload.status, "maker_mark": payload.maker_mark,
                    "fineness_mark": payload.fineness_mark, "reason": payload.reason})


@router.post("/finishing/pieces/{piece_id}/cleaning", response=RECORD_RESPONSES,
             summary="Record the final cleaning")
def record_cleaning(request, piece_id: int, payload: CleaningIn):
    return _create(request, piece_id, RecordOperation.CLEANING, payload,
                   {"method": payload.method})


@router.post("/finishing/pieces/{piece_id}/waivers", response=RECORD_RESPONSES,
             summary="Waive an operation of the open finishing step (production manager)")
def waive_operation(request, piece_id: int, payload: WaiverIn):
    record = services.finishing_operation_waive(
        actor=request.auth, piece_id=piece_id, operation=payload.operation,
        reason=payload.reason, client_ref=payload.client_ref)
    status, out = _record_out(record)
    return (200 if getattr(record, "replayed", False) else status), out


# ---------------------------------------------------------------------------------------------
# hallmark and the assay office


@router.get("/finishing/pieces/{piece_id}/hallmark", response=HallmarkOut,
            summary="Must the piece carry the guarantee mark?")
def hallmark(request, piece_id: int):
    """Judged in the country in force (ETABLI_HALLMARK_COUNTRY) on the latest weight weighed,
    else the theoretical weight; an unknown weight never exempts."""
    piece = _piece_or_404(request.auth, piece_id)
    req = selectors.hallmark_requirement(piece)
    return {"status": req.status, "required": req.required, "country": req.country,
            "metal": req.metal, "fineness": req.fineness, "weight_g": req.weight_g,
            "weight_source": req.weight_source, "rule": req.rule,
            "explanation": req.explanation,
            "route_has_hallmarking": selectors.route_has_hallmarking(piece)}


@router.post("/finishing/pieces/{piece_id}/assay-step", response={201: AssayStepOut},
             summary="Add the assay office's hallmarking step to the piece's route")
def add_assay_step(request, piece_id: int, payload: AssayStepIn):
    run = services.assay_step_add(actor=request.auth, piece_id=piece_id,
                                  workshop_id=payload.workshop_id,
                                  planned_days=payload.planned_days)
    return 201, run


# ---------------------------------------------------------------------------------------------
# exemptions


def _check_reads_exemptions(user) -> None:
    if not user.sees_clients:  # house staff
        raise PermissionDenied(_("Hallmark exemptions are for the house's staff."))


@router.get("/finishing/hallmark-exemptions", response=list[ExemptionOut],
            summary="Hallmark weight exemptions per country")
@paginate(Pagination)
def list_exemptions(request, country: str | None = None):
    _check_reads_exemptions(request.auth)
    rows = selectors.exemptions_for(request.auth)
    if country:
        code = country.strip().upper()
        rows = rows.filter(country=selectors.COUNTRY_ALIASES.get(code, code))
    return rows


@router.post("/finishing/hallmark-exemptions", response={201: ExemptionOut},
             summary="Add a country's exemption for a metal (administrator, manager)")
def create_exemption(request, payload: ExemptionIn):
    row = services.hallmark_exemption_create(
        actor=request.auth, country=payload.country, metal=payload.metal,
        under_weight_g=payload.under_weight_g, legal_reference=payload.legal_reference)
    return 201, row


@router.patch("/finishing/hallmark-exemptions/{exemption_id}", response=ExemptionOut,
              summary="Change an exemption's threshold or reference (administrator, manager)")
def update_exemption(request, exemption_id: int, payload: ExemptionPatch):
    return services.hallmark_exemption_update(
        actor=request.auth, exemption_id=exemption_id, under_weight_g=payload.under_weight_g,
        legal_reference=payload.legal_reference)


@router.delete("/finishing/hallmark-exemptions/{exemption_id}", response={204: None},
               summary="Remove an exemption (administrator, manager)")
def delete_exemption(request, exemption_id: int):
    services.hallmark_exemption_delete(actor=request.auth, exemption_id=exemption_id)
    return 204, None

