"""`etabli serve`: serve Établi with gunicorn; whitenoise serves the static files."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand

from ..common import add_server_arguments, check_server_arguments, run_server


class Command(BaseCommand):
    help = ("Serve Établi with gunicorn (static files collected first, served by whitenoise). "
            "Does not migrate: see 'etabli start'.")
    requires_migrations_checks = True  # a warning only: servers may start during a rollout

    def add_arguments(self, parser):
        add_server_arguments(parser)
        parser.add_argument("--no-collectstatic", action="store_true",
                            help="Do not collect static files before starting.")

    def handle(self, *args, **options):
        check_server_arguments(options)
        if not options["no_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
        run_server(self, options)
