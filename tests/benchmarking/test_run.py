"""`etabli bench run` end to end at small N (figures printed, no timing asserted)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from etabli.benchmarking.seed import seed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bench_run_prints_every_figure(capsys):
    # The event figure runs a real gunicorn server: the data must be committed for it to see.
    seed(pieces=40, seed=2)
    call_command("bench", "run", "--repeat", "1", "--requests", "12", "--clients", "2",
                 "--think", "0.05")
    out = capsys.readouterr().out
    for label in ("Database:", "dashboard page", "dashboard board", "late list",
                  "KPI report, one year", "KPI report, one year, filtered (slowest)",
                  "tracking event via API, 2 clients scanning",
                  "same, 2 clients at full speed", "alert detection pass"):
        assert label in out, out
    lines = out.splitlines()
    paced = next(line for line in lines if "tracking event via API" in line)
    saturated = next(line for line in lines if "at full speed" in line)
    # every event of both rounds was recorded (fresh pieces for each round)
    assert "status {201: 12}" in paced and "status {201: 12}" in saturated, out
    assert "SQL" in next(line for line in lines if "late list" in line)
    assert "from the raw history" in next(line for line in lines if "KPI report" in line)


@pytest.mark.django_db
def test_bench_run_refuses_bad_options():
    with pytest.raises(CommandError, match="--think"):
        call_command("bench", "run", "--only", "event_api", "--think", "-1")


@pytest.mark.django_db
def test_bench_run_only_one_figure(capsys):
    seed(pieces=10, seed=2)
    call_command("bench", "run", "--only", "late", "--repeat", "1")
    out = capsys.readouterr().out
    assert "late list" in out and "dashboard page" not in out


@pytest.mark.django_db
def test_bench_run_unknown_figure():
    with pytest.raises(CommandError, match="Unknown figure"):
        call_command("bench", "run", "--only", "nope")
