"""`etabli serve` runs the background work by itself: a real server, a real worker process,
a real database file — no cron, nothing else to start."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("ETABLI_DATABASE_URL", "").startswith("postgres"),
    reason="runs its own SQLite house in a temporary data directory")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etabli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etabli.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=True)


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(p) for p in out.split()]


def test_serve_starts_a_worker_that_runs_the_periodic_jobs_and_stops_with_it(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETABLI_")}
    env.update(ETABLI_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="etabli.settings",
               ETABLI_LOG_LEVEL="WARNING")
    etabli("migrate", "--verbosity", "0", env=env)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "etabli.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1", "--no-collectstatic"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # The web server answers…
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/",
                                            timeout=5) as response:
                    assert response.status == 200
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.5)
        # …and, beside it, the worker has run the periodic jobs (alert detection,
        # notification delivery…) on its own.
        db = sqlite3.connect(tmp_path / "etabli.sqlite3", timeout=30)
        deadline = time.monotonic() + 120
        while True:
            done = db.execute("SELECT name FROM core_periodicrun WHERE last_ok = 1").fetchall()
            if {"alerts.detect", "notifications.deliver"} <= {name for (name,) in done}:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, f"the worker did not run the jobs: {done}"
            time.sleep(1)
        db.close()
        # The background worker, not gunicorn's own worker processes (whose command line is
        # the server's: `… serve … --workers 1`).
        workers = [pid for pid in children_of(proc.pid)
                   if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2:4]
                   == [b"etabli.cli", b"worker"]]
        assert len(workers) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    # Stopping the server stops its worker.
    deadline = time.monotonic() + 30
    while Path(f"/proc/{workers[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not Path(f"/proc/{workers[0]}").exists() or \
        "Z" in Path(f"/proc/{workers[0]}/stat").read_text().split()[2]
