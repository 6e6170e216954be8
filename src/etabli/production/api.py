"""Pieces, their tracking events, routes and transfer slips."""


import datetime as dt
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import field_validator

from etabli.accounts.models import Role
from etabli.core.api import Pagination
from etabli.core.errors import NotFound
from etabli.core.schemas import ClientRef, WorkshopRef, request_user
from etabli.orders.selectors import piece_audit
from etabli.workshops.models import StepKind

from . import routing, selectors, services
from .models import (
    ACTIVE_PIECE_STATUSES,
    EventKind,
    HoldReason,
    PieceStatus,
    SkipReason,
    StepStatus,
)

router = Router(tags=["pieces"])
transfers_router = Router(tags=["transfers"])
templates_router = Router(tags=["route templates"])


# ---------------------------------------------------------------------------------------------
# schemas


def _hides_workshops(user) -> bool:
    return user is None or user.role == Role.CLIENT


def _workshop_ref(ws, user):
    if ws is None or _hides_workshops(user):
        return None
    if user.role == Role.WORKSHOP and ws.pk not in user.workshop_ids() and not ws.is_house:
        return None
    return ws


class StepRunOut(Schema):
    id: int
    position: int
    step: str
    step_label: str
    operations: list[str]
    workshop: WorkshopRef | None
    status: StepStatus
    attempt: int
    reworked: bool
    planned_days: int
    planned_start: dt.date | None
    planned_due: dt.date | None
    actual_start: dt.datetime | None
    actual_finish: dt.datetime | None
    skip_reason: str
    skip_comment: str
    skip_reference: str
    skip_document_id: int | None

    @staticmethod
    def resolve_step_label(obj) -> str:
        return str(StepKind(obj.step).label)

    @staticmethod
    def resolve_workshop(obj, context):
        user = request_user(context)
        ws = obj.workshop
        if user is not None and user.role == Role.WORKSHOP:
            # The next workshop is shown: it is where the piece must be sent.
            current = obj.piece.current_workshop_id if hasattr(obj, "piece") else None
            if ws.pk in user.workshop_ids() or ws.pk == current or ws.is_house:
                return ws
            return None
        return _workshop_ref(ws, user)


class LineSummary(Schema):
    position: int
    description: str
    model_reference: str
    is_custom_design: bool
    size: str
    alloy: str | None = None
    stones: str
    customisations: str

    @staticmethod
    def resolve_alloy(obj):
        return obj.alloy.code if obj.alloy_id else None


class PieceOut(Schema):
    id: int
    serial: str
    order_id: int
    order_reference: str
    client: ClientRef | None = Field(None, description="Hidden from workshops")
    client_reference: str | None = None
    line: LineSummary
    target_price: Decimal | None = Field(None, description="Only for roles that see prices")
    currency: str | None = None
    promised_date: dt.date | None = None
    status: PieceStatus
    status_label: str
    current_step: str
    current_workshop: WorkshopRef | None = None
    location: WorkshopRef | None = None
    transit_to: WorkshopRef | None = None
    current_due: dt.date | None
    is_late: bool
    rework_count: int
    right_first_time: bool
    last_event_at: dt.datetime | None
    delivered_at: dt.datetime | None

    @staticmethod
    def resolve_order_reference(obj) -> str:
        return obj.order.reference

    @staticmethod
    def resolve_status_label(obj) -> str:
        return str(PieceStatus(obj.status).label)

    @staticmethod
    def resolve_client(obj, context):
        user = request_user(context)
        return obj.order.client if user and (user.sees_clients or user.role == Role.CLIENT) \
            else None

    @staticmethod
    def resolve_client_reference(obj, context):
        user = request_user(context)
        return obj.order.client_reference if user and (
            user.sees_clients or user.role == Role.CLIENT) else None

    @staticmethod
    def resolve_target_price(obj, context):
        user = request_user(context)
        return obj.line.target_price if user and user.sees_prices else None

    @staticmethod
    def resolve_currency(obj, context):
        user = request_user(context)
        return obj.order.currency if user and user.sees_prices else None

    @staticmethod
    def resolve_promised_date(obj, context):
        user = request_user(context)
        return obj.order.promised_date if user and user.role != Role.WORKSHOP else None

    @staticmethod
    def resolve_current_workshop(obj, context):
        return _workshop_ref(obj.current_workshop, request_user(context))

    @staticmethod
    def resolve_location(obj, context):
        return _workshop_ref(obj.location, request_user(context))

    @staticmethod
    def resolve_transit_to(obj, context):
        return _workshop_ref(obj.transit_to, request_user(context))

    @staticmethod
    def resolve_is_late(obj) -> bool:
        return bool(obj.current_due and obj.current_due < timezone.localdate()
                    and obj.status in ACTIVE_PIECE_STATUSES)

    @staticmethod
    def resolve_right_first_time(obj) -> bool:
        return obj.rework_count == 0


