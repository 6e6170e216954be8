"""Finishing's reference data: the operations recorded one by one (engraving, the assay office's
hallmarking, the serial number) and the hallmark weight exemptions of France and the UK.

France: Code général des impôts, art. 524 bis b and annex III — pieces of gold or platinum under
3 g and of silver under 30 g are exempt from the guarantee mark (they must still be of a legal
fineness and carry the maker's mark). French guarantee law covers gold, silver and platinum
only: it sets no palladium threshold, so none is seeded.
UK: Hallmarking Act 1973 (as amended in 2009 for palladium) — gold under 1 g, silver under
7.78 g, platinum under 0.5 g, palladium under 1 g.
"""

from decimal import Decimal

from django.db import migrations
from django.utils.translation import gettext_noop

OPERATIONS = [
    # (code, name, step, position): next to the combined engraving_hallmarking (13).
    ("engraving", gettext_noop("Engraving"), "finishing", 13),
    ("hallmarking", gettext_noop("Hallmarking (assay office)"), "finishing", 13),
    ("serial_engraving", gettext_noop("Serial number engraving"), "finishing", 13),
]

FR = "Code général des impôts, art. 524 bis b (annex III)"
UK = "Hallmarking Act 1973, as amended"
EXEMPTIONS = [
    ("FR", "gold", Decimal("3"), FR),
    ("FR", "platinum", Decimal("3"), FR),
    ("FR", "silver", Decimal("30"), FR),
    ("GB", "gold", Decimal("1"), UK),
    ("GB", "silver", Decimal("7.78"), UK),
    ("GB", "platinum", Decimal("0.5"), UK),
    ("GB", "palladium", Decimal("1"), UK),
]


def load(apps, schema_editor):
    Operation = apps.get_model("workshops", "Operation")
    HallmarkExemption = apps.get_model("finishing", "HallmarkExemption")
    for code, name, step, position in OPERATIONS:
        Operation.objects.get_or_create(code=code, defaults={"name": name, "step": step,
                                                             "position": position})
    for country, metal, weight, reference in EXEMPTIONS:
        HallmarkExemption.objects.get_or_create(
            country=country, metal=metal,
            defaults={"under_weight_g": weight, "legal_reference": reference})


class Migration(migrations.Migration):
    dependencies = [("finishing", "0001_initial"), ("workshops", "0003_verbose_names")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
