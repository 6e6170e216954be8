"""Weights as jewellers and bullion dealers say them.

Grams are what Établi stores (3 decimals); troy ounces, pennyweights and grains are shown where
people expect them, and carats for stones. Exact definitions: 1 grain = 64.79891 mg, a
pennyweight is 24 grains and a troy ounce 480 grains; 1 metric carat = 0.2 g.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

GRAIN_G = Decimal("0.06479891")
PENNYWEIGHT_G = GRAIN_G * 24  # 1.55517384 g
TROY_OUNCE_G = GRAIN_G * 480  # 31.1034768 g
CARAT_G = Decimal("0.2")

MG = Decimal("0.001")

UNITS_G = {
    "g": Decimal(1),
    "ozt": TROY_OUNCE_G,
    "dwt": PENNYWEIGHT_G,
    "gr": GRAIN_G,
    "ct": CARAT_G,
}

UNIT_LABELS = {"g": "g", "ozt": "oz t", "dwt": "dwt", "gr": "gr", "ct": "ct"}


def to_unit(grams: Decimal, unit: str, places: int = 3) -> Decimal:
    """`grams` expressed in `unit` (g, ozt, dwt, gr or ct), rounded half up."""
    factor = UNITS_G[unit]
    return (Decimal(grams) / factor).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def from_unit(value: Decimal, unit: str) -> Decimal:
    """A weight given in `unit`, in grams to the milligram."""
    return (Decimal(value) * UNITS_G[unit]).quantize(MG, ROUND_HALF_UP)


def conversions(grams: Decimal) -> dict[str, Decimal]:
    """The same weight in every unit people use for metal (for tooltips and statements)."""
    return {
        "g": Decimal(grams).quantize(MG),
        "ozt": to_unit(grams, "ozt", 4),
        "dwt": to_unit(grams, "dwt", 3),
        "gr": to_unit(grams, "gr", 1),
    }


def fine_g(alloy_g: Decimal, fineness_permille: int) -> Decimal:
    """Fine metal in an alloy weight, to the milligram (rounded half up)."""
    return (Decimal(alloy_g) * fineness_permille / 1000).quantize(MG, ROUND_HALF_UP)


def carats_to_g(carats: Decimal) -> Decimal:
    return (Decimal(carats) * CARAT_G).quantize(MG, ROUND_HALF_UP)


def volume_weight_g(volume_mm3: Decimal, density_g_cm3: Decimal) -> Decimal:
    """Weight of a volume (mm³) of a material of the given density (g/cm³)."""
    return (Decimal(volume_mm3) / 1000 * Decimal(density_g_cm3)).quantize(MG, ROUND_HALF_UP)
