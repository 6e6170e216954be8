"""GET /api/v1/reports/kpis and the API exports."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests.apiclient import assert_error
from tests.reports import scene

pytestmark = pytest.mark.django_db

MARCH = {"start": "2026-03-01", "end": "2026-03-31"}


def test_kpis_json_and_exports(house_setup, api, django_assert_max_num_queries):
    h = house_setup
    scene.build(h)
    with django_assert_max_num_queries(30):
        r = api(h.manager).get("/reports/kpis", MARCH)
    assert r.status_code == 200, r.content
    d = r.json()
    assert d["lead_time"]["delivery"]["median_days"] == 15.0
    assert d["lead_time"]["delivery"]["p90_days"] == 21.4
    assert d["lead_time"]["weekly"][0]["week"] == "2026-03-16"
    assert d["metal_loss"]["total"]["value"] == 67.5
    assert d["on_time"]["rate"] == 66.7
    r = api(h.manager).get("/reports/kpis", MARCH | {"model": "B-200", "channel": "direct"})
    assert r.json()["lead_time"]["delivery"]["count"] == 1
    ws = api(h.setter_member).get("/reports/kpis", MARCH).json()
    assert ws["scope"] == "workshop" and ws["lead_time"] is None
    assert "Fonderie" not in str(ws) and "Polissage" not in str(ws)
    r = api(h.manager).get("/reports/export.xlsx", MARCH)
    assert r.status_code == 200
    assert "metal_loss" in load_workbook(io.BytesIO(r.content)).sheetnames
    r = api(h.manager).get("/reports/steps.csv", MARCH)
    assert r.status_code == 200 and b"Manufacturing,3,5.67" in r.content


def test_kpis_refusals(house_setup, api):
    h = house_setup
    assert_error(api(h.manager).get("/reports/kpis", {"start": "2026-03-01"}), 422)
    assert_error(api(h.manager).get("/reports/kpis", {"start": "2026-03-31",
                                                      "end": "2026-03-01"}), 400, "bad_period")
    assert_error(api(h.manager).get("/reports/kpis", MARCH | {"step": "gilding"}), 422)
    assert_error(api(h.manager).get("/reports/kpis", MARCH | {"workshop_id": 0}), 422)
    assert_error(api(h.manager).get("/reports/kpis", MARCH | {"workshop_id": 2**40}), 422)
    assert_error(api(h.manager).get("/reports/nope.csv", MARCH), 404)
    for role in ("client_contact", "designer", "quality", "logistics"):
        assert_error(api(getattr(h, role)).get("/reports/kpis", MARCH), 404)
    assert_error(api(h.setter_member).get("/reports/kpis", MARCH | {"workshop_id":
                                                                    h.caster.pk}), 404)
    assert_error(api(h.setter_member).get("/reports/kpis", MARCH | {"client_id":
                                                                    h.client.pk}), 403)
    assert api(None).get("/reports/kpis", MARCH).status_code == 401
