"""Design & CAD: a brief per order line, design rounds sent to the client, the client's formal
approval, and the prototypes made from the approved design.

The line's material budget (metal grams, stone count and carats) and its target price stay on
the order line itself, the one source; the brief's service updates them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etabli.core.models import AppendOnly


def _design_lines(user):
    """The order lines whose design work `user` may see: house staff on the orders they see,
    a client contact on their own client's orders; workshops none."""
    from etabli.accounts.models import Role
    from etabli.orders.models import Order, OrderLine

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return OrderLine.objects.none()
    if user.sees_clients or user.role == Role.CLIENT:
        return OrderLine.objects.filter(order__in=Order.objects.visible_to(user))
    return OrderLine.objects.none()


class DesignBriefQuerySet(models.QuerySet):
    def visible_to(self, user) -> DesignBriefQuerySet:
        """The house's staff on the orders they see; the brief is the house's working paper,
        so clients and workshops see none."""
        if not getattr(user, "is_authenticated", False) or not user.is_active \
                or not user.sees_clients:
            return self.none()
        return self.filter(line__in=_design_lines(user))


class DesignBrief(models.Model):
    """What the client wants from a line's design, and what constrains it."""

    line = models.OneToOneField("orders.OrderLine", on_delete=models.CASCADE,
                                related_name="design_brief", verbose_name=_("order line"))
    client_intent = models.TextField(blank=True, verbose_name=_("client's intent"))
    technical_constraints = models.TextField(blank=True,
                                             verbose_name=_("technical constraints"))
    aesthetic_constraints = models.TextField(blank=True,
                                             verbose_name=_("aesthetic constraints"))
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("updated by"))
    updated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("updated at"))

    objects = DesignBriefQuerySet.as_manager()

    class Meta:
        verbose_name = _("design brief")
        verbose_name_plural = _("design briefs")

    def __str__(self) -> str:
        return f"Brief {self.line_id}"


class RoundStatus(models.TextChoices):
    DRAFT = "draft", _("Being prepared")
    SENT = "sent", _("Sent to the client")
    APPROVED = "approved", _("Approved")
    CHANGES_REQUESTED = "changes_requested", _("Changes requested")


ROUND_TRANSITIONS: dict[str, set[str]] = {
    RoundStatus.DRAFT: {RoundStatus.SENT},
    RoundStatus.SENT: {RoundStatus.APPROVED, RoundStatus.CHANGES_REQUESTED},
    RoundStatus.APPROVED: set(),
    RoundStatus.CHANGES_REQUESTED: set(),
}
# A round still open (being prepared or waiting for the client); a line has at most one.
OPEN_ROUND_STATUSES = (RoundStatus.DRAFT, RoundStatus.SENT)
DECIDED_ROUND_STATUSES = (RoundStatus.APPROVED, RoundStatus.CHANGES_REQUESTED)


class DesignRoundQuerySet(models.QuerySet):
    def visible_to(self, user) -> DesignRoundQuerySet:
        """House staff see every round of the lines they see; a client contact the rounds sent
        to them on their own orders (never a draft); workshops none."""
        from etabli.accounts.models import Role

        lines = _design_lines(user)
        if getattr(user, "role", None) == Role.CLIENT:
            return self.filter(line__in=lines).exclude(status=RoundStatus.DRAFT)
        return self.filter(line__in=lines)


