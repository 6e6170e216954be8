"""Alert writes by people: acknowledge, resolve, assign, and the rules' settings.

(Opening, updating and resolving by detection lives in `detection`.)
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.accounts.models import HOUSE_STAFF_ROLES, Role, User
from etabli.core import audit
from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed

from .models import ALERT_TRANSITIONS, Alert, AlertRule, AlertStatus, Severity

MAX_COMMENT = 2000


def manages_alerts(user) -> bool:
    """Production managers and admins: every alert, assignment and the rules."""
    return bool(getattr(user, "is_authenticated", False) and user.runs_production)


def can_handle(user, alert: Alert) -> bool:
    """Who may acknowledge or resolve: managers, the assignee, or a holder of the role."""
    if manages_alerts(user):
        return True
    if not user.is_active or user.role in (Role.WORKSHOP, Role.CLIENT):
        return False
    return alert.assignee_id == user.pk or (bool(alert.assigned_role)
                                            and alert.assigned_role == user.role)


def _get_for_update(actor, alert_id: int) -> Alert:
    if not 0 < alert_id < 2**63:
        raise NotFound(_("No such alert."))
    alert = Alert.objects.visible_to(actor).select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise NotFound(_("No such alert."))
    return alert


def _move(alert: Alert, to: str) -> None:
    if to not in ALERT_TRANSITIONS[alert.status]:
        raise TransitionNotAllowed(
            _("This alert is %(status)s: it cannot be %(action)s.")
            % {"status": AlertStatus(alert.status).label.lower(),
               "action": AlertStatus(to).label.lower()})


def _comment(text: str | None, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationFailed(_("Say how it was resolved."), details={"field": "comment"})
    if len(text) > MAX_COMMENT:
        raise ValidationFailed(_("The comment is too long (at most %(n)d characters).")
                               % {"n": MAX_COMMENT}, details={"field": "comment"})
    return text


@transaction.atomic
def alert_acknowledge(*, actor: User, alert_id: int, comment: str = "") -> Alert:
    alert = _get_for_update(actor, alert_id)
    if not can_handle(actor, alert):
        raise PermissionDenied(_("Only its assignee or a production manager can acknowledge "
                                 "this alert."))
    note = _comment(comment, required=False)
    _move(alert, AlertStatus.ACKNOWLEDGED)
    now = timezone.now()
    alert.status, alert.acknowledged_at, alert.acknowledged_by, alert.updated_at = (
        AlertStatus.ACKNOWLEDGED, now, actor, now)
    if note:
        alert.resolution = note
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at",
                              "resolution"])
    audit.record(actor=actor, action="alert.acknowledged", obj=alert,
                 before={"status": AlertStatus.OPEN},
                 after={"status": alert.status, "comment": note},
                 order_id=alert.order_id, piece_id=alert.piece_id)
    return alert


@transaction.atomic
def alert_resolve(*, actor: User, alert_id: int, comment: str) -> Alert:
    alert = _get_for_update(actor, alert_id)
    if not can_handle(actor, alert):
        raise PermissionDenied(_("Only its assignee or a production manager can resolve "
                                 "this alert."))
    note = _comment(comment, required=True)
    _move(alert, AlertStatus.RESOLVED)
    before = alert.status
    now = timezone.now()
    alert.status, alert.resolved_at, alert.resolved_by, alert.updated_at = (
        AlertStatus.RESOLVED, now, actor, now)
    alert.auto_resolved, alert.resolution = False, note
    alert.save(update_fields=["status", "resolved_at", "resolved_by", "updated_at",
                              "auto_resolved", "resolution"])
    audit.record(actor=actor, action="alert.resolved", obj=alert, before={"status": before},
                 after={"status": alert.status, "comment": note},
                 order_id=alert.order_id, piece_id=alert.piece_id)
    return alert


def _check_assignee(user_id: int | None) -> User | None:
    if user_id is None:
        return None
    person = User.objects.filter(pk=user_id, is_active=True).first()
    if person is None or person.role not in HOUSE_STAFF_ROLES:
        raise ValidationFailed(_("Alerts go to an active member of the house staff."),
                               details={"field": "assignee_id"})
    return person


def _check_role(role: str | None) -> str:
    role = (role or "").strip()
    if role and role not in {r.value for r in HOUSE_STAFF_ROLES}:
        raise ValidationFailed(_("Unknown role for alerts: %(role)s.") % {"role": role},
                               details={"field": "role"})
    return role


@transaction.atomic
def alert_assign(*, actor: User, alert_id: int, assignee_id: int | None = None,
                 role: str | None = None) -> Alert:
    """Give the alert to a person and/or a role (at least one)."""
    if not manages_alerts(actor):
        if Alert.objects.visible_to(actor).filter(pk=alert_id).exists():
            raise PermissionDenied(_("Only production managers and administrators assign "
                                     "alerts."))
        raise NotFound(_("No such alert."))
    alert = _get_for_update(actor, alert_id)
    if alert.status == AlertStatus.RESOLVED:
        raise TransitionNotAllowed(_("This alert is resolved: it cannot be reassigned."))
    person = _check_assignee(assignee_id)
    role = _check_role(role)
    if person is None and not role:
        raise ValidationFailed(_("Choose a person or a role."), details={"field": "assignee_id"})
    before = {"assignee": alert.assignee_id, "role": alert.assigned_role}
    alert.assignee, alert.assigned_role = person, role or (person.role if person else "")
    alert.updated_at = timezone.now()
    alert.save(update_fields=["assignee", "assigned_role", "updated_at"])
    audit.record(actor=actor, action="alert.assigned", obj=alert, before=before,
                 after={"assignee": alert.assignee_id, "role": alert.assigned_role},
                 order_id=alert.order_id, piece_id=alert.piece_id)
    return alert


RULE_FIELDS = ("enabled", "threshold", "critical_threshold", "margin_percent", "lookback_days",
               "severity", "assigned_role", "assignee_id")


def _decimal(value, name: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise ValidationFailed(_("A value is needed."), details={"field": name})
    if isinstance(value, bool):
        raise ValidationFailed(_("A number is needed."), details={"field": name})
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(_("A number is needed."), details={"field": name}) from None
    if not number.is_finite() or number < 0 or number >= Decimal("100000000"):
        raise ValidationFailed(_("Enter a number from 0 up."), details={"field": name})
    return number.quantize(Decimal("0.01"))


def _small_int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(_("A whole number is needed."), details={"field": name})
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationFailed(_("A whole number is needed."), details={"field": name}) from None
    if not low <= number <= high:
        raise ValidationFailed(_("Enter a number from %(low)d to %(high)d.")
                               % {"low": low, "high": high}, details={"field": name})
    return number


@transaction.atomic
def rule_update(*, actor: User, kind: str, **changes) -> AlertRule:
    """Change a rule's settings; only the fields given change."""
    if not manages_alerts(actor):
        raise PermissionDenied(_("Only production managers and administrators change alert "
                                 "rules."))
    rule = AlertRule.objects.select_for_update().filter(kind=kind).first()
    if rule is None:
        raise NotFound(_("No such alert rule."))
    unknown = set(changes) - set(RULE_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown setting: %(names)s.")
                               % {"names": ", ".join(sorted(unknown))})
    before = audit.snapshot(rule, [f.replace("_id", "") if f == "assignee_id" else f
                                   for f in RULE_FIELDS])
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise ValidationFailed(_("Enabled is yes or no."), details={"field": "enabled"})
        rule.enabled = changes["enabled"]
    if "threshold" in changes:
        rule.threshold = _decimal(changes["threshold"], "threshold")
    if "critical_threshold" in changes:
        rule.critical_threshold = _decimal(changes["critical_threshold"], "critical_threshold",
                                           allow_none=True)
    if "margin_percent" in changes:
        rule.margin_percent = _small_int(changes["margin_percent"], "margin_percent", 0, 1000)
    if "lookback_days" in changes:
        rule.lookback_days = _small_int(changes["lookback_days"], "lookback_days", 1, 3650)
    if "severity" in changes:
        if changes["severity"] not in Severity.values:
            raise ValidationFailed(_("Unknown severity."), details={"field": "severity"})
        rule.severity = changes["severity"]
    if "assigned_role" in changes:
        rule.assigned_role = _check_role(changes["assigned_role"])
    if "assignee_id" in changes:
        rule.assignee = _check_assignee(changes["assignee_id"])
    if not rule.assigned_role and rule.assignee is None:
        raise ValidationFailed(_("A rule's alerts go to a person or a role."),
                               details={"field": "assigned_role"})
    rule.updated_at, rule.updated_by = timezone.now(), actor
    rule.save()
    audit.record(actor=actor, action="alert_rule.updated", obj=rule, before=before,
                 after=audit.snapshot(rule, [f.replace("_id", "") if f == "assignee_id" else f
                                             for f in RULE_FIELDS]))
    return rule
