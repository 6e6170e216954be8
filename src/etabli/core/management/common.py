"""What the `etabli` commands share: failing with one line, the demo log-ins, server options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from etabli.core.errors import DomainError


def ensure_migrated() -> None:
    """Fail with a clear line (not a traceback) when the database is not migrated."""
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError("The database is not up to date: run 'etabli migrate' (or "
                           "'etabli start') first.")


@contextmanager
def one_line_errors(prefix: str = "") -> Iterator[None]:
    """Turn a service's refusal into a CommandError: its message, one line, exit status 1."""
    try:
        yield
    except DomainError as exc:
        raise CommandError(prefix + " ".join(exc.message.split())) from exc


def login_lines() -> list[str]:
    """The demo log-ins as aligned lines: username, password, role (and where)."""
    from etabli.accounts.models import Role
    from etabli.core.demo import DEMO_PASSWORD, DEMO_USERS

    width = max(len(u.username) for u in DEMO_USERS)
    lines = []
    for u in DEMO_USERS:
        role = str(Role(u.role).label)
        if u.workshop or u.client:
            role += f" ({u.workshop or u.client})"
        lines.append(f"  {u.username:<{width}}  {DEMO_PASSWORD}  {role}")
    return lines


def add_server_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="Address to listen on (default 127.0.0.1; 0.0.0.0 for all).")
    parser.add_argument("--port", type=int, default=8000, help="Port (default 8000).")
    parser.add_argument("--workers", type=int, default=2,
                        help="Worker processes (default 2).")
    parser.add_argument("--threads", type=int, default=4,
                        help="Threads per worker (default 4).")
    parser.add_argument("--timeout", type=int, default=60,
                        help="Seconds before a silent worker is restarted (default 60).")


def check_server_arguments(options: dict) -> None:
    if not 0 < options["port"] < 65536:
        raise CommandError(f"--port must be between 1 and 65535, not {options['port']}.")
    for name in ("workers", "threads", "timeout"):
        if options[name] < 1:
            raise CommandError(f"--{name} must be at least 1.")


def run_server(command: BaseCommand, options: dict) -> None:
    from etabli.core import server

    url = server.public_url(options["host"], options["port"])
    command.stdout.write(f"Établi is serving on {url} (Ctrl-C to stop)")
    command.stdout.flush()
    server.serve(host=options["host"], port=options["port"], workers=options["workers"],
                 threads=options["threads"], timeout=options["timeout"])
