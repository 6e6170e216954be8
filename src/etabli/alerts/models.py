"""Alerts: a problem found by a detection rule, stored once per cause, owned, acknowledged and
resolved (by a person with a comment, or by detection when the cause goes away)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _


class AlertKind(models.TextChoices):
    STEP_OVERDUE = "step_overdue", _("Step overdue")
    ORDER_AT_RISK = "order_at_risk", _("Order at risk")
    TRANSFER_NOT_RECEIVED = "transfer_not_received", _("Transfer not received")
    METAL_LOSS = "metal_loss", _("Metal loss over allowance")
    STONE_BREAKAGE = "stone_breakage", _("Stone breakage")
    QC_FAILURE = "qc_failure", _("Quality failure")
    PIECE_ON_HOLD = "piece_on_hold", _("Piece on hold")
    CHANGE_REQUEST_WAITING = "change_request_waiting", _("Change request waiting")


# Kinds a workshop member may see (about their own workshop only): never quality records,
# orders' promises or client change requests.
WORKSHOP_KINDS = frozenset({AlertKind.STEP_OVERDUE, AlertKind.TRANSFER_NOT_RECEIVED,
                            AlertKind.METAL_LOSS, AlertKind.STONE_BREAKAGE,
                            AlertKind.PIECE_ON_HOLD})


class Severity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


NOT_RESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

ALERT_TRANSITIONS: dict[str, set[str]] = {
    AlertStatus.OPEN: {AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED},
    AlertStatus.ACKNOWLEDGED: {AlertStatus.RESOLVED},
    AlertStatus.RESOLVED: set(),
}


class AlertRule(models.Model):
    """The stored settings of one detection rule (one row per kind, seeded by a migration)."""

    kind = models.CharField(max_length=30, choices=AlertKind.choices, unique=True,
                            verbose_name=_("kind"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    threshold = models.DecimalField(
        max_digits=10, decimal_places=2, default=0,
        help_text=_("When the rule fires (days, or grams for metal loss, or stones)"),
        verbose_name=_("threshold"))
    critical_threshold = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True,
        help_text=_("From this value on the alert is critical (empty: never)"),
        verbose_name=_("critical from"))
    margin_percent = models.PositiveSmallIntegerField(
        default=50, help_text=_("Step overdue: a step running longer than its planned duration "
                                "by this margin is overdue even before its due date"),
        verbose_name=_("margin %"))
    lookback_days = models.PositiveSmallIntegerField(
        default=30, help_text=_("Metal loss and breakage: how far back detection looks"),
        verbose_name=_("look back (days)"))
    severity = models.CharField(max_length=10, choices=Severity.choices,
                                default=Severity.WARNING, verbose_name=_("severity"))
    assigned_role = models.CharField(max_length=24, blank=True, verbose_name=_("assigned role"))
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+",
                                 verbose_name=_("assignee"))
    updated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("updated at"))
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("updated by"))

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["id"]

    def __str__(self) -> str:
        return str(AlertKind(self.kind).label)


class ObservedDuration(models.Model):
    """Median days a step really takes at a workshop, from recent history (refreshed by the
    `alerts.observed_durations` job), so the order-at-risk rule need not read history."""

    step = models.CharField(max_length=20, verbose_name=_("step"))
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE,
                                 related_name="+", verbose_name=_("workshop"))
    median_days = models.DecimalField(max_digits=8, decimal_places=2,
                                      verbose_name=_("median days"))
    sample_size = models.PositiveIntegerField(verbose_name=_("sample size"))
    computed_at = models.DateTimeField(verbose_name=_("computed at"))

    class Meta:
        verbose_name = _("observed duration")
        verbose_name_plural = _("observed durations")
        constraints = [models.UniqueConstraint(fields=["step", "workshop"],
                                               name="observed_duration_unique")]

    def __str__(self) -> str:
        return f"{self.step}@{self.workshop_id}: {self.median_days} d"


class AlertQuerySet(models.QuerySet):
    def visible_to(self, user) -> AlertQuerySet:
        """Production managers and admins see every alert; other house staff the alerts
        assigned to them or their role; a workshop member the alerts about their own
        workshop (of the kinds a workshop may know); client contacts none."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if user.runs_production:
            return self
        if user.role == Role.CLIENT:
            return self.none()
        if user.role == Role.WORKSHOP:
            return self.filter(workshop_id__in=user.workshop_ids(), kind__in=WORKSHOP_KINDS)
        return self.filter(Q(assignee=user) | Q(assigned_role=user.role))

    def not_resolved(self) -> AlertQuerySet:
        return self.filter(status__in=NOT_RESOLVED)


