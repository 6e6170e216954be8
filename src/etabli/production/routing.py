"""Route templates and the route of an order before launch."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.workshops.models import StepKind, Workshop

from .access import check_can_plan
from .models import OrderRouteStep, RouteTemplate, RouteTemplateStep
from .services import (
    _clean_operations,
    skip_document_of,
    validate_skip,
    validate_workshop_for_step,
)


def _clean_steps(steps: list[dict]) -> list[dict]:
    if not steps:
        raise ValidationFailed(_("A route needs steps."), details={"field": "steps"})
    cleaned = []
    for i, raw in enumerate(steps, start=1):
        step = raw.get("step")
        if step not in StepKind.values:
            raise ValidationFailed(_("Step %(n)s: unknown step '%(step)s'.")
                                   % {"n": i, "step": step},
                                   details={"field": f"steps.{i}.step"})
        days = raw.get("planned_days", 1)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 120:
            raise ValidationFailed(_("Step %(n)s: planned days are between 1 and 120.")
                                   % {"n": i},
                                   details={"field": f"steps.{i}.planned_days"})
        workshop = None
        if raw.get("workshop"):
            workshop = Workshop.objects.filter(code=raw["workshop"]).first()
            if workshop is None:
                raise NotFound(_("Step %(n)s: no workshop '%(workshop)s'.")
                               % {"n": i, "workshop": raw["workshop"]},
                               details={"field": f"steps.{i}.workshop"})
            validate_workshop_for_step(workshop, step)
        cleaned.append({"step": step, "planned_days": days, "workshop": workshop,
                        "operations": _clean_operations(step, raw.get("operations"))})
    kinds = [s["step"] for s in cleaned]
    if kinds[0] != StepKind.ORDER_RECEIPT or kinds[-1] != StepKind.DELIVERY:
        raise ValidationFailed(_("A route starts with order receipt and ends with delivery."),
                               details={"field": "steps"})
    if kinds.count(StepKind.ORDER_RECEIPT) != 1 or kinds.count(StepKind.DELIVERY) != 1:
        raise ValidationFailed(_("A route has one order receipt and one delivery."),
                               details={"field": "steps"})
    return cleaned


@transaction.atomic
def route_template_create(*, actor, code: str, name: str, steps: list[dict],
                          description: str = "", is_default: bool = False) -> RouteTemplate:
    if actor is not None:
        check_can_plan(actor)
    code = (code or "").strip().lower()
    if not code or not (name or "").strip():
        raise ValidationFailed(_("A route template needs a code and a name."))
    if RouteTemplate.objects.filter(code=code).exists():
        raise Conflict(_("A route template '%(code)s' already exists.") % {"code": code},
                       details={"field": "code"})
    cleaned = _clean_steps(steps)
    if is_default:
        RouteTemplate.objects.filter(is_default=True).update(is_default=False)
    template = RouteTemplate.objects.create(code=code, name=name.strip(),
                                            description=description, is_default=is_default)
    for position, s in enumerate(cleaned, start=1):
        RouteTemplateStep.objects.create(template=template, position=position, **s)
    audit.record(actor=actor, action="route_template.create", obj=template,
                 after={"code": code, "steps": [s["step"] for s in cleaned]})
    return template


def order_route_copy(*, order, template: RouteTemplate) -> None:
    """Replace a draft order's route with a copy of `template` (inside the caller's atomic)."""
    order.route.all().delete()
    OrderRouteStep.objects.bulk_create([
        OrderRouteStep(order=order, position=s.position, step=s.step,
                       operations=list(s.operations), planned_days=s.planned_days,
                       workshop=s.workshop)
        for s in template.steps.order_by("position")
    ])


def _lock_draft(actor, order_id: int):
    from etabli.orders.models import Order, OrderStatus

    order = Order.objects.visible_to(actor).select_for_update(of=("self",)).filter(
        pk=order_id).first()
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    if not actor.takes_orders:
        raise PermissionDenied(_("Only sales, production managers and administrators change "
                                 "an order's route."))
    if order.status != OrderStatus.DRAFT:
        raise TransitionNotAllowed(
            _("The order is launched: change each piece's route instead."),
            details={"status": order.status})
    return order


def _route_step(order, step_id: int) -> OrderRouteStep:
    rs = order.route.filter(pk=step_id).first()
    if rs is None:
        raise NotFound(_("Step %(id)s is not part of this order's route.") % {"id": step_id})
    return rs


@transaction.atomic
def order_route_step_update(*, actor, order_id: int, step_id: int,
                            workshop_id: int | None = None, planned_days: int | None = None,
                            operations: list[str] | None = None) -> OrderRouteStep:
    order = _lock_draft(actor, order_id)
    rs = _route_step(order, step_id)
    before = audit.snapshot(rs, ["workshop", "planned_days", "operations"])
    if workshop_id is not None:
        workshop = Workshop.objects.filter(pk=workshop_id).first()
        if workshop is None:
            raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id},
                           details={"field": "workshop_id"})
        validate_workshop_for_step(workshop, rs.step)
        rs.workshop = workshop
    if planned_days is not None:
        if not 1 <= planned_days <= 120:
            raise ValidationFailed(_("Planned days are between 1 and 120."),
                                   details={"field": "planned_days"})
        rs.planned_days = planned_days
    if operations is not None:
        rs.operations = _clean_operations(rs.step, operations)
    rs.save()
    audit.record(actor=actor, action="order_route.update", obj=rs, before=before,
                 after=audit.snapshot(rs, ["workshop", "planned_days", "operations"]),
                 order_id=order.pk)
    return rs


@transaction.atomic
def order_route_step_skip(*, actor, order_id: int, step_id: int, skip: bool = True,
                          reason: str = "", comment: str = "", reference: str = "",
                          document_id: int | None = None) -> OrderRouteStep:
    order = _lock_draft(actor, order_id)
    rs = _route_step(order, step_id)
    fields = ["skipped", "skip_reason", "skip_comment", "skip_reference", "skip_document"]
    before = audit.snapshot(rs, fields)
    comment, reference = (comment or "").strip(), (reference or "").strip()[:200]
    if skip:
        document = skip_document_of(order.pk, document_id)
        validate_skip(rs.step, reason, comment, reference, document)
        rs.skipped, rs.skip_reason, rs.skip_comment, rs.skip_reference = (
            True, reason, comment, reference)
        rs.skip_document = document
    else:
        rs.skipped, rs.skip_reason, rs.skip_comment, rs.skip_reference = False, "", "", ""
        rs.skip_document = None
    rs.save()
    audit.record(actor=actor, action="order_route.skip" if skip else "order_route.unskip",
                 obj=rs, before=before, after=audit.snapshot(rs, fields),
                 order_id=order.pk)
    return rs


@transaction.atomic
def order_route_step_add(*, actor, order_id: int, step: str, after_step_id: int,
                         planned_days: int = 1, workshop_id: int | None = None,
                         operations: list[str] | None = None) -> OrderRouteStep:
    order = _lock_draft(actor, order_id)
    if step not in StepKind.values or step in (StepKind.ORDER_RECEIPT, StepKind.DELIVERY):
        raise ValidationFailed(_("'%(step)s' is not a step that can be added.") % {"step": step},
                               details={"field": "step"})
    after = _route_step(order, after_step_id)
    if after.step == StepKind.DELIVERY:
        raise ValidationFailed(_("Nothing comes after delivery."), details={"field": "after"})
    if not 1 <= planned_days <= 120:
        raise ValidationFailed(_("Planned days are between 1 and 120."),
                               details={"field": "planned_days"})
    workshop = None
    if workshop_id is not None:
        workshop = Workshop.objects.filter(pk=workshop_id).first()
        if workshop is None:
            raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id},
                           details={"field": "workshop_id"})
        validate_workshop_for_step(workshop, step)
    for other in order.route.filter(position__gt=after.position).order_by("-position"):
        other.position += 1
        other.save(update_fields=["position"])
    rs = OrderRouteStep.objects.create(order=order, position=after.position + 1, step=step,
                                       planned_days=planned_days, workshop=workshop,
                                       operations=_clean_operations(step, operations))
    audit.record(actor=actor, action="order_route.add", obj=rs,
                 after={"step": step, "position": rs.position}, order_id=order.pk)
    return rs


@transaction.atomic
def order_route_reorder(*, actor, order_id: int, step_ids: list[int]) -> list[OrderRouteStep]:
    order = _lock_draft(actor, order_id)
    steps = list(order.route.order_by("position"))
    if sorted(step_ids) != sorted(s.pk for s in steps) or len(set(step_ids)) != len(step_ids):
        raise ValidationFailed(_("List every step of the route, each once, in the new order."),
                               details={"field": "step_ids"})
    by_id = {s.pk: s for s in steps}
    if by_id[step_ids[0]].step != StepKind.ORDER_RECEIPT or \
            by_id[step_ids[-1]].step != StepKind.DELIVERY:
        raise ValidationFailed(_("Order receipt stays first and delivery last."),
                               details={"field": "step_ids"})
    before = [s.step for s in steps]
    for position, sid in enumerate(step_ids, start=1):
        by_id[sid].position = position
        by_id[sid].save(update_fields=["position"])
    audit.record(actor=actor, action="order_route.reorder", obj=order,
                 before={"steps": before}, after={"steps": [by_id[i].step for i in step_ids]},
                 order_id=order.pk)
    return [by_id[i] for i in step_ids]
