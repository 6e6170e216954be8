"""Orders: intake, launch sheet, launch, change requests, audit."""


import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from etabli.core.api import Pagination
from etabli.core.errors import NotFound
from etabli.core.schemas import ClientRef, WorkshopRef, request_user
from etabli.production import routing
from etabli.production.api import AuditOut, PieceOut
from etabli.production.models import SkipReason
from etabli.workshops.models import StepKind

from . import selectors, services
from .models import ChangeRequestStatus, OrderStatus

router = Router(tags=["orders"])


class LineIn(Schema):
    description: str = Field(min_length=1, max_length=240)
    model_reference: str = Field("", max_length=60)
    is_custom_design: bool = False
    quantity: int = Field(1, ge=1, le=500)
    size: str = Field("", max_length=30)
    alloy: str | None = Field(None, description="Alloy code, e.g. 750y, 950pt (see /alloys)")
    stones: str = Field("", max_length=4000)
    customisations: str = Field("", max_length=4000)
    specifications: str = Field("", max_length=8000)
    references: str = Field("", max_length=4000)
    target_price: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    budget_metal_g: Decimal | None = Field(
        None, gt=0, max_digits=7, decimal_places=3,
        description="Metal budget per piece in grams (checked against the CAD estimate)")
    budget_stone_count: int | None = Field(None, ge=0, le=100000)
    budget_stone_ct: Decimal | None = Field(None, gt=0, max_digits=8, decimal_places=3)


class LinePatch(Schema):
    description: str | None = Field(None, min_length=1, max_length=240)
    model_reference: str | None = Field(None, max_length=60)
    is_custom_design: bool | None = None
    quantity: int | None = Field(None, ge=1, le=500)
    size: str | None = Field(None, max_length=30)
    alloy: str | None = None
    stones: str | None = None
    customisations: str | None = None
    specifications: str | None = None
    references: str | None = None
    target_price: Decimal | None = Field(None, ge=0, max_digits=12, decimal_places=2)
    budget_metal_g: Decimal | None = Field(None, gt=0, max_digits=7, decimal_places=3)
    budget_stone_count: int | None = Field(None, ge=0, le=100000)
    budget_stone_ct: Decimal | None = Field(None, gt=0, max_digits=8, decimal_places=3)


class OrderIn(Schema):
    client_id: int
    promised_date: dt.date | None = None
    client_reference: str = Field("", max_length=60)
    notes: str = Field("", max_length=8000)
    currency: str | None = Field(None, min_length=3, max_length=3)
    channel: str | None = None
    route_template: str | None = Field(None, description="Route template code; default if empty")
    lines: list[LineIn] = Field(default_factory=list, max_length=50)


class OrderPatch(Schema):
    promised_date: dt.date | None = None
    client_reference: str | None = Field(None, max_length=60)
    notes: str | None = Field(None, max_length=8000)
    route_template: str | None = None


class LineOut(Schema):
    id: int
    position: int
    description: str
    model_reference: str
    is_custom_design: bool
    quantity: int
    size: str
    alloy: str | None
    stones: str
    customisations: str
    specifications: str
    references: str
    target_price: Decimal | None
    budget_metal_g: Decimal | None
    budget_stone_count: int | None
    budget_stone_ct: Decimal | None

    @staticmethod
    def resolve_alloy(obj):
        return obj.alloy.code if obj.alloy_id else None

    @staticmethod
    def resolve_target_price(obj, context):
        user = request_user(context)
        return obj.target_price if user and user.sees_prices else None


class CheckItemOut(Schema):
    code: str
    section: str
    label: str
    checked: bool
    checked_by: str | None
    checked_at: dt.datetime | None
    note: str

    @staticmethod
    def resolve_checked_by(obj):
        return obj.checked_by.username if obj.checked_by_id else None


