#!/usr/bin/env python3
"""Set up Établi in ./.venv from the lock file, then start it or run the tests.

    python3 bootstrap.py start [--host H] [--port P]   install, migrate, demo data, serve
    python3 bootstrap.py test [pytest args]            install, run the suite on SQLite and
                                                       on PostgreSQL when it can be reached

Needs only Python >= 3.11. PostgreSQL for the second test pass is taken from
ETABLI_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/etabli); with CI=true an
unreachable PostgreSQL fails the run instead of being skipped.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("ETABLI_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".etabli-installed"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/etabli"


def say(msg: str) -> None:
    print(f"[etabli] {msg}", flush=True)


def run(cmd: list[str], env: dict | None = None) -> int:
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def install() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs on any python3 found
        sys.exit("Établi needs Python 3.11 or newer.")
    if not PY.exists():
        say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()
                            + (ROOT / "src/etabli/frontend.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    say("installing locked dependencies (first run takes a minute)")
    quiet = ["-q", "--disable-pip-version-check"]
    if run([PY, "-m", "pip", "install", *quiet, "--require-hashes", "-r", LOCK]) != 0:
        sys.exit("Installing the dependencies failed (see above).")
    if run([PY, "-m", "pip", "install", *quiet, "--no-deps", "-e", ROOT]) != 0:
        sys.exit("Installing Établi failed (see above).")
    say("fetching front-end libraries from the npm registry")
    if run([BIN / "etabli", "assets"]) != 0:
        sys.exit("Fetching the front-end libraries failed (see above).")
    STAMP.write_text(digest)


def postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at `url`, else the reason it does not."""
    code = ("import sys, psycopg\n"
            "try:\n"
            "    psycopg.connect(sys.argv[1].rsplit('/', 1)[0] + '/postgres', connect_timeout=5)"
            ".close()\n"
            "except Exception as exc:\n"
            "    print(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))\n"
            "    sys.exit(1)\n")
    out = subprocess.run([str(PY), "-c", code, url], capture_output=True, text=True)
    return None if out.returncode == 0 else (out.stdout.strip() or out.stderr.strip()[-300:])


def cmd_start(args: list[str]) -> int:
    install()
    return run([BIN / "etabli", "start", *args])


def cmd_test(args: list[str]) -> int:
    install()
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    env = dict(os.environ)
    env.pop("ETABLI_DATABASE_URL", None)
    say("test pass 1/2: SQLite")
    status = run([BIN / "pytest", *args], env=env)
    if status != 0:
        say(f"SQLite pass failed (exit {status})")
        return status
    pg_url = os.environ.get("ETABLI_TEST_POSTGRES_URL", DEFAULT_PG)
    reason = postgres_reachable(pg_url)
    if reason is not None:
        if ci:
            say(f"PostgreSQL at {pg_url} cannot be reached: {reason}")
            return 1
        say(f"PostgreSQL pass skipped: {pg_url} cannot be reached ({reason}). "
            "Set ETABLI_TEST_POSTGRES_URL to run it.")
        return 0
    say("test pass 2/2: PostgreSQL")
    env["ETABLI_DATABASE_URL"] = pg_url
    status = run([BIN / "pytest", *args], env=env)
    if status != 0:
        say(f"PostgreSQL pass failed (exit {status})")
    return status


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"start", "test", "install"}:
        print(__doc__)
        return 2
    command, args = sys.argv[1], sys.argv[2:]
    if command == "install":
        install()
        return 0
    return cmd_start(args) if command == "start" else cmd_test(args)


if __name__ == "__main__":
    sys.exit(main())
