"""`etabli reports rebuild`: recompute the reports' summary tables from the history."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import transaction


class Command(BaseCommand):
    help = ("Reports. 'reports rebuild' recomputes the summary tables the KPI reports read "
            "(per day, step and workshop, also split by client, channel, model and alloy; per "
            "piece) from the recorded history: after loading data behind the application's "
            "back, or to check them. The services keep them up to date otherwise.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("rebuild", help="Recompute the summary tables from the history.")

    def handle(self, *args, action: str, **options):
        from etabli.reports import summaries
        from etabli.reports.models import PieceFact

        started = time.monotonic()
        with transaction.atomic():
            out = summaries.rebuild()
        self.stdout.write(f"Rebuilt {out['step_days']} day × step × workshop rows, "
                          f"{out['step_day_details']} detailed rows and "
                          f"{PieceFact.objects.count()} piece rows in "
                          f"{time.monotonic() - started:.1f} s.")
