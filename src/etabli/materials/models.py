"""Precious materials: alloys and prices, the metal ledger, material slips, stock-takes, casting
trees, stone lots and their ledger, and what a CAD mesh says about a piece's weight.

The two ledgers (metal and stones) are double-entry in one row: every entry moves a quantity
*from* one location *to* another, so the sum over all locations of every alloy (in alloy and in
fine grams) and of every stone lot (in count and carats) is always zero — nothing appears or
vanishes. Balances are kept in their own tables, updated by the services in the same
transaction as the entries, and can be recomputed from the entries at any date.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from etabli.core.models import AppendOnly

MG = Decimal("0.001")


class Metal(models.TextChoices):
    GOLD = "gold", _("Gold")
    SILVER = "silver", _("Silver")
    PLATINUM = "platinum", _("Platinum")
    PALLADIUM = "palladium", _("Palladium")


class Alloy(models.Model):
    """A metal at a fineness and colour, e.g. 750 yellow gold (18k)."""

    code = models.SlugField(max_length=20, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=80, verbose_name=_("name"))
    metal = models.CharField(max_length=10, choices=Metal.choices, verbose_name=_("metal"))
    fineness_permille = models.PositiveSmallIntegerField(
        help_text=_("Parts per thousand, e.g. 750"), verbose_name=_("fineness permille"))
    colour = models.CharField(max_length=30, blank=True, verbose_name=_("colour"))
    density_g_cm3 = models.DecimalField(max_digits=5, decimal_places=2,
                                        verbose_name=_("density g cm3"))

    class Meta:
        verbose_name = _("alloy")
        verbose_name_plural = _("alloys")
        ordering = ["metal", "-fineness_permille", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(fineness_permille__gt=0, fineness_permille__lte=1000),
                name="alloy_fineness_range",
                violation_error_message="Fineness is in parts per thousand (1 to 1000).",
            ),
            models.CheckConstraint(condition=Q(density_g_cm3__gt=0), name="alloy_density_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    def fine_weight_g(self, alloy_weight_g: Decimal) -> Decimal:
        return (alloy_weight_g * self.fineness_permille / 1000).quantize(MG)


class MetalPrice(models.Model):
    """The price of one fine gram of a metal on a date (fixing, supplier quote or hand entry)."""

    metal = models.CharField(max_length=10, choices=Metal.choices, verbose_name=_("metal"))
    priced_on = models.DateField(verbose_name=_("priced on"))
    price_per_fine_g = models.DecimalField(max_digits=12, decimal_places=4,
                                           verbose_name=_("price per fine gram"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    source = models.CharField(max_length=80, blank=True, verbose_name=_("source"))
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("entered by"))
    entered_at = models.DateTimeField(auto_now_add=True, verbose_name=_("entered at"))

    class Meta:
        verbose_name = _("metal price")
        verbose_name_plural = _("metal prices")
        ordering = ["metal", "-priced_on"]
        constraints = [
            models.UniqueConstraint(fields=["metal", "priced_on", "currency"],
                                    name="metal_price_one_per_day",
                                    violation_error_message="There is already a price for this "
                                                            "metal on this date."),
            models.CheckConstraint(condition=Q(price_per_fine_g__gt=0),
                                   name="metal_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.metal} {self.priced_on} {self.price_per_fine_g} {self.currency}"


class LocationKind(models.TextChoices):
    VAULT = "vault", _("House vault")
    WORKSHOP = "workshop", _("Workshop")
    REFINER = "refiner", _("Refiner")
    IN_PIECES = "in_pieces", _("In pieces")
    TRANSIT = "transit", _("In transit on a slip")
    # Accounts outside the house's stock: their balances are the other side of the story.
    SUPPLIER = "supplier", _("Suppliers (purchases)")
    LOSS = "loss", _("Losses written off")
    BROKEN = "broken", _("Broken stones")
    DIFFERENCE = "difference", _("Weighing differences on slips")
    ADJUSTMENT = "adjustment", _("Stock-take adjustments")
    REFINING = "refining", _("Refining conversion")
    DELIVERED = "delivered", _("Delivered to clients")


# Where material physically is: these balances can never go below zero.
PHYSICAL_LOCATION_KINDS = (LocationKind.VAULT, LocationKind.WORKSHOP, LocationKind.REFINER,
                           LocationKind.IN_PIECES, LocationKind.TRANSIT)


class LocationQuerySet(models.QuerySet):
    def visible_to(self, user) -> LocationQuerySet:
        """House staff who run production or handle materials see every location; a workshop
        member sees their own workshops' locations only."""
        from etabli.accounts.models import Role

        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_house_wide or user.role == Role.LOGISTICS:
            return self
        if user.role == Role.WORKSHOP:
            return self.filter(kind=LocationKind.WORKSHOP, workshop_id__in=user.workshop_ids())
        return self.none()


