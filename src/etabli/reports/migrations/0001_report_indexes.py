"""Indexes the reports need on other apps' tables (docs/reports.md, "Speed").

The KPIs select step runs by when they started or finished and pieces by when they were
delivered; without these indexes each figure would scan the whole history. They are plain
B-tree indexes, valid on SQLite and PostgreSQL, created here so the reports app owns what it
needs (IF NOT EXISTS: harmless if the owning app adds the same index later under this name).
"""

from django.db import migrations

INDEXES = [
    ("reports_steprun_finish_idx", "production_steprun", "actual_finish"),
    ("reports_steprun_start_idx", "production_steprun", "actual_start"),
    ("reports_piece_delivered_idx", "production_piece", "delivered_at"),
    ("reports_slip_settled_idx", "materials_materialslip", "settled_at"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("production", "0004_skip_document"),
        ("materials", "0004_ledgers"),  # material slips get settled_at there
    ]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, table, column in INDEXES
    ]
