"""The reports' summary tables: kept by the services, equal to what the history says.

Three ways to the same figures must agree: the rows the production services add as events
happen, the rows `summaries.rebuild()` computes from the history, and the KPIs computed from
the history alone (`kpis(..., summaries=False)`).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from etabli.production.models import HoldReason, Piece, StepRun, StepStatus
from etabli.production.services import piece_hold, piece_release, piece_rework
from etabli.reports import summaries
from etabli.reports.models import PieceFact, StepDay, StepDayDetail
from etabli.reports.selectors import ReportFilters, kpis
from etabli.workshops.models import StepKind
from tests.factories import default_line
from tests.reports import scene

pytestmark = pytest.mark.django_db

FLOAT_FIELDS = ("work_seconds", "planned_days", "queue_seconds", "queue_max_seconds",
                "manufacturing_seconds", "lead_seconds")


def step_rows() -> dict:
    return {(r.pop("day"), r.pop("step"), r.pop("workshop_id")): r
            for r in StepDay.objects.values("day", "step", "workshop_id", *summaries.COUNTERS,
                                            "queue_max_seconds")}


def detail_rows() -> dict:
    keys = summaries.DETAIL_KEY
    return {tuple(r.pop(k) for k in keys): r
            for r in StepDayDetail.objects.values(*keys, *summaries.COUNTERS,
                                                  "queue_max_seconds")}


def fact_rows() -> dict:
    return {r.pop("piece_id"): r for r in PieceFact.objects.values()}


def same(a: dict, b: dict) -> list[str]:
    """Differences between two row maps (seconds compared to the millisecond: SQLite's
    julianday arithmetic is not exact)."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            out.append(f"{key}: {x} != {y}")
            continue
        for field in x:
            u, v = x[field], y[field]
            if field in FLOAT_FIELDS and u is not None and v is not None:
                if abs(u - v) > 0.01:
                    out.append(f"{key}.{field}: {u} != {v}")
            elif u != v:
                out.append(f"{key}.{field}: {u!r} != {v!r}")
    return out


