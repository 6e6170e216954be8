"""Delivery: shipments and their packaging, invoices, the client's reception and its follow-ups.

A shipment carries pieces that have reached their delivery step at the house; its delivery ends
that step for each of them (through the production services), and the order is delivered when
every piece is. The client then confirms reception — accepting the pieces, or noting
reservations that open follow-ups — and the order closes once everything is accepted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# ---------------------------------------------------------------------------------------------
# shipments


class ShippingMethod(models.TextChoices):
    COURIER = "courier", _("Specialised courier")
    VALUE_TRANSPORT = "value_transport", _("Value transport")
    INSURED_PARCEL = "insured_parcel", _("Insured parcel")
    PICKUP = "pickup", _("Pickup at the house or workshop")


# Methods that travel insured: the house must say what the parcel is worth.
INSURED_METHODS = (ShippingMethod.VALUE_TRANSPORT, ShippingMethod.INSURED_PARCEL)


class ShipmentStatus(models.TextChoices):
    PREPARED = "prepared", _("Prepared")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    CANCELLED = "cancelled", _("Cancelled")


# A pickup is handed over at the house: it goes from prepared to delivered directly.
SHIPMENT_TRANSITIONS: dict[str, set[str]] = {
    ShipmentStatus.PREPARED: {ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED,
                              ShipmentStatus.CANCELLED},
    ShipmentStatus.SHIPPED: {ShipmentStatus.DELIVERED},
    ShipmentStatus.DELIVERED: set(),
    ShipmentStatus.CANCELLED: set(),
}
ACTIVE_SHIPMENT_STATUSES = (ShipmentStatus.PREPARED, ShipmentStatus.SHIPPED,
                            ShipmentStatus.DELIVERED)


class CaseKind(models.TextChoices):
    RING_BOX = "ring_box", _("Ring box")
    NECKLACE_CASE = "necklace_case", _("Necklace case")
    EARRING_BOX = "earring_box", _("Earring box")
    BRACELET_CASE = "bracelet_case", _("Bracelet case")
    PENDANT_BOX = "pendant_box", _("Pendant box")
    BROOCH_BOX = "brooch_box", _("Brooch box")
    POUCH = "pouch", _("Pouch")
    OTHER = "other", _("Other case")


class Protection(models.TextChoices):
    FOAM_INSERT = "foam_insert", _("Fitted foam insert")
    TISSUE = "tissue", _("Acid-free tissue")
    ANTI_TARNISH = "anti_tarnish", _("Anti-tarnish bag")
    BUBBLE_WRAP = "bubble_wrap", _("Bubble wrap")
    SEALED_BAG = "sealed_bag", _("Tamper-evident sealed bag")


def _sees_shipments(user) -> bool:
    from etabli.accounts.models import Role

    return user.is_house_wide or user.role == Role.LOGISTICS


class ShipmentQuerySet(models.QuerySet):
    def visible_to(self, user) -> ShipmentQuerySet:
        """The house's logistics, managers, administrators and sales see every shipment; a
        client contact their own client's shipments (not the cancelled ones); nobody else."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if _sees_shipments(user):
            return self
        if user.role == Role.CLIENT:
            return self.filter(order__client_id=user.client_id).exclude(
                status=ShipmentStatus.CANCELLED)
        return self.none()


