"""Alert pages, panels and the dashboard section, with query budgets."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from etabli.alerts.models import AlertRule, AlertStatus
from tests.alerts.conftest import make_alert


def logged(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def setup(house_setup):
    h = house_setup
    piece = h.launched_piece()
    on_piece = make_alert(piece=piece, workshop=h.caster, severity="critical")
    for _ in range(5):
        make_alert(workshop=h.setter)
    make_alert("qc_failure", role="quality")
    return h, piece, on_piece


def test_list_page_filters_and_budget(setup, django_assert_max_num_queries):
    h, piece, on_piece = setup
    c = logged(h.manager)
    with django_assert_max_num_queries(14):
        r = c.get(reverse("alerts:list"))
    assert r.status_code == 200 and piece.serial in r.content.decode()
    assert "7 alerts" in r.content.decode()
    r = c.get(reverse("alerts:list"), {"severity": "critical", "kind": "bogus"})
    assert "1 alert" in r.content.decode()
    assert "1 alert" in logged(h.quality).get(reverse("alerts:list"), {"mine": "1"})\
        .content.decode()
    body = logged(h.caster_member).get(reverse("alerts:list")).content.decode()
    assert "1 alert" in body and piece.serial in body
    assert logged(h.client_contact).get(reverse("alerts:list")).status_code == 404
    assert logged(h.manager).get(reverse("alerts:list"), {"status": "all"}).status_code == 200


def test_detail_and_actions(setup):
    h, piece, a = setup
    c = logged(h.manager)
    assert c.get(reverse("alerts:detail", args=[a.pk])).status_code == 200
    assert logged(h.setter_member).get(reverse("alerts:detail", args=[a.pk])).status_code \
        == 404
    r = c.post(reverse("alerts:acknowledge", args=[a.pk]))
    assert r.status_code == 302
    r = c.post(reverse("alerts:resolve", args=[a.pk]), {"comment": ""})
    assert r.status_code == 400 and "Say how it was resolved" in r.content.decode()
    r = logged(h.caster_member).post(reverse("alerts:resolve", args=[a.pk]), {"comment": "x"})
    assert r.status_code == 403
    r = c.post(reverse("alerts:assign", args=[a.pk]), {"assignee_id": "x"})
    assert r.status_code == 400
    r = c.post(reverse("alerts:assign", args=[a.pk]), {"role": "logistics"})
    assert r.status_code == 302
    r = c.post(reverse("alerts:resolve", args=[a.pk]),
               {"comment": "Rescheduled.", "next": reverse("alerts:list")})
    assert r.status_code == 302 and r["Location"] == reverse("alerts:list")
    a.refresh_from_db()
    assert a.status == AlertStatus.RESOLVED and a.assigned_role == "logistics"
    assert c.post(reverse("alerts:resolve", args=[999999]), {"comment": "x"}).status_code \
        == 404
    assert c.get(reverse("alerts:resolve", args=[a.pk])).status_code == 405


def test_rules_page(setup, django_assert_max_num_queries):
    h, _piece, _a = setup
    c = logged(h.manager)
    with django_assert_max_num_queries(8):
        assert c.get(reverse("alerts:rules")).status_code == 200
    r = c.post(reverse("alerts:rule", args=["piece_on_hold"]),
               {"enabled": "1", "threshold": "6", "critical_threshold": "",
                "severity": "info", "assigned_role": "production_manager"})
    assert r.status_code == 302
    rule = AlertRule.objects.get(kind="piece_on_hold")
    assert rule.threshold == 6 and rule.critical_threshold is None and rule.severity == "info"
    r = c.post(reverse("alerts:rule", args=["piece_on_hold"]),
               {"threshold": "abc", "severity": "info", "assigned_role": "sales"})
    assert r.status_code == 400 and "number" in r.content.decode()
    assert c.post(reverse("alerts:rule", args=["nope"]), {}).status_code == 404
    assert logged(h.sales).get(reverse("alerts:rules")).status_code == 404
    assert logged(h.sales).post(reverse("alerts:rule", args=["piece_on_hold"]),
                                {"threshold": "1"}).status_code == 404


def test_panels_and_dashboard(setup, django_assert_max_num_queries):
    h, piece, a = setup
    c = logged(h.manager)
    body = c.get(reverse("production:piece", args=[piece.pk])).content.decode()
    assert "Open alerts" in body and a.title() in body
    body = c.get(reverse("orders:detail", args=[piece.order_id])).content.decode()
    assert "Open alerts" in body
    body = c.get(reverse("production:dashboard")).content.decode()
    assert "Open alerts" in body and "7" in body
    with django_assert_max_num_queries(25):
        r = c.get(reverse("production:dashboard_board"), headers={"HX-Request": "true"})
    assert r.status_code == 200 and "Open alerts" in r.content.decode()


def test_workshop_piece_page_shows_only_its_own_workshops_alerts(setup):
    h, piece, a = setup
    h.walk(piece, to="prototyping", arrive=True)  # at the caster now
    other = make_alert(piece=piece, workshop=h.setter, key="other-workshop")
    body = logged(h.caster_member).get(reverse("workshop:piece", args=[piece.pk]))\
        .content.decode()
    assert "Open alerts" in body and f"/alerts/{a.pk}/" in body
    assert f"/alerts/{other.pk}/" not in body