class Alert(models.Model):
    kind = models.CharField(max_length=30, choices=AlertKind.choices, verbose_name=_("kind"))
    severity = models.CharField(max_length=10, choices=Severity.choices,
                                default=Severity.WARNING, verbose_name=_("severity"))
    status = models.CharField(max_length=12, choices=AlertStatus.choices,
                              default=AlertStatus.OPEN, verbose_name=_("status"))
    cause_key = models.CharField(max_length=120, verbose_name=_("cause"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True,
                              on_delete=models.CASCADE, related_name="alerts",
                              verbose_name=_("piece"))
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="alerts", verbose_name=_("order"))
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="alerts",
                                 verbose_name=_("workshop"))
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="alerts",
                                 verbose_name=_("assignee"))
    assigned_role = models.CharField(max_length=24, blank=True, verbose_name=_("assigned role"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("details"))
    opened_at = models.DateTimeField(verbose_name=_("opened at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))
    acknowledged_at = models.DateTimeField(null=True, blank=True,
                                           verbose_name=_("acknowledged at"))
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+",
                                        verbose_name=_("acknowledged by"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    help_text=_("Empty when detection resolved it"),
                                    verbose_name=_("resolved by"))
    auto_resolved = models.BooleanField(default=False, verbose_name=_("resolved automatically"))
    resolution = models.TextField(blank=True, verbose_name=_("resolution"))

    objects = AlertQuerySet.as_manager()

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["status", "kind"]),
            models.Index(fields=["piece", "status"]),
            models.Index(fields=["order", "status"]),
            models.Index(fields=["workshop", "status"]),
            models.Index(fields=["cause_key"]),
            # The newest alerts not resolved yet (dashboard section, alert list): a short scan
            # however many are open.
            models.Index(fields=["-opened_at", "-id"], condition=Q(status__in=NOT_RESOLVED),
                         name="alert_unresolved_newest_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["cause_key"], condition=~Q(status="resolved"),
                name="one_unresolved_alert_per_cause",
                violation_error_message="There is already an unresolved alert for this cause."),
            models.CheckConstraint(
                condition=Q(severity__in=["info", "warning", "critical"]),
                name="alert_severity_known"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.cause_key}"

    @property
    def is_resolved(self) -> bool:
        return self.status == AlertStatus.RESOLVED

    def assigned_role_label(self) -> str:
        """The assigned role's name in the current language (empty when none)."""
        from etabli.accounts.models import Role

        try:
            return str(Role(self.assigned_role).label) if self.assigned_role else ""
        except ValueError:
            return self.assigned_role

    def title(self) -> str:
        """A short title in the current language, from the kind and the details."""
        p = self.params or {}
        subject = p.get("serial") or p.get("order") or p.get("slip") or ""
        label = str(AlertKind(self.kind).label) if self.kind in AlertKind.values else self.kind
        return f"{label}: {subject}" if subject else label

    def message(self) -> str:
        """One sentence in the current language, from the kind and the details."""
        p = dict(self.params or {})
        if p.get("step"):
            p["step"] = _step_label(p["step"])
        k = self.kind
        if k == AlertKind.STEP_OVERDUE:
            if p.get("overrun"):
                return _g("%(serial)s has been in %(step)s at %(workshop)s for %(days)s days "
                          "(planned %(planned)s).") % _safe(p, "serial", "step", "workshop",
                                                           "days", "planned")
            return _g("%(serial)s: %(step)s at %(workshop)s was due %(due)s, %(days)s days "
                      "late.") % _safe(p, "serial", "step", "workshop", "due", "days")
        if k == AlertKind.ORDER_AT_RISK:
            return _g("Order %(order)s is projected to finish %(finish)s; with the %(buffer)s-day "
                      "safety buffer that passes its promised date %(promised)s by %(days)s "
                      "days.") % _safe(p, "order", "finish", "buffer", "promised", "days")
        if k == AlertKind.TRANSFER_NOT_RECEIVED:
            return _g("Slip %(slip)s from %(source)s to %(destination)s was sent %(days)s days "
                      "ago and is not received.") % _safe(p, "slip", "source", "destination",
                                                          "days")
        if k == AlertKind.METAL_LOSS:
            return _g("Slip %(slip)s at %(workshop)s (%(operation)s): loss %(loss)s g against an "
                      "allowance of %(allowance)s g.") % _safe(p, "slip", "workshop",
                                                               "operation", "loss", "allowance")
        if k == AlertKind.STONE_BREAKAGE:
            return _g("%(count)s stone(s) of lot %(lot)s broken at %(workshop)s.") % _safe(
                p, "count", "lot", "workshop")
        if k == AlertKind.QC_FAILURE:
            return _g("%(serial)s failed quality control (%(nc)s): %(failed)s.") % _safe(
                p, "serial", "nc", "failed")
        if k == AlertKind.PIECE_ON_HOLD:
            return _g("%(serial)s has been on hold at %(workshop)s for %(days)s days.") % _safe(
                p, "serial", "workshop", "days")
        if k == AlertKind.CHANGE_REQUEST_WAITING:
            return _g("Change request #%(request)s on order %(order)s has waited %(days)s days "
                      "for a decision.") % _safe(p, "request", "order", "days")
        return self.title()


def _step_label(step) -> str:
    """The step's name in the current language (the details keep its code)."""
    from etabli.workshops.models import StepKind

    try:
        return str(StepKind(step).label)
    except ValueError:
        return str(step)


def _safe(params: dict, *names: str) -> dict:
    return {name: params.get(name, "—") for name in names}
