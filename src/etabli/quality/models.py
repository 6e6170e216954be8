"""Inspection templates, inspections with their measurements, signed sheets, nonconformities.

An inspection copies its template's criteria and tolerances when it is opened, so editing a
template never changes an inspection already made. Its verdict is computed by
`quality.verdicts` from what was measured; nobody types a pass or a fail. Once signed, nothing
of an inspection changes: the services refuse, the models refuse (`save`, queryset `update`),
and database triggers refuse (see migration 0003).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class CriterionKind(models.TextChoices):
    WEIGHT = "weight", _("Weight")
    DIMENSIONS = "dimensions", _("Dimensions")
    FINENESS = "fineness", _("Metal fineness")
    SURFACE = "surface", _("Surface")
    STONES = "stones", _("Stone security")
    FUNCTION = "function", _("Function")


CRITERION_ORDER = [CriterionKind.WEIGHT, CriterionKind.DIMENSIONS, CriterionKind.FINENESS,
                   CriterionKind.SURFACE, CriterionKind.STONES, CriterionKind.FUNCTION]

# The criteria whose tolerance a house may set, with its unit, its bounds and its decimals.
# Fineness has none (a reading below the hallmark is never accepted); stone security and
# function are a test passed or not.
TOLERANCES = {
    CriterionKind.WEIGHT: {"unit": "%", "min": "0.01", "max": "20", "places": 2},
    CriterionKind.DIMENSIONS: {"unit": "mm", "min": "0.001", "max": "5", "places": 3},
    CriterionKind.SURFACE: {"unit": "defects", "min": "0", "max": "20", "places": 0},
}


def _is_house_staff(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and user.sees_clients)


class InspectionTemplateQuerySet(models.QuerySet):
    def visible_to(self, user) -> InspectionTemplateQuerySet:
        """House staff read templates; workshops and clients do not see quality at all."""
        return self if _is_house_staff(user) else self.none()


class InspectionTemplate(models.Model):
    code = models.SlugField(max_length=40, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    is_default = models.BooleanField(default=False, verbose_name=_("is default"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    updated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("updated at"))
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("updated by"))

    objects = InspectionTemplateQuerySet.as_manager()

    class Meta:
        verbose_name = _("inspection template")
        verbose_name_plural = _("inspection templates")
        ordering = ["-is_default", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="one_default_inspection_template",
                                    violation_error_message=_("Only one template is the "
                                                              "default.")),
        ]

    def __str__(self) -> str:
        return self.name


class InspectionCriterion(models.Model):
    """One criterion of a template: whether it is checked, and its tolerance."""

    template = models.ForeignKey(InspectionTemplate, on_delete=models.CASCADE,
                                 related_name="criteria", verbose_name=_("template"))
    kind = models.CharField(max_length=12, choices=CriterionKind.choices,
                            verbose_name=_("criterion"))
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    enabled = models.BooleanField(default=True, verbose_name=_("checked"))
    tolerance = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True,
                                    # xgettext:no-python-format
                                    help_text=_("± % of the theoretical weight, ± mm per "
                                                "dimension, or visible defects allowed"),
                                    verbose_name=_("tolerance"))

    class Meta:
        verbose_name = _("inspection criterion")
        verbose_name_plural = _("inspection criteria")
        ordering = ["template", "position"]
        constraints = [
            models.UniqueConstraint(fields=["template", "kind"],
                                    name="inspection_criterion_once_per_template"),
            models.CheckConstraint(condition=Q(tolerance__isnull=True) | Q(tolerance__gte=0),
                                   name="inspection_criterion_tolerance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.template.code}:{self.kind}"


class InspectionStatus(models.TextChoices):
    DRAFT = "draft", _("Being measured")
    SIGNED = "signed", _("Signed")


class Verdict(models.TextChoices):
    PENDING = "pending", _("Incomplete")
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")
    NOT_APPLICABLE = "na", _("Not applicable")


class WeightSource(models.TextChoices):
    PIECE = "piece", _("Piece's theoretical weight")
    CAD = "cad", _("CAD estimate")
    ENTERED = "entered", _("Entered by the inspector")


class FinenessMethod(models.TextChoices):
    TOUCH = "touch", _("Touchstone test")
    XRF = "xrf", _("XRF reading")


class FunctionResult(models.TextChoices):
    OK = "ok", _("Works")
    NOT_OK = "not_ok", _("Does not work")
    NOT_APPLICABLE = "na", _("Not applicable (no clasp or hinge)")


class PhotoMoment(models.TextChoices):
    BEFORE = "before", _("Before finishing")
    AFTER = "after", _("After finishing")


class SignedInspectionError(ValueError):
    """An attempt to change a signed inspection, its measurements or its photos."""


SIGNED_MESSAGE = "A signed inspection cannot change; open a new inspection instead."


class InspectionQuerySet(models.QuerySet):
    def visible_to(self, user) -> InspectionQuerySet:
        return self if _is_house_staff(user) else self.none()

    def update(self, **kwargs):
        if self.filter(status=InspectionStatus.SIGNED).exists():
            raise SignedInspectionError(SIGNED_MESSAGE)
        return super().update(**kwargs)


class Inspection(models.Model):
    """One inspection of a piece at one of its finishing runs."""

    reference = models.CharField(max_length=30, unique=True, verbose_name=_("reference"))
    piece = models.ForeignKey("production.Piece", on_delete=models.CASCADE,
                              related_name="inspections", verbose_name=_("piece"))
    run = models.ForeignKey("production.StepRun", on_delete=models.CASCADE,
                            related_name="inspections", verbose_name=_("step run"))
    template = models.ForeignKey(InspectionTemplate, on_delete=models.PROTECT,
                                 related_name="inspections", verbose_name=_("template"))
    # The template's enabled criteria and tolerances when the inspection was opened:
    # [{"kind": "weight", "tolerance": "2.00"}, …]
    criteria = models.JSONField(default=list, verbose_name=_("criteria"))
    status = models.CharField(max_length=8, choices=InspectionStatus.choices,
                              default=InspectionStatus.DRAFT, verbose_name=_("status"))
    verdict = models.CharField(max_length=8, choices=Verdict.choices, default=Verdict.PENDING,
                               help_text=_("Computed from the measurements"),
                               verbose_name=_("verdict"))

    theoretical_weight_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                               blank=True,
                                               verbose_name=_("theoretical weight g"))
    theoretical_weight_source = models.CharField(max_length=8, blank=True,
                                                 choices=WeightSource.choices,
                                                 verbose_name=_("theoretical weight from"))
    measured_weight_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                            blank=True, verbose_name=_("measured weight g"))
    alloy_name = models.CharField(max_length=80, blank=True, verbose_name=_("alloy"))
    hallmark_fineness_permille = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("The alloy's fineness, which the hallmark states"),
        verbose_name=_("hallmark fineness ‰"))
    fineness_method = models.CharField(max_length=6, blank=True, choices=FinenessMethod.choices,
                                       verbose_name=_("fineness method"))
    fineness_reading_permille = models.DecimalField(max_digits=5, decimal_places=1, null=True,
                                                    blank=True,
                                                    verbose_name=_("fineness reading ‰"))
    surface_defects = models.PositiveSmallIntegerField(null=True, blank=True,
                                                       verbose_name=_("visible defects"))
    stones_applicable = models.BooleanField(default=True,
                                            help_text=_("False when the piece has no stones"),
                                            verbose_name=_("has stones"))
    stones_mechanical_test = models.BooleanField(null=True, blank=True,
                                                 verbose_name=_("mechanical test passed"))
    loose_stones = models.PositiveSmallIntegerField(null=True, blank=True,
                                                    verbose_name=_("loose stones"))
    function_result = models.CharField(max_length=6, blank=True,
                                       choices=FunctionResult.choices,
                                       verbose_name=_("clasps and hinges"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("opened by"))
    created_at = models.DateTimeField(verbose_name=_("opened at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("signed by"))
    signed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("signed at"))
    signed_content = models.JSONField(default=dict, blank=True,
                                      help_text=_("What the inspector signed"),
                                      verbose_name=_("signed content"))
    signed_sha256 = models.CharField(max_length=64, blank=True,
                                     verbose_name=_("SHA-256 of the signed content"))

    objects = InspectionQuerySet.as_manager()

    class Meta:
        verbose_name = _("inspection")
        verbose_name_plural = _("inspections")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["piece", "status"]),
                   models.Index(fields=["run", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["run"], condition=Q(status="draft"),
                                    name="one_open_inspection_per_run",
                                    violation_error_message=_("This step already has an "
                                                              "inspection being measured.")),
            models.CheckConstraint(
                name="inspection_signed_has_signature",
                condition=(Q(status="draft", signed_at__isnull=True, signed_by__isnull=True,
                             signed_sha256="")
                           | (Q(status="signed", signed_at__isnull=False,
                                signed_by__isnull=False) & ~Q(signed_sha256="")
                              & Q(verdict__in=["pass", "fail"]))),
                violation_error_message=_("A signed inspection has a signer, a time, a hash "
                                          "and a verdict; a draft has none.")),
        ]

    def __str__(self) -> str:
        return self.reference

    def save(self, *args, **kwargs):
        # The last line of defence after the services' own refusal (a 409).
        if self._stored_signed():
            raise SignedInspectionError(SIGNED_MESSAGE)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._stored_signed():
            raise SignedInspectionError(SIGNED_MESSAGE)
        return super().delete(*args, **kwargs)

    @property
    def is_signed(self) -> bool:
        return self.status == InspectionStatus.SIGNED

    def _stored_signed(self) -> bool:
        return self.pk is not None and type(self)._base_manager.filter(
            pk=self.pk, status=InspectionStatus.SIGNED).exists()


class _PartQuerySet(models.QuerySet):
    """Rows belonging to an inspection: frozen with it when it is signed."""

    def update(self, **kwargs):
        if self.filter(inspection__status=InspectionStatus.SIGNED).exists():
            raise SignedInspectionError(SIGNED_MESSAGE)
        return super().update(**kwargs)


class _InspectionPart(models.Model):
    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self._parent_signed():
            raise SignedInspectionError(SIGNED_MESSAGE)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self._parent_signed():
            raise SignedInspectionError(SIGNED_MESSAGE)
        return super().delete(*args, **kwargs)

    def _parent_signed(self) -> bool:
        return Inspection._base_manager.filter(pk=self.inspection_id,
                                               status=InspectionStatus.SIGNED).exists()


class InspectionDimension(_InspectionPart):
    """One dimension measured against its own target (ring width, stone height, length…)."""

    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE,
                                   related_name="dimensions", verbose_name=_("inspection"))
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    name = models.CharField(max_length=60, verbose_name=_("dimension"))
    target_mm = models.DecimalField(max_digits=8, decimal_places=3, verbose_name=_("target mm"))
    measured_mm = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True,
                                      verbose_name=_("measured mm"))

    objects = _PartQuerySet.as_manager()

    class Meta:
        verbose_name = _("measured dimension")
        verbose_name_plural = _("measured dimensions")
        ordering = ["inspection", "position"]
        constraints = [
            models.UniqueConstraint(fields=["inspection", "position"],
                                    name="inspection_dimension_position_unique"),
            models.CheckConstraint(condition=Q(target_mm__gt=0),
                                   name="inspection_dimension_target_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.inspection_id}:{self.name}"


class InspectionPhoto(_InspectionPart):
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="photos",
                                   verbose_name=_("inspection"))
    # RESTRICT: a document cannot go while the photo row holds it, unless the inspection
    # itself goes in the same deletion (the piece's).
    document = models.ForeignKey("documents.Document", on_delete=models.RESTRICT,
                                 related_name="+", verbose_name=_("document"))
    moment = models.CharField(max_length=6, choices=PhotoMoment.choices,
                              verbose_name=_("moment"))
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text=_("Caller's id, so a repeated upload counts once"),
                                  verbose_name=_("client ref"))
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+", verbose_name=_("added by"))
    added_at = models.DateTimeField(verbose_name=_("added at"))

    objects = _PartQuerySet.as_manager()

    class Meta:
        verbose_name = _("inspection photo")
        verbose_name_plural = _("inspection photos")
        ordering = ["inspection", "moment", "id"]

    def __str__(self) -> str:
        return f"{self.inspection_id}:{self.moment}:{self.document_id}"


class RootCause(models.TextChoices):
    DESIGN = "design", _("Design")
    CASTING = "casting", _("Casting")
    ASSEMBLY = "assembly", _("Assembly")
    SETTING = "setting", _("Setting")
    POLISHING = "polishing", _("Polishing")
    PLATING = "plating", _("Plating")
    ENGRAVING_HALLMARKING = "engraving_hallmarking", _("Engraving / hallmarking")
    MATERIAL = "material", _("Material")
    OTHER = "other", _("Other")


class NonconformityStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_REWORK = "in_rework", _("In rework")
    CLOSED = "closed", _("Closed")


OPEN_NONCONFORMITY_STATUSES = (NonconformityStatus.OPEN, NonconformityStatus.IN_REWORK)


class NonconformityQuerySet(models.QuerySet):
    def visible_to(self, user) -> NonconformityQuerySet:
        """House staff only: a client never sees nonconformities, nor does a workshop."""
        return self if _is_house_staff(user) else self.none()


class Nonconformity(models.Model):
    """What a failed inspection found, why it happened, and the rework that answers it."""

    reference = models.CharField(max_length=30, unique=True, verbose_name=_("reference"))
    piece = models.ForeignKey("production.Piece", on_delete=models.CASCADE,
                              related_name="nonconformities", verbose_name=_("piece"))
    inspection = models.OneToOneField(Inspection, on_delete=models.CASCADE,
                                      related_name="nonconformity",
                                      verbose_name=_("failed inspection"))
    # [{"kind": "weight", "label": "Weight", "detail": "deviation 2.01 % (± 2.00 %)"}, …]
    failed_criteria = models.JSONField(default=list, verbose_name=_("failed criteria"))
    status = models.CharField(max_length=10, choices=NonconformityStatus.choices,
                              default=NonconformityStatus.OPEN, verbose_name=_("status"))
    held = models.BooleanField(default=False,
                               help_text=_("The failure put the piece on hold (quality stop)"),
                               verbose_name=_("held"))
    root_cause = models.CharField(max_length=24, blank=True, choices=RootCause.choices,
                                  verbose_name=_("root cause"))
    corrective_action = models.TextField(blank=True, verbose_name=_("corrective action"))
    cause_recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                          on_delete=models.PROTECT, related_name="+",
                                          verbose_name=_("cause recorded by"))
    cause_recorded_at = models.DateTimeField(null=True, blank=True,
                                             verbose_name=_("cause recorded at"))
    rework_run = models.ForeignKey("production.StepRun", null=True, blank=True,
                                   on_delete=models.CASCADE, related_name="+",
                                   help_text=_("The step sent back to redo the work"),
                                   verbose_name=_("rework from"))
    sent_to_rework_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                          on_delete=models.PROTECT, related_name="+",
                                          verbose_name=_("sent to rework by"))
    sent_to_rework_at = models.DateTimeField(null=True, blank=True,
                                             verbose_name=_("sent to rework at"))
    closed_by_inspection = models.ForeignKey(Inspection, null=True, blank=True,
                                             on_delete=models.SET_NULL, related_name="closed",
                                             verbose_name=_("closed by inspection"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("opened by"))
    created_at = models.DateTimeField(verbose_name=_("opened at"))

    objects = NonconformityQuerySet.as_manager()

    class Meta:
        verbose_name = _("nonconformity")
        verbose_name_plural = _("nonconformities")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"]),
                   models.Index(fields=["piece", "status"])]
        constraints = [
            models.CheckConstraint(
                name="nonconformity_closed_has_date",
                condition=(Q(status="closed", closed_at__isnull=False)
                           | (~Q(status="closed") & Q(closed_at__isnull=True))),
                violation_error_message=_("A closed nonconformity has a closing date.")),
            models.CheckConstraint(
                name="nonconformity_rework_has_target",
                condition=Q(rework_run__isnull=False) | ~Q(status="in_rework"),
                violation_error_message=_("A nonconformity in rework names the step redone.")),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_NONCONFORMITY_STATUSES

    @property
    def failed_labels(self) -> list[str]:
        return [str(CriterionKind(c["kind"]).label) for c in self.failed_criteria]
