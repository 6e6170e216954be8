"""Finishing records (what was done to a piece in a finishing step) and hallmark exemptions.

A finishing step run lists its operations (`StepRun.operations`, codes of `workshops.Operation`);
the workshop that does them records each one here, with the fields that operation needs: the
finish of a polish, the thickness of a rhodium plating, the text of an engraving, the marks
struck by the assay office. The step cannot be completed until every operation is recorded
(see `gates.py`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etabli.materials.models import Metal


class RecordOperation(models.TextChoices):
    """What a finishing record is about. The route's combined `engraving_hallmarking` is
    recorded as an engraving and a hallmarking."""

    POLISHING = "polishing", _("Polishing")
    PLATING = "plating", _("Rhodium plating")
    ENGRAVING = "engraving", _("Engraving")
    SERIAL_ENGRAVING = "serial_engraving", _("Serial number engraving")
    HALLMARKING = "hallmarking", _("Hallmarking")
    CLEANING = "cleaning", _("Final cleaning")


class RecordStatus(models.TextChoices):
    DONE = "done", _("Done")
    # Hallmarking only: the piece weighs less than the country's exemption threshold.
    EXEMPT = "exempt", _("Exempt from the guarantee mark")
    # Hallmarking only: the assay office refused to strike the marks (the piece is held).
    REFUSED = "refused", _("Refused by the assay office")
    # The production manager decided the operation is not done on this piece.
    WAIVED = "waived", _("Waived")


class Finish(models.TextChoices):
    BRIGHT = "bright", _("Bright (high polish)")
    SATIN = "satin", _("Satin")
    BRUSHED = "brushed", _("Brushed")


class EngravingPosition(models.TextChoices):
    INSIDE_BAND = "inside_band", _("Inside the band")
    OUTSIDE = "outside", _("Outside")
    BACK = "back", _("Back of the piece")
    TABLE = "table", _("Signet table")
    CLASP = "clasp", _("Clasp")
    TAG = "tag", _("Tag")
    OTHER = "other", _("Elsewhere (say where in the comment)")


class CleaningMethod(models.TextChoices):
    ULTRASONIC = "ultrasonic", _("Ultrasonic bath")
    STEAM = "steam", _("Steam")
    ULTRASONIC_STEAM = "ultrasonic_steam", _("Ultrasonic bath, then steam")
    HAND = "hand", _("By hand (soap and brush)")


class FinishingRecordQuerySet(models.QuerySet):
    def visible_to(self, user) -> FinishingRecordQuerySet:
        """House staff see the records of the pieces they see; a workshop member only the
        records made at their own workshops; a client none."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role
        from etabli.production.models import Piece

        if user.role == Role.CLIENT:
            return self.none()
        pieces = Piece.objects.visible_to(user)
        if user.role == Role.WORKSHOP:
            return self.filter(workshop_id__in=user.workshop_ids(), piece__in=pieces)
        return self.filter(piece__in=pieces)