def close(a, b, path="") -> list[str]:
    """Differences between two KPI results (days are rounded to 0.01: allow one step)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in close(a.get(k), b.get(k),
                                                                    f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} rows != {len(b)} rows"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if abs(a - b) <= 0.011 else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def busy_house(h) -> dict:
    """Pieces moved by the services only: delivered, reworked, held, half-way."""
    delivered = h.walk(h.launched_piece())
    reworked = h.launched_piece(lines=[default_line(model_reference="B-200")])
    h.walk(reworked, to=StepKind.SETTING, arrive=True)
    h.advance(reworked)  # setting started
    manufacturing = reworked.runs.get(step=StepKind.MANUFACTURING, status=StepStatus.DONE)
    piece_rework(actor=h.manager, piece_id=reworked.pk, target_run_id=manufacturing.pk,
                 comment="The shank is too thin")
    h.walk(reworked)
    held = h.launched_piece()
    h.walk(held, to=StepKind.MANUFACTURING, arrive=True)
    h.advance(held)  # manufacturing started
    piece_hold(actor=h.manager, piece_id=held.pk, reason=HoldReason.MATERIAL_UNAVAILABLE)
    piece_release(actor=h.manager, piece_id=held.pk)
    halfway = h.launched_piece()
    h.walk(halfway, to=StepKind.FINISHING)
    return {"delivered": delivered, "reworked": reworked, "held": held, "halfway": halfway}


def test_services_keep_the_summaries_the_history_gives(house_setup):
    h = house_setup
    pieces = busy_house(h)
    kept_steps, kept_details, kept_facts = step_rows(), detail_rows(), fact_rows()
    # What the services kept is what it should be ...
    assert kept_steps and kept_details and kept_facts
    # (the detailed rows add up to the day's rows)
    for (day, step, ws), row in kept_steps.items():
        parts = [r for k, r in kept_details.items() if k[:3] == (day, step, ws)]
        for counter in ("done_runs", "queued_runs"):
            assert sum(r[counter] for r in parts) == row[counter]
    assert all(k[6] for k in kept_details)  # every line is in an alloy: its key
    reworked = Piece.objects.get(pk=pieces["reworked"].pk)
    assert reworked.rework_count == 1 and kept_facts[reworked.pk]["right_first_time"] is False
    assert kept_facts[pieces["delivered"].pk]["right_first_time"] is True
    assert pieces["halfway"].pk in kept_facts  # manufactured, not delivered yet
    assert kept_facts[pieces["halfway"].pk]["delivered_on"] is None
    assert pieces["held"].pk not in kept_facts
    today = timezone.localdate()
    manufacturing = sum(r["done_runs"] for (day, step, _ws), r in kept_steps.items()
                        if step == StepKind.MANUFACTURING)
    # delivered, reworked (twice: made again after the rework), halfway
    assert manufacturing == 4
    # setting: delivered, reworked (its second attempt), halfway; the run the rework ended
    # is not a finished run (docs/reports.md)
    setting = sum(r["done_runs"] for (day, step, _ws), r in kept_steps.items()
                  if step == StepKind.SETTING)
    assert setting == 3
    assert all(day == today for day, _step, _ws in kept_steps)
    # ... and exactly what the history gives.
    summaries.rebuild()
    assert same(kept_steps, step_rows()) == []
    assert same(kept_details, detail_rows()) == []
    assert same(kept_facts, fact_rows()) == []


def test_kpis_from_the_summaries_equal_the_kpis_from_the_history(house_setup):
    h = house_setup
    busy_house(h)
    made = scene.build(h)  # a stamped month, rebuilt as after an import
    b200 = made["c"].line
    today = timezone.localdate()
    periods = [(dt.date(2026, 3, 1), dt.date(2026, 3, 31)), (today, today)]
    cases = [{}, {"workshop_id": h.caster.pk}, {"step": StepKind.SETTING},
             {"model": "B-200"}, {"client_id": made["a"].order.client_id},
             {"channel": made["a"].order.channel}, {"alloy_id": b200.alloy_id}]
    for start, end in periods:
        for kw in cases:
            f = ReportFilters(start=start, end=end, **kw)
            fast, slow = kpis(h.manager, f), kpis(h.manager, f, summaries=False)
            assert close(fast, slow) == [], (start, kw)
        # A workshop member: their own workshop's figures, also when filtered by what the
        # pieces are (model and alloy; client and channel are refused to them).
        for kw in ({}, {"model": "B-200"}, {"alloy_id": b200.alloy_id}):
            f = ReportFilters(start=start, end=end, **kw)
            fast = kpis(h.caster_member, f)
            assert close(fast, kpis(h.caster_member, f, summaries=False)) == [], (start, kw)
            assert {r["workshop_id"] for r in fast["workshops"] + fast["queue_workshops"]} \
                <= {h.caster.pk}, (start, kw)
            assert fast["lead_time"] is None and fast["on_time"] is None


def test_rebuild_of_some_pieces_adds_to_the_rest(house_setup):
    h = house_setup
    pieces = busy_house(h)
    summaries.rebuild()
    whole_steps, whole_details, whole_facts = step_rows(), detail_rows(), fact_rows()
    StepDay.objects.all().delete()
    StepDayDetail.objects.all().delete()
    PieceFact.objects.all().delete()
    ids = list(Piece.objects.values_list("pk", flat=True))
    first = [pieces["reworked"].pk, pieces["held"].pk]
    summaries.rebuild(first)
    summaries.rebuild([pk for pk in ids if pk not in first], chunk=1)
    assert same(whole_steps, step_rows()) == []
    assert same(whole_details, detail_rows()) == []
    assert same(whole_facts, fact_rows()) == []


def test_rebuild_command(house_setup):
    h = house_setup
    busy_house(h)
    kept = step_rows()
    StepDay.objects.update(done_runs=999)
    call_command("reports", "rebuild", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert same(kept, step_rows()) == []


def test_a_started_step_counts_its_wait_once(house_setup):
    """Releasing a hold starts nothing again: the queue time is counted at the first start."""
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.MANUFACTURING, arrive=True)
    h.advance(piece)
    run = StepRun.objects.get(piece=piece, step=StepKind.MANUFACTURING)
    row = StepDay.objects.get(day=timezone.localdate(), step=StepKind.MANUFACTURING,
                              workshop_id=run.workshop_id)
    assert row.queued_runs == 1 and row.queue_seconds >= 0
    piece_hold(actor=h.manager, piece_id=piece.pk, reason=HoldReason.CAPACITY)
    piece_release(actor=h.manager, piece_id=piece.pk)
    row.refresh_from_db()
    assert row.queued_runs == 1


def test_an_event_adds_a_fixed_number_of_queries(house_setup):
    """Keeping the summaries costs one round trip per event on PostgreSQL (a statement per
    table on SQLite), whatever the history."""
    h = house_setup
    for _ in range(3):
        h.walk(h.launched_piece())
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.MANUFACTURING, arrive=True)
    h.advance(piece)  # started
    with CaptureQueriesContext(connection) as ctx:
        h.advance(piece)  # manufacturing completed: day rows + piece row
    summary_writes = [q for q in ctx.captured_queries if "reports_" in q["sql"]]
    assert len(summary_writes) == (1 if connection.vendor == "postgresql" else 3)


def test_reset_empties_the_summaries(house_setup):
    from etabli.core.demo import reset_domain_data

    h = house_setup
    h.walk(h.launched_piece())
    models = (StepDay, StepDayDetail, PieceFact)
    assert all(m.objects.exists() for m in models)
    reset_domain_data()
    assert not any(m.objects.exists() for m in models)


def test_local_day_is_the_house_day():
    late_evening = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)  # 00:30 in Paris
    assert summaries.local_day(late_evening) == dt.date(2026, 3, 2)
