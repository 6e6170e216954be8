"""Quality control: the /api/v1/quality/... endpoints.

Quality inspectors, production managers and administrators write; other house staff read;
workshops and clients get 404 everywhere here (a client never sees a nonconformity).
"""


import datetime as dt
from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate
from pydantic import field_validator

from etabli.core.api import Pagination
from etabli.core.errors import NotFound, ValidationFailed

from . import selectors, services
from .models import (
    TOLERANCES,
    CriterionKind,
    InspectionStatus,
    NonconformityStatus,
    PhotoMoment,
    RootCause,
    Verdict,
    WeightSource,
)
from .verdicts import assess

router = Router(tags=["Quality control"])


def _reader(request) -> None:
    if not services.reads_quality(request.auth):
        raise NotFound(_("Not found."))


def _user_name(user) -> str | None:
    return (user.get_full_name() or user.username) if user is not None else None


def _no_bool(value):
    if isinstance(value, bool):
        raise ValueError("a number is expected, not true or false")
    return value


# ---------------------------------------------------------------------------------------------
# templates


class InspectionCriterionOut(Schema):
    kind: CriterionKind
    label: str
    enabled: bool
    tolerance: Decimal | None
    unit: str | None

    @staticmethod
    def resolve_label(obj) -> str:
        return str(CriterionKind(obj.kind).label)

    @staticmethod
    def resolve_unit(obj) -> str | None:
        spec = TOLERANCES.get(obj.kind)
        return spec["unit"] if spec else None


class InspectionTemplateOut(Schema):
    id: int
    code: str
    name: str
    description: str
    is_default: bool
    is_active: bool
    updated_at: dt.datetime | None
    criteria: list[InspectionCriterionOut]

    @staticmethod
    def resolve_criteria(obj):
        return sorted(obj.criteria.all(), key=lambda c: c.position)


class InspectionCriterionIn(Schema):
    kind: CriterionKind
    enabled: bool | None = None
    tolerance: Decimal | None = Field(
        None, description="± % (weight), ± mm (dimensions) or defects allowed (surface); "
                          "null for the other criteria")

    _n = field_validator("tolerance", mode="before")(_no_bool)


class InspectionTemplateUpdateIn(Schema):
    name: str | None = Field(None, max_length=120)
    description: str | None = Field(None, max_length=4000)
    is_active: bool | None = None
    is_default: bool | None = None
    criteria: list[InspectionCriterionIn] | None = Field(None, max_length=len(CriterionKind.values))


class InspectionTemplateCreateIn(Schema):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=4000)
    copy_from_id: int | None = Field(None, description="Template whose criteria are copied "
                                                       "(the default one otherwise)")


@router.get("/quality/templates", response=list[InspectionTemplateOut],
            summary="Inspection templates")
@paginate(Pagination)
def list_templates(request):
    _reader(request)
    return selectors.templates_for(request.auth)


@router.get("/quality/templates/{template_id}", response=InspectionTemplateOut,
            summary="An inspection template")
def get_template(request, template_id: int):
    _reader(request)
    template = selectors.template_get(request.auth, template_id)
    if template is None:
        raise NotFound(_("No inspection template with id %(id)s.") % {"id": template_id})
    return template


@router.post("/quality/templates", response={201: InspectionTemplateOut},
             summary="A new inspection template (criteria copied from another)")
def create_template(request, payload: InspectionTemplateCreateIn):
    template = services.template_create(actor=request.auth, code=payload.code,
                                        name=payload.name, description=payload.description,
                                        copy_from_id=payload.copy_from_id)
    return 201, selectors.template_get(request.auth, template.pk)


@router.patch("/quality/templates/{template_id}", response=InspectionTemplateOut,
              summary="Edit a template: name, criteria checked, tolerances")
def update_template(request, template_id: int, payload: InspectionTemplateUpdateIn):
    """Only what is sent changes. Inspections already opened keep the criteria and tolerances
    they copied. Quality inspectors, production managers and administrators."""
    data = payload.dict(exclude_unset=True)
    criteria = None
    if payload.criteria is not None:
        criteria = [c.dict(exclude_unset=True) for c in payload.criteria]
    services.template_update(actor=request.auth, template_id=template_id,
                             name=data.get("name"), description=data.get("description"),
                             is_active=data.get("is_active"), is_default=data.get("is_default"),
                             criteria=criteria)
    return selectors.template_get(request.auth, template_id)


# ---------------------------------------------------------------------------------------------
# inspections


class QualityPieceRef(Schema):
    id: int
    serial: str


class QualityRunRef(Schema):
    id: int
    position: int
    step: str
    operations: list[str]
    attempt: int
    workshop: str

    @staticmethod
    def resolve_workshop(obj) -> str:
        return obj.workshop.name


