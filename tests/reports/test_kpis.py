"""The KPIs on a small hand-checked month (tests/reports/scene.py), filters and role scoping."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from etabli.core.errors import NotFound, PermissionDenied, ValidationFailed
from etabli.materials.models import Alloy
from etabli.reports.selectors import ReportFilters, kpis, percentile
from etabli.workshops.models import StepKind
from tests.reports import scene

pytestmark = pytest.mark.django_db

MARCH = {"start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31)}


def march(**kw) -> ReportFilters:
    return ReportFilters(**MARCH, **kw)


def by(rows, key, value):
    return next(r for r in rows if r[key] == value)


def test_percentile_matches_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.9) == 3.0
    assert percentile([6.0, 8.0, 12.0], 0.5) == 8.0
    assert percentile([6.0, 8.0, 12.0], 0.9) == pytest.approx(11.2)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_house_figures_hand_checked_then_filtered(house_setup):
    h = house_setup
    scene.build(h)
    d = kpis(h.manager, march())
    assert d["scope"] == "house" and d["sees_values"] is True
    lt = d["lead_time"]
    assert lt["manufacturing"] == {"count": 3, "median_days": 8.0, "p90_days": 11.2,
                                   "mean_days": 8.67}
    assert lt["delivery"] == {"count": 3, "median_days": 15.0, "p90_days": 21.4,
                              "mean_days": 17.67}
    assert lt["weekly"] == [{"week": dt.date(2026, 3, 16), "count": 2, "median_days": 15.0},
                            {"week": dt.date(2026, 3, 23), "count": 1, "median_days": 23.0}]
    manu = by(d["steps"], "step", StepKind.MANUFACTURING)
    assert manu["runs"] == 3 and manu["actual_days"] == 5.67 and manu["over_plan"] == 0
    assert by(d["steps"], "step", StepKind.SETTING)["actual_days"] == 1.0
    caster = by(d["workshops"], "workshop", "Fonderie Dupont")
    assert caster["runs"] == 6 and caster["actual_days"] == 3.33  # (1+1+1 + 3+5+9) / 6
    assert d["right_first_time"]["pieces"] == {"finished": 3, "right_first_time": 2,
                                               "rate": 66.7}
    assert d["right_first_time"]["runs"] == {"finished": 21, "first_attempt": 20, "rate": 95.2}
    assert d["on_time"] == {"delivered": 3, "on_time": 2, "rate": 66.7}
    setting_q = by(d["queue"], "step", StepKind.SETTING)
    assert setting_q == {"step": "setting", "label": "Setting", "runs": 3, "avg_days": 2.0,
                         "max_days": 4.0}
    assert all(q["avg_days"] == 0.0 for q in d["queue"] if q["step"] != StepKind.SETTING)
    assert by(d["queue_workshops"], "workshop", "Sertissage Martin")["avg_days"] == 2.0
    casting = by(d["metal_loss"]["rows"], "operation", "casting")
    assert casting["workshop"] == "Fonderie Dupont" and casting["jobs"] == 1
    assert casting["issued_g"] == Decimal("20.000") and casting["loss_g"] == Decimal("1.000")
    assert casting["loss_percent"] == 5.0 and casting["value"] == Decimal("45.00")
    polishing = by(d["metal_loss"]["rows"], "operation", "polishing")
    assert polishing["loss_g"] == Decimal("0.500") and polishing["value"] == Decimal("22.50")
    assert d["metal_loss"]["total"] == {"jobs": 2, "issued_g": Decimal("30.000"),
                                        "loss_g": Decimal("1.500"), "loss_percent": 5.0,
                                        "value": Decimal("67.50")}
    assert d["stone_breakage"]["rows"] == [{"workshop_id": h.setter.pk,
                                            "workshop": "Sertissage Martin", "received": 10,
                                            "broken": 1, "lost": 0, "rate": 10.0}]
    assert d["wip"] == []  # every piece is delivered
    assert [(t["week"], t["pieces_delivered"], t["steps_completed"]) for t in d["throughput"]] \
        == [(dt.date(2026, 3, 2), 0, 9), (dt.date(2026, 3, 9), 0, 7),
            (dt.date(2026, 3, 16), 2, 3), (dt.date(2026, 3, 23), 1, 2)]

    # filters
    c_only = kpis(h.manager, march(model="B-200"))
    assert c_only["lead_time"]["delivery"]["count"] == 1
    assert c_only["lead_time"]["delivery"]["median_days"] == 23.0
    assert c_only["right_first_time"]["pieces"]["rate"] == 0.0
    assert c_only["on_time"] == {"delivered": 1, "on_time": 1, "rate": 100.0}
    nobody = kpis(h.manager, march(client_id=h.other_client.pk))
    assert nobody["lead_time"]["delivery"]["count"] == 0
    assert nobody["lead_time"]["delivery"]["median_days"] is None
    assert nobody["steps"] == [] and nobody["metal_loss"]["rows"] == []
    assert kpis(h.manager, march(channel="wholesale"))["on_time"]["delivered"] == 0
    assert kpis(h.manager, march(channel="direct"))["on_time"]["delivered"] == 3
    gold = Alloy.objects.get(code="750y")
    assert kpis(h.manager, march(alloy_id=gold.pk))["lead_time"]["delivery"]["count"] == 3
    setter = kpis(h.manager, march(workshop_id=h.setter.pk))
    assert [s["step"] for s in setter["steps"]] == ["setting"]
    assert setter["metal_loss"]["rows"] == []
    assert [w["workshop"] for w in setter["stone_breakage"]["rows"]] == ["Sertissage Martin"]
    finishing = kpis(h.manager, march(step=StepKind.FINISHING))
    assert [s["step"] for s in finishing["steps"]] == ["finishing"]
    assert [r["operation"] for r in finishing["metal_loss"]["rows"]] == ["polishing"]
    # another period: nothing
    april = kpis(h.manager, ReportFilters(start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30)))
    assert april["lead_time"]["delivery"]["count"] == 0 and april["throughput"] == []


def test_workshop_member_sees_only_their_workshop(house_setup):
    h = house_setup
    scene.build(h)
    d = kpis(h.setter_member, march())
    assert d["scope"] == "workshop" and d["sees_values"] is False
    assert d["lead_time"] is None and d["on_time"] is None
    assert d["right_first_time"]["pieces"] is None
    assert d["right_first_time"]["runs"] == {"finished": 3, "first_attempt": 3, "rate": 100.0}
    assert [s["step"] for s in d["steps"]] == ["setting"]
    assert [w["workshop"] for w in d["workshops"]] == ["Sertissage Martin"]
    assert d["queue"] == [{"step": "setting", "label": "Setting", "runs": 3, "avg_days": 2.0,
                           "max_days": 4.0}]
    assert d["metal_loss"]["rows"] == [] and "value" not in d["metal_loss"]["total"]
    assert [t["pieces_delivered"] for t in d["throughput"]] == [None, None]
    blob = json.dumps(d, default=str)
    for other in ("Fonderie Dupont", "Polissage Leroy", "The house", "45.00", "67.5"):
        assert other not in blob
    caster = kpis(h.caster_member, march())
    row = caster["metal_loss"]["rows"][0]
    assert row["workshop"] == "Fonderie Dupont" and row["loss_g"] == Decimal("1.000")
    assert "value" not in row and "loss_fine_g" not in row
    assert "Sertissage" not in json.dumps(caster, default=str)
    with pytest.raises(NotFound):
        kpis(h.setter_member, march(workshop_id=h.caster.pk))
    with pytest.raises(PermissionDenied):
        kpis(h.setter_member, march(client_id=h.client.pk))
    assert kpis(h.setter_member, march(workshop_id=h.setter.pk))["steps"][0]["runs"] == 3


@pytest.mark.parametrize("role", ["designer", "quality", "logistics", "client_contact"])
def test_no_reports_for_other_roles(house_setup, role):
    with pytest.raises(NotFound):
        kpis(getattr(house_setup, role), march())


def test_sales_see_house_figures_with_values(house_setup):
    d = kpis(house_setup.sales, march())
    assert d["scope"] == "house" and d["sees_values"] is True
    assert "value" in d["metal_loss"]["total"]


@pytest.mark.parametrize("data, code", [
    ({}, "period_required"),
    ({"start": "2026-03-01"}, "period_required"),
    ({"start": "2026-03-01", "end": "yesterday"}, "invalid"),
    ({"start": "2026-03-31", "end": "2026-03-01"}, "bad_period"),
    ({"start": "2020-01-01", "end": "2026-01-01"}, "bad_period"),
    ({"start": "0001-01-01", "end": "0001-01-02"}, "bad_period"),
    ({"start": "2026-03-01", "end": "2026-03-31", "step": "gilding"}, "invalid"),
    ({"start": "2026-03-01", "end": "2026-03-31", "channel": "tv"}, "invalid"),
    ({"start": "2026-03-01", "end": "2026-03-31", "workshop_id": "-1"}, "invalid"),
    ({"start": "2026-03-01", "end": "2026-03-31", "alloy_id": "1e9"}, "invalid"),
    ({"start": "2026-03-01", "end": "2026-03-31", "model": "x" * 61}, "invalid"),
    ({"start": "2026-03-01", "end": "2026-03-31", "model": "R-1\x00"}, "invalid"),
])
def test_bad_filters_are_refused(data, code):
    with pytest.raises(ValidationFailed) as exc:
        ReportFilters.parse(data)
    assert exc.value.code == code and exc.value.status == 400


def test_query_count_does_not_grow_with_pieces(house_setup):
    h = house_setup
    f = march()
    with CaptureQueriesContext(connection) as empty:
        kpis(h.manager, f)
    scene.build(h)
    with CaptureQueriesContext(connection) as full:
        kpis(h.manager, f)
    assert len(full) == len(empty) <= 20
    with CaptureQueriesContext(connection) as ws:
        kpis(h.setter_member, f)
    assert len(ws) <= 15
