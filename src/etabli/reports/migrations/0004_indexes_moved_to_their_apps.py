"""The indexes 0001 created on other apps' tables now belong to those apps' models
(production 0006, materials 0006, under other names): drop the reports app's copies."""

from django.db import migrations

MOVED = [
    ("reports_steprun_finish_idx", "production_steprun", "actual_finish"),
    ("reports_steprun_start_idx", "production_steprun", "actual_start"),
    ("reports_piece_delivered_idx", "production_piece", "delivered_at"),
    ("reports_slip_settled_idx", "materials_materialslip", "settled_at"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_fill_summaries"),
        ("production", "0006_history_indexes"),
        ("materials", "0006_settled_index"),
    ]

    operations = [
        migrations.RunSQL(
            sql=f"DROP INDEX IF EXISTS {name}",
            reverse_sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})",
        )
        for name, table, column in MOVED
    ]