class InspectionTemplateRef(Schema):
    id: int
    code: str
    name: str


class InspectionDimensionOut(Schema):
    name: str
    target_mm: Decimal
    measured_mm: Decimal | None
    deviation_mm: Decimal | None
    verdict: Verdict


class InspectionCriterionResultOut(Schema):
    kind: CriterionKind
    label: str
    verdict: Verdict
    tolerance: Decimal | None
    expected: str
    measured: str
    detail: str
    dimensions: list[InspectionDimensionOut]


class InspectionPhotoOut(Schema):
    id: int
    moment: PhotoMoment
    document_id: int
    name: str
    url: str

    @staticmethod
    def resolve_name(obj) -> str:
        return obj.document.original_name

    @staticmethod
    def resolve_url(obj) -> str:
        return reverse("document", args=[obj.document.token])


def _assessment(obj):
    if not hasattr(obj, "_assessment"):
        obj._assessment = assess(obj, list(obj.dimensions.all()))
    return obj._assessment


class InspectionOut(Schema):
    id: int
    reference: str
    piece: QualityPieceRef
    order_reference: str
    run: QualityRunRef
    template: InspectionTemplateRef
    status: InspectionStatus
    verdict: Verdict = Field(description="Computed from the measurements, never typed")
    criteria: list[InspectionCriterionResultOut]
    theoretical_weight_g: Decimal | None
    theoretical_weight_source: WeightSource | None
    measured_weight_g: Decimal | None
    alloy_name: str
    hallmark_fineness_permille: int | None
    fineness_method: str
    fineness_reading_permille: Decimal | None
    surface_defects: int | None
    stones_applicable: bool
    stones_mechanical_test: bool | None
    loose_stones: int | None
    function_result: str
    notes: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    signed_by: str | None
    signed_at: dt.datetime | None
    signed_sha256: str | None
    nonconformity_id: int | None
    sheet_url: str

    @staticmethod
    def resolve_order_reference(obj) -> str:
        return obj.piece.order.reference

    @staticmethod
    def resolve_criteria(obj):
        return _assessment(obj).criteria

    @staticmethod
    def resolve_theoretical_weight_source(obj):
        return obj.theoretical_weight_source or None

    @staticmethod
    def resolve_created_by(obj) -> str:
        return _user_name(obj.created_by)

    @staticmethod
    def resolve_signed_by(obj):
        return _user_name(obj.signed_by) if obj.signed_by_id else None

    @staticmethod
    def resolve_signed_sha256(obj):
        return obj.signed_sha256 or None

    @staticmethod
    def resolve_nonconformity_id(obj):
        nc = getattr(obj, "nonconformity", None) if obj.is_signed else None
        return nc.pk if nc is not None else None

    @staticmethod
    def resolve_sheet_url(obj) -> str:
        return reverse("quality:sheet", args=[obj.pk])


class InspectionDetailOut(InspectionOut):
    photos: list[InspectionPhotoOut]
    signed_content: dict | None

    @staticmethod
    def resolve_photos(obj):
        return list(obj.photos.all())

    @staticmethod
    def resolve_signed_content(obj):
        return obj.signed_content if obj.is_signed else None


class InspectionCreateIn(Schema):
    piece_id: int
    template_id: int | None = Field(None, description="The default template when left out")


class InspectionDimensionIn(Schema):
    name: str = Field(min_length=1, max_length=60)
    target_mm: Decimal
    measured_mm: Decimal | None = None

    _n = field_validator("target_mm", "measured_mm", mode="before")(_no_bool)


class InspectionMeasurementsIn(Schema):
    """Everything measured; a value left out is cleared (PUT)."""

    measured_weight_g: Decimal | None = Field(None, description="Grams, to the milligram")
    theoretical_weight_g: Decimal | None = Field(
        None, description="Only when the piece has none (from its design or entered)")
    fineness_method: str = Field("", description="touch or xrf")
    fineness_reading_permille: Decimal | None = None
    surface_defects: int | None = Field(None, description="Visible defects under the loupe")
    stones_mechanical_test: bool | None = None
    loose_stones: int | None = None
    function_result: str = Field("", description="ok, not_ok or na")
    dimensions: list[InspectionDimensionIn] = Field(default_factory=list, max_length=20)
    notes: str = Field("", max_length=4000)

    _n = field_validator("measured_weight_g", "theoretical_weight_g",
                         "fineness_reading_permille", "surface_defects", "loose_stones",
                         mode="before")(_no_bool)


class InspectionSignIn(Schema):
    confirm: bool = Field(description="true: I inspected this piece and sign these results")