class Location(models.Model):
    """A place (or an account) that holds metal and stones in the ledgers."""

    kind = models.CharField(max_length=12, choices=LocationKind.choices, verbose_name=_("kind"))
    workshop = models.OneToOneField("workshops.Workshop", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="material_location",
                                    verbose_name=_("workshop"))
    name = models.CharField(max_length=120, verbose_name=_("name"))

    objects = LocationQuerySet.as_manager()

    class Meta:
        verbose_name = _("location")
        verbose_name_plural = _("locations")
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["kind"], condition=~Q(kind="workshop"),
                                    name="one_location_per_kind",
                                    violation_error_message="This location already exists."),
            models.CheckConstraint(
                condition=(Q(kind="workshop", workshop__isnull=False)
                           | (~Q(kind="workshop") & Q(workshop__isnull=True))),
                name="location_workshop_iff_kind",
                violation_error_message="A workshop location belongs to exactly one workshop."),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_physical(self) -> bool:
        return self.kind in PHYSICAL_LOCATION_KINDS


# ---------------------------------------------------------------------------------------------
# material slips


class SlipKind(models.TextChoices):
    ISSUE = "issue", _("Issue to a workshop")
    RETURN = "return", _("Return from a workshop")
    REFINER = "refiner", _("Sent to the refiner")


class SlipStatus(models.TextChoices):
    # A slip ("bon") is masculine in French, a piece feminine: their statuses are told apart.
    SENT = "sent", pgettext_lazy("material slip status", "Sent")
    RECEIVED = "received", pgettext_lazy("material slip status", "Received")
    CANCELLED = "cancelled", pgettext_lazy("material slip status", "Cancelled")


class SlipQuerySet(models.QuerySet):
    def visible_to(self, user) -> SlipQuerySet:
        from etabli.accounts.models import Role

        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_house_wide or user.role == Role.LOGISTICS:
            return self
        if user.role == Role.WORKSHOP:
            return self.filter(workshop_id__in=user.workshop_ids())
        return self.none()