class DesignRound(models.Model):
    """One set of files (CAD and renders) sent to the client for a decision."""

    line = models.ForeignKey("orders.OrderLine", on_delete=models.CASCADE,
                             related_name="design_rounds", verbose_name=_("order line"))
    number = models.PositiveSmallIntegerField(verbose_name=_("number"))
    status = models.CharField(max_length=20, choices=RoundStatus.choices,
                              default=RoundStatus.DRAFT, verbose_name=_("status"))
    designer_note = models.TextField(blank=True, verbose_name=_("designer's note"))
    estimated_metal_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                            blank=True, verbose_name=_("estimated metal g"))
    metal_source = models.CharField(max_length=10, blank=True,
                                    help_text=_("'cad' when weighed from the CAD mesh, "
                                                "'entered' when typed"),
                                    verbose_name=_("metal estimate source"))
    estimated_stone_count = models.PositiveIntegerField(null=True, blank=True,
                                                        verbose_name=_("estimated stones"))
    estimated_stone_ct = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                             blank=True, verbose_name=_("estimated carats"))
    files = models.ManyToManyField("documents.Document", blank=True,
                                   related_name="design_rounds", verbose_name=_("files"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("created by"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("sent by"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("decided by"))
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    decided_on_behalf = models.BooleanField(default=False,
                                            verbose_name=_("decided on the client's behalf"))
    decision_comment = models.TextField(blank=True, verbose_name=_("decision comment"))

    objects = DesignRoundQuerySet.as_manager()

    class Meta:
        verbose_name = _("design round")
        verbose_name_plural = _("design rounds")
        ordering = ["line", "number"]
        constraints = [
            models.UniqueConstraint(fields=["line", "number"], name="design_round_number_unique",
                                    violation_error_message=_("This round number exists already.")),
            models.UniqueConstraint(
                fields=["line"], condition=Q(status__in=["draft", "sent"]),
                name="one_open_design_round_per_line",
                violation_error_message=_("A line has one round open at a time.")),
            models.CheckConstraint(condition=Q(number__gte=1), name="design_round_number_pos"),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(sent_at__isnull=False),
                name="design_round_sent_has_date"),
        ]

    def __str__(self) -> str:
        return f"Round {self.number} of line {self.line_id}"


class DesignApprovalQuerySet(models.QuerySet):
    def visible_to(self, user) -> DesignApprovalQuerySet:
        return self.filter(round__in=DesignRound.objects.visible_to(user))


class DesignApproval(AppendOnly, models.Model):
    """The client's formal approval of one round: who, when, which files exactly, and how the
    design stood against the line's budget at that moment. Written once, never changed; a
    prototype that needs CAD changes later invalidates it (recorded on the prototype)."""

    append_only_message = _("A design approval is a formal record: it is never changed.")

    round = models.OneToOneField(DesignRound, on_delete=models.CASCADE, related_name="approval",
                                 verbose_name=_("round"))
    line = models.ForeignKey("orders.OrderLine", on_delete=models.CASCADE,
                             related_name="design_approvals", verbose_name=_("order line"))
    round_number = models.PositiveSmallIntegerField(verbose_name=_("round number"))
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("approved by"))
    approved_at = models.DateTimeField(verbose_name=_("approved at"))
    on_behalf = models.BooleanField(default=False,
                                    help_text=_("Recorded by the house from the client's "
                                                "written approval"),
                                    verbose_name=_("on the client's behalf"))
    note = models.TextField(blank=True, verbose_name=_("note"))
    document = models.ForeignKey("documents.Document", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("written approval"))
    # The exact files approved: [{id, name, kind, version, sha256, size_bytes}].
    files = models.JSONField(default=list, verbose_name=_("files"))
    estimated_metal_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                            blank=True, verbose_name=_("estimated metal g"))
    budget_metal_g = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                         verbose_name=_("budget metal g"))
    metal_difference_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                             blank=True, verbose_name=_("metal difference g"))
    estimated_stone_count = models.PositiveIntegerField(null=True, blank=True,
                                                        verbose_name=_("estimated stones"))
    budget_stone_count = models.PositiveIntegerField(null=True, blank=True,
                                                     verbose_name=_("budget stones"))
    stone_count_difference = models.IntegerField(null=True, blank=True,
                                                 verbose_name=_("stone count difference"))
    estimated_stone_ct = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                             blank=True, verbose_name=_("estimated carats"))
    budget_stone_ct = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                          blank=True, verbose_name=_("budget carats"))
    stone_ct_difference = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                              blank=True, verbose_name=_("carat difference"))

    objects = DesignApprovalQuerySet.as_manager()

    class Meta:
        verbose_name = _("design approval")
        verbose_name_plural = _("design approvals")
        ordering = ["line", "round_number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(on_behalf=False) | (Q(document__isnull=False) & ~Q(note="")),
                name="design_approval_on_behalf_has_proof",
                violation_error_message=_("An approval recorded on the client's behalf needs a "
                                          "note and the client's written approval.")),
        ]

    def __str__(self) -> str:
        return f"Approval of round {self.round_number} (line {self.line_id})"


class PrototypeMethod(models.TextChoices):
    WAX_PRINT = "wax_print", _("Wax 3D print")
    RESIN_PRINT = "resin_print", _("Resin 3D print")
    PROTOTYPE_CASTING = "prototype_casting", _("Prototype casting")
    CNC = "cnc", _("CNC milling")


class PrototypeResult(models.TextChoices):
    APPROVED = "approved", _("Approved")
    CHANGES_NEEDED = "changes_needed", _("CAD changes needed")


class PrototypeQuerySet(models.QuerySet):
    def visible_to(self, user) -> PrototypeQuerySet:
        """House staff see the prototypes of the orders they see; a workshop member those made
        at their workshops, on pieces they can see; clients none."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role
        from etabli.production.models import Piece

        if user.sees_clients:
            return self.filter(line__in=_design_lines(user))
        if user.role == Role.WORKSHOP:
            return self.filter(piece__in=Piece.objects.visible_to(user),
                               run__workshop_id__in=user.workshop_ids())
        return self.none()


class Prototype(AppendOnly, models.Model):
    """The prototype made at one prototyping step of a piece, its fit test and its result."""

    append_only_message = _("A prototype record is never changed: record the next prototype.")

    piece = models.ForeignKey("production.Piece", on_delete=models.PROTECT,
                              related_name="prototypes", verbose_name=_("piece"))
    line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT,
                             related_name="prototypes", verbose_name=_("order line"))
    run = models.OneToOneField("production.StepRun", on_delete=models.PROTECT,
                               related_name="prototype", verbose_name=_("prototyping step"))
    method = models.CharField(max_length=20, choices=PrototypeMethod.choices,
                              verbose_name=_("method"))
    fit_tested = models.BooleanField(default=False, verbose_name=_("fit tested"))
    fit_ok = models.BooleanField(null=True, blank=True, verbose_name=_("fits"))
    fit_notes = models.TextField(blank=True, verbose_name=_("fit notes"))
    result = models.CharField(max_length=20, choices=PrototypeResult.choices,
                              verbose_name=_("result"))
    reason = models.TextField(blank=True, help_text=_("Why the CAD must change"),
                              verbose_name=_("reason"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))
    # The line's approval this prototype withdrew (CAD changes needed): a new round is needed.
    invalidates = models.OneToOneField(DesignApproval, null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="invalidated_by",
                                       verbose_name=_("invalidates"))
    rework_event = models.ForeignKey("production.TrackingEvent", null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("rework event"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(verbose_name=_("recorded at"))

    objects = PrototypeQuerySet.as_manager()

    class Meta:
        verbose_name = _("prototype")
        verbose_name_plural = _("prototypes")
        ordering = ["piece", "recorded_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(result="approved") | ~Q(reason=""),
                                   name="prototype_changes_have_reason",
                                   violation_error_message=_("Say why the CAD must change.")),
            models.CheckConstraint(condition=Q(fit_tested=True) | Q(fit_ok__isnull=True),
                                   name="prototype_fit_result_needs_test"),
        ]

    def __str__(self) -> str:
        return f"Prototype of {self.piece_id} ({self.result})"