def _inspection(request, inspection_id: int):
    ins = selectors.inspection_get(request.auth, inspection_id)
    if ins is None:
        raise NotFound(_("No inspection with id %(id)s.") % {"id": inspection_id})
    return ins


@router.get("/quality/inspections", response=list[InspectionOut], summary="Inspections")
@paginate(Pagination)
def list_inspections(request, filters: Query[selectors.InspectionFilters]):
    """Newest first. Filter by `status` (draft, signed), `verdict`, `piece_id`, `order_id`, or
    `q` (inspection reference, serial or order reference)."""
    _reader(request)
    return selectors.inspection_list(request.auth, filters)


@router.post("/quality/inspections", response={201: InspectionDetailOut},
             summary="Open an inspection of a piece at its finishing step")
def create_inspection(request, payload: InspectionCreateIn):
    """409 when the step already has an inspection being measured (its id is in
    `details.inspection_id`) or already passed."""
    ins = services.inspection_create(actor=request.auth, piece_id=payload.piece_id,
                                     template_id=payload.template_id)
    return 201, _inspection(request, ins.pk)


@router.get("/quality/inspections/{inspection_id}", response=InspectionDetailOut,
            summary="An inspection with its computed verdicts")
def get_inspection(request, inspection_id: int):
    _reader(request)
    return _inspection(request, inspection_id)


@router.put("/quality/inspections/{inspection_id}/measurements", response=InspectionDetailOut,
            summary="Record the measurements (the verdicts follow)")
def put_measurements(request, inspection_id: int, payload: InspectionMeasurementsIn):
    services.inspection_measure(
        actor=request.auth, inspection_id=inspection_id,
        measured_weight_g=payload.measured_weight_g,
        theoretical_weight_g=payload.theoretical_weight_g,
        fineness_method=payload.fineness_method,
        fineness_reading_permille=payload.fineness_reading_permille,
        surface_defects=payload.surface_defects,
        stones_mechanical_test=payload.stones_mechanical_test,
        loose_stones=payload.loose_stones, function_result=payload.function_result,
        dimensions=[d.dict() for d in payload.dimensions], notes=payload.notes)
    return _inspection(request, inspection_id)


@router.post("/quality/inspections/{inspection_id}/photos",
             response={200: InspectionPhotoOut, 201: InspectionPhotoOut},
             summary="Add a before or after finishing photo")
def add_photo(request, inspection_id: int, file: File[UploadedFile],
              moment: Form[PhotoMoment], client_ref: Form[str | None] = None):
    """Multipart form: `file` (JPEG, PNG or WebP), `moment` (before or after), optional
    `client_ref` (the same value again returns the first photo, 200)."""
    photo = services.inspection_photo_add(actor=request.auth, inspection_id=inspection_id,
                                          uploaded_file=file, moment=moment,
                                          client_ref=client_ref)
    return (200 if photo.replayed else 201), photo


@router.delete("/quality/inspections/{inspection_id}/photos/{photo_id}", response={204: None},
               summary="Take a photo off an inspection not yet signed")
def remove_photo(request, inspection_id: int, photo_id: int):
    services.inspection_photo_remove(actor=request.auth, inspection_id=inspection_id,
                                     photo_id=photo_id)
    return 204, None


@router.post("/quality/inspections/{inspection_id}/sign", response=InspectionDetailOut,
             summary="Sign the inspection (it cannot change afterwards)")
def sign_inspection(request, inspection_id: int, payload: InspectionSignIn):
    """Records who signed and when, with a SHA-256 of the signed content. A failing
    inspection puts the piece on hold (quality stop) and opens a nonconformity; a passing one
    closes the piece's open nonconformities. 409 when already signed."""
    if payload.confirm is not True:
        raise ValidationFailed(_("Confirm the signature (confirm: true)."),
                               details={"field": "confirm"})
    services.inspection_sign(actor=request.auth, inspection_id=inspection_id)
    return _inspection(request, inspection_id)


@router.delete("/quality/inspections/{inspection_id}", response={204: None},
               summary="Discard an inspection that was never signed")
def discard_inspection(request, inspection_id: int):
    services.inspection_discard(actor=request.auth, inspection_id=inspection_id)
    return 204, None


@router.get("/quality/inspections/{inspection_id}/sheet.pdf",
            summary="The inspection sheet (PDF, in the order's language)")
def inspection_sheet(request, inspection_id: int):
    from .sheet import sheet_response

    _reader(request)
    return sheet_response(request, _inspection(request, inspection_id))


# ---------------------------------------------------------------------------------------------
# nonconformities