class PieceDetailOut(PieceOut):
    runs: list[StepRunOut]

    @staticmethod
    def resolve_runs(obj, context):
        return list(obj.runs.select_related("workshop", "piece").order_by("position"))


class EventOut(Schema):
    id: int
    piece_id: int
    serial: str
    step_run_id: int
    step: str
    kind: EventKind
    workshop: WorkshopRef | None
    actor: str | None
    occurred_at: dt.datetime
    weight_g: Decimal | None
    comment: str
    reason: str
    slip_number: str | None
    client_event_id: str | None

    @staticmethod
    def resolve_serial(obj) -> str:
        return obj.piece.serial

    @staticmethod
    def resolve_step(obj) -> str:
        return obj.step_run.step

    @staticmethod
    def resolve_workshop(obj, context):
        return _workshop_ref(obj.workshop, request_user(context))

    @staticmethod
    def resolve_actor(obj):
        return obj.actor.username if obj.actor_id else None

    @staticmethod
    def resolve_slip_number(obj):
        return obj.transfer.slip_number if obj.transfer_id else None


def _weight_field(v):
    if isinstance(v, bool):
        raise ValueError("a weight is a number of grams")
    return v


class EventIn(Schema):
    comment: str = Field("", max_length=4000)
    client_event_id: str | None = Field(
        None, max_length=64,
        description="Your id for this action (e.g. a UUID made by the scanning phone). "
                    "Sending the same id again returns the first result instead of recording "
                    "twice.")


class WeighedEventIn(EventIn):
    weight_g: Decimal | None = Field(None, description="Weight in grams, to the milligram")

    _w = field_validator("weight_g", mode="before")(_weight_field)


class SendIn(WeighedEventIn):
    to_workshop_id: int | None = Field(
        None, description="Optional check: the workshop you expect the piece to go to")


class HoldIn(EventIn):
    reason: HoldReason


class ReworkIn(EventIn):
    target_run_id: int = Field(description="The earlier step to go back to")
    comment: str = Field(min_length=1, max_length=4000)


class NoteIn(EventIn):
    weight_g: Decimal | None = None

    _w = field_validator("weight_g", mode="before")(_weight_field)


class AuditOut(Schema):
    id: int
    at: dt.datetime
    actor: str | None
    action: str
    object_type: str
    object_id: str
    object_repr: str
    before: dict
    after: dict

    @staticmethod
    def resolve_actor(obj):
        return obj.actor.username if obj.actor_id else None


class StepSkipIn(Schema):
    reason: SkipReason
    comment: str = Field("", max_length=4000)
    reference: str = Field("", max_length=200)
    # The client's written acceptance (a document of the order) when that is the reason.
    document_id: int | None = None


class StepAssignIn(Schema):
    workshop_id: int


class StepAddIn(Schema):
    step: StepKind
    workshop_id: int
    planned_days: int = Field(ge=1, le=120)
    after_run_id: int
    operations: list[str] = []


class ReorderIn(Schema):
    run_ids: list[int]


# ---------------------------------------------------------------------------------------------
# pieces


def _piece_or_404(request, piece_id: int):
    piece = selectors.piece_get(request.auth, piece_id)
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    return piece


def _event_response(event):
    return (200 if getattr(event, "replayed", False) else 201), event


@router.get("/pieces", response=list[PieceOut], summary="List pieces")
@paginate(Pagination)
def list_pieces(request, filters: Query[selectors.PieceFilters]):
    """Pieces you may see, late first. Filter by status, current step, workshop, order,
    client, `late=true`, or `q` (serial or order reference)."""
    return selectors.piece_list(request.auth, filters)


@router.get("/pieces/by-serial/{serial}", response=PieceDetailOut,
            summary="Find a piece by its serial (job bag scan)")
def piece_by_serial(request, serial: str):
    piece = selectors.piece_by_serial(request.auth, serial)
    if piece is None:
        raise NotFound(_("No piece with serial '%(serial)s'.") % {"serial": serial})
    return piece


@router.get("/pieces/{piece_id}", response=PieceDetailOut, summary="A piece and its route")
def get_piece(request, piece_id: int):
    return _piece_or_404(request, piece_id)


@router.get("/pieces/{piece_id}/events", response=list[EventOut], summary="A piece's history")
@paginate(Pagination)
def piece_events(request, piece_id: int):
    return selectors.piece_events(request.auth, _piece_or_404(request, piece_id))


