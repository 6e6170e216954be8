from decimal import Decimal

from django.db import migrations

from etabli.reference_data import ALLOYS


def load(apps, schema_editor):
    Alloy = apps.get_model("materials", "Alloy")
    for code, name, metal, fineness, colour, density in ALLOYS:
        Alloy.objects.get_or_create(code=code, defaults={
            "name": name, "metal": metal, "fineness_permille": fineness, "colour": colour,
            "density_g_cm3": Decimal(density)})


class Migration(migrations.Migration):
    dependencies = [("materials", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
