"""`etabli demo [--reset] [--seed N]`: load the demo jewellery house."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from etabli.core.demo import DEFAULT_SEED, build_demo, demo_loaded, has_domain_data

from ..common import ensure_migrated, login_lines, one_line_errors


class Command(BaseCommand):
    help = ("Load a demo jewellery house: workshops, clients, users of every role and about "
            "eighty orders at every step, written through the services.")

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true",
                            help="Delete all domain data (orders, pieces, clients, users, "
                                 "workshops except the house, the audit trail) first, then "
                                 "load the demo.")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                            help=f"Random seed; the same seed gives the same house "
                                 f"(default {DEFAULT_SEED}).")

    def handle(self, *args, reset: bool, seed: int, **options):
        ensure_migrated()
        if not reset:
            if demo_loaded():
                self.stdout.write("Demo data already loaded")
                return
            existing = has_domain_data()
            if existing:
                held = ", ".join(f"{n} {what}" for what, n in existing.items())
                raise CommandError(f"The database already holds data ({held}); run "
                                   "'etabli demo --reset' to replace it with the demo.")
        summary = load_demo(seed, reset=reset)
        if options["verbosity"] >= 1:
            for line in summary.lines():
                self.stdout.write(line)
            self.stdout.write("Log in with (username, password, role):")
            for line in login_lines():
                self.stdout.write(line)


def load_demo(seed: int, *, reset: bool = False):
    """Build the demo; any failure becomes one line (the transaction leaves nothing behind)."""
    with one_line_errors("The demo could not be built: "):
        try:
            return build_demo(seed, reset=reset)
        except RuntimeError as exc:  # the story and the services disagree: a bug to report
            raise CommandError(f"The demo could not be built: {exc}") from exc
