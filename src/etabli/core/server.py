"""Run Établi under gunicorn from inside the `etabli` command (no separate config file)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication


def bind_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):  # an IPv6 address
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def public_url(host: str, port: int) -> str:
    """The address to open in a browser (a wildcard host is reached as localhost)."""
    if host in ("0.0.0.0", "::", "[::]", ""):
        host = "localhost"
    return f"http://{bind_address(host, port)}/"


def gunicorn_options(*, host: str, port: int, workers: int, threads: int,
                     timeout: int = 60) -> dict[str, Any]:
    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        "threads": threads,
        # Threads need the threaded worker; one thread per worker is the plain sync worker.
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "etabli",
        # Gunicorn ≥ 25 opens a control socket at one path per user: two servers on a machine
        # would fight over it, and Établi does not use it.
        "control_socket_disable": True,
    }


# Settings older gunicorn releases do not know; left out there.
OPTIONAL_SETTINGS = {"control_socket_disable"}


class EtabliServer(BaseApplication):
    """Gunicorn serving `etabli.wsgi:application` with options given in code."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key not in self.cfg.settings:
                if key in OPTIONAL_SETTINGS:
                    continue
                raise ValueError(f"Unknown gunicorn setting '{key}'.")
            self.cfg.set(key, value)

    def load(self):
        from etabli.wsgi import application

        return application


def start_background_worker() -> subprocess.Popen | None:
    """The background worker (`etabli worker`) as a child process of this server, unless
    ETABLI_SERVE_WORKER is off. It stops by itself when this process is gone."""
    from django.conf import settings

    if not settings.ETABLI_SERVE_WORKER:
        return None
    return subprocess.Popen([sys.executable, "-m", "etabli.cli", "worker",
                             "--parent-pid", str(os.getpid())])


def stop_background_worker(worker: subprocess.Popen | None) -> None:
    if worker is None or worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()


def serve(*, host: str, port: int, workers: int, threads: int, timeout: int = 60) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM), with the background worker beside the web
    server. Gunicorn exits the process on fatal errors."""
    from django.db import connections

    # Workers are forked from this process: they must not share its database connections.
    connections.close_all()
    worker = start_background_worker()
    try:
        EtabliServer(gunicorn_options(host=host, port=port, workers=workers, threads=threads,
                                      timeout=timeout)).run()
    finally:
        stop_background_worker(worker)