@router.get("/pieces/{piece_id}/audit", response=list[AuditOut], summary="A piece's audit trail")
@paginate(Pagination)
def piece_audit_trail(request, piece_id: int):
    piece = _piece_or_404(request, piece_id)
    if not request.auth.is_house_wide:
        raise NotFound(_("No audit trail for piece %(id)s.") % {"id": piece_id})
    return piece_audit(piece)


EVENT_RESPONSES = {200: EventOut, 201: EventOut}


@router.post("/pieces/{piece_id}/receive", response=EVENT_RESPONSES,
             summary="Receive a piece sent to your workshop")
def receive_piece(request, piece_id: int, payload: WeighedEventIn):
    return _event_response(services.piece_receive(
        actor=request.auth, piece_id=piece_id, weight_g=payload.weight_g,
        comment=payload.comment, client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/start", response=EVENT_RESPONSES, summary="Start the step")
def start_piece(request, piece_id: int, payload: EventIn):
    return _event_response(services.piece_start(
        actor=request.auth, piece_id=piece_id, comment=payload.comment,
        client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/complete", response=EVENT_RESPONSES,
             summary="Complete the step; the next one becomes ready")
def complete_piece(request, piece_id: int, payload: WeighedEventIn):
    return _event_response(services.piece_complete(
        actor=request.auth, piece_id=piece_id, weight_g=payload.weight_g,
        comment=payload.comment, client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/send", response=EVENT_RESPONSES,
             summary="Send the piece to the workshop of its next step (makes a transfer slip)")
def send_piece(request, piece_id: int, payload: SendIn):
    transfer = services.pieces_send(
        actor=request.auth, piece_ids=[piece_id], to_workshop_id=payload.to_workshop_id,
        weights_g={piece_id: payload.weight_g} if payload.weight_g is not None else None,
        comment=payload.comment, client_ref=payload.client_event_id)
    event = transfer.events.filter(piece_id=piece_id, kind=EventKind.SENT).select_related(
        "piece", "step_run", "transfer", "workshop", "actor").first()
    event.replayed = getattr(transfer, "replayed", False)
    return _event_response(event)


@router.post("/pieces/{piece_id}/hold", response=EVENT_RESPONSES, summary="Put on hold")
def hold_piece(request, piece_id: int, payload: HoldIn):
    return _event_response(services.piece_hold(
        actor=request.auth, piece_id=piece_id, reason=payload.reason, comment=payload.comment,
        client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/release", response=EVENT_RESPONSES, summary="Release a hold")
def release_piece(request, piece_id: int, payload: EventIn):
    return _event_response(services.piece_release(
        actor=request.auth, piece_id=piece_id, comment=payload.comment,
        client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/rework", response=EVENT_RESPONSES,
             summary="Send back to an earlier step (not right first time)")
def rework_piece(request, piece_id: int, payload: ReworkIn):
    return _event_response(services.piece_rework(
        actor=request.auth, piece_id=piece_id, target_run_id=payload.target_run_id,
        comment=payload.comment, client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/notes", response=EVENT_RESPONSES, summary="Add a note")
def note_piece(request, piece_id: int, payload: NoteIn):
    return _event_response(services.piece_note(
        actor=request.auth, piece_id=piece_id, comment=payload.comment,
        weight_g=payload.weight_g, client_event_id=payload.client_event_id))


@router.post("/pieces/{piece_id}/steps", response={201: StepRunOut},
             summary="Add a step to this piece's route")
def add_step(request, piece_id: int, payload: StepAddIn):
    run = services.step_run_add(actor=request.auth, piece_id=piece_id, step=payload.step,
                                workshop_id=payload.workshop_id,
                                planned_days=payload.planned_days,
                                after_run_id=payload.after_run_id,
                                operations=payload.operations)
    return 201, run


@router.put("/pieces/{piece_id}/steps/order", response=list[StepRunOut],
            summary="Reorder the steps not reached yet")
def reorder_steps(request, piece_id: int, payload: ReorderIn):
    return services.piece_route_reorder(actor=request.auth, piece_id=piece_id,
                                        run_ids=payload.run_ids)


@router.post("/steps/{run_id}/skip", response=StepRunOut, summary="Skip a step not begun")
def skip_step(request, run_id: int, payload: StepSkipIn):
    return services.step_run_skip(actor=request.auth, run_id=run_id, reason=payload.reason,
                                  comment=payload.comment, reference=payload.reference,
                                  document_id=payload.document_id)


@router.patch("/steps/{run_id}", response=StepRunOut,
              summary="Move a step not begun to another workshop")
def assign_step(request, run_id: int, payload: StepAssignIn):
    return services.step_run_assign(actor=request.auth, run_id=run_id,
                                    workshop_id=payload.workshop_id)


# ---------------------------------------------------------------------------------------------
# transfers


class TransferLineOut(Schema):
    piece_id: int
    serial: str
    weight_sent_g: Decimal | None
    weight_received_g: Decimal | None
    weight_flagged: bool
    received_at: dt.datetime | None

    @staticmethod
    def resolve_serial(obj):
        return obj.piece.serial


class TransferOut(Schema):
    id: int
    slip_number: str
    from_workshop: WorkshopRef
    to_workshop: WorkshopRef
    status: str
    sent_by: str | None
    sent_at: dt.datetime
    received_at: dt.datetime | None
    comment: str
    lines: list[TransferLineOut]

    @staticmethod
    def resolve_sent_by(obj):
        return obj.sent_by.username if obj.sent_by_id else None

    @staticmethod
    def resolve_lines(obj):
        if "lines" in getattr(obj, "_prefetched_objects_cache", {}):
            return list(obj.lines.all())  # prefetched by the selectors
        return list(obj.lines.select_related("piece").order_by("id"))


class TransferIn(Schema):
    piece_ids: list[int] = Field(min_length=1, max_length=200)
    to_workshop_id: int | None = None
    weights_g: dict[int, Decimal] = Field(default_factory=dict,
                                          description="Weight in grams per piece id")
    comment: str = Field("", max_length=4000)
    client_ref: str | None = Field(None, max_length=64,
                                   description="Your id for this slip; a repeat returns it")


class TransferReceiveIn(Schema):
    weights_g: dict[int, Decimal] = Field(default_factory=dict)
    comment: str = Field("", max_length=4000)


@transfers_router.get("/transfers", response=list[TransferOut], summary="Transfer slips")
@paginate(Pagination)
def list_transfers(request, filters: Query[selectors.TransferFilters]):
    return selectors.transfer_list(request.auth, filters)


@transfers_router.get("/transfers/{transfer_id}", response=TransferOut)
def get_transfer(request, transfer_id: int):
    transfer = selectors.transfer_get(request.auth, transfer_id)
    if transfer is None:
        raise NotFound(_("No transfer slip with id %(id)s.") % {"id": transfer_id})
    return transfer


@transfers_router.post("/transfers", response={200: TransferOut, 201: TransferOut},
                       summary="Send several pieces on one slip")
def create_transfer(request, payload: TransferIn):
    transfer = services.pieces_send(
        actor=request.auth, piece_ids=payload.piece_ids, to_workshop_id=payload.to_workshop_id,
        weights_g=payload.weights_g, comment=payload.comment, client_ref=payload.client_ref)
    return (200 if getattr(transfer, "replayed", False) else 201), transfer


@transfers_router.post("/transfers/{transfer_id}/receive", response=TransferOut,
                       summary="Receive every piece still travelling on a slip")
def receive_transfer(request, transfer_id: int, payload: TransferReceiveIn):
    return services.transfer_receive(actor=request.auth, transfer_id=transfer_id,
                                     weights_g=payload.weights_g, comment=payload.comment)


# ---------------------------------------------------------------------------------------------
# route templates


class TemplateStepOut(Schema):
    position: int
    step: str
    operations: list[str]
    planned_days: int
    workshop: WorkshopRef | None


class TemplateOut(Schema):
    id: int
    code: str
    name: str
    description: str
    is_default: bool
    steps: list[TemplateStepOut]

    @staticmethod
    def resolve_steps(obj):
        return list(obj.steps.select_related("workshop").order_by("position"))


class TemplateStepIn(Schema):
    step: StepKind
    planned_days: int = Field(1, ge=1, le=120)
    workshop: str | None = Field(None, description="Workshop code")
    operations: list[str] = []


class TemplateIn(Schema):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    is_default: bool = False
    steps: list[TemplateStepIn] = Field(min_length=2, max_length=30)


@templates_router.get("/route-templates", response=list[TemplateOut])
@paginate(Pagination)
def list_templates(request):
    from .models import RouteTemplate

    if request.auth.role in (Role.CLIENT, Role.WORKSHOP):
        return RouteTemplate.objects.none()
    return RouteTemplate.objects.order_by("name", "id")


@templates_router.post("/route-templates", response={201: TemplateOut})
def create_template(request, payload: TemplateIn):
    template = routing.route_template_create(
        actor=request.auth, code=payload.code, name=payload.name,
        description=payload.description, is_default=payload.is_default,
        steps=[s.dict() for s in payload.steps])
    return 201, template
