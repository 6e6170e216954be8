"""`etabli start`: everything a first run needs, then serve.

Migrates the database, collects static files, loads the demo house on the very first run (no
users yet), prints where to go and how to log in, and serves.
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

from etabli.core.demo import DEFAULT_SEED, demo_logins_active

from ..common import add_server_arguments, check_server_arguments, login_lines, run_server
from .demo import load_demo


class Command(BaseCommand):
    help = ("Set up and serve Établi: migrate, collect static files, load the demo data on the "
            "first run, print the address and the demo log-ins, serve.")

    def add_arguments(self, parser):
        add_server_arguments(parser)
        parser.add_argument("--no-demo", action="store_true",
                            help="Do not load the demo data, even on the first run.")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                            help="Random seed of the demo data.")
        parser.add_argument("--no-serve", action="store_true",
                            help="Do everything but serve (for scripts and tests).")

    def handle(self, *args, **options):
        from etabli.accounts.models import User

        check_server_arguments(options)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_demo"] and not User.objects.exists():
            self.stdout.write("First run: loading the demo jewellery house…")
            self.stdout.flush()
            self.stdout.write(load_demo(options["seed"]).lines()[0])
        self._banner(options)
        if not options["no_serve"]:
            run_server(self, options)

    def _banner(self, options: dict) -> None:
        from etabli.core import server

        url = server.public_url(options["host"], options["port"])
        rule = "─" * 64
        self.stdout.write(rule)
        self.stdout.write(f"Établi    {url}")
        self.stdout.write(f"API docs  {url}api/v1/docs")
        if demo_logins_active():
            self.stdout.write("Demo log-ins (username, password, role):")
            for line in login_lines():
                self.stdout.write(line)
        else:
            self.stdout.write("No demo log-ins. Add a user with: "
                              "etabli createuser NAME --role admin")
        self.stdout.write(rule)
