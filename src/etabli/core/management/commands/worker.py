"""`etabli worker`: run the background work (periodic jobs and queued tasks).

`etabli serve` starts one by itself; run it on its own when the web servers are started with
`ETABLI_SERVE_WORKER=0` (PostgreSQL, several machines): any number may run at once.
"""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from ..common import ensure_migrated


class Command(BaseCommand):
    help = ("Run Établi's background work: alert detection, notifications, digests, and the "
            "tasks queued by the web servers. Any number of workers may run at once.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=2.0,
                            help="Seconds to wait between two rounds (default 2).")
        parser.add_argument("--once", action="store_true",
                            help="One round (queue what is due, run what is queued), then stop.")
        parser.add_argument("--status", action="store_true",
                            help="Print each periodic job and how its last run went, then stop.")
        parser.add_argument("--parent-pid", type=int, default=None,
                            help=("Stop when this process is gone (used by 'etabli serve')."))

    def handle(self, *args, interval: float, once: bool, status: bool, parent_pid, **options):
        from etabli.core import jobs

        ensure_migrated()
        if status:
            for row in jobs.status():
                last = ("never run" if row["last_ok"] is None
                        else "ok" if row["last_ok"] else f"failed: {row['last_error']}")
                next_at = row["next_run_at"].isoformat() if row["next_run_at"] else "at once"
                self.stdout.write(f"{row['name']:<28} every {row['every_s']:>5} s  "
                                  f"next {next_at}  last {last}")
            return
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            if stopping:  # a second Ctrl-C: stop now
                raise SystemExit(1)
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        if not once:
            self.stdout.write(f"Établi worker running (every {interval:g} s; Ctrl-C to stop)")
            self.stdout.flush()
        jobs.run_worker(interval=interval, once=once, parent_pid=parent_pid,
                        should_stop=lambda: stopping)
