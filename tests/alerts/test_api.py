"""The /api/v1/alerts endpoints."""

from __future__ import annotations

from tests.alerts.conftest import make_alert
from tests.apiclient import assert_error, ok


def test_list_filter_get_and_scoping(house_setup, api):
    h = house_setup
    mine = make_alert(workshop=h.caster, severity="critical", piece=h.launched_piece())
    theirs = make_alert(workshop=h.setter)
    qc = make_alert("qc_failure", role="quality")
    body = ok(api(h.manager).get("/alerts"))
    assert body["count"] == 3
    item = next(i for i in body["items"] if i["id"] == mine.pk)
    assert item["kind_label"] == "Step overdue" and item["message"] and item["title"]
    assert ok(api(h.manager).get("/alerts", {"severity": "critical"}))["count"] == 1
    assert ok(api(h.manager).get("/alerts", {"kind": "qc_failure"}))["items"][0]["id"] == qc.pk
    assert ok(api(h.manager).get("/alerts", {"status": "resolved"}))["count"] == 0
    assert ok(api(h.quality).get("/alerts", {"mine": "true"}))["count"] == 1
    items = ok(api(h.caster_member).get("/alerts"))["items"]
    assert [i["id"] for i in items] == [mine.pk]
    assert items[0]["order_id"] is None and items[0]["order_reference"] is None
    assert ok(api(h.client_contact).get("/alerts"))["count"] == 0
    assert ok(api(h.manager).get(f"/alerts/{theirs.pk}"))["workshop_id"] == h.setter.pk
    assert_error(api(h.caster_member).get(f"/alerts/{theirs.pk}"), 404)
    assert_error(api(h.manager).get("/alerts/99999999"), 404)
    assert_error(api(h.manager).get("/alerts/99999999999999999999"), 404)
    assert api(h.manager).get("/alerts", {"kind": "nope"}).status_code == 422
    assert api(None).get("/alerts").status_code == 401


def test_acknowledge_resolve_assign(house_setup, api):
    h = house_setup
    a = make_alert(workshop=h.caster)
    body = ok(api(h.manager).post(f"/alerts/{a.pk}/acknowledge", {"comment": "On it"}))
    assert body["status"] == "acknowledged"
    assert_error(api(h.manager).post(f"/alerts/{a.pk}/acknowledge", {}), 409)
    assert_error(api(h.caster_member).post(f"/alerts/{a.pk}/resolve", {"comment": "x"}), 403)
    assert_error(api(h.setter_member).post(f"/alerts/{a.pk}/resolve", {"comment": "x"}), 404)
    assert_error(api(h.manager).post(f"/alerts/{a.pk}/resolve", {"comment": " "}), 400)
    assert api(h.manager).post(f"/alerts/{a.pk}/resolve", {}).status_code == 422
    body = ok(api(h.manager).post(f"/alerts/{a.pk}/assign",
                                  {"assignee_id": h.logistics.pk}))
    assert body["assignee_id"] == h.logistics.pk and body["assigned_role"] == "logistics"
    assert_error(api(h.logistics).post(f"/alerts/{a.pk}/assign", {"role": "sales"}), 403)
    assert_error(api(h.manager).post(f"/alerts/{a.pk}/assign", {"role": "client"}), 400)
    assert api(h.manager).post(f"/alerts/{a.pk}/assign",
                               {"assignee_id": "abc"}).status_code == 422
    body = ok(api(h.logistics).post(f"/alerts/{a.pk}/resolve", {"comment": "Found it."}))
    assert body["status"] == "resolved" and body["resolution"] == "Found it."


def test_rules_list_and_update(house_setup, api):
    h = house_setup
    rules = ok(api(h.manager).get("/alerts/rules"))
    assert len(rules) == 8 and {r["kind"] for r in rules} >= {"step_overdue", "qc_failure"}
    body = ok(api(h.admin).patch("/alerts/rules/transfer_not_received",
                                 {"threshold": "4", "critical_threshold": None,
                                  "severity": "critical"}))
    assert body["threshold"] == "4.00" and body["critical_threshold"] is None
    assert body["severity"] == "critical" and body["assigned_role"] == "logistics"
    assert_error(api(h.sales).get("/alerts/rules"), 403)
    assert_error(api(h.sales).patch("/alerts/rules/transfer_not_received",
                                    {"threshold": 1}), 403)
    assert api(h.manager).patch("/alerts/rules/nope", {"threshold": 1}).status_code == 422
    assert api(h.manager).patch("/alerts/rules/qc_failure",
                                {"threshold": -1}).status_code == 422
    assert api(h.manager).patch("/alerts/rules/qc_failure",
                                {"severity": "loud"}).status_code == 422
    assert_error(api(h.manager).patch("/alerts/rules/qc_failure",
                                      {"assigned_role": "client"}), 400)