class Shipment(models.Model):
    """Pieces of one order leaving the house together, packed, insured and tracked."""

    number = models.CharField(max_length=30, unique=True, verbose_name=_("number"))
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="shipments",
                              verbose_name=_("order"))
    status = models.CharField(max_length=10, choices=ShipmentStatus.choices,
                              default=ShipmentStatus.PREPARED, db_index=True,
                              verbose_name=_("status"))
    method = models.CharField(max_length=16, choices=ShippingMethod.choices,
                              verbose_name=_("method"))
    carrier = models.CharField(max_length=80, blank=True, verbose_name=_("carrier"))
    tracking_number = models.CharField(max_length=60, blank=True,
                                       verbose_name=_("tracking number"))
    address = models.TextField(blank=True, help_text=_("Where the parcel goes"),
                               verbose_name=_("delivery address"))
    # What the parcel is worth and what it is insured for, in the order's currency. Only the
    # roles that see prices set or see these amounts.
    currency = models.CharField(max_length=3, default="EUR", verbose_name=_("currency"))
    declared_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                         verbose_name=_("declared value"))
    insurance_value = models.DecimalField(max_digits=12, decimal_places=2, null=True,
                                          blank=True, verbose_name=_("insured for"))
    signature_required = models.BooleanField(default=True,
                                             verbose_name=_("signature required"))
    neutral_outer_packaging = models.BooleanField(
        default=True, help_text=_("Plain outer box: nothing says jewellery is inside"),
        verbose_name=_("neutral outer packaging"))
    note = models.TextField(blank=True, verbose_name=_("note"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("prepared by"))
    created_at = models.DateTimeField(verbose_name=_("prepared at"))
    packed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("packed by"))
    packed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("packed at"))
    shipped_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("shipped by"))
    shipped_at = models.DateTimeField(null=True, blank=True, verbose_name=_("shipped at"))
    delivered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("delivery recorded by"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    signed_by = models.CharField(max_length=120, blank=True,
                                 help_text=_("Who signed for the parcel"),
                                 verbose_name=_("signed by"))
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("cancelled by"))
    cancelled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cancelled at"))
    cancel_reason = models.TextField(blank=True, verbose_name=_("cancel reason"))
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text=_("Caller's id, so a repeated submission counts once"),
                                  verbose_name=_("client ref"))

    objects = ShipmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(declared_value__isnull=True) | Q(declared_value__gte=0),
                name="shipment_declared_value_not_negative"),
            models.CheckConstraint(
                condition=Q(insurance_value__isnull=True) | Q(insurance_value__gte=0),
                name="shipment_insurance_not_negative"),
            models.CheckConstraint(
                condition=~Q(status="shipped") | Q(shipped_at__isnull=False),
                name="shipment_shipped_has_date"),
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
                name="shipment_delivered_has_date"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_pickup(self) -> bool:
        return self.method == ShippingMethod.PICKUP


class ShipmentItem(models.Model):
    """One piece on a shipment, with its own packaging."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items",
                                 verbose_name=_("shipment"))
    piece = models.ForeignKey("production.Piece", on_delete=models.PROTECT,
                              related_name="shipment_items", verbose_name=_("piece"))
    # The delivery step this shipment ends for the piece.
    step_run = models.ForeignKey("production.StepRun", on_delete=models.PROTECT,
                                 related_name="+", verbose_name=_("step run"))
    # False once the shipment is cancelled or the piece taken off it.
    active = models.BooleanField(default=True, verbose_name=_("active"))
    case = models.CharField(max_length=16, choices=CaseKind.choices, blank=True,
                            verbose_name=_("case"))
    protection = models.CharField(max_length=16, choices=Protection.choices, blank=True,
                                  verbose_name=_("protection"))
    packed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("packed by"))
    packed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("packed at"))
    added_at = models.DateTimeField(verbose_name=_("added at"))

    class Meta:
        verbose_name = _("shipment item")
        verbose_name_plural = _("shipment items")
        ordering = ["shipment", "piece__serial", "id"]
        constraints = [
            models.UniqueConstraint(fields=["piece"], condition=Q(active=True),
                                    name="one_active_shipment_per_piece",
                                    violation_error_message=_("A piece is on one shipment at a "
                                                              "time.")),
            models.CheckConstraint(
                condition=Q(packed_at__isnull=True) | (~Q(case="") & ~Q(protection="")),
                name="shipment_item_packed_in_a_case"),
        ]

    def __str__(self) -> str:
        return f"{self.shipment_id}:{self.piece_id}"

    @property
    def is_packed(self) -> bool:
        return self.packed_at is not None


# ---------------------------------------------------------------------------------------------
# invoices


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")


class InvoiceQuerySet(models.QuerySet):
    def visible_to(self, user) -> InvoiceQuerySet:
        """The roles that see prices see every invoice; a client contact the issued invoices of
        their own client's orders; nobody else (logistics ships without seeing prices)."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if user.sees_prices:
            return self
        if user.role == Role.CLIENT:
            return self.filter(order__client_id=user.client_id, status=InvoiceStatus.ISSUED)
        return self.none()


