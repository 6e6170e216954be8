"""Background work: periodic jobs are queued once when due, run by the worker, and keep how
their last run went; tasks queued on commit wait for the commit."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from etabli.core import jobs
from etabli.core.models import PeriodicRun

CALLS: list[str] = []


@jobs.periodic("tests.count", every=dt.timedelta(minutes=5))
def count_job() -> dict:
    CALLS.append("count")
    return {"counted": len(CALLS)}


@jobs.periodic("tests.broken", every=dt.timedelta(minutes=5))
def broken_job() -> dict:
    raise RuntimeError("the refiner's feed is down")


@jobs.task
def remember(word: str) -> None:
    CALLS.append(word)


@pytest.fixture(autouse=True)
def _only_test_jobs(monkeypatch):
    """Only this module's jobs are registered while these tests run."""
    monkeypatch.setattr(jobs, "REGISTRY", {name: job for name, job in jobs.REGISTRY.items()
                                           if name.startswith("tests.")})
    monkeypatch.setattr(jobs, "_discovered", True)
    CALLS.clear()


def queued_names() -> list[str]:
    return sorted(r.args_kwargs["args"][0] for r in DBTaskResult.objects.ready()
                  if r.task_path.endswith("run_periodic"))


@pytest.mark.django_db
def test_a_due_job_is_queued_once_then_again_after_its_interval():
    now = timezone.now()
    assert sorted(jobs.tick(now)) == ["tests.broken", "tests.count"]
    assert queued_names() == ["tests.broken", "tests.count"]
    assert jobs.tick(now) == []  # claimed: not queued twice
    assert jobs.tick(now + dt.timedelta(minutes=4)) == []
    assert sorted(jobs.tick(now + dt.timedelta(minutes=5))) == ["tests.broken", "tests.count"]
    row = PeriodicRun.objects.get(name="tests.count")
    assert row.next_run_at == now + dt.timedelta(minutes=10)


@pytest.mark.django_db
def test_the_worker_runs_what_is_due_and_keeps_how_it_went():
    jobs.run_worker(once=True)
    assert CALLS == ["count"]
    ok = PeriodicRun.objects.get(name="tests.count")
    assert ok.last_ok is True and ok.last_result == {"counted": 1} and ok.last_error == ""
    assert ok.last_started_at <= ok.last_finished_at
    failed = PeriodicRun.objects.get(name="tests.broken")
    assert failed.last_ok is False
    assert "the refiner's feed is down" in failed.last_error
    # Nothing left waiting; a second round right away runs nothing again.
    assert not DBTaskResult.objects.ready().exists()
    jobs.run_worker(once=True)
    assert CALLS == ["count"]


@pytest.mark.django_db
def test_on_commit_queues_only_once_the_change_is_saved(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        jobs.on_commit(remember, "ring")
    assert not DBTaskResult.objects.exists()  # rolled back, nothing would have been queued
    with django_capture_on_commit_callbacks(execute=True):
        jobs.on_commit(remember, "ring")
    assert len(callbacks) == 1
    jobs.run_queued()
    assert CALLS == ["ring"]


@pytest.mark.django_db
def test_worker_command_once_and_status():
    out = StringIO()
    call_command("worker", "--status", stdout=out)
    assert "tests.count" in out.getvalue() and "never run" in out.getvalue()
    call_command("worker", "--once", stdout=StringIO())
    out = StringIO()
    call_command("worker", "--status", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()}
    assert "last ok" in lines["tests.count"]
    assert "failed: RuntimeError: the refiner's feed is down" in lines["tests.broken"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_ticking_at_once_queue_a_job_once():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent schedulers are a PostgreSQL set-up")
    now = timezone.now()
    jobs.tick(now - dt.timedelta(minutes=10))  # the rows exist; everything is due again now
    DBTaskResult.objects.all().delete()
    barrier = threading.Barrier(4)
    claimed: list[str] = []

    def one():
        try:
            barrier.wait()
            with transaction.atomic():
                claimed.extend(jobs.tick(now))
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ["tests.broken", "tests.count"]
    assert queued_names() == ["tests.broken", "tests.count"]
