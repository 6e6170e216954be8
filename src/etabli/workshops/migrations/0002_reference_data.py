from django.db import migrations

from etabli.reference_data import HOUSE_SKILLS, OPERATIONS


def load(apps, schema_editor):
    Operation = apps.get_model("workshops", "Operation")
    Workshop = apps.get_model("workshops", "Workshop")
    for position, (code, name, step) in enumerate(OPERATIONS, start=1):
        Operation.objects.get_or_create(code=code, defaults={"name": name, "step": step,
                                                             "position": position})
    house, _ = Workshop.objects.get_or_create(
        kind="house", defaults={"code": "house", "name": "The house", "capacity_benches": 4})
    house.skills.add(*Operation.objects.filter(code__in=HOUSE_SKILLS))


class Migration(migrations.Migration):
    dependencies = [("workshops", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
