"""A small, hand-checked production month (March 2026) for the report tests.

Three one-piece orders walk the standard route; their step runs and receipts are then stamped
with known times (all at noon, UTC), so every KPI can be worked out by hand:

  each run (after order receipt) is ready when the previous one finished; when the piece was
  sent, it is received 1 day later; the run starts `wait` days after that and lasts `work`.

             created  launched  manufacturing work  setting wait  delivered   promised
  A (R-100)  Mar 2    Mar 3     3 days              2 days        Mar 17      Mar 31
  B (R-100)  Mar 2    Mar 3     5 days              0             Mar 17      Mar 10 (late)
  C (B-200)  Mar 2    Mar 3     9 days              4 days        Mar 25      Mar 31

  Every other step lasts 1 day and starts as soon as the piece is there (design at the house
  right after launch; prototyping, setting, finishing and delivery after a 1-day transit).
  A: launched Mar 3, design 3→4, prototyping received 5, 5→6, manufacturing 6→9, setting
  received 10, started 12, →13, finishing 14→15, delivery 16→17.

  lead time launch → manufacturing complete: 6, 8, 12 days → median 8, p90 11.2
  lead time order → delivery: 15, 15, 23 days → median 15, p90 21.4
  queue time (start − max(previous finish, receipt)): setting 2, 0, 4 → mean 2, longest 4;
  every other step 0.
  C was reworked once (rework_count 1; its finishing run is a second attempt).

Metal (settled jobs): caster casting 20 g issued, 19 g back → 1 g lost (5 %); polisher
polishing 10 g issued, 9.5 g back → 0.5 g lost (5 %). Gold is 60.00 a fine gram: the caster's
loss (750‰) is worth 45.00, the polisher's 22.50. Stones: the setter received 10, broke 1.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from etabli.materials import services as msvc
from etabli.materials import stone_services
from etabli.materials.models import MaterialSlip, MetalEntry, StoneEntry
from etabli.orders.models import Order
from etabli.production.models import EventKind, Piece, StepRun, StepStatus, TrackingEvent
from etabli.reports import summaries
from etabli.workshops.models import StepKind
from tests.factories import default_line

UTC = dt.UTC
KP = ("The diamonds herein invoiced have been purchased from legitimate sources not involved "
      "in funding conflict and in compliance with United Nations resolutions.")
BASE = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def stamp(piece: Piece, *, created: dt.datetime, works: dict[str, int],
          waits: dict[str, int], promised: dt.date | None) -> None:
    runs = list(piece.runs.exclude(status=StepStatus.SKIPPED).order_by("position"))
    launched = created + DAY
    Order.objects.filter(pk=piece.order_id).update(created_at=created, launched_at=launched,
                                                   promised_date=promised)
    StepRun.objects.filter(pk=runs[0].pk).update(actual_start=created, actual_finish=launched)
    prev_finish = launched
    for run in runs[1:]:
        received = TrackingEvent.objects.filter(step_run=run, kind=EventKind.RECEIVED)
        ready = prev_finish
        if received.exists():
            ready = prev_finish + DAY
            received.update(occurred_at=ready)
        start = ready + waits.get(run.step, 0) * DAY
        finish = start + works.get(run.step, 1) * DAY
        StepRun.objects.filter(pk=run.pk).update(actual_start=start, actual_finish=finish)
        prev_finish = finish
    Piece.objects.filter(pk=piece.pk).update(delivered_at=prev_finish)
    Order.objects.filter(pk=piece.order_id).update(delivered_at=prev_finish)


def delivered_piece(h, model="R-100"):
    piece = h.launched_piece(lines=[default_line(model_reference=model)])
    return h.walk(piece)


def build(h) -> dict:
    a = delivered_piece(h)
    b = delivered_piece(h)
    c = delivered_piece(h, model="B-200")
    stamp(a, created=BASE, works={StepKind.MANUFACTURING: 3}, waits={StepKind.SETTING: 2},
          promised=dt.date(2026, 3, 31))
    stamp(b, created=BASE, works={StepKind.MANUFACTURING: 5}, waits={},
          promised=dt.date(2026, 3, 10))
    stamp(c, created=BASE, works={StepKind.MANUFACTURING: 9}, waits={StepKind.SETTING: 4},
          promised=dt.date(2026, 3, 31))
    Piece.objects.filter(pk=c.pk).update(rework_count=1)
    StepRun.objects.filter(piece=c, step=StepKind.FINISHING).update(attempt=2)
    # metal and stones
    msvc.metal_purchase(actor=h.manager, alloy="750y", weight_g="200.000")
    msvc.metal_price_set(actor=h.manager, metal="gold", priced_on="2026-01-01",
                         price_per_fine_g="60.00")
    for ws, member, op, issued, back in ((h.caster, h.caster_member, "casting", "20.000",
                                          "19.000"),
                                         (h.polisher, h.polisher_member, "polishing", "10.000",
                                          "9.500")):
        slip = msvc.material_issue(actor=h.manager, workshop_id=ws.pk, operation=op,
                                   metal=[{"alloy": "750y", "weight_g": issued}])
        msvc.material_slip_receive(actor=member, slip_id=slip.pk,
                                   lines=[{"line_id": slip.lines.get().pk, "weight_g": issued}])
        ret = msvc.material_return(actor=member, issue_id=slip.pk, closes_issue=True,
                                   scrap=[{"kind": "scrap", "weight_g": back}])
        msvc.material_slip_receive(actor=h.manager, slip_id=ret.pk,
                                   lines=[{"line_id": ret.lines.get().pk, "weight_g": back}])
        slip.refresh_from_db()
        if slip.settled_at is None:
            msvc.material_issue_settle(actor=h.manager, issue_id=slip.pk)
    lot = stone_services.stone_lot_receive(actor=h.manager, stone_type="diamond", shape="round",
                                           count=50, carats="5.000", size_mm="2.0",
                                           compliance_statement=KP)
    stones = msvc.material_issue(actor=h.manager, workshop_id=h.setter.pk, operation="setting",
                                 stones=[{"lot_id": lot.pk, "count": 10, "carats": "1.000"}])
    msvc.material_slip_receive(actor=h.setter_member, slip_id=stones.pk,
                               lines=[{"line_id": stones.lines.get().pk, "count": 10,
                                       "carats": "1.000"}])
    stone_services.stone_breakage_record(actor=h.setter_member, workshop_id=h.setter.pk,
                                         lot_id=lot.pk, count=1, carats="0.100",
                                         reason="Chipped while setting")
    march = dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    MaterialSlip.objects.filter(settled_at__isnull=False).update(settled_at=march)
    MetalEntry.objects.all().update(occurred_at=march)
    StoneEntry.objects.all().update(occurred_at=march)
    # The times were stamped behind the services' back, as a bulk import would: the reports'
    # summary tables are rebuilt from the history, as `etabli reports rebuild` does.
    summaries.rebuild()
    return {"a": a, "b": b, "c": c, "lot": lot, "gold_price": Decimal("60.00")}