class QualityStepRef(Schema):
    id: int
    position: int
    step: str
    step_label: str
    workshop: str
    attempt: int

    @staticmethod
    def resolve_step_label(obj) -> str:
        from etabli.workshops.models import StepKind

        return str(StepKind(obj.step).label)

    @staticmethod
    def resolve_workshop(obj) -> str:
        return obj.workshop.name


class NonconformityFailedCriterionOut(Schema):
    kind: CriterionKind
    label: str
    expected: str
    measured: str
    detail: str


class InspectionRef(Schema):
    id: int
    reference: str


class NonconformityOut(Schema):
    id: int
    reference: str
    piece: QualityPieceRef
    order_reference: str
    inspection: InspectionRef
    status: NonconformityStatus
    failed_criteria: list[NonconformityFailedCriterionOut]
    held: bool
    root_cause: RootCause | None
    corrective_action: str
    cause_recorded_by: str | None
    cause_recorded_at: dt.datetime | None
    rework_run: QualityStepRef | None
    sent_to_rework_by: str | None
    sent_to_rework_at: dt.datetime | None
    closed_by_inspection: InspectionRef | None
    closed_at: dt.datetime | None
    created_by: str
    created_at: dt.datetime

    @staticmethod
    def resolve_order_reference(obj) -> str:
        return obj.piece.order.reference

    @staticmethod
    def resolve_failed_criteria(obj):
        return [{"kind": c["kind"], "label": str(CriterionKind(c["kind"]).label),
                 "expected": c.get("expected", ""), "measured": c.get("measured", ""),
                 "detail": c.get("detail", "")} for c in obj.failed_criteria]

    @staticmethod
    def resolve_root_cause(obj):
        return obj.root_cause or None

    @staticmethod
    def resolve_cause_recorded_by(obj):
        return _user_name(obj.cause_recorded_by) if obj.cause_recorded_by_id else None

    @staticmethod
    def resolve_sent_to_rework_by(obj):
        return _user_name(obj.sent_to_rework_by) if obj.sent_to_rework_by_id else None

    @staticmethod
    def resolve_created_by(obj) -> str:
        return _user_name(obj.created_by)


class NonconformityDetailOut(NonconformityOut):
    rework_targets: list[QualityStepRef] = Field(
        description="Steps the piece may be sent back to (while the nonconformity is open)")

    @staticmethod
    def resolve_rework_targets(obj):
        if obj.status != NonconformityStatus.OPEN:
            return []
        return selectors.rework_targets(obj.piece, obj.inspection.run)


class NonconformityCauseIn(Schema):
    root_cause: RootCause
    corrective_action: str = Field(min_length=1, max_length=4000)


class NonconformityReworkIn(Schema):
    target_run_id: int = Field(description="The step that must redo the work")
    comment: str = Field("", max_length=3000)


def _nonconformity(request, nc_id: int):
    nc = selectors.nonconformity_get(request.auth, nc_id)
    if nc is None:
        raise NotFound(_("No nonconformity with id %(id)s.") % {"id": nc_id})
    return nc


@router.get("/quality/nonconformities", response=list[NonconformityOut],
            summary="Nonconformities")
@paginate(Pagination)
def list_nonconformities(request, filters: Query[selectors.NonconformityFilters]):
    """Newest first. Filter by `status`, `open=true`, `root_cause`, `piece_id`, `order_id`."""
    _reader(request)
    return selectors.nonconformity_list(request.auth, filters)


@router.get("/quality/nonconformities/{nc_id}", response=NonconformityDetailOut,
            summary="A nonconformity and the steps its piece may be sent back to")
def get_nonconformity(request, nc_id: int):
    _reader(request)
    return _nonconformity(request, nc_id)


@router.put("/quality/nonconformities/{nc_id}/cause", response=NonconformityDetailOut,
            summary="Record the root cause and the corrective action")
def record_cause(request, nc_id: int, payload: NonconformityCauseIn):
    services.nonconformity_record_cause(actor=request.auth, nc_id=nc_id,
                                        root_cause=payload.root_cause,
                                        corrective_action=payload.corrective_action)
    return _nonconformity(request, nc_id)


@router.post("/quality/nonconformities/{nc_id}/rework", response=NonconformityDetailOut,
             summary="Send the piece back to the step that must redo the work")
def send_to_rework(request, nc_id: int, payload: NonconformityReworkIn):
    """The piece leaves its hold for the chosen step (production's rework: it no longer counts
    as right first time); it is inspected again when it comes back to finishing."""
    services.nonconformity_send_to_rework(actor=request.auth, nc_id=nc_id,
                                          target_run_id=payload.target_run_id,
                                          comment=payload.comment)
    return _nonconformity(request, nc_id)
