"""`etabli token USERNAME [--name NAME]`: print a new API token for a user (shown only once)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ..common import ensure_migrated, one_line_errors


class Command(BaseCommand):
    help = ("Create an API token for a user and print the key (only its hash is stored: "
            "it cannot be shown again). Use it as 'Authorization: Bearer <key>'.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli",
                            help="What the token is for, e.g. 'bench tablet' (default 'cli').")

    def handle(self, *args, username: str, name: str, **options):
        from etabli.accounts.models import User
        from etabli.accounts.services import token_create

        ensure_migrated()
        user = User.objects.filter(username__iexact=username.strip()).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        with one_line_errors():
            _token, raw = token_create(actor=user, user=user, name=name)
        self.stdout.write(raw)
