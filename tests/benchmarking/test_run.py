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
    call_command("bench", "run", "--repeat", "1", "--requests", "12", "--clients", "2")
    out = capsys.readouterr().out
    for label in ("Database:", "dashboard page", "dashboard board", "late list",
                  "KPI report, one year", "tracking event via API", "alert detection pass"):
        assert label in out, out
    api_line = next(line for line in out.splitlines() if "tracking event via API" in line)
    assert "status {201: 12}" in api_line, api_line
    assert "SQL" in next(line for line in out.splitlines() if "late list" in line)


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
