"""Alert reads, scoped to the user (`Alert.objects.visible_to`)."""

from __future__ import annotations

from django.db.models import Q
from pydantic import BaseModel

from etabli.accounts.models import Role, User

from .models import NOT_RESOLVED, WORKSHOP_KINDS, Alert, AlertKind, AlertRule, AlertStatus, Severity

_RELATED = ("piece", "order", "workshop", "assignee")


class AlertFilters(BaseModel):
    """The one filter definition of the alert list (page and API)."""

    status: AlertStatus | None = None
    kind: AlertKind | None = None
    severity: Severity | None = None
    mine: bool = False
    open_only: bool = False
    piece_id: int | None = None
    order_id: int | None = None


def alert_list(user, filters: AlertFilters | None = None):
    filters = filters or AlertFilters()
    qs = Alert.objects.visible_to(user).select_related(*_RELATED)
    if filters.status:
        qs = qs.filter(status=filters.status)
    elif filters.open_only:
        qs = qs.filter(status__in=NOT_RESOLVED)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.piece_id:
        qs = qs.filter(piece_id=filters.piece_id)
    if filters.order_id:
        qs = qs.filter(order_id=filters.order_id)
    if filters.mine:
        qs = qs.filter(Q(assignee=user) | Q(assignee__isnull=True, assigned_role=user.role))
    return qs.order_by("-opened_at", "-id")


def alert_get(user, alert_id: int) -> Alert | None:
    return Alert.objects.visible_to(user).select_related(*_RELATED).filter(pk=alert_id).first()


def open_alerts(user, *, piece=None, order=None, limit: int | None = None):
    qs = Alert.objects.visible_to(user).filter(status__in=NOT_RESOLVED)\
        .select_related(*_RELATED)
    if piece is not None:
        qs = qs.filter(piece=piece)
    if order is not None:
        qs = qs.filter(order=order)
    qs = qs.order_by("-opened_at", "-id")
    return list(qs[:limit]) if limit else list(qs)


def open_count(user) -> int:
    return Alert.objects.visible_to(user).filter(status__in=NOT_RESOLVED).count()


def rules():
    return AlertRule.objects.select_related("assignee").order_by("id")


def owners(alert: Alert) -> list[User]:
    """Who should hear of the alert: its assignee, else the active users of its role; a
    workshop member only for an alert about their own workshop (of a kind workshops see)."""
    if alert.assignee_id:
        person = alert.assignee
        if person is None or not person.is_active:
            return []
        if person.role == Role.WORKSHOP and not (
                alert.kind in WORKSHOP_KINDS and alert.workshop_id in person.workshop_ids()):
            return []
        return [person] if person.role != Role.CLIENT else []
    role = alert.assigned_role
    if not role or role == Role.CLIENT:
        return []
    users = User.objects.filter(is_active=True, role=role)
    if role == Role.WORKSHOP:
        if alert.workshop_id is None or alert.kind not in WORKSHOP_KINDS:
            return []
        users = users.filter(workshops=alert.workshop_id)
    return list(users.order_by("id"))
