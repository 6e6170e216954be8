"""The default inspection template: the house standard (DESIGN.md, quality inspection)."""

from decimal import Decimal

from django.db import migrations

HOUSE_STANDARD = [
    ("weight", Decimal("2.00")),  # ± % of the piece's theoretical weight
    ("dimensions", Decimal("0.200")),  # ± mm, each dimension against its own target
    ("fineness", None),  # the reading is at least the hallmark's fineness
    ("surface", Decimal("0")),  # visible defects under the loupe
    ("stones", None),  # mechanical test passed, no loose stone
    ("function", None),  # clasps and hinges work
]


def load(apps, schema_editor):
    InspectionTemplate = apps.get_model("quality", "InspectionTemplate")
    InspectionCriterion = apps.get_model("quality", "InspectionCriterion")
    if InspectionTemplate.objects.filter(code="house-standard").exists():
        return
    template = InspectionTemplate.objects.create(
        code="house-standard", name="House standard",
        is_default=not InspectionTemplate.objects.filter(is_default=True).exists(),
        description="Weight within ±2 % of the theoretical weight, dimensions within "
                    "±0.2 mm, fineness at least the hallmark's (touchstone or XRF), no visible "
                    "defect under the loupe, stones secure, clasps and hinges working.")
    for position, (kind, tolerance) in enumerate(HOUSE_STANDARD, start=1):
        InspectionCriterion.objects.create(template=template, kind=kind, position=position,
                                           enabled=True, tolerance=tolerance)


def unload(apps, schema_editor):
    InspectionTemplate = apps.get_model("quality", "InspectionTemplate")
    InspectionTemplate.objects.filter(code="house-standard", inspections__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("quality", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
