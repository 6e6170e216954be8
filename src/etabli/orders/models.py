from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etabli.clients.models import Channel


class OrderStatus(models.TextChoices):
    DRAFT = "draft", _("Being qualified")
    LAUNCHED = "launched", _("In production")
    DELIVERED = "delivered", _("Delivered")
    # Every piece delivered and accepted by the client (reservations resolved).
    CLOSED = "closed", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")


ORDER_TRANSITIONS: dict[str, set[str]] = {
    OrderStatus.DRAFT: {OrderStatus.LAUNCHED, OrderStatus.CANCELLED},
    OrderStatus.LAUNCHED: {OrderStatus.DELIVERED},
    OrderStatus.DELIVERED: {OrderStatus.CLOSED},
    OrderStatus.CLOSED: set(),
    OrderStatus.CANCELLED: set(),
}


class OrderQuerySet(models.QuerySet):
    def visible_to(self, user) -> OrderQuerySet:
        """House-wide roles see every order, a client contact their client's orders, designers,
        inspectors and logistics the orders of pieces at their step; workshops see no orders."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role
        from etabli.production.models import Piece

        if user.is_house_wide:
            return self
        if user.role == Role.CLIENT:
            return self.filter(client_id=user.client_id)
        if user.role in {Role.DESIGNER, Role.QUALITY, Role.LOGISTICS}:
            return self.filter(pk__in=Piece.objects.visible_to(user).values("order_id"))
        return self.none()


class Order(models.Model):
    reference = models.CharField(max_length=30, unique=True, verbose_name=_("reference"))
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="orders",
                               verbose_name=_("client"))
    client_reference = models.CharField(max_length=60, blank=True,
                                        help_text=_("The client's own purchase order reference"),
                                        verbose_name=_("client reference"))
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.DIRECT,
                               verbose_name=_("channel"))
    status = models.CharField(max_length=10, choices=OrderStatus.choices,
                              default=OrderStatus.DRAFT, db_index=True, verbose_name=_("status"))
    promised_date = models.DateField(null=True, blank=True, verbose_name=_("promised date"))
    currency = models.CharField(max_length=3, default="EUR", verbose_name=_("currency"))
    # The language of the order's printed documents (the client's, when the order is taken).
    language = models.CharField(max_length=8, default="en",
                                choices=[("en", "English"), ("fr", "Français")],
                                verbose_name=_("language"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))
    route_template = models.ForeignKey("production.RouteTemplate", null=True, blank=True,
                                       on_delete=models.PROTECT, related_name="+",
                                       verbose_name=_("route template"))
    deadline_override_reason = models.TextField(blank=True,
                                                verbose_name=_("deadline override reason"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    launched_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    verbose_name=_("launched by"))
    launched_at = models.DateTimeField(null=True, blank=True, verbose_name=_("launched at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    # The client's confirmation that the delivered pieces arrived (the end of step 7).
    reception_confirmed_at = models.DateTimeField(null=True, blank=True,
                                                  verbose_name=_("reception confirmed at"))
    reception_confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                               on_delete=models.SET_NULL, related_name="+",
                                               verbose_name=_("reception confirmed by"))
    reception_note = models.TextField(blank=True, verbose_name=_("reception note"))

    objects = OrderQuerySet.as_manager()

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.reference


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines",
                              verbose_name=_("order"))
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    model_reference = models.CharField(max_length=60, blank=True,
                                       help_text=_("Catalogue model; empty for a custom design"),
                                       verbose_name=_("model reference"))
    is_custom_design = models.BooleanField(default=False, verbose_name=_("is custom design"))
    description = models.CharField(max_length=240, verbose_name=_("description"))
    quantity = models.PositiveIntegerField(default=1, verbose_name=_("quantity"))
    size = models.CharField(max_length=30, blank=True, help_text=_("Ring size, length, …"),
                            verbose_name=_("size"))
    alloy = models.ForeignKey("materials.Alloy", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("alloy"))
    stones = models.TextField(blank=True, help_text=_("Stones wanted: type, size, count, quality"),
                              verbose_name=_("stones"))
    customisations = models.TextField(blank=True,
                                      help_text=_("Engraving, finish, special requests"),
                                      verbose_name=_("customisations"))
    specifications = models.TextField(blank=True, verbose_name=_("specifications"))
    references = models.TextField(blank=True, help_text=_("Reference documents, one per line"),
                                  verbose_name=_("references"))
    target_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                       verbose_name=_("target price"))
    # The material budget the design must respect (checked against the CAD estimate).
    budget_metal_g = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                         help_text=_("Estimated metal weight per piece"),
                                         verbose_name=_("budget metal g"))
    budget_stone_count = models.PositiveIntegerField(null=True, blank=True,
                                                     verbose_name=_("budget stone count"))
    budget_stone_ct = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                          verbose_name=_("budget stone carats"))

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"],
                                    name="order_line_position_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=1, quantity__lte=500),
                                   name="order_line_quantity_range",
                                   violation_error_message="Quantity is between 1 and 500."),
            models.CheckConstraint(condition=Q(target_price__isnull=True) | Q(target_price__gte=0),
                                   name="order_line_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.order.reference}/{self.position} {self.description}"


class ChecklistSection(models.TextChoices):
    FEASIBILITY = "feasibility", _("Feasibility")
    INFORMATION = "information", _("Information")
    COMMERCIAL = "commercial", _("Commercial")


# The launch sheet's mandatory checklist: (code, section, label). Every item must be checked by a
# named person before the order may be launched.
LAUNCH_CHECKLIST: list[tuple[str, str, str]] = [
    ("technically_achievable", ChecklistSection.FEASIBILITY, _("Technically achievable")),
    ("materials_available", ChecklistSection.FEASIBILITY, _("Materials available")),
    ("deadline_realistic", ChecklistSection.FEASIBILITY, _("Deadline realistic")),
    ("specs_complete", ChecklistSection.INFORMATION, _("Specifications complete")),
    ("size_confirmed", ChecklistSection.INFORMATION, _("Size confirmed")),
    ("metal_confirmed", ChecklistSection.INFORMATION, _("Metal confirmed")),
    ("stones_confirmed", ChecklistSection.INFORMATION, _("Stones confirmed")),
    ("customisations_confirmed", ChecklistSection.INFORMATION, _("Customisations confirmed")),
    ("references_attached", ChecklistSection.INFORMATION, _("Reference documents attached")),
    ("quote_accepted", ChecklistSection.COMMERCIAL, _("Quote accepted")),
    ("payment_terms_agreed", ChecklistSection.COMMERCIAL, _("Payment terms agreed")),
    ("deadline_confirmed", ChecklistSection.COMMERCIAL, _("Deadline confirmed with the client")),
]
CHECKLIST_CODES = [code for code, _section, _label in LAUNCH_CHECKLIST]


class LaunchCheckItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="checklist",
                              verbose_name=_("order"))
    code = models.SlugField(max_length=40, verbose_name=_("code"))
    section = models.CharField(max_length=12, choices=ChecklistSection.choices,
                               verbose_name=_("section"))
    checked = models.BooleanField(default=False, verbose_name=_("checked"))
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("checked by"))
    checked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("checked at"))
    note = models.TextField(blank=True, verbose_name=_("note"))

    class Meta:
        verbose_name = _("launch check item")
        verbose_name_plural = _("launch check items")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "code"], name="launch_item_unique"),
            models.CheckConstraint(
                condition=Q(checked=False) | Q(checked_by__isnull=False, checked_at__isnull=False),
                name="launch_item_checked_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order.reference}:{self.code}"

    @property
    def label(self) -> str:
        return str(dict((c, label) for c, _s, label in LAUNCH_CHECKLIST).get(self.code, self.code))


class ChangeRequestStatus(models.TextChoices):
    OPEN = "open", _("Waiting for assessment")
    ASSESSED = "assessed", _("Assessed, waiting for a decision")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


CHANGE_REQUEST_TRANSITIONS: dict[str, set[str]] = {
    ChangeRequestStatus.OPEN: {ChangeRequestStatus.ASSESSED, ChangeRequestStatus.REJECTED},
    ChangeRequestStatus.ASSESSED: {ChangeRequestStatus.ASSESSED, ChangeRequestStatus.APPROVED,
                                   ChangeRequestStatus.REJECTED},
    ChangeRequestStatus.APPROVED: set(),
    ChangeRequestStatus.REJECTED: set(),
}


class ChangeRequest(models.Model):
    """A client's request to change an order: described, assessed for impact, then decided."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="change_requests",
                              verbose_name=_("order"))
    description = models.TextField(verbose_name=_("description"))
    status = models.CharField(max_length=10, choices=ChangeRequestStatus.choices,
                              default=ChangeRequestStatus.OPEN, verbose_name=_("status"))
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                     on_delete=models.SET_NULL, related_name="+",
                                     verbose_name=_("requested by"))
    requested_at = models.DateTimeField(auto_now_add=True, verbose_name=_("requested at"))
    impact_days = models.IntegerField(null=True, blank=True,
                                      help_text=_("Days the plan moves if approved"),
                                      verbose_name=_("impact days"))
    new_promised_date = models.DateField(null=True, blank=True, verbose_name=_("new promised date"))
    assessment = models.TextField(blank=True, verbose_name=_("assessment"))
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    verbose_name=_("assessed by"))
    assessed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("assessed at"))
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("decided by"))
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))
    decision_comment = models.TextField(blank=True, verbose_name=_("decision comment"))

    class Meta:
        verbose_name = _("change request")
        verbose_name_plural = _("change requests")
        ordering = ["order", "requested_at", "id"]

    def __str__(self) -> str:
        return f"Change request #{self.pk} on {self.order.reference}"
