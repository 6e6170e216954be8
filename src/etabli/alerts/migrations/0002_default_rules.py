"""Seed one rule per alert kind with sensible defaults (a house tunes them on /alerts/rules/)."""

from decimal import Decimal

from django.db import migrations

# kind, threshold, critical from, severity, role, margin %, look back days
DEFAULT_RULES = [
    # Late by more than 0 days past the planned due date; critical from 5 days late. A step in
    # progress 50 % longer than planned is overdue even before its due date.
    ("step_overdue", "0", "5", "warning", "production_manager", 50, 30),
    # Projected finish + safety buffer past the promised date by more than 0 days; critical
    # when the projection alone misses the promise.
    ("order_at_risk", "0", None, "warning", "production_manager", 50, 30),
    # Slip not received 2 days after sending; critical from 5 days.
    ("transfer_not_received", "2", "5", "warning", "logistics", 50, 30),
    # Any loss over the allowance (grams above it), for issues settled in the last 30 days.
    ("metal_loss", "0", "5", "warning", "production_manager", 50, 30),
    # A breakage of 1 stone or more in the last 30 days; critical from 3 stones at once.
    ("stone_breakage", "1", "3", "warning", "production_manager", 50, 30),
    # An open nonconformity at once; critical when open 3 days or more.
    ("qc_failure", "0", "3", "warning", "quality", 50, 30),
    # On hold more than 3 days; critical from 10.
    ("piece_on_hold", "3", "10", "warning", "production_manager", 50, 30),
    # A change request waiting more than 2 days for a decision; critical from 7.
    ("change_request_waiting", "2", "7", "warning", "sales", 50, 30),
]


def seed(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for kind, threshold, critical, severity, role, margin, lookback in DEFAULT_RULES:
        AlertRule.objects.get_or_create(kind=kind, defaults={
            "threshold": Decimal(threshold),
            "critical_threshold": Decimal(critical) if critical else None,
            "severity": severity, "assigned_role": role, "margin_percent": margin,
            "lookback_days": lookback, "enabled": True})


def unseed(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