class RouteStepOut(Schema):
    id: int
    position: int
    step: str
    operations: list[str]
    planned_days: int
    workshop: WorkshopRef | None
    skipped: bool
    skip_reason: str
    skip_comment: str
    skip_reference: str
    skip_document_id: int | None

    @staticmethod
    def resolve_workshop(obj, context):
        user = request_user(context)
        # Clients follow their order in plain words, without the house's workshop names.
        return obj.workshop if user is not None and user.sees_clients else None


class OrderOut(Schema):
    id: int
    reference: str
    client: ClientRef
    client_reference: str
    channel: str
    status: OrderStatus
    status_label: str
    promised_date: dt.date | None
    currency: str
    notes: str
    route_template: str | None
    created_at: dt.datetime
    launched_at: dt.datetime | None
    delivered_at: dt.datetime | None
    deadline_override_reason: str
    reception_confirmed_at: dt.datetime | None
    reception_note: str

    @staticmethod
    def resolve_status_label(obj):
        return str(OrderStatus(obj.status).label)

    @staticmethod
    def resolve_route_template(obj):
        return obj.route_template.code if obj.route_template_id else None


class DeadlineOut(Schema):
    route_days: int
    buffer_days: int
    planned_finish: dt.date
    earliest_realistic_date: dt.date
    promised_date: dt.date | None
    ok: bool


class BlockerOut(Schema):
    code: str
    message: str


class OrderDetailOut(OrderOut):
    lines: list[LineOut]
    checklist: list[CheckItemOut]
    route: list[RouteStepOut]
    deadline: DeadlineOut
    launch_blockers: list[BlockerOut]
    pieces: list[PieceOut]

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.select_related("alloy").order_by("position"))

    @staticmethod
    def resolve_checklist(obj):
        return list(obj.checklist.select_related("checked_by").order_by("id"))

    @staticmethod
    def resolve_route(obj):
        return list(obj.route.select_related("workshop").order_by("position"))

    @staticmethod
    def resolve_deadline(obj):
        return services.order_deadline_check(obj).as_dict()

    @staticmethod
    def resolve_launch_blockers(obj):
        return services.launch_blockers(obj) if obj.status == OrderStatus.DRAFT else []

    @staticmethod
    def resolve_pieces(obj, context):
        from etabli.production.models import Piece

        user = request_user(context)
        return list(Piece.objects.visible_to(user).filter(order=obj).select_related(
            "order__client", "line__alloy", "current_workshop", "location", "transit_to"))


class OrderListOut(OrderOut):
    line_count: int
    piece_count: int


class CheckIn(Schema):
    checked: bool = True
    note: str = Field("", max_length=2000)


class LaunchIn(Schema):
    override_reason: str = Field("", max_length=2000, description=(
        "Only when launching with a promised date earlier than the earliest realistic date: "
        "why the house accepts it."))


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=2000)


class RouteStepPatch(Schema):
    workshop_id: int | None = None
    planned_days: int | None = Field(None, ge=1, le=120)
    operations: list[str] | None = None


class RouteSkipIn(Schema):
    reason: SkipReason
    comment: str = Field("", max_length=4000)
    reference: str = Field("", max_length=200)
    # The client's written acceptance (a document of the order) when that is the reason.
    document_id: int | None = None


class RouteAddIn(Schema):
    step: StepKind
    after_step_id: int
    planned_days: int = Field(1, ge=1, le=120)
    workshop_id: int | None = None
    operations: list[str] = []


class RouteOrderIn(Schema):
    step_ids: list[int]


class ChangeRequestIn(Schema):
    description: str = Field(min_length=1, max_length=8000)


class AssessIn(Schema):
    impact_days: int = Field(ge=-365, le=365)
    new_promised_date: dt.date | None = None
    assessment: str = Field("", max_length=8000)


class DecideIn(Schema):
    approve: bool
    comment: str = Field("", max_length=8000)