class Invoice(models.Model):
    """The order's invoice: a draft the house prices, then issued once, numbered, and frozen."""

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT,
                                 related_name="invoice", verbose_name=_("order"))
    status = models.CharField(max_length=8, choices=InvoiceStatus.choices,
                              default=InvoiceStatus.DRAFT, verbose_name=_("status"))
    number = models.CharField(max_length=30, null=True, blank=True, unique=True,
                              verbose_name=_("number"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    # Frozen at issue: the rate, the client as invoiced, the totals, the diamond statement.
    vat_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True,
                                      verbose_name=_("VAT %"))
    client_name = models.CharField(max_length=160, blank=True, verbose_name=_("client name"))
    client_address = models.TextField(blank=True, verbose_name=_("client address"))
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                   verbose_name=_("subtotal"))
    vat_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                     verbose_name=_("VAT"))
    total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                verbose_name=_("total"))
    includes_diamonds = models.BooleanField(default=False,
                                            verbose_name=_("includes diamond jewellery"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("issued by"))
    issued_at = models.DateTimeField(null=True, blank=True, verbose_name=_("issued at"))

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="draft", number__isnull=True)
                | Q(status="issued", number__isnull=False, issued_at__isnull=False,
                    total__isnull=False, vat_percent__isnull=False),
                name="invoice_issued_is_numbered",
                violation_error_message=_("An issued invoice has a number, a date and totals.")),
        ]

    def __str__(self) -> str:
        return self.number or f"draft invoice of {self.order_id}"

    @property
    def is_issued(self) -> bool:
        return self.status == InvoiceStatus.ISSUED


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines",
                                verbose_name=_("invoice"))
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("order line"))
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    description = models.CharField(max_length=240, verbose_name=_("description"))
    quantity = models.PositiveIntegerField(verbose_name=_("quantity"))
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                     verbose_name=_("unit price"))

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"],
                                    name="invoice_line_position_unique"),
            models.CheckConstraint(condition=Q(unit_price__isnull=True) | Q(unit_price__gte=0),
                                   name="invoice_line_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}/{self.position}"

    @property
    def amount(self):
        if self.unit_price is None:
            return None
        return self.unit_price * self.quantity


# ---------------------------------------------------------------------------------------------
# the client's reception and its follow-ups


class ReceptionOutcome(models.TextChoices):
    ACCEPTED = "accepted", _("Received, conformity validated")
    RESERVATIONS = "reservations", _("Received, with reservations")


def _sees_receptions(user) -> bool:
    return _sees_shipments(user)


class ReceptionQuerySet(models.QuerySet):
    def visible_to(self, user) -> ReceptionQuerySet:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if _sees_receptions(user):
            return self
        if user.role == Role.CLIENT:
            return self.filter(order__client_id=user.client_id)
        return self.none()


class Reception(models.Model):
    """The client's word on a delivered order: received and accepted, or with reservations.

    Recorded once per order, by the client in the portal or by the house on their behalf.
    """

    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT,
                                 related_name="reception", verbose_name=_("order"))
    outcome = models.CharField(max_length=14, choices=ReceptionOutcome.choices,
                               verbose_name=_("outcome"))
    note = models.TextField(blank=True, verbose_name=_("note"))
    on_behalf = models.BooleanField(default=False,
                                    help_text=_("Recorded by the house for the client"),
                                    verbose_name=_("recorded on the client's behalf"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(verbose_name=_("recorded at"))

    objects = ReceptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("reception")
        verbose_name_plural = _("receptions")
        ordering = ["-recorded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(on_behalf=False) | ~Q(note=""),
                                   name="reception_on_behalf_says_how"),
        ]

    def __str__(self) -> str:
        return f"reception of {self.order_id}"


class FollowUpStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class FollowUpQuerySet(models.QuerySet):
    def visible_to(self, user) -> FollowUpQuerySet:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if _sees_receptions(user):
            return self
        if user.role == Role.CLIENT:
            return self.filter(order__client_id=user.client_id)
        return self.none()


class FollowUp(models.Model):
    """A reservation the client noted at reception, followed until the house resolves it."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT,
                              related_name="follow_ups", verbose_name=_("order"))
    reception = models.ForeignKey(Reception, on_delete=models.PROTECT,
                                  related_name="follow_ups", verbose_name=_("reception"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True,
                              on_delete=models.PROTECT, related_name="follow_ups",
                              help_text=_("Empty when the reservation is about the whole order"),
                              verbose_name=_("piece"))
    description = models.TextField(verbose_name=_("reservation"))
    status = models.CharField(max_length=10, choices=FollowUpStatus.choices,
                              default=FollowUpStatus.OPEN, db_index=True,
                              verbose_name=_("status"))
    opened_at = models.DateTimeField(verbose_name=_("opened at"))
    resolution = models.TextField(blank=True, verbose_name=_("resolution"))
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("resolved by"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["opened_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open", resolved_at__isnull=True)
                | (Q(status="resolved", resolved_at__isnull=False) & ~Q(resolution="")),
                name="follow_up_resolved_with_a_resolution",
                violation_error_message=_("A resolved follow-up says how it was resolved.")),
        ]

    def __str__(self) -> str:
        return f"follow-up #{self.pk} on {self.order_id}"
