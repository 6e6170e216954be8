"""Background work: periodic jobs (alert detection, notification delivery, digests) and tasks
queued after a change commits.

Built on Django's tasks framework (the `django-tasks` backport) with its database backend
(`django-tasks-db`): the queue is a table in Établi's own database, so the default
single-machine install needs no broker and no cron. `etabli serve` starts one worker process
beside the web server; on PostgreSQL, run as many `etabli worker` processes as needed instead
(`ETABLI_SERVE_WORKER=0` on the web servers). Workers claim queued tasks with row locks
(`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), and claim a due periodic job by moving its
`PeriodicRun.next_run_at` forward in one conditional UPDATE: two workers never run the same
pass twice.

An app declares its periodic jobs in `<app>/jobs.py`::

    @jobs.periodic("alerts.detect", every=dt.timedelta(minutes=1))
    def detect() -> dict: ...

The decorated function becomes a django-tasks `Task` (`detect.call()` runs it here,
`detect.enqueue()` queues it); its return value (a small dict) is kept as the job's last
result.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.apps import apps
from django.db import close_old_connections, transaction
from django.utils import timezone
from django_tasks import task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: dt.timedelta
    func: Callable[[], Any]


REGISTRY: dict[str, PeriodicJob] = {}
_discovered = False


def periodic(name: str, *, every: dt.timedelta):
    """Register a function with no arguments to run every `every` (at least a second)."""
    if every < dt.timedelta(seconds=1):
        raise ValueError("A periodic job runs at most once a second.")

    def register(func: Callable[[], Any]):
        REGISTRY[name] = PeriodicJob(name=name, every=every, func=func)
        return task(func)

    return register


def autodiscover() -> None:
    """Import `jobs.py` of every Établi app, so their periodic jobs are registered."""
    global _discovered
    if _discovered:
        return
    for config in apps.get_app_configs():
        if config.name.startswith("etabli.") and find_spec(f"{config.name}.jobs") is not None:
            import_module(f"{config.name}.jobs")
    _discovered = True


def on_commit(queued_task, *args: Any, **kwargs: Any) -> None:
    """Queue `queued_task` once the current transaction commits (at once outside one).

    Queueing is a convenience that makes the work happen sooner: the periodic jobs catch up
    with anything a failed enqueue left behind, so a failure is logged, not raised into the
    change that has just been saved.
    """
    def enqueue() -> None:
        try:
            queued_task.enqueue(*args, **kwargs)
        except Exception:
            log.exception("could not queue %s", getattr(queued_task, "name", queued_task))

    transaction.on_commit(enqueue)


@task
def run_periodic(name: str) -> Any:
    """Run one periodic job now and keep how it went in its `PeriodicRun` row."""
    from etabli.core.models import PeriodicRun

    autodiscover()
    job = REGISTRY.get(name)
    if job is None:
        raise LookupError(f"No periodic job named {name!r}.")
    PeriodicRun.objects.filter(name=name).update(last_started_at=timezone.now())
    try:
        result = job.func()
    except Exception as exc:
        PeriodicRun.objects.filter(name=name).update(
            last_finished_at=timezone.now(), last_ok=False,
            last_error="".join(traceback.format_exception_only(exc)).strip()[:4000])
        raise
    PeriodicRun.objects.filter(name=name).update(
        last_finished_at=timezone.now(), last_ok=True, last_error="",
        last_result=result if isinstance(result, (dict, list, int, float, str)) else None)
    return result


def tick(now: dt.datetime | None = None) -> list[str]:
    """Queue every periodic job that is due; return their names.

    Safe to call from any number of processes at once: a job is claimed by the one UPDATE
    that moves its `next_run_at` from the value it read, so only one of them queues it.
    """
    from etabli.core.models import PeriodicRun

    autodiscover()
    now = now or timezone.now()
    known = set(PeriodicRun.objects.filter(name__in=list(REGISTRY))
                .values_list("name", flat=True))
    PeriodicRun.objects.bulk_create(
        [PeriodicRun(name=name, next_run_at=now) for name in REGISTRY if name not in known],
        ignore_conflicts=True)
    claimed = []
    for row in PeriodicRun.objects.filter(name__in=list(REGISTRY), next_run_at__lte=now):
        job = REGISTRY[row.name]
        won = PeriodicRun.objects.filter(name=row.name, next_run_at=row.next_run_at).update(
            next_run_at=now + job.every, last_enqueued_at=now)
        if won:
            run_periodic.enqueue(row.name)
            claimed.append(row.name)
    return claimed


def run_queued(*, backend_name: str = "default", worker_id: str | None = None,
               limit: int | None = None) -> int:
    """Run the tasks waiting in the database queue (at most `limit`); return how many ran.

    Each is claimed under a row lock (skipped by other workers) and run by django-tasks-db's
    own worker code, which records success or failure on the task's row.
    """
    from django.db import OperationalError
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

    worker_id = worker_id or f"etabli-{os.getpid()}"
    runner = Worker(queue_names=["*"], interval=0, batch=True, backend_name=backend_name,
                    startup_delay=False, max_tasks=None, excluded_queue_names=[],
                    worker_id=worker_id)
    ran = 0
    while limit is None or ran < limit:
        ready = DBTaskResult.objects.ready().filter(backend_name=backend_name)
        try:
            with exclusive_transaction(ready.db):
                claimed = ready.get_locked()
                if claimed is not None:
                    claimed.claim(worker_id)
        except OperationalError as exc:
            if is_locked_database_exception(exc):  # SQLite busy: next round
                return ran
            raise
        if claimed is None:
            return ran
        runner.run_task(claimed)
        ran += 1
    return ran


def run_worker(*, interval: float = 2.0, once: bool = False, parent_pid: int | None = None,
               should_stop: Callable[[], bool] | None = None) -> None:
    """The worker loop: queue the due periodic jobs, run what is queued, sleep, again.

    With `parent_pid`, stop as soon as that process is gone (the `serve` that started us).
    """
    autodiscover()
    while True:
        try:
            tick()
        except Exception:  # a database hiccup: log it and try again on the next round
            log.exception("periodic jobs: could not check what is due")
        run_queued()
        if once or (should_stop is not None and should_stop()):
            return
        if parent_pid is not None and os.getppid() != parent_pid:
            log.warning("the server that started this worker is gone: stopping")
            return
        close_old_connections()  # a long-lived process: drop connections the server closed
        time.sleep(interval)


def status() -> list[dict]:
    """Each periodic job: how often, when next, how the last run went."""
    from etabli.core.models import PeriodicRun

    autodiscover()
    rows = {r.name: r for r in PeriodicRun.objects.filter(name__in=list(REGISTRY))}
    out = []
    for name, job in sorted(REGISTRY.items()):
        row = rows.get(name)
        out.append({"name": name, "every_s": int(job.every.total_seconds()),
                    "next_run_at": row.next_run_at if row else None,
                    "last_finished_at": row.last_finished_at if row else None,
                    "last_ok": row.last_ok if row else None,
                    "last_error": row.last_error if row else ""})
    return out
