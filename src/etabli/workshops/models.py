from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class StepKind(models.TextChoices):
    """The seven steps of a piece (DESIGN.md §1), in their natural order."""

    ORDER_RECEIPT = "order_receipt", _("Order receipt and qualification")
    DESIGN = "design", _("Design & CAD")
    PROTOTYPING = "prototyping", _("Prototyping")
    MANUFACTURING = "manufacturing", _("Manufacturing")
    SETTING = "setting", _("Setting")
    FINISHING = "finishing", _("Finishing & QC")
    DELIVERY = "delivery", _("Delivery")


STEP_ORDER = list(StepKind.values)


class Operation(models.Model):
    """Something a workshop knows how to do, within one of the seven steps."""

    code = models.SlugField(max_length=40, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    step = models.CharField(max_length=20, choices=StepKind.choices, verbose_name=_("step"))
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))

    class Meta:
        verbose_name = _("operation")
        verbose_name_plural = _("operations")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.name


class WorkshopKind(models.TextChoices):
    HOUSE = "house", _("The house")
    INTERNAL = "internal", _("Internal bench")
    EXTERNAL = "external", _("Outside workshop")


class WorkshopQuerySet(models.QuerySet):
    def visible_to(self, user) -> WorkshopQuerySet:
        """House staff see every workshop; a workshop member sees their own; clients none."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if user.role == Role.CLIENT:
            return self.none()
        if user.role == Role.WORKSHOP:
            return self.filter(members=user)
        return self


class Workshop(models.Model):
    code = models.SlugField(max_length=30, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    kind = models.CharField(max_length=10, choices=WorkshopKind.choices,
                            default=WorkshopKind.EXTERNAL, verbose_name=_("kind"))
    skills = models.ManyToManyField(Operation, blank=True, related_name="workshops",
                                    verbose_name=_("skills"))
    capacity_benches = models.PositiveSmallIntegerField(
        default=1, help_text=_("Pieces it can work on at the same time"),
        verbose_name=_("capacity benches"))
    address = models.TextField(blank=True, verbose_name=_("address"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    phone = models.CharField(max_length=40, blank=True, verbose_name=_("phone"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    objects = WorkshopQuerySet.as_manager()

    class Meta:
        verbose_name = _("workshop")
        verbose_name_plural = _("workshops")
        ordering = ["name"]
        constraints = [
            # Exactly one row stands for the house itself (its vault, design studio, dispatch).
            models.UniqueConstraint(fields=["kind"], condition=Q(kind="house"),
                                    name="one_house_workshop",
                                    violation_error_message="There is already a house."),
            models.CheckConstraint(condition=Q(capacity_benches__gte=1),
                                   name="workshop_capacity_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_house(self) -> bool:
        return self.kind == WorkshopKind.HOUSE


class WorkshopContact(models.Model):
    workshop = models.ForeignKey(Workshop, on_delete=models.CASCADE, related_name="contacts",
                                 verbose_name=_("workshop"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    function = models.CharField(max_length=80, blank=True, verbose_name=_("function"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    phone = models.CharField(max_length=40, blank=True, verbose_name=_("phone"))

    class Meta:
        verbose_name = _("workshop contact")
        verbose_name_plural = _("workshop contacts")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.workshop})"
