from django.db import migrations

from etabli.reference_data import DEFAULT_ROUTE, DEFAULT_ROUTE_NAME


def load(apps, schema_editor):
    RouteTemplate = apps.get_model("production", "RouteTemplate")
    RouteTemplateStep = apps.get_model("production", "RouteTemplateStep")
    Workshop = apps.get_model("workshops", "Workshop")
    if RouteTemplate.objects.exists():
        return
    house = Workshop.objects.get(kind="house")
    template = RouteTemplate.objects.create(
        code="standard", name=DEFAULT_ROUTE_NAME, is_default=True,
        description="Order receipt, design, prototype, manufacturing, setting, finishing, "
                    "delivery.")
    at_house = {"order_receipt", "design", "delivery"}
    for position, (step, days, ops) in enumerate(DEFAULT_ROUTE, start=1):
        RouteTemplateStep.objects.create(template=template, position=position, step=step,
                                         planned_days=days, operations=ops,
                                         workshop=house if step in at_house else None)


class Migration(migrations.Migration):
    dependencies = [("production", "0001_initial"), ("workshops", "0002_reference_data")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