class ChangeRequestOut(Schema):
    id: int
    order_id: int
    description: str
    status: ChangeRequestStatus
    requested_by: str | None
    requested_at: dt.datetime
    impact_days: int | None
    new_promised_date: dt.date | None
    assessment: str
    decided_at: dt.datetime | None
    decision_comment: str

    @staticmethod
    def resolve_requested_by(obj):
        return obj.requested_by.username if obj.requested_by_id else None


def _order_or_404(request, order_id: int):
    order = selectors.order_get(request.auth, order_id)
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return order


@router.get("/orders", response=list[OrderListOut], summary="List orders")
@paginate(Pagination)
def list_orders(request, filters: Query[selectors.OrderFilters]):
    """Orders you may see, newest first. `q` searches the order reference, the client's name
    or reference, and piece serials."""
    return selectors.order_list(request.auth, filters)


@router.post("/orders", response={201: OrderDetailOut}, summary="Take an order")
def create_order(request, payload: OrderIn):
    order = services.order_create(
        actor=request.auth, client_id=payload.client_id, promised_date=payload.promised_date,
        client_reference=payload.client_reference, notes=payload.notes,
        currency=payload.currency, channel=payload.channel,
        route_template=payload.route_template, lines=[ln.dict() for ln in payload.lines])
    return 201, order


@router.get("/orders/{order_id}", response=OrderDetailOut,
            summary="An order with its launch sheet, route and pieces")
def get_order(request, order_id: int):
    return _order_or_404(request, order_id)


@router.patch("/orders/{order_id}", response=OrderDetailOut, summary="Change a draft order")
def update_order(request, order_id: int, payload: OrderPatch):
    changes = payload.dict(exclude_unset=True)
    services.order_update(actor=request.auth, order_id=order_id, **changes)
    return _order_or_404(request, order_id)


@router.post("/orders/{order_id}/lines", response={201: LineOut}, summary="Add a line")
def add_line(request, order_id: int, payload: LineIn):
    return 201, services.order_line_add(actor=request.auth, order_id=order_id, **payload.dict())


@router.patch("/orders/{order_id}/lines/{line_id}", response=LineOut, summary="Change a line")
def update_line(request, order_id: int, line_id: int, payload: LinePatch):
    return services.order_line_update(actor=request.auth, order_id=order_id, line_id=line_id,
                                      **payload.dict(exclude_unset=True))


@router.delete("/orders/{order_id}/lines/{line_id}", response={204: None},
               summary="Remove a line")
def remove_line(request, order_id: int, line_id: int):
    services.order_line_remove(actor=request.auth, order_id=order_id, line_id=line_id)
    return 204, None


@router.put("/orders/{order_id}/checklist/{code}", response=CheckItemOut,
            summary="Check (or uncheck) an item of the launch sheet")
def check_item(request, order_id: int, code: str, payload: CheckIn):
    return services.launch_item_set(actor=request.auth, order_id=order_id, code=code,
                                    checked=payload.checked, note=payload.note)


@router.get("/orders/{order_id}/deadline-check", response=DeadlineOut,
            summary="Earliest realistic promised date for this route")
def deadline_check(request, order_id: int):
    return services.order_deadline_check(_order_or_404(request, order_id)).as_dict()


# `int:` keeps "/route/order" (PUT, below) from being taken for a step id.
@router.patch("/orders/{order_id}/route/{int:step_id}", response=RouteStepOut,
              summary="Choose the workshop, duration or operations of a route step")
def update_route_step(request, order_id: int, step_id: int, payload: RouteStepPatch):
    return routing.order_route_step_update(
        actor=request.auth, order_id=order_id, step_id=step_id,
        workshop_id=payload.workshop_id, planned_days=payload.planned_days,
        operations=payload.operations)


@router.post("/orders/{order_id}/route/{step_id}/skip", response=RouteStepOut,
             summary="Skip a step, with a recorded reason")
