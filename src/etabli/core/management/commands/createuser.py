"""`etabli createuser USERNAME --role ROLE`: add a user (any role) through the accounts service."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from ..common import ensure_migrated, one_line_errors


class Command(BaseCommand):
    help = ("Create a user. Roles: admin, production_manager, sales, designer, workshop, "
            "quality, logistics, client. Workshop members need --workshop, client contacts "
            "--client.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help="The user's role.")
        parser.add_argument("--password",
                            help="The password; asked twice when omitted on a terminal.")
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--workshop", dest="workshops", action="append", default=[],
                            metavar="CODE",
                            help="Workshop code of a workshop member (repeat for several).")
        parser.add_argument("--client", metavar="CODE",
                            help="Client code of a client contact.")
        parser.add_argument("--language", default="en", choices=["en", "fr"])

    def handle(self, *args, **options):
        from etabli.accounts.models import Role
        from etabli.accounts.services import user_create

        ensure_migrated()
        password = options["password"]
        if password is None:
            password = self._ask_password()
        with one_line_errors():
            user = user_create(
                actor=None, username=options["username"], password=password,
                role=options["role"], email=options["email"],
                first_name=options["first_name"], last_name=options["last_name"],
                workshop_codes=options["workshops"] or None, client_code=options["client"],
                language=options["language"])
        where = ""
        if options["workshops"]:
            where = f", workshop {', '.join(w.code for w in user.workshops.all())}"
        elif user.client_id:
            where = f", client {user.client.code}"
        self.stdout.write(f"Created user '{user.username}' ({Role(user.role).label}{where}).")

    def _ask_password(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("--password is required when not on a terminal")
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt) as exc:
            raise CommandError("No password given.") from exc
        if first != second:
            raise CommandError("The two passwords differ.")
        return first
