"""`etabli bench seed --pieces N` and `etabli bench run`: benchmark data and figures."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ..common import ensure_migrated


class Command(BaseCommand):
    # The figures load the URLs themselves; seeding must not depend on every app's API.
    requires_system_checks = []
    help = ("Benchmarks. 'bench seed --pieces N' adds a realistic history of N pieces (orders, "
            "routes, tracking events, transfer slips); 'bench run' prints each figure with its "
            "target and the same aggregate computed by a hand-written SQL query.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        seed = sub.add_parser("seed", help="Add N pieces of realistic history.")
        seed.add_argument("--pieces", type=int, required=True, help="How many pieces to add.")
        seed.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        seed.add_argument("--fresh", action="store_true",
                          help="Delete all domain data first (as 'etabli demo --reset').")
        seed.add_argument("--batch", type=int, default=50_000,
                          help="Rows written per batch (default 50000).")
        run = sub.add_parser("run", help="Print every figure for the current database.")
        run.add_argument("--only", action="append", default=[],
                         help="Run only this figure (dashboard, late, kpis, event_api, "
                              "detection); may be repeated.")
        run.add_argument("--repeat", type=int, default=5,
                         help="Runs per figure; the median is shown (default 5).")
        run.add_argument("--requests", type=int, default=400,
                         help="API requests for the event figure (default 400).")
        run.add_argument("--clients", type=int, default=16,
                         help="Concurrent API clients (default 16).")
        run.add_argument("--think", type=float, default=1.0,
                         help="Mean pause of an API client between two scans, in seconds "
                              "(default 1; the figure is then measured again with none).")

    def handle(self, *args, action: str, **options):
        ensure_migrated()
        if action == "seed":
            self._seed(options)
        else:
            self._run(options)

    def _seed(self, options):
        from etabli.benchmarking import seed as seeding

        pieces = options["pieces"]
        if pieces < 1:
            raise CommandError("--pieces must be at least 1.")
        if options["fresh"]:
            seeding.reset(progress=self.stdout.write)
        result = seeding.seed(pieces=pieces, seed=options["seed"], batch_rows=options["batch"],
                              progress=self.stdout.write)
        for line in result.lines():
            self.stdout.write(line)
        self.stdout.write(f"Log in as '{seeding.MANAGER_USERNAME}' with password "
                          f"'{seeding.BENCH_PASSWORD}'.")

    def _run(self, options):
        from etabli.benchmarking import figures

        if options["think"] < 0 or options["clients"] < 1 or options["requests"] < 1:
            raise CommandError("--think must be 0 or more; --clients and --requests at least 1.")
        known = set(figures.FIGURES)
        unknown = [o for o in options["only"] if o not in known]
        if unknown:
            raise CommandError(f"Unknown figure {', '.join(unknown)}; choose among "
                               f"{', '.join(figures.FIGURES)}.")
        try:
            figures.run(only=options["only"] or None, repeat=options["repeat"],
                        requests=options["requests"], clients=options["clients"],
                        think_s=options["think"],
                        write=self.stdout.write)
        except figures.BenchError as exc:
            raise CommandError(str(exc)) from exc