def skip_route_step(request, order_id: int, step_id: int, payload: RouteSkipIn):
    return routing.order_route_step_skip(
        actor=request.auth, order_id=order_id, step_id=step_id, skip=True,
        reason=payload.reason, comment=payload.comment, reference=payload.reference,
        document_id=payload.document_id)


@router.delete("/orders/{order_id}/route/{step_id}/skip", response=RouteStepOut,
               summary="Undo a skip")
def unskip_route_step(request, order_id: int, step_id: int):
    return routing.order_route_step_skip(actor=request.auth, order_id=order_id,
                                         step_id=step_id, skip=False)


@router.post("/orders/{order_id}/route", response={201: RouteStepOut}, summary="Add a step")
def add_route_step(request, order_id: int, payload: RouteAddIn):
    return 201, routing.order_route_step_add(
        actor=request.auth, order_id=order_id, step=payload.step,
        after_step_id=payload.after_step_id, planned_days=payload.planned_days,
        workshop_id=payload.workshop_id, operations=payload.operations)


@router.put("/orders/{order_id}/route/order", response=list[RouteStepOut],
            summary="Reorder the route")
def reorder_route(request, order_id: int, payload: RouteOrderIn):
    return routing.order_route_reorder(actor=request.auth, order_id=order_id,
                                       step_ids=payload.step_ids)


@router.post("/orders/{order_id}/launch", response=OrderDetailOut,
             summary="Launch: create the pieces and their routes")
def launch_order(request, order_id: int, payload: LaunchIn):
    services.order_launch(actor=request.auth, order_id=order_id,
                          override_reason=payload.override_reason)
    return _order_or_404(request, order_id)


@router.post("/orders/{order_id}/cancel", response=OrderOut, summary="Cancel a draft order")
def cancel_order(request, order_id: int, payload: CancelIn):
    return services.order_cancel(actor=request.auth, order_id=order_id, reason=payload.reason)


@router.get("/orders/{order_id}/audit", response=list[AuditOut], summary="Audit trail")
@paginate(Pagination)
def order_audit(request, order_id: int):
    order = _order_or_404(request, order_id)
    if not request.auth.is_house_wide:
        raise NotFound(_("No audit trail for order %(id)s.") % {"id": order_id})
    return selectors.order_audit(order)


@router.get("/orders/{order_id}/change-requests", response=list[ChangeRequestOut])
@paginate(Pagination)
def list_change_requests(request, order_id: int):
    return _order_or_404(request, order_id).change_requests.order_by("requested_at", "id")


@router.post("/orders/{order_id}/change-requests", response={201: ChangeRequestOut},
             summary="Ask for a change to the order")
def create_change_request(request, order_id: int, payload: ChangeRequestIn):
    return 201, services.change_request_create(actor=request.auth, order_id=order_id,
                                               description=payload.description)


@router.post("/change-requests/{cr_id}/assess", response=ChangeRequestOut,
             summary="Record the impact of a change request")
def assess_change_request(request, cr_id: int, payload: AssessIn):
    return services.change_request_assess(
        actor=request.auth, cr_id=cr_id, impact_days=payload.impact_days,
        new_promised_date=payload.new_promised_date, assessment=payload.assessment)


@router.post("/change-requests/{cr_id}/decide", response=ChangeRequestOut,
             summary="Approve (the plan moves) or reject a change request")
def decide_change_request(request, cr_id: int, payload: DecideIn):
    return services.change_request_decide(actor=request.auth, cr_id=cr_id,
                                          approve=payload.approve, comment=payload.comment)


class ReceptionIn(Schema):
    note: str = Field("", max_length=4000, description="Anything to say about the delivery")


@router.post("/orders/{order_id}/confirm-reception", response=OrderOut,
             summary="Confirm that a delivered order arrived (client or house)")
def confirm_reception(request, order_id: int, payload: ReceptionIn):
    return services.order_confirm_reception(actor=request.auth, order_id=order_id,
                                            note=payload.note)