class MaterialSlip(models.Model):
    """A transfer slip for metal and stones between the house and one workshop (or the refiner).

    Sent by one side (the material is then in transit), received and weighed by the other. An
    issue slip is the start of a job at the workshop; the return slips that answer it carry the
    pieces and scrap back, and settling the issue books what is left as the workshop's loss.
    """

    number = models.CharField(max_length=30, unique=True, verbose_name=_("number"))
    kind = models.CharField(max_length=10, choices=SlipKind.choices, verbose_name=_("kind"))
    status = models.CharField(max_length=10, choices=SlipStatus.choices, default=SlipStatus.SENT,
                              db_index=True, verbose_name=_("status"))
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="material_slips",
                                 help_text=_("The outside party: the workshop issued to or "
                                             "returning"), verbose_name=_("workshop"))
    from_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+",
                                      verbose_name=_("from"))
    to_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("to"))
    operation = models.CharField(max_length=40, blank=True,
                                 help_text=_("Operation the material is for (casting, "
                                             "polishing…): losses are measured per operation"),
                                 verbose_name=_("operation"))
    issue = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="returns",
                              help_text=_("For a return: the issue slip it answers"),
                              verbose_name=_("issue slip"))
    pieces = models.ManyToManyField("production.Piece", blank=True, related_name="material_slips",
                                    verbose_name=_("pieces"))
    casting_tree = models.ForeignKey("CastingTree", null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="slips",
                                     verbose_name=_("casting tree"))
    closes_issue = models.BooleanField(
        default=False, help_text=_("The last return for the issue: receiving it books the loss"),
        verbose_name=_("closes the issue"))
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("sent by"))
    sent_at = models.DateTimeField(verbose_name=_("sent at"))
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("received by"))
    received_at = models.DateTimeField(null=True, blank=True, verbose_name=_("received at"))
    weight_flagged = models.BooleanField(
        default=False, help_text=_("A line was received with a difference beyond tolerance"),
        verbose_name=_("weight flagged"))
    # Settlement of an issue slip: what the job cost in metal, against the allowance.
    settled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("settled at"))
    loss_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                 verbose_name=_("loss g"))
    loss_fine_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                      verbose_name=_("loss fine g"))
    allowance_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                      verbose_name=_("allowance g"))
    over_allowance = models.BooleanField(default=False, db_index=True,
                                         verbose_name=_("over allowance"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text=_("Caller's id, so a repeated submission counts once"),
                                  verbose_name=_("client ref"))

    objects = SlipQuerySet.as_manager()

    class Meta:
        verbose_name = _("material slip")
        verbose_name_plural = _("material slips")
        ordering = ["-sent_at", "-id"]
        indexes = [models.Index(fields=["workshop", "status"]),
                   # Metal loss in the reports: jobs settled in a period.
                   models.Index(fields=["settled_at"], name="slip_settled_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(from_location=F("to_location")),
                                   name="material_slip_two_places",
                                   violation_error_message="A slip goes between two places."),
        ]

    def __str__(self) -> str:
        return self.number


class LineKind(models.TextChoices):
    METAL = "metal", _("Metal (grain, sheet, wire)")
    PIECE = "piece", _("Piece")
    SCRAP = "scrap", _("Scrap")
    FILINGS = "filings", _("Filings")
    SWEEPS = "sweeps", _("Sweeps")
    BUTTON = "button", _("Casting button and sprues")
    STONES = "stones", _("Stones")
    STONES_SET = "stones_set", _("Stones set in a piece")


METAL_LINE_KINDS = (LineKind.METAL, LineKind.PIECE, LineKind.SCRAP, LineKind.FILINGS,
                    LineKind.SWEEPS, LineKind.BUTTON)
SCRAP_LINE_KINDS = (LineKind.SCRAP, LineKind.FILINGS, LineKind.SWEEPS, LineKind.BUTTON)
STONE_LINE_KINDS = (LineKind.STONES, LineKind.STONES_SET)


class MaterialSlipLine(models.Model):
    slip = models.ForeignKey(MaterialSlip, on_delete=models.CASCADE, related_name="lines",
                             verbose_name=_("slip"))
    kind = models.CharField(max_length=12, choices=LineKind.choices, verbose_name=_("kind"))
    alloy = models.ForeignKey(Alloy, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("alloy"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="material_lines", verbose_name=_("piece"))
    lot = models.ForeignKey("StoneLot", null=True, blank=True, on_delete=models.PROTECT,
                            related_name="slip_lines", verbose_name=_("stone lot"))
    # Metal lines: the weight of metal. A piece line weighed with its stones also says how
    # much of that is stones, so only metal enters the metal ledger.
    gross_weight_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                         verbose_name=_("gross weight g"))
    stones_weight_g = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("0"),
                                          verbose_name=_("stones weight g"))
    weight_sent_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                        verbose_name=_("metal weight sent g"))
    weight_received_g = models.DecimalField(max_digits=12, decimal_places=3, null=True,
                                            blank=True, verbose_name=_("metal weight received g"))
    # Stone lines.
    stone_count = models.PositiveIntegerField(null=True, blank=True,
                                              verbose_name=_("stone count"))
    carats_sent = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                      verbose_name=_("carats sent"))
    count_received = models.PositiveIntegerField(null=True, blank=True,
                                                 verbose_name=_("count received"))
    carats_received = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                          verbose_name=_("carats received"))
    difference_flagged = models.BooleanField(default=False, verbose_name=_("difference flagged"))

    class Meta:
        verbose_name = _("material slip line")
        verbose_name_plural = _("material slip lines")
        ordering = ["slip", "id"]
        constraints = [
            models.CheckConstraint(
                name="slip_line_metal_or_stones",
                condition=(Q(kind__in=METAL_LINE_KINDS, alloy__isnull=False,
                             weight_sent_g__gt=0, lot__isnull=True)
                           | Q(kind__in=STONE_LINE_KINDS, lot__isnull=False,
                               stone_count__gt=0, carats_sent__gt=0, alloy__isnull=True)),
                violation_error_message="A slip line carries either metal or stones."),
            models.CheckConstraint(condition=Q(stones_weight_g__gte=0),
                                   name="slip_line_stones_weight_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.slip.number}:{self.kind}"


# ---------------------------------------------------------------------------------------------
# metal ledger


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    DISPATCH = "dispatch", _("Sent on a slip")
    RECEIPT = "receipt", _("Received from a slip")
    DIFFERENCE = "difference", _("Weighing difference on a slip")
    LOSS = "loss", _("Loss booked")
    ADJUSTMENT = "adjustment", _("Stock-take adjustment")
    CASTING = "casting", _("Casting")
    REFINING = "refining", _("Refining settlement")
    SET = "set", _("Stones set")
    BREAKAGE = "breakage", _("Breakage")
    LOST = "lost", _("Stones lost")
    DELIVERY = "delivery", _("Delivered")


class MetalEntryQuerySet(models.QuerySet):
    def visible_to(self, user) -> MetalEntryQuerySet:
        locations = Location.objects.visible_to(user)
        return self.filter(Q(from_location__in=locations) | Q(to_location__in=locations))


class MetalEntry(AppendOnly, models.Model):
    """One movement of one alloy from one location to another. Append-only."""

    append_only_message = "Ledger entries are append-only."

    occurred_at = models.DateTimeField(db_index=True, verbose_name=_("occurred at"))
    kind = models.CharField(max_length=12, choices=EntryKind.choices, verbose_name=_("kind"))
    alloy = models.ForeignKey(Alloy, on_delete=models.PROTECT, related_name="entries",
                              verbose_name=_("alloy"))
    alloy_g = models.DecimalField(max_digits=12, decimal_places=3, verbose_name=_("alloy g"))
    fine_g = models.DecimalField(max_digits=12, decimal_places=3, verbose_name=_("fine g"))
    from_location = models.ForeignKey(Location, on_delete=models.PROTECT,
                                      related_name="metal_out", verbose_name=_("from"))
    to_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="metal_in",
                                    verbose_name=_("to"))
    operation = models.CharField(max_length=40, blank=True, verbose_name=_("operation"))
    slip = models.ForeignKey(MaterialSlip, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="metal_entries", verbose_name=_("slip"))
    slip_line = models.ForeignKey(MaterialSlipLine, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="metal_entries",
                                  verbose_name=_("slip line"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="metal_entries", verbose_name=_("piece"))
    stock_take = models.ForeignKey("StockTake", null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="metal_entries", verbose_name=_("stock-take"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("actor"))
    comment = models.CharField(max_length=240, blank=True, verbose_name=_("comment"))

    objects = MetalEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("metal entry")
        verbose_name_plural = _("metal entries")
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["from_location", "alloy", "occurred_at"]),
                   models.Index(fields=["to_location", "alloy", "occurred_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(alloy_g__gt=0), name="metal_entry_positive",
                                   violation_error_message="A movement moves more than 0 g."),
            models.CheckConstraint(condition=Q(fine_g__gte=0) & Q(fine_g__lte=F("alloy_g")),
                                   name="metal_entry_fine_within_alloy"),
            models.CheckConstraint(condition=~Q(from_location=F("to_location")),
                                   name="metal_entry_two_places"),
        ]

    def __str__(self) -> str:
        return f"{self.alloy_id} {self.alloy_g} g {self.from_location_id}→{self.to_location_id}"



class MetalBalance(models.Model):
    """What a location holds of an alloy now: the sum of its entries, kept by the services."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="metal_balances",
                                 verbose_name=_("location"))
    alloy = models.ForeignKey(Alloy, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("alloy"))
    physical = models.BooleanField(verbose_name=_("physical"))
    alloy_g = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal("0"),
                                  verbose_name=_("alloy g"))
    fine_g = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal("0"),
                                 verbose_name=_("fine g"))

    class Meta:
        verbose_name = _("metal balance")
        verbose_name_plural = _("metal balances")
        ordering = ["location", "alloy"]
        constraints = [
            models.UniqueConstraint(fields=["location", "alloy"], name="metal_balance_unique"),
            models.CheckConstraint(
                condition=Q(physical=False) | (Q(alloy_g__gte=0) & Q(fine_g__gte=0)),
                name="metal_balance_physical_not_negative",
                violation_error_message="A place cannot hold less than nothing."),
        ]

    def __str__(self) -> str:
        return f"{self.location} {self.alloy_id} {self.alloy_g} g"


class LossAllowance(models.Model):
    """The loss a workshop may have on an operation, as a share of the metal issued to it.

    A row without a workshop is the house default for the operation.
    """

    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="loss_allowances",
                                 verbose_name=_("workshop"))
    operation = models.CharField(max_length=40, verbose_name=_("operation"))
    percent = models.DecimalField(max_digits=5, decimal_places=2, verbose_name=_("percent"))

    class Meta:
        verbose_name = _("loss allowance")
        verbose_name_plural = _("loss allowances")
        ordering = ["workshop", "operation"]
        constraints = [
            models.UniqueConstraint(fields=["workshop", "operation"],
                                    condition=Q(workshop__isnull=False),
                                    name="loss_allowance_unique",
                                    violation_error_message="There is already an allowance for "
                                                            "this operation."),
            models.UniqueConstraint(fields=["operation"], condition=Q(workshop__isnull=True),
                                    name="loss_allowance_default_unique",
                                    violation_error_message="There is already a house default "
                                                            "for this operation."),
            models.CheckConstraint(condition=Q(percent__gte=0, percent__lte=100),
                                   name="loss_allowance_range"),
        ]

    def __str__(self) -> str:
        return f"{self.workshop_id or '*'} {self.operation} {self.percent}%"


# ---------------------------------------------------------------------------------------------
# stock-take


class StockTakeStatus(models.TextChoices):
    DRAFT = "draft", _("Counting")
    POSTED = "posted", _("Posted")


class StockTakeQuerySet(models.QuerySet):
    def visible_to(self, user) -> StockTakeQuerySet:
        return self.filter(location__in=Location.objects.visible_to(user))


class StockTake(models.Model):
    """A physical count of one location: what was counted, against the book, and the
    adjustment posted for the difference."""

    number = models.CharField(max_length=30, unique=True, verbose_name=_("number"))
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock_takes",
                                 verbose_name=_("location"))
    status = models.CharField(max_length=8, choices=StockTakeStatus.choices,
                              default=StockTakeStatus.DRAFT, verbose_name=_("status"))
    counted_at = models.DateTimeField(verbose_name=_("counted at"))
    counted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("counted by"))
    reason = models.TextField(blank=True, verbose_name=_("reason for the adjustment"))
    posted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("posted by"))
    posted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("posted at"))

    objects = StockTakeQuerySet.as_manager()

    class Meta:
        verbose_name = _("stock-take")
        verbose_name_plural = _("stock-takes")
        ordering = ["-counted_at", "-id"]

    def __str__(self) -> str:
        return self.number


class StockTakeLine(models.Model):
    stock_take = models.ForeignKey(StockTake, on_delete=models.CASCADE, related_name="lines",
                                   verbose_name=_("stock-take"))
    alloy = models.ForeignKey(Alloy, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("alloy"))
    book_g = models.DecimalField(max_digits=14, decimal_places=3, verbose_name=_("book g"))
    counted_g = models.DecimalField(max_digits=14, decimal_places=3, verbose_name=_("counted g"))

    class Meta:
        verbose_name = _("stock-take line")
        verbose_name_plural = _("stock-take lines")
        ordering = ["stock_take", "alloy"]
        constraints = [
            models.UniqueConstraint(fields=["stock_take", "alloy"], name="stock_take_line_unique"),
            models.CheckConstraint(condition=Q(counted_g__gte=0),
                                   name="stock_take_counted_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.stock_take_id}:{self.alloy_id}"

    @property
    def difference_g(self) -> Decimal:
        return self.counted_g - self.book_g


# ---------------------------------------------------------------------------------------------
# casting


class CastingStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    ISSUED = "issued", _("Metal issued")
    RETURNED = "returned", _("Cast and returned")


class CastingTreeQuerySet(models.QuerySet):
    def visible_to(self, user) -> CastingTreeQuerySet:
        from etabli.accounts.models import Role

        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_house_wide or user.role == Role.LOGISTICS:
            return self
        if user.role == Role.WORKSHOP:
            return self.filter(workshop_id__in=user.workshop_ids())
        return self.none()


class CastingTree(models.Model):
    """A wax tree (flask) of pieces cast together in one alloy."""

    number = models.CharField(max_length=30, unique=True, verbose_name=_("number"))
    alloy = models.ForeignKey(Alloy, on_delete=models.PROTECT, related_name="+",
                              verbose_name=_("alloy"))
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                 related_name="casting_trees", verbose_name=_("caster"))
    status = models.CharField(max_length=10, choices=CastingStatus.choices,
                              default=CastingStatus.PLANNED, verbose_name=_("status"))
    pieces = models.ManyToManyField("production.Piece", related_name="casting_trees",
                                    verbose_name=_("pieces"))
    wax_weight_g = models.DecimalField(max_digits=10, decimal_places=3,
                                       verbose_name=_("wax weight g"))
    wax_density_g_cm3 = models.DecimalField(max_digits=5, decimal_places=3,
                                            default=Decimal("1.000"),
                                            verbose_name=_("wax density g cm3"))
    sprue_allowance_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("30"),
        help_text=_("Extra metal for the sprues and button, as a share of the pieces' metal"),
        verbose_name=_("sprue and button allowance percent"))
    metal_needed_g = models.DecimalField(max_digits=12, decimal_places=3,
                                         verbose_name=_("metal needed g"))
    issued_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                   verbose_name=_("metal issued g"))
    good_pieces_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                        verbose_name=_("good pieces g"))
    button_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                   verbose_name=_("button and sprues g"))
    scrap_g = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True,
                                  verbose_name=_("scrap g"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))

    objects = CastingTreeQuerySet.as_manager()

    class Meta:
        verbose_name = _("casting tree")
        verbose_name_plural = _("casting trees")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(wax_weight_g__gt=0), name="casting_wax_positive"),
            models.CheckConstraint(condition=Q(wax_density_g_cm3__gt=0),
                                   name="casting_wax_density_positive"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def yield_percent(self) -> Decimal | None:
        if not self.issued_g or self.good_pieces_g is None:
            return None
        return (self.good_pieces_g * 100 / self.issued_g).quantize(Decimal("0.1"))


# ---------------------------------------------------------------------------------------------
# stones


class StoneType(models.TextChoices):
    DIAMOND = "diamond", _("Diamond")
    RUBY = "ruby", _("Ruby")
    SAPPHIRE = "sapphire", _("Sapphire")
    EMERALD = "emerald", _("Emerald")
    PEARL = "pearl", _("Pearl")
    TOURMALINE = "tourmaline", _("Tourmaline")
    AMETHYST = "amethyst", _("Amethyst")
    TOPAZ = "topaz", _("Topaz")
    SPINEL = "spinel", _("Spinel")
    OTHER = "other", _("Other")


class StoneShape(models.TextChoices):
    ROUND = "round", _("Round brilliant")
    PRINCESS = "princess", _("Princess")
    OVAL = "oval", _("Oval")
    PEAR = "pear", _("Pear")
    MARQUISE = "marquise", _("Marquise")
    EMERALD_CUT = "emerald_cut", _("Emerald cut")
    CUSHION = "cushion", _("Cushion")
    BAGUETTE = "baguette", _("Baguette")
    HEART = "heart", _("Heart")
    CABOCHON = "cabochon", _("Cabochon")
    OTHER = "other", _("Other")


class StoneLotQuerySet(models.QuerySet):
    def visible_to(self, user) -> StoneLotQuerySet:
        """House staff see every lot; a workshop member sees the lots that have been on a slip
        to or from their workshop."""
        from etabli.accounts.models import Role

        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_house_wide or user.role in (Role.LOGISTICS, Role.DESIGNER, Role.QUALITY):
            return self
        if user.role == Role.WORKSHOP:
            return self.filter(slip_lines__slip__workshop_id__in=user.workshop_ids()).distinct()
        return self.none()


class StoneLot(models.Model):
    """A parcel of stones bought together: one type, shape and size, counted and weighed."""

    number = models.CharField(max_length=30, unique=True, verbose_name=_("number"))
    stone_type = models.CharField(max_length=12, choices=StoneType.choices,
                                  verbose_name=_("stone type"))
    shape = models.CharField(max_length=12, choices=StoneShape.choices,
                             verbose_name=_("shape"))
    size_mm = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                  verbose_name=_("size mm"))
    sieve = models.CharField(max_length=20, blank=True, help_text=_("Sieve size, e.g. +6.5-7"),
                             verbose_name=_("sieve"))
    colour = models.CharField(max_length=30, blank=True, verbose_name=_("colour"))
    clarity = models.CharField(max_length=30, blank=True, verbose_name=_("clarity"))
    count_received = models.PositiveIntegerField(verbose_name=_("count received"))
    carats_received = models.DecimalField(max_digits=10, decimal_places=3,
                                          verbose_name=_("carats received"))
    certificate_lab = models.CharField(max_length=20, blank=True, help_text=_("GIA, HRD, IGI…"),
                                       verbose_name=_("certificate lab"))
    certificate_number = models.CharField(max_length=40, blank=True,
                                          verbose_name=_("certificate number"))
    origin = models.CharField(max_length=80, blank=True, verbose_name=_("origin"))
    supplier = models.CharField(max_length=120, blank=True, verbose_name=_("supplier"))
    supplier_invoice = models.CharField(max_length=60, blank=True,
                                        verbose_name=_("supplier invoice"))
    compliance_statement = models.TextField(
        blank=True, help_text=_("Kimberley Process / System of Warranties statement as written "
                                "on the supplier's invoice"),
        verbose_name=_("compliance statement"))
    price_per_ct = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True,
                                       verbose_name=_("price per carat"))
    received_at = models.DateTimeField(verbose_name=_("received at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))

    objects = StoneLotQuerySet.as_manager()

    class Meta:
        verbose_name = _("stone lot")
        verbose_name_plural = _("stone lots")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(count_received__gt=0, carats_received__gt=0),
                                   name="stone_lot_not_empty",
                                   violation_error_message="A lot holds at least one stone."),
            models.CheckConstraint(condition=Q(size_mm__isnull=True) | Q(size_mm__gt=0),
                                   name="stone_lot_size_positive"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_certified(self) -> bool:
        return bool(self.certificate_number)


class StoneEntryQuerySet(models.QuerySet):
    def visible_to(self, user) -> StoneEntryQuerySet:
        locations = Location.objects.visible_to(user)
        return self.filter(Q(from_location__in=locations) | Q(to_location__in=locations))


class StoneEntry(AppendOnly, models.Model):
    """One movement of stones of a lot from one location to another. Append-only."""

    append_only_message = "Ledger entries are append-only."

    occurred_at = models.DateTimeField(db_index=True, verbose_name=_("occurred at"))
    kind = models.CharField(max_length=12, choices=EntryKind.choices, verbose_name=_("kind"))
    lot = models.ForeignKey(StoneLot, on_delete=models.PROTECT, related_name="entries",
                            verbose_name=_("lot"))
    count = models.PositiveIntegerField(verbose_name=_("count"))
    carats = models.DecimalField(max_digits=10, decimal_places=3, verbose_name=_("carats"))
    from_location = models.ForeignKey(Location, on_delete=models.PROTECT,
                                      related_name="stones_out", verbose_name=_("from"))
    to_location = models.ForeignKey(Location, on_delete=models.PROTECT,
                                    related_name="stones_in", verbose_name=_("to"))
    slip = models.ForeignKey(MaterialSlip, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="stone_entries", verbose_name=_("slip"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="stone_entries", verbose_name=_("piece"))
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+",
                                 help_text=_("Whose hands the stones were in (for breakage "
                                             "rates)"), verbose_name=_("workshop"))
    reason = models.CharField(max_length=240, blank=True, verbose_name=_("reason"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("actor"))

    objects = StoneEntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("stone entry")
        verbose_name_plural = _("stone entries")
        ordering = ["occurred_at", "id"]
        constraints = [
            # A weighing difference on a parcel moves carats without a whole stone.
            models.CheckConstraint(condition=Q(carats__gte=0) & (Q(count__gt=0)
                                                                 | Q(carats__gt=0)),
                                   name="stone_entry_positive"),
            models.CheckConstraint(condition=~Q(from_location=F("to_location")),
                                   name="stone_entry_two_places"),
        ]

    def __str__(self) -> str:
        return f"{self.lot_id} {self.count} ({self.carats} ct)"



class StoneBalance(models.Model):
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stone_balances",
                                 verbose_name=_("location"))
    lot = models.ForeignKey(StoneLot, on_delete=models.PROTECT, related_name="balances",
                            verbose_name=_("lot"))
    physical = models.BooleanField(verbose_name=_("physical"))
    count = models.IntegerField(default=0, verbose_name=_("count"))
    carats = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("0"),
                                 verbose_name=_("carats"))

    class Meta:
        verbose_name = _("stone balance")
        verbose_name_plural = _("stone balances")
        ordering = ["lot", "location"]
        constraints = [
            models.UniqueConstraint(fields=["location", "lot"], name="stone_balance_unique"),
            models.CheckConstraint(
                condition=Q(physical=False) | (Q(count__gte=0) & Q(carats__gte=0)),
                name="stone_balance_physical_not_negative",
                violation_error_message="A place cannot hold less than no stones."),
        ]

    def __str__(self) -> str:
        return f"{self.location_id}:{self.lot_id} {self.count}"


class AllocationStatus(models.TextChoices):
    RESERVED = "reserved", _("Reserved in the vault")
    ISSUED = "issued", _("Issued to the setter")
    SET = "set", _("Set in the piece")
    RELEASED = "released", _("Released")


class StoneAllocationQuerySet(models.QuerySet):
    def visible_to(self, user) -> StoneAllocationQuerySet:
        from etabli.production.models import Piece

        return self.filter(piece__in=Piece.objects.visible_to(user),
                           lot__in=StoneLot.objects.visible_to(user))


class StoneAllocation(models.Model):
    """Stones of a lot reserved for a piece: what the setting plan needs."""

    piece = models.ForeignKey("production.Piece", on_delete=models.PROTECT,
                              related_name="stone_allocations", verbose_name=_("piece"))
    lot = models.ForeignKey(StoneLot, on_delete=models.PROTECT, related_name="allocations",
                            verbose_name=_("lot"))
    count = models.PositiveIntegerField(verbose_name=_("count"))
    carats = models.DecimalField(max_digits=10, decimal_places=3, verbose_name=_("carats"))
    status = models.CharField(max_length=10, choices=AllocationStatus.choices,
                              default=AllocationStatus.RESERVED, verbose_name=_("status"))
    slip = models.ForeignKey(MaterialSlip, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="allocations", verbose_name=_("issue slip"))
    count_set = models.PositiveIntegerField(default=0, verbose_name=_("count set"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    objects = StoneAllocationQuerySet.as_manager()

    class Meta:
        verbose_name = _("stone allocation")
        verbose_name_plural = _("stone allocations")
        ordering = ["piece", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(count__gt=0) & Q(carats__gt=0),
                                   name="stone_allocation_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.piece_id}:{self.lot_id} {self.count}"


# ---------------------------------------------------------------------------------------------
# CAD


class MeshAnalysis(models.Model):
    """What a CAD mesh (STL or OBJ, in millimetres) says: its volume, whether it is closed."""

    document = models.OneToOneField("documents.Document", on_delete=models.CASCADE,
                                    related_name="mesh", verbose_name=_("document"))
    is_watertight = models.BooleanField(verbose_name=_("closed mesh"))
    volume_mm3 = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True,
                                     verbose_name=_("volume mm3"))
    triangle_count = models.PositiveIntegerField(verbose_name=_("triangles"))
    size_x_mm = models.DecimalField(max_digits=10, decimal_places=3, verbose_name=_("size x mm"))
    size_y_mm = models.DecimalField(max_digits=10, decimal_places=3, verbose_name=_("size y mm"))
    size_z_mm = models.DecimalField(max_digits=10, decimal_places=3, verbose_name=_("size z mm"))
    stone_count = models.PositiveIntegerField(null=True, blank=True,
                                              help_text=_("Stones in the design, as the "
                                                          "designer counts them"),
                                              verbose_name=_("stone count"))
    problem = models.CharField(max_length=240, blank=True, verbose_name=_("problem"))
    analysed_at = models.DateTimeField(auto_now_add=True, verbose_name=_("analysed at"))

    class Meta:
        verbose_name = _("mesh analysis")
        verbose_name_plural = _("mesh analyses")

    def __str__(self) -> str:
        return f"{self.document_id}: {self.volume_mm3} mm³"
