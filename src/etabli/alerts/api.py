"""Alerts: the /api/v1/alerts... endpoints.

Everyone reads the alerts in their scope (`Alert.objects.visible_to`); production managers and
admins assign and tune the rules; the assignee (or a holder of the assigned role) and managers
acknowledge and resolve. An alert outside the caller's scope is a 404.
"""


import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import StrictBool

from etabli.accounts.models import Role
from etabli.core.api import Pagination
from etabli.core.errors import NotFound, PermissionDenied

from . import selectors, services
from .models import AlertKind, AlertStatus, Severity

router = Router(tags=["Alerts"])


def _is_workshop(context) -> bool:
    user = getattr(context.get("request"), "auth", None) if context else None
    return getattr(user, "role", None) == Role.WORKSHOP


class AlertOut(Schema):
    id: int
    kind: AlertKind
    kind_label: str
    severity: Severity
    status: AlertStatus
    title: str
    message: str
    cause_key: str
    piece_id: int | None
    piece_serial: str | None
    order_id: int | None
    order_reference: str | None
    workshop_id: int | None
    assignee_id: int | None
    assigned_role: str
    params: dict[str, Any]
    opened_at: dt.datetime
    updated_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    auto_resolved: bool
    resolution: str

    @staticmethod
    def resolve_kind_label(obj) -> str:
        return str(AlertKind(obj.kind).label)

    @staticmethod
    def resolve_title(obj) -> str:
        return obj.title()

    @staticmethod
    def resolve_message(obj) -> str:
        return obj.message()

    @staticmethod
    def resolve_piece_serial(obj) -> str | None:
        return obj.piece.serial if obj.piece_id else None

    @staticmethod
    def resolve_order_reference(obj, context) -> str | None:
        # Workshops see pieces, never orders.
        if not obj.order_id or _is_workshop(context):
            return None
        return obj.order.reference

    @staticmethod
    def resolve_order_id(obj, context) -> int | None:
        return None if _is_workshop(context) else obj.order_id


class CommentIn(Schema):
    comment: str = Field("", max_length=2000)


class ResolveIn(Schema):
    comment: str = Field(..., max_length=2000)


class AssignIn(Schema):
    assignee_id: int | None = Field(None, ge=1, le=2**31 - 1)
    role: str | None = Field(None, max_length=24)


class RuleOut(Schema):
    kind: AlertKind
    label: str
    enabled: bool
    threshold: Decimal
    critical_threshold: Decimal | None
    margin_percent: int
    lookback_days: int
    severity: Severity
    assigned_role: str
    assignee_id: int | None
    updated_at: dt.datetime | None

    @staticmethod
    def resolve_label(obj) -> str:
        return str(AlertKind(obj.kind).label)


class RuleIn(Schema):
    enabled: StrictBool | None = None
    threshold: Decimal | None = Field(None, ge=0, lt=100_000_000)
    critical_threshold: Decimal | None = Field(None, ge=0, lt=100_000_000)
    margin_percent: int | None = Field(None, ge=0, le=1000)
    lookback_days: int | None = Field(None, ge=1, le=3650)
    severity: Severity | None = None
    assigned_role: str | None = Field(None, max_length=24)
    assignee_id: int | None = Field(None, ge=1, le=2**31 - 1)


def _get(request, alert_id: int):
    alert = selectors.alert_get(request.auth, alert_id) if 0 < alert_id < 2**63 else None
    if alert is None:
        raise NotFound(_("No such alert."))
    return alert


@router.get("/alerts", response=list[AlertOut], summary="Alerts")
@paginate(Pagination)
def list_alerts(request, filters: Query[selectors.AlertFilters]):
    """Newest first. Filter by `status`, `kind`, `severity`, `mine` (assigned to me or my
    role), `open_only`, `piece_id`, `order_id`."""
    return selectors.alert_list(request.auth, filters)


@router.get("/alerts/rules", response=list[RuleOut], summary="Alert rules")
def list_rules(request):
    if not services.manages_alerts(request.auth):
        raise PermissionDenied(_("Only production managers and administrators see the alert "
                                 "rules."))
    return list(selectors.rules())


@router.patch("/alerts/rules/{kind}", response=RuleOut, summary="Change an alert rule")
def update_rule(request, kind: AlertKind, payload: RuleIn):
    """Only what is sent changes; `critical_threshold: null` removes the critical level."""
    rule = services.rule_update(actor=request.auth, kind=kind,
                                **payload.dict(exclude_unset=True))
    return rule


@router.get("/alerts/{alert_id}", response=AlertOut, summary="An alert")
def get_alert(request, alert_id: int):
    return _get(request, alert_id)


@router.post("/alerts/{alert_id}/acknowledge", response=AlertOut,
             summary="Acknowledge an alert")
def acknowledge(request, alert_id: int, payload: CommentIn):
    services.alert_acknowledge(actor=request.auth, alert_id=alert_id, comment=payload.comment)
    return _get(request, alert_id)


@router.post("/alerts/{alert_id}/resolve", response=AlertOut, summary="Resolve an alert")
def resolve(request, alert_id: int, payload: ResolveIn):
    """A comment saying how it was resolved is required."""
    services.alert_resolve(actor=request.auth, alert_id=alert_id, comment=payload.comment)
    return _get(request, alert_id)


@router.post("/alerts/{alert_id}/assign", response=AlertOut,
             summary="Assign an alert to a person or a role")
def assign(request, alert_id: int, payload: AssignIn):
    services.alert_assign(actor=request.auth, alert_id=alert_id,
                          assignee_id=payload.assignee_id, role=payload.role)
    return _get(request, alert_id)
