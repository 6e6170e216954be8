"""Fill the summary tables from the history already recorded (installs older than them).

It calls the application's `summaries.rebuild` (without `StepDayDetail`, made later), which
writes the tables as they are at this migration; if a later migration changes them, copy
today's SQL here first."""

from django.db import migrations


def fill(apps, schema_editor):
    from etabli.reports.summaries import rebuild

    rebuild(connection=schema_editor.connection, detail=False)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_summaries"),
        ("production", "0004_skip_document"),
        ("orders", "0006_order_language_closed"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