class FinishingRecord(models.Model):
    """One finishing operation done (or exempted, refused, waived) on a piece in one step run."""

    piece = models.ForeignKey("production.Piece", on_delete=models.CASCADE,
                              related_name="finishing_records", verbose_name=_("piece"))
    step_run = models.ForeignKey("production.StepRun", on_delete=models.CASCADE,
                                 related_name="finishing_records", verbose_name=_("step run"))
    operation = models.CharField(max_length=20, choices=RecordOperation.choices,
                                 verbose_name=_("operation"))
    status = models.CharField(max_length=10, choices=RecordStatus.choices,
                              default=RecordStatus.DONE, verbose_name=_("status"))
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                 related_name="+", help_text=_("Where it was recorded"),
                                 verbose_name=_("workshop"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(verbose_name=_("recorded at"))

    # polishing
    finish = models.CharField(max_length=10, blank=True, choices=Finish.choices,
                              verbose_name=_("finish"))
    # rhodium plating
    plating_thickness_um = models.DecimalField(
        max_digits=4, decimal_places=2, null=True, blank=True,
        verbose_name=_("plating thickness (µm)"))
    # engraving and serial number engraving
    engraving_text = models.CharField(max_length=60, blank=True,
                                      verbose_name=_("engraved text"))
    engraving_position = models.CharField(max_length=12, blank=True,
                                          choices=EngravingPosition.choices,
                                          verbose_name=_("engraving position"))
    # hallmarking
    maker_mark = models.CharField(max_length=20, blank=True, verbose_name=_("maker's mark"))
    fineness_mark = models.CharField(max_length=10, blank=True,
                                     verbose_name=_("fineness mark"))
    exemption = models.ForeignKey("HallmarkExemption", null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("exemption applied"))
    hallmark_country = models.CharField(max_length=2, blank=True,
                                        verbose_name=_("hallmark country"))
    hallmark_weight_g = models.DecimalField(
        max_digits=10, decimal_places=3, null=True, blank=True,
        help_text=_("The weight the exemption was judged on"),
        verbose_name=_("weight judged (g)"))
    # final cleaning
    cleaning_method = models.CharField(max_length=20, blank=True,
                                       choices=CleaningMethod.choices,
                                       verbose_name=_("cleaning method"))

    reason = models.TextField(blank=True, help_text=_("Why it was refused or waived"),
                              verbose_name=_("reason"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text=_("Caller's id, so a repeated submission counts once"),
                                  verbose_name=_("client ref"))

    objects = FinishingRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("finishing record")
        verbose_name_plural = _("finishing records")
        ordering = ["piece", "recorded_at", "id"]
        indexes = [models.Index(fields=["step_run", "operation"])]
        constraints = [
            # A refusal does not count: the assay office may strike the marks once the piece
            # comes back corrected.
            models.UniqueConstraint(
                fields=["step_run", "operation"], condition=~Q(status="refused"),
                name="finishing_record_once_per_run",
                violation_error_message=_("This operation is already recorded for this step.")),
            models.CheckConstraint(
                name="finishing_plating_thickness_range",
                condition=Q(plating_thickness_um__isnull=True)
                | Q(plating_thickness_um__gte="0.05", plating_thickness_um__lte="1.00"),
                violation_error_message=_("Rhodium is plated 0.05 to 1.00 µm thick.")),
            models.CheckConstraint(
                name="finishing_exempt_or_refused_only_hallmarking",
                condition=Q(status__in=["done", "waived"]) | Q(operation="hallmarking"),
                violation_error_message=_("Only hallmarking can be exempt or refused.")),
        ]

    def __str__(self) -> str:
        return f"{self.piece_id}:{self.operation} ({self.status})"


class HallmarkExemptionQuerySet(models.QuerySet):
    def visible_to(self, user) -> HallmarkExemptionQuerySet:
        """House staff read the exemptions; workshops and clients do not."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        return self if user.sees_clients else self.none()


class HallmarkExemption(models.Model):
    """A country's weight below which a piece of a metal need not carry the guarantee mark.

    "Below" is strict: a 3.000 g gold ring is not exempt where the threshold is 3 g.
    """

    country = models.CharField(max_length=2, help_text=_("ISO country code, e.g. FR, GB"),
                               verbose_name=_("country"))
    metal = models.CharField(max_length=10, choices=Metal.choices, verbose_name=_("metal"))
    under_weight_g = models.DecimalField(
        max_digits=8, decimal_places=3,
        help_text=_("Pieces weighing strictly less than this are exempt"),
        verbose_name=_("exempt under (g)"))
    legal_reference = models.CharField(max_length=200, blank=True,
                                       verbose_name=_("legal reference"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    objects = HallmarkExemptionQuerySet.as_manager()

    class Meta:
        verbose_name = _("hallmark exemption")
        verbose_name_plural = _("hallmark exemptions")
        ordering = ["country", "metal"]
        constraints = [
            models.UniqueConstraint(fields=["country", "metal"],
                                    name="hallmark_exemption_unique",
                                    violation_error_message=_("This country already has an "
                                                              "exemption for this metal.")),
            models.CheckConstraint(condition=Q(under_weight_g__gt=0),
                                   name="hallmark_exemption_weight_positive",
                                   violation_error_message=_("The weight must be more than 0 g.")),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.metal} < {self.under_weight_g} g"
