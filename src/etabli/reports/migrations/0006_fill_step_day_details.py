"""Fill `StepDayDetail` from the history already recorded (installs older than it).

Like 0003, it uses the application's `summaries` code, which writes the table as it is at this
migration; if a later migration changes the table, copy today's SQL here first."""

from django.db import migrations


def fill(apps, schema_editor):
    from etabli.reports.summaries import STEPDAY_DETAIL, _add_step_rows, _step_rows

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(STEPDAY_DETAIL)}")
    _add_step_rows(_step_rows(connection, None, detail=True), connection, detail=True)


class Migration(migrations.Migration):
    dependencies = [("reports", "0005_step_day_detail")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
