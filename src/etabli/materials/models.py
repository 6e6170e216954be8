from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


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
        return (alloy_weight_g * self.fineness_permille / 1000).quantize(Decimal("0.001"))
