from decimal import Decimal

from django.db import migrations

from etabli.reference_data import LOSS_ALLOWANCES, MATERIAL_LOCATIONS


def load(apps, schema_editor):
    Location = apps.get_model("materials", "Location")
    LossAllowance = apps.get_model("materials", "LossAllowance")
    for kind, name in MATERIAL_LOCATIONS:
        Location.objects.get_or_create(kind=kind, defaults={"name": name})
    for operation, percent in LOSS_ALLOWANCES:
        LossAllowance.objects.get_or_create(workshop=None, operation=operation,
                                            defaults={"percent": Decimal(percent)})


class Migration(migrations.Migration):
    dependencies = [("materials", "0004_ledgers")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
