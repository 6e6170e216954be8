"""Orders: intake, launch-sheet qualification, launch, change requests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.clients.models import Client
from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.sequences import yearly_reference
from etabli.materials.models import Alloy
from etabli.production import planning
from etabli.production.models import RouteTemplate
from etabli.production.routing import order_route_copy
from etabli.production.services import order_plan_shift, pieces_create_for_order
from etabli.workshops.models import StepKind
from etabli.workshops.selectors import house

from .models import (
    CHANGE_REQUEST_TRANSITIONS,
    LAUNCH_CHECKLIST,
    ChangeRequest,
    ChangeRequestStatus,
    LaunchCheckItem,
    Order,
    OrderLine,
    OrderStatus,
)

ORDER_FIELDS = ["status", "promised_date", "client_reference", "notes", "route_template",
                "deadline_override_reason"]
LINE_FIELDS = ["position", "model_reference", "is_custom_design", "description", "quantity",
               "size", "alloy", "stones", "customisations", "specifications", "references",
               "target_price", "budget_metal_g", "budget_stone_count", "budget_stone_ct"]
MAX_LINES = 50


def _require_order_role(actor) -> None:
    if not actor.takes_orders:
        raise PermissionDenied(
            _("Only sales, production managers and administrators manage orders."))


def _lock_order(actor, order_id: int) -> Order:
    order = (Order.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=order_id).first())
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return order


def _lock_draft(actor, order_id: int) -> Order:
    _require_order_role(actor)
    order = _lock_order(actor, order_id)
    if order.status != OrderStatus.DRAFT:
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s: its lines and sheet can no longer change; "
              "use a change request.")
            % {"ref": order.reference, "status": OrderStatus(order.status).label.lower()},
            details={"status": order.status})
    return order


def _text(value: Any, field: str, limit: int) -> str:
    value = "" if value is None else str(value).strip()
    if len(value) > limit:
        raise ValidationFailed(
            _("%(field)s is too long (at most %(limit)s characters).")
            % {"field": field, "limit": limit}, details={"field": field})
    return value


def _clean_line(data: dict) -> dict:
    out: dict[str, Any] = {}
    out["description"] = _text(data.get("description"), "description", 240)
    if not out["description"]:
        raise ValidationFailed(_("Describe the piece (e.g. 'Solitaire ring, 1 ct')."),
                               details={"field": "description"})
    out["model_reference"] = _text(data.get("model_reference"), "model_reference", 60)
    out["is_custom_design"] = bool(data.get("is_custom_design", False))
    if not out["model_reference"] and not out["is_custom_design"]:
        raise ValidationFailed(_("Give a catalogue model reference or mark the line as a "
                                 "custom design."), details={"field": "model_reference"})
    quantity = data.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 500:
        raise ValidationFailed(_("Quantity is a whole number between 1 and 500."),
                               details={"field": "quantity"})
    out["quantity"] = quantity
    for name, limit in (("size", 30), ("stones", 4000), ("customisations", 4000),
                        ("specifications", 8000), ("references", 4000)):
        out[name] = _text(data.get(name), name, limit)
    alloy_code = data.get("alloy")
    out["alloy"] = None
    if alloy_code:
        out["alloy"] = Alloy.objects.filter(code=alloy_code).first()
        if out["alloy"] is None:
            codes = ", ".join(Alloy.objects.values_list("code", flat=True))
            raise ValidationFailed(
                _("Unknown alloy '%(alloy)s'. Known alloys: %(codes)s.")
                % {"alloy": alloy_code, "codes": codes}, details={"field": "alloy"})
    price = data.get("target_price")
    out["target_price"] = None
    if price not in (None, ""):
        try:
            out["target_price"] = Decimal(str(price)).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError) as exc:
            raise ValidationFailed(_("'%(price)s' is not an amount.") % {"price": price},
                                   details={"field": "target_price"}) from exc
        if not out["target_price"].is_finite() or out["target_price"] < 0 \
                or out["target_price"] >= Decimal("10000000000"):
            raise ValidationFailed(_("The target price must be a positive amount."),
                                   details={"field": "target_price"})
    out.update(_clean_budget(data))
    return out


def _clean_budget(data: dict) -> dict:
    """The material budget of a line: metal per piece (g), stones per piece (count, carats)."""
    out: dict[str, Any] = {}
    for name, step, limit in (("budget_metal_g", Decimal("0.001"), Decimal("5000")),
                              ("budget_stone_ct", Decimal("0.001"), Decimal("10000"))):
        value = data.get(name)
        out[name] = None
        if value in (None, ""):
            continue
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError) as exc:
            raise ValidationFailed(_("'%(value)s' is not a number.") % {"value": value},
                                   details={"field": name}) from exc
        if not number.is_finite() or number <= 0 or number > limit \
                or number != number.quantize(step):
            raise ValidationFailed(
                _("The budget is more than 0, at most %(limit)s, to 3 decimals.")
                % {"limit": limit}, details={"field": name})
        out[name] = number.quantize(step)
    count = data.get("budget_stone_count")
    out["budget_stone_count"] = None
    if count not in (None, ""):
        if isinstance(count, bool) or not str(count).isdigit() or int(count) > 100000:
            raise ValidationFailed(_("The stone budget is a whole number of stones."),
                                   details={"field": "budget_stone_count"})
        out["budget_stone_count"] = int(count)
    return out


def _check_promised_date(value) -> None:
    if value is None:
        return
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValidationFailed(_("The promised date is a date (YYYY-MM-DD)."),
                               details={"field": "promised_date"})
    if value < timezone.localdate():
        raise ValidationFailed(_("The promised date %(date)s is in the past.")
                               % {"date": f"{value:%Y-%m-%d}"},
                               details={"field": "promised_date"})


def _default_template() -> RouteTemplate:
    template = RouteTemplate.objects.filter(is_default=True).first()
    if template is None:
        raise ValidationFailed(_("No default route template is set up; choose one."),
                               details={"field": "route_template"})
    return template


def _template(code: str | None) -> RouteTemplate:
    if not code:
        return _default_template()
    template = RouteTemplate.objects.filter(code=code).first()
    if template is None:
        raise NotFound(_("No route template '%(code)s'.") % {"code": code},
                       details={"field": "route_template"})
    return template


@transaction.atomic
def order_create(*, actor, client_id: int, lines: list[dict] | None = None,
                 promised_date: dt.date | None = None, client_reference: str = "",
                 notes: str = "", currency: str | None = None, channel: str | None = None,
                 route_template: str | None = None) -> Order:
    _require_order_role(actor)
    client = Client.objects.visible_to(actor).filter(pk=client_id).first()
    if client is None:
        raise NotFound(_("No client with id %(id)s.") % {"id": client_id},
                       details={"field": "client_id"})
    lines = lines or []
    if len(lines) > MAX_LINES:
        raise ValidationFailed(_("At most %(n)s lines per order.") % {"n": MAX_LINES},
                               details={"field": "lines"})
    cleaned = []
    for i, line in enumerate(lines, start=1):
        try:
            cleaned.append(_clean_line(line))
        except ValidationFailed as exc:
            raise ValidationFailed(_("Line %(n)s: %(problem)s") % {"n": i,
                                                                  "problem": exc.message},
                                   details=exc.details | {"line": i}) from exc
    _check_promised_date(promised_date)
    currency = (currency or settings.ETABLI_DEFAULT_CURRENCY).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationFailed(_("Currency is a three-letter ISO code such as EUR."),
                               details={"field": "currency"})
    from etabli.clients.models import Channel

    channel = channel or client.channel
    if channel not in Channel.values:
        raise ValidationFailed(_("Unknown channel '%(channel)s'.") % {"channel": channel},
                               details={"field": "channel"})
    template = _template(route_template)
    order = Order.objects.create(
        reference=yearly_reference("ORD"), client=client,
        client_reference=_text(client_reference, "client_reference", 60),
        notes=_text(notes, "notes", 8000), promised_date=promised_date, currency=currency,
        channel=channel, route_template=template, created_by=actor,
        language=client.language if client.language in ("en", "fr") else "en",
    )
    LaunchCheckItem.objects.bulk_create(
        [LaunchCheckItem(order=order, code=code, section=section)
         for code, section, _label in LAUNCH_CHECKLIST])
    for position, data in enumerate(cleaned, start=1):
        OrderLine.objects.create(order=order, position=position, **data)
    order_route_copy(order=order, template=template)
    audit.record(actor=actor, action="order.create", obj=order,
                 after=audit.snapshot(order, ["reference", "client"] + ORDER_FIELDS)
                 | {"lines": len(cleaned)}, order_id=order.pk)
    return order


@transaction.atomic
def order_update(*, actor, order_id: int, **changes) -> Order:
    order = _lock_draft(actor, order_id)
    before = audit.snapshot(order, ORDER_FIELDS)
    for field, value in changes.items():
        if field == "promised_date":
            _check_promised_date(value)
            order.promised_date = value
        elif field in ("client_reference", "notes"):
            setattr(order, field, _text(value, field, 60 if field == "client_reference" else 8000))
        elif field == "route_template":
            template = _template(value)
            if template.pk != order.route_template_id:
                order.route_template = template
                order_route_copy(order=order, template=template)
        else:
            raise ValidationFailed(_("'%(field)s' cannot be changed here.") % {"field": field},
                                   details={"field": field})
    order.save()
    audit.record(actor=actor, action="order.update", obj=order, before=before,
                 after=audit.snapshot(order, ORDER_FIELDS), order_id=order.pk)
    return order


@transaction.atomic
def order_line_add(*, actor, order_id: int, **data) -> OrderLine:
    order = _lock_draft(actor, order_id)
    if order.lines.count() >= MAX_LINES:
        raise ValidationFailed(_("At most %(n)s lines per order.") % {"n": MAX_LINES})
    cleaned = _clean_line(data)
    position = (order.lines.order_by("-position").values_list("position", flat=True).first()
                or 0) + 1
    line = OrderLine.objects.create(order=order, position=position, **cleaned)
    audit.record(actor=actor, action="order_line.add", obj=line,
                 after=audit.snapshot(line, LINE_FIELDS), order_id=order.pk)
    return line


@transaction.atomic
def order_line_update(*, actor, order_id: int, line_id: int, **data) -> OrderLine:
    order = _lock_draft(actor, order_id)
    line = order.lines.filter(pk=line_id).first()
    if line is None:
        raise NotFound(_("Line %(line)s is not part of order %(ref)s.")
                       % {"line": line_id, "ref": order.reference})
    before = audit.snapshot(line, LINE_FIELDS)
    current = {f: getattr(line, f) for f in LINE_FIELDS if f != "position"}
    current["alloy"] = line.alloy.code if line.alloy else None
    cleaned = _clean_line(current | {k: v for k, v in data.items() if v is not None})
    for field, value in cleaned.items():
        setattr(line, field, value)
    line.save()
    audit.record(actor=actor, action="order_line.update", obj=line, before=before,
                 after=audit.snapshot(line, LINE_FIELDS), order_id=order.pk)
    return line


@transaction.atomic
def order_line_remove(*, actor, order_id: int, line_id: int) -> None:
    order = _lock_draft(actor, order_id)
    line = order.lines.filter(pk=line_id).first()
    if line is None:
        raise NotFound(_("Line %(line)s is not part of order %(ref)s.")
                       % {"line": line_id, "ref": order.reference})
    before = audit.snapshot(line, LINE_FIELDS)
    audit.record(actor=actor, action="order_line.remove", obj=line, before=before,
                 order_id=order.pk)
    line.delete()


@transaction.atomic
def launch_item_set(*, actor, order_id: int, code: str, checked: bool = True,
                    note: str = "") -> LaunchCheckItem:
    """Tick (or untick) one item of the launch sheet's checklist, in the checker's name."""
    order = _lock_draft(actor, order_id)
    item = order.checklist.filter(code=code).first()
    if item is None:
        raise NotFound(_("'%(code)s' is not an item of the launch checklist.") % {"code": code},
                       details={"field": "code"})
    before = audit.snapshot(item, ["checked", "checked_by", "checked_at", "note"])
    item.checked = bool(checked)
    item.checked_by = actor if checked else None
    item.checked_at = timezone.now() if checked else None
    item.note = _text(note, "note", 2000)
    item.save()
    audit.record(actor=actor, action="launch_item.check" if checked else "launch_item.uncheck",
                 obj=item, before=before,
                 after=audit.snapshot(item, ["checked", "checked_by", "checked_at", "note"]),
                 order_id=order.pk)
    return item


def order_deadline_check(order: Order, today: dt.date | None = None) -> planning.DeadlineCheck:
    today = today or timezone.localdate()
    return planning.deadline_check(order.route.all(), today, order.promised_date)


def launch_blockers(order: Order) -> list[dict]:
    """Everything that stands between this order and its launch, in words."""
    missing: list[dict] = []
    if order.status != OrderStatus.DRAFT:
        missing.append({"code": "not_draft",
                        "message": _("The order is %(status)s.")
                        % {"status": OrderStatus(order.status).label.lower()}})
    if not order.lines.exists():
        missing.append({"code": "no_lines", "message": _("The order has no lines.")})
    for line in order.lines.filter(alloy__isnull=True):
        missing.append({"code": "line_without_alloy",
                        "message": _("Line %(n)s has no alloy.") % {"n": line.position}})
    if order.promised_date is None:
        missing.append({"code": "no_promised_date", "message": _("No promised date.")})
    for item in order.checklist.filter(checked=False):
        missing.append({"code": f"unchecked:{item.code}",
                        "message": _("%(section)s: '%(item)s' is not checked.")
                        % {"section": item.get_section_display(), "item": item.label}})
    for rs in order.route.filter(skipped=False, workshop__isnull=True):
        missing.append({"code": "step_without_workshop",
                        "message": _("No workshop chosen for %(step)s.")
                        % {"step": StepKind(rs.step).label}})
    return missing


@transaction.atomic
def order_launch(*, actor, order_id: int, override_reason: str = "") -> Order:
    """Launch a fully qualified order: create its pieces and their routes.

    Refused while anything on the launch sheet is missing, and when the promised date is earlier
    than the route plus the safety buffer allows — unless the house records why it accepts that.
    """
    order = _lock_order(actor, order_id)
    _require_order_role(actor)
    if order.status == OrderStatus.LAUNCHED:
        raise Conflict(_("Order %(ref)s is already launched.") % {"ref": order.reference},
                       details={"status": order.status})
    blockers = launch_blockers(order)
    if blockers:
        raise TransitionNotAllowed(
            _("Order %(ref)s cannot be launched yet: %(missing)s")
            % {"ref": order.reference, "missing": "; ".join(b["message"] for b in blockers)},
            code="launch_blocked", details={"missing": blockers})
    check = order_deadline_check(order)
    override_reason = _text(override_reason, "override_reason", 2000)
    if not check.ok and not override_reason:
        raise TransitionNotAllowed(
            _("The promised date %(date)s is too early: the route takes %(route_days)s days "
              "plus a %(buffer_days)s-day safety buffer, so the earliest realistic date is "
              "%(earliest)s. Move the date or give a reason to override.")
            % {"date": f"{order.promised_date:%Y-%m-%d}", "route_days": check.route_days,
               "buffer_days": check.buffer_days,
               "earliest": f"{check.earliest_promise:%Y-%m-%d}"},
            code="deadline_unrealistic", details=check.as_dict())
    before = audit.snapshot(order, ORDER_FIELDS)
    at = timezone.now()
    order.status = OrderStatus.LAUNCHED
    order.launched_at = at
    order.launched_by = actor
    if not check.ok:
        order.deadline_override_reason = override_reason
    order.save()
    route = list(order.route.select_related("workshop").order_by("position"))
    pieces = pieces_create_for_order(actor=actor, order=order, route_steps=route,
                                     house=house(), at=at)
    audit.record(actor=actor, action="order.launch", obj=order, before=before,
                 after=audit.snapshot(order, ORDER_FIELDS)
                 | {"pieces": [p.serial for p in pieces], "deadline": check.as_dict()},
                 order_id=order.pk)
    return order


@transaction.atomic
def order_cancel(*, actor, order_id: int, reason: str) -> Order:
    order = _lock_draft(actor, order_id)
    reason = _text(reason, "reason", 2000)
    if not reason:
        raise ValidationFailed(_("Say why the order is cancelled."),
                               details={"field": "reason"})
    before = audit.snapshot(order, ORDER_FIELDS)
    order.status = OrderStatus.CANCELLED
    order.notes = (order.notes + f"\nCancelled: {reason}").strip()
    order.save()
    audit.record(actor=actor, action="order.cancel", obj=order, before=before,
                 after=audit.snapshot(order, ORDER_FIELDS) | {"reason": reason},
                 order_id=order.pk)
    return order


def order_mark_delivered_if_complete(*, order_id: int, at: dt.datetime) -> bool:
    """Called when a piece completes its last step, inside that transaction."""
    from etabli.production.models import Piece, PieceStatus

    order = Order.objects.select_for_update().get(pk=order_id)
    if order.status != OrderStatus.LAUNCHED:
        return False
    if Piece.objects.filter(order=order).exclude(status=PieceStatus.DELIVERED).exists():
        return False
    order.status = OrderStatus.DELIVERED
    order.delivered_at = at
    order.save(update_fields=["status", "delivered_at"])
    audit.record(actor=None, action="order.delivered", obj=order,
                 before={"status": OrderStatus.LAUNCHED}, after={"status": order.status},
                 order_id=order.pk)
    return True


# ---------------------------------------------------------------------------------------------
# change requests

CR_FIELDS = ["status", "impact_days", "new_promised_date", "assessment", "decision_comment"]


@transaction.atomic
def change_request_create(*, actor, order_id: int, description: str) -> ChangeRequest:
    from etabli.accounts.models import Role

    if not (actor.takes_orders or actor.role == Role.CLIENT):
        raise PermissionDenied(_("Only sales, production managers, administrators and the "
                                 "client can ask for a change."))
    order = _lock_order(actor, order_id)
    if order.status in (OrderStatus.DELIVERED, OrderStatus.CANCELLED):
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s.")
            % {"ref": order.reference, "status": OrderStatus(order.status).label.lower()})
    description = _text(description, "description", 8000)
    if not description:
        raise ValidationFailed(_("Describe the change asked for."),
                               details={"field": "description"})
    cr = ChangeRequest.objects.create(order=order, description=description, requested_by=actor)
    audit.record(actor=actor, action="change_request.create", obj=cr,
                 after={"description": description}, order_id=order.pk)
    return cr


def _lock_cr(actor, cr_id: int) -> ChangeRequest:
    cr = (ChangeRequest.objects.select_for_update(of=("self",)).select_related("order")
          .filter(pk=cr_id, order__in=Order.objects.visible_to(actor)).first())
    if cr is None:
        raise NotFound(_("No change request with id %(id)s.") % {"id": cr_id})
    return cr


def _require_order_open(cr: ChangeRequest) -> None:
    if cr.order.status in (OrderStatus.DELIVERED, OrderStatus.CANCELLED):
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s: the change can only be rejected.")
            % {"ref": cr.order.reference,
               "status": OrderStatus(cr.order.status).label.lower()},
            details={"order_status": cr.order.status})


def _cr_move(cr: ChangeRequest, to: str) -> None:
    if to not in CHANGE_REQUEST_TRANSITIONS[cr.status]:
        raise TransitionNotAllowed(
            _("This change request is %(status)s.")
            % {"status": ChangeRequestStatus(cr.status).label.lower()},
            details={"status": cr.status})
    cr.status = to


@transaction.atomic
def change_request_assess(*, actor, cr_id: int, impact_days: int,
                          new_promised_date: dt.date | None = None,
                          assessment: str = "") -> ChangeRequest:
    _require_order_role(actor)
    cr = _lock_cr(actor, cr_id)
    if isinstance(impact_days, bool) or not isinstance(impact_days, int) \
            or not -365 <= impact_days <= 365:
        raise ValidationFailed(_("Impact is a number of days between -365 and 365."),
                               details={"field": "impact_days"})
    before = audit.snapshot(cr, CR_FIELDS)
    _cr_move(cr, ChangeRequestStatus.ASSESSED)
    _require_order_open(cr)
    cr.impact_days = impact_days
    cr.new_promised_date = new_promised_date
    cr.assessment = _text(assessment, "assessment", 8000)
    cr.assessed_by, cr.assessed_at = actor, timezone.now()
    cr.save()
    audit.record(actor=actor, action="change_request.assess", obj=cr, before=before,
                 after=audit.snapshot(cr, CR_FIELDS), order_id=cr.order_id)
    return cr


@transaction.atomic
def change_request_decide(*, actor, cr_id: int, approve: bool,
                          comment: str = "") -> ChangeRequest:
    """Approve (the plan and the promise move by the assessed impact) or reject."""
    if not actor.runs_production:
        raise PermissionDenied(
            _("Only a production manager or administrator decides on changes."))
    cr = _lock_cr(actor, cr_id)
    before = audit.snapshot(cr, CR_FIELDS)
    if approve:
        if cr.status == ChangeRequestStatus.OPEN:
            raise TransitionNotAllowed(_("Assess the impact before approving the change."),
                                       details={"status": cr.status})
        _cr_move(cr, ChangeRequestStatus.APPROVED)
        _require_order_open(cr)
    else:
        _cr_move(cr, ChangeRequestStatus.REJECTED)
    cr.decided_by, cr.decided_at = actor, timezone.now()
    cr.decision_comment = _text(comment, "comment", 8000)
    cr.save()
    moved = 0
    if approve:
        order = Order.objects.select_for_update().get(pk=cr.order_id)
        order_before = audit.snapshot(order, ORDER_FIELDS)
        if order.status == OrderStatus.LAUNCHED:
            moved = order_plan_shift(order=order, days=cr.impact_days or 0)
        if cr.new_promised_date:
            order.promised_date = cr.new_promised_date
        elif cr.impact_days and order.promised_date:
            order.promised_date = order.promised_date + dt.timedelta(days=cr.impact_days)
        order.save()
        audit.record(actor=actor, action="order.replan", obj=order, before=order_before,
                     after=audit.snapshot(order, ORDER_FIELDS) | {"steps_moved": moved},
                     order_id=order.pk)
    audit.record(actor=actor, action="change_request.decide", obj=cr, before=before,
                 after=audit.snapshot(cr, CR_FIELDS), order_id=cr.order_id)
    return cr


# ---------------------------------------------------------------------------------------------
# reception

RECEPTION_FIELDS = ["reception_confirmed_at", "reception_confirmed_by", "reception_note"]


@transaction.atomic
def order_confirm_reception(*, actor, order_id: int, note: str = "") -> Order:
    """The client (or the house on their behalf) confirms the delivered pieces arrived and are
    accepted. Kept for the orders API; delivery's `reception_record` also takes reservations."""
    from etabli.accounts.models import Role
    from etabli.shipping.reception import reception_record

    if not (actor.takes_orders or actor.role == Role.CLIENT):
        raise PermissionDenied(_("Only the client or the house's sales, production managers "
                                 "and administrators confirm reception."))
    reception = reception_record(actor=actor, order_id=order_id, note=note)
    return Order.objects.get(pk=reception.order_id)
