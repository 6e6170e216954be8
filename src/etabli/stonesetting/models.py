"""Stone setting: a setting plan per piece, checked before the piece goes to the setter, and the
control made when the piece comes back from the setter.

The stones themselves live in the materials app: a plan's group names the lot its stones come
from and the piece's allocation of that lot (`materials.StoneAllocation`), made through the
materials services so the stones are reserved in the stone ledger. Broken or lost stones found
at the control are booked through the materials breakage service too; the control keeps the
ledger entries it caused.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from etabli.materials.models import StoneShape, StoneType


class SettingType(models.TextChoices):
    PRONG = "prong", _("Prong (claw)")
    BEZEL = "bezel", _("Bezel")
    PAVE = "pave", _("Pavé")
    CHANNEL = "channel", _("Channel")
    INVISIBLE = "invisible", _("Invisible")
    TENSION = "tension", _("Tension")
    FLUSH = "flush", _("Flush (gypsy)")
    BEAD = "bead", _("Bead (grain)")
    MICRO_PAVE = "micro_pave", _("Micro-pavé")


class StonePosition(models.TextChoices):
    CENTRE = "centre", _("Centre")
    HALO = "halo", _("Halo")
    SHOULDERS = "shoulders", _("Shoulders")
    BAND = "band", _("Band")
    SIDE = "side", _("Side stones")
    GALLERY = "gallery", _("Gallery (hidden stone)")
    CLUSTER = "cluster", _("Cluster")
    DROP = "drop", _("Drop")
    LINKS = "links", _("Links")
    OTHER = "other", _("Elsewhere")


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    CHECKED = "checked", _("Checked")


def pieces_for_setting(user):
    """The pieces whose setting plan and controls `user` may see.

    House staff see every piece's plan; a workshop member sees the plans of the pieces at or on
    their way to their workshop (the piece's own scope) and of the pieces coming to them for
    setting (a setting step at their workshop not yet done), so the setter can prepare; clients
    see none.
    """
    from etabli.accounts.models import Role
    from etabli.production.models import CLOSED_STEP_STATUSES, Piece, StepRun
    from etabli.workshops.models import StepKind

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Piece.objects.none()
    if user.sees_clients:
        return Piece.objects.all()
    if user.role == Role.WORKSHOP:
        ids = user.workshop_ids()
        coming = StepRun.objects.filter(piece=OuterRef("pk"), step=StepKind.SETTING,
                                        workshop_id__in=ids).exclude(
            status__in=CLOSED_STEP_STATUSES)
        return Piece.objects.filter(Q(location_id__in=ids) | Q(transit_to_id__in=ids)
                                    | Exists(coming))
    return Piece.objects.none()


class SettingPlanQuerySet(models.QuerySet):
    def visible_to(self, user) -> SettingPlanQuerySet:
        return self.filter(piece__in=pieces_for_setting(user))


class SettingPlan(models.Model):
    """Which stones go where in one piece, and how they are set."""

    piece = models.OneToOneField("production.Piece", on_delete=models.PROTECT,
                                 related_name="setting_plan", verbose_name=_("piece"))
    status = models.CharField(max_length=10, choices=PlanStatus.choices,
                              default=PlanStatus.DRAFT, verbose_name=_("status"))
    revision = models.PositiveSmallIntegerField(
        default=1, help_text=_("Goes up each time a checked plan is reopened"),
        verbose_name=_("revision"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))
    # The check before the piece goes to the setter.
    stones_match = models.BooleanField(default=False,
                                       verbose_name=_("stones match the order"))
    preparation_checked = models.BooleanField(default=False,
                                              verbose_name=_("preparation checked"))
    check_note = models.TextField(blank=True, verbose_name=_("check note"))
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("checked by"))
    checked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("checked at"))

    objects = SettingPlanQuerySet.as_manager()

    class Meta:
        verbose_name = _("setting plan")
        verbose_name_plural = _("setting plans")
        ordering = ["piece"]
        constraints = [
            models.CheckConstraint(
                name="setting_plan_checked_has_checker",
                condition=Q(status="draft") | (Q(checked_by__isnull=False,
                                                 checked_at__isnull=False,
                                                 stones_match=True,
                                                 preparation_checked=True)),
                violation_error_message=_("A checked plan says who checked it and when.")),
        ]

    def __str__(self) -> str:
        return f"{self.piece_id} r{self.revision}"

    @property
    def is_checked(self) -> bool:
        return self.status == PlanStatus.CHECKED


class SettingGroup(models.Model):
    """Stones of one kind set the same way in one place of the piece."""

    plan = models.ForeignKey(SettingPlan, on_delete=models.CASCADE, related_name="groups",
                             verbose_name=_("plan"))
    number = models.PositiveSmallIntegerField(verbose_name=_("number"))
    setting_type = models.CharField(max_length=12, choices=SettingType.choices,
                                    verbose_name=_("setting"))
    position = models.CharField(max_length=12, choices=StonePosition.choices,
                                verbose_name=_("position"))
    stone_type = models.CharField(max_length=12, choices=StoneType.choices,
                                  verbose_name=_("stone type"))
    shape = models.CharField(max_length=12, choices=StoneShape.choices, verbose_name=_("shape"))
    size_mm = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                  verbose_name=_("size mm"))
    sieve = models.CharField(max_length=20, blank=True, verbose_name=_("sieve"))
    count = models.PositiveIntegerField(verbose_name=_("count"))
    carats = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                 help_text=_("Total for the group"), verbose_name=_("carats"))
    supplied_by_client = models.BooleanField(
        default=False, help_text=_("The client's own stones: not in the house's stone ledger"),
        verbose_name=_("client's stones"))
    lot = models.ForeignKey("materials.StoneLot", null=True, blank=True,
                            on_delete=models.PROTECT, related_name="setting_groups",
                            verbose_name=_("lot"))
    allocation = models.OneToOneField("materials.StoneAllocation", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="setting_group",
                                      verbose_name=_("allocation"))
    note = models.CharField(max_length=240, blank=True, verbose_name=_("note"))

    class Meta:
        verbose_name = _("setting group")
        verbose_name_plural = _("setting groups")
        ordering = ["plan", "number"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="setting_group_number"),
            models.CheckConstraint(condition=Q(count__gt=0), name="setting_group_count"),
            models.CheckConstraint(condition=Q(carats__isnull=True) | Q(carats__gt=0),
                                   name="setting_group_carats"),
            models.CheckConstraint(condition=Q(size_mm__isnull=True) | Q(size_mm__gt=0),
                                   name="setting_group_size"),
            models.CheckConstraint(
                condition=Q(supplied_by_client=False) | Q(lot__isnull=True,
                                                          allocation__isnull=True),
                name="setting_group_client_stones_not_in_ledger",
                violation_error_message=_("The client's own stones come from no lot.")),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id}#{self.number}"

    @property
    def size_label(self) -> str:
        parts = []
        if self.size_mm is not None:
            parts.append(f"{self.size_mm} mm")
        if self.sieve:
            parts.append(str(_("sieve %(sieve)s") % {"sieve": self.sieve}))
        return " · ".join(parts)


class SettingControlQuerySet(models.QuerySet):
    def visible_to(self, user) -> SettingControlQuerySet:
        return self.filter(piece__in=pieces_for_setting(user))


class SettingControl(models.Model):
    """The control made when a piece comes back from the setter: every stone counted, the
    setting tested, photos taken. Its result is computed, never typed."""

    plan = models.ForeignKey(SettingPlan, on_delete=models.PROTECT, related_name="controls",
                             verbose_name=_("plan"))
    piece = models.ForeignKey("production.Piece", on_delete=models.PROTECT,
                              related_name="setting_controls", verbose_name=_("piece"))
    setting_run = models.OneToOneField("production.StepRun", on_delete=models.PROTECT,
                                       related_name="setting_control",
                                       verbose_name=_("setting step"))
    plan_revision = models.PositiveSmallIntegerField(verbose_name=_("plan revision"))
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                 related_name="+", help_text=_("Where the piece was controlled"),
                                 verbose_name=_("workshop"))
    stones_secure = models.BooleanField(verbose_name=_("stones secure"))
    passed = models.BooleanField(verbose_name=_("passed"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("recorded by"))
    recorded_at = models.DateTimeField(verbose_name=_("recorded at"))
    photos = models.ManyToManyField("documents.Document", blank=True, related_name="+",
                                    verbose_name=_("photos"))
    stone_entries = models.ManyToManyField(
        "materials.StoneEntry", blank=True, related_name="+",
        help_text=_("Broken or lost stones booked in the stone ledger"),
        verbose_name=_("stone entries"))
    hold_event = models.ForeignKey("production.TrackingEvent", null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("hold"))
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text=_("Caller's id, so a repeated submission counts once"),
                                  verbose_name=_("client ref"))

    objects = SettingControlQuerySet.as_manager()

    class Meta:
        verbose_name = _("setting control")
        verbose_name_plural = _("setting controls")
        ordering = ["piece", "recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.piece_id}:{self.setting_run_id} {'pass' if self.passed else 'fail'}"


class SettingControlCount(models.Model):
    """One group of the plan as counted at the control."""

    control = models.ForeignKey(SettingControl, on_delete=models.CASCADE, related_name="counts",
                                verbose_name=_("control"))
    group = models.ForeignKey(SettingGroup, null=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("group"))
    group_number = models.PositiveSmallIntegerField(verbose_name=_("group number"))
    description = models.CharField(max_length=200, verbose_name=_("description"))
    planned = models.PositiveIntegerField(verbose_name=_("planned"))
    counted = models.PositiveIntegerField(verbose_name=_("counted"))
    broken = models.PositiveIntegerField(default=0, verbose_name=_("broken"))
    lost = models.PositiveIntegerField(default=0, verbose_name=_("lost"))

    class Meta:
        verbose_name = _("setting control count")
        verbose_name_plural = _("setting control counts")
        ordering = ["control", "group_number"]

    def __str__(self) -> str:
        return f"{self.control_id}#{self.group_number} {self.counted}/{self.planned}"

    @property
    def matches(self) -> bool:
        return self.counted == self.planned
