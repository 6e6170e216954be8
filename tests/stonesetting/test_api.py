"""Stone setting over the API: every endpoint, what each role sees and may do, another
workshop's and a client's 404, bad input answered 4xx with a clear message, repeats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from etabli.accounts.services import token_create
from etabli.materials.models import StoneAllocation
from etabli.stonesetting.models import PlanStatus, SettingControl, SettingPlan
from tests.apiclient import API, assert_error, error_fields, ok
from tests.stonesetting.helpers import (
    back_from_setting,
    check,
    counts,
    group,
    plan_with_lot,
    png,
)
from tests.stonesetting.support import stone_lot

pytestmark = pytest.mark.django_db
D = Decimal
PLAN_KEYS = {"id", "piece", "status", "revision", "groups", "comparison", "stones_match",
             "preparation_checked", "check_note", "checked_by", "checked_at", "created_at",
             "updated_at", "control_due", "url"}
GROUP_KEYS = {"id", "number", "label", "setting_type", "position", "stone_type", "shape",
              "size_mm", "sieve", "count", "carats", "supplied_by_client", "lot", "allocation",
              "covered", "note"}


def plan_url(piece) -> str:
    return f"/setting/pieces/{piece.pk}/plan"


# ---------------------------------------------------------------------------------------------
# reading a plan


def test_get_plan_for_house_and_setter_without_prices_or_client(h, api, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    body = ok(api(h.manager).get(plan_url(at_setting)))
    assert set(body) == PLAN_KEYS and body["status"] == "draft"
    assert body["piece"] == {"id": at_setting.pk, "serial": at_setting.serial,
                             "description": at_setting.line.description}
    g = body["groups"][0]
    assert set(g) == GROUP_KEYS
    assert g["lot"] == {"id": lot.pk, "number": lot.number} and g["covered"] is True
    assert g["allocation"]["status"] == "reserved" and g["allocation"]["count"] == 12
    assert body["comparison"]["planned_count"] == 12
    assert body["comparison"]["count_matches"] is True
    assert body["url"] == f"/setting/pieces/{at_setting.pk}/"
    # The setter the piece is coming to sees the plan; nothing in it names the client or a
    # price.
    raw = api(h.setter_member).get(plan_url(at_setting)).content.decode()
    assert h.client.name not in raw and "price" not in raw
    for who in (h.admin, h.sales, h.designer, h.quality, h.logistics, h.caster_member):
        ok(api(who).get(plan_url(at_setting)))


def test_another_workshop_and_clients_get_404(h, api, at_setting, other_setter):
    plan_with_lot(h, at_setting)
    _ws, galli = other_setter
    for who in (galli, h.polisher_member, h.client_contact, h.other_client_contact):
        assert_error(api(who).get(plan_url(at_setting)), 404, "not_found")
        assert_error(api(who).get(f"/setting/pieces/{at_setting.pk}/controls"), 404)
        assert_error(api(who).post(f"{plan_url(at_setting)}/check",
                                   {"stones_match": True, "preparation_checked": True}), 404)
    assert_error(api(None).get(plan_url(at_setting)), 401)


def test_a_piece_without_a_plan_and_unknown_pieces(h, api, at_setting):
    body = assert_error(api(h.manager).get(plan_url(at_setting)), 404, "no_plan")
    assert at_setting.serial in body["message"]
    assert_error(api(h.manager).get("/setting/pieces/999999/plan"), 404)
    assert_error(api(h.manager).get("/setting/pieces/abc/plan"), 422)


# ---------------------------------------------------------------------------------------------
# writing a plan


def test_create_plan_with_groups(h, api, at_setting):
    lot = stone_lot(h)
    body = ok(api(h.manager).post(plan_url(at_setting), {"groups": [
        group(count=10, lot_id=lot.pk, carats="0.100"),
        group(count=2, position="centre", setting_type="prong", stone_type="diamond",
              shape="round", size_mm="2.50")]}), 201)
    assert [g["number"] for g in body["groups"]] == [1, 2]
    assert body["groups"][0]["carats"] == "0.100" and body["groups"][1]["lot"] is None
    assert body["comparison"]["allocations_missing"] == [2]
    assert_error(api(h.manager).post(plan_url(at_setting), {}), 409, "plan_exists")


@pytest.mark.parametrize("who, status", [("designer", 201), ("admin", 201), ("sales", 403),
                                         ("quality", 403), ("setter_member", 403),
                                         ("caster_member", 403), ("polisher_member", 404),
                                         ("client_contact", 404)])
def test_create_plan_per_role(h, api, at_setting, who, status):
    response = api(getattr(h, who)).post(plan_url(at_setting), {})
    if status == 201:
        ok(response, 201)
    else:
        assert_error(response, status)
        assert not SettingPlan.objects.exists()


@pytest.mark.parametrize("payload, fields", [
    ({"groups": [{"setting_type": "glue", "position": "band", "count": 1}]},
     {"groups.0.setting_type"}),
    ({"groups": [{"count": "many"}]}, {"groups.0.count"}),
    ({"groups": [{"carats": "heavy"}]}, {"groups.0.carats"}),
    ({"groups": "all"}, {"groups"}),
])
def test_create_plan_bad_types_are_422(h, api, at_setting, payload, fields):
    assert error_fields(api(h.manager).post(plan_url(at_setting), payload)) == fields
    assert not SettingPlan.objects.exists()


def test_create_plan_refusals_name_the_field_and_write_nothing(h, api, at_setting):
    lot = stone_lot(h, count=5, carats="0.050")
    body = assert_error(api(h.manager).post(plan_url(at_setting), {"groups": [
        group(count=6, lot_id=lot.pk)]}), 409, "insufficient_stones")
    assert "5 stones" in body["message"]
    body = assert_error(api(h.manager).post(plan_url(at_setting), {"groups": [
        group(count=1)]}), 400)
    assert body["details"]["field"] == "groups[0].stone_type"
    body = assert_error(api(h.manager).post(plan_url(at_setting), {"groups": [
        group(count=1, lot_id=999999)]}), 404)
    assert body["details"]["field"] == "groups[0].lot_id"
    body = assert_error(api(h.designer).post(plan_url(at_setting), {"groups": [
        group(count=1, lot_id=lot.pk)]}), 403)
    assert "production manager" in body["message"]
    assert not SettingPlan.objects.exists() and not StoneAllocation.objects.exists()
    assert_error(api(h.manager).post(plan_url(at_setting), raw="{not json"), 400)
    assert_error(api(h.manager).post(plan_url(at_setting), raw="[1, 2]"), 422)


def test_groups_add_update_set_and_remove(h, api, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    first = plan.groups.get()
    m = api(h.manager)
    added = ok(m.post(f"{plan_url(at_setting)}/groups",
                      group(count=1, position="centre", setting_type="prong",
                            stone_type="sapphire", shape="oval", size_mm="6.00",
                            supplied_by_client=True)), 201)
    assert added["number"] == 2 and added["covered"] is True
    changed = ok(m.patch(f"/setting/groups/{first.pk}", {"note": "Grain by hand",
                                                          "count": 11}))
    assert changed["note"] == "Grain by hand" and changed["allocation"]["count"] == 11
    body = ok(m.put(f"{plan_url(at_setting)}/groups", {"groups": [
        {"id": first.pk}, group(count=2, lot_id=lot.pk, position="shoulders")]}))
    assert [(g["number"], g["position"]) for g in body["groups"]] == [(1, "band"),
                                                                       (2, "shoulders")]
    third = body["groups"][1]["id"]
    assert m.delete(f"/setting/groups/{third}").status_code == 204
    assert_error(m.delete(f"/setting/groups/{third}"), 404)
    assert_error(m.patch(f"/setting/groups/{first.pk}", {"count": 0}), 400)
    assert_error(m.patch(f"/setting/groups/{first.pk}", {"position": "nowhere"}), 422)
    assert_error(m.put(f"{plan_url(at_setting)}/groups", {"groups": [{"id": 999999}]}), 404)
    assert_error(m.put(f"{plan_url(at_setting)}/groups", {}), 422)


def test_group_endpoints_per_role(h, api, at_setting, other_setter):
    plan, _lot = plan_with_lot(h, at_setting)
    g = plan.groups.get()
    _ws, galli = other_setter
    for who in (galli, h.client_contact, h.polisher_member):
        assert_error(api(who).patch(f"/setting/groups/{g.pk}", {"note": "x"}), 404)
        assert_error(api(who).delete(f"/setting/groups/{g.pk}"), 404)
        assert_error(api(who).post(f"{plan_url(at_setting)}/groups", group(count=1)), 404)
    for who in (h.setter_member, h.sales, h.quality):
        assert_error(api(who).patch(f"/setting/groups/{g.pk}", {"note": "x"}), 403)
        assert_error(api(who).delete(f"/setting/groups/{g.pk}"), 403)
    ok(api(h.designer).patch(f"/setting/groups/{g.pk}", {"note": "From the designer"}))


def test_check_and_reopen(h, api, at_setting):
    plan_with_lot(h, at_setting, count=14, carats="0.140")
    url = f"{plan_url(at_setting)}/check"
    body = assert_error(api(h.quality).post(url, {"stones_match": True,
                                                  "preparation_checked": True}), 400)
    assert body["details"]["field"] == "note" and "14 stones" in body["message"]
    assert_error(api(h.quality).post(url, {"stones_match": False, "preparation_checked": True,
                                           "note": "x"}), 400)
    assert error_fields(api(h.quality).post(url, {"stones_match": "perhaps"})) >= {
        "stones_match", "preparation_checked"}
    for who in (h.designer, h.sales, h.setter_member):
        assert_error(api(who).post(url, {"stones_match": True, "preparation_checked": True,
                                         "note": "x"}), 403)
    body = ok(api(h.quality).post(url, {"stones_match": True, "preparation_checked": True,
                                        "note": "Client approved 14 stones."}))
    assert body["status"] == PlanStatus.CHECKED and body["checked_by"] == h.quality.username
    assert body["check_note"] == "Client approved 14 stones."
    assert_error(api(h.quality).post(url, {"stones_match": True, "preparation_checked": True}),
                 409, "already_checked")
    # The setter sees that the plan is checked, not who checked it.
    seen = ok(api(h.setter_member).get(plan_url(at_setting)))
    assert seen["status"] == "checked" and seen["checked_by"] is None

    reopen = f"{plan_url(at_setting)}/reopen"
    assert_error(api(h.quality).post(reopen, {"reason": "x"}), 403)
    assert_error(api(h.manager).post(reopen, {"reason": ""}), 400)
    assert error_fields(api(h.manager).post(reopen, {})) == {"reason"}
    body = ok(api(h.manager).post(reopen, {"reason": "Rubies on the shoulders instead."}))
    assert body["status"] == "draft" and body["revision"] == 2 and body["checked_at"] is None
    assert_error(api(h.manager).post(reopen, {"reason": "again"}), 409)


def test_check_refused_while_stones_are_missing(h, api, at_setting):
    services_plan = ok(api(h.manager).post(plan_url(at_setting), {"groups": [
        group(count=12, stone_type="diamond", shape="round", size_mm="1.30")]}), 201)
    body = assert_error(api(h.manager).post(f"{plan_url(at_setting)}/check", {
        "stones_match": True, "preparation_checked": True}), 400, "allocations_missing")
    assert body["details"]["groups"] == [1] and "group 1" in body["message"]
    assert services_plan["status"] == "draft"


# ---------------------------------------------------------------------------------------------
# the control


@pytest.fixture
def returned(h, at_setting):
    plan_with_lot(h, at_setting)
    check(h, at_setting)
    return back_from_setting(h, at_setting)


def test_record_and_read_a_control(h, api, returned, media):
    plan = SettingPlan.objects.get()
    assert ok(api(h.polisher_member).get(plan_url(returned)))["control_due"] is True
    url = f"/setting/pieces/{returned.pk}/control"
    payload = {"stones_secure": True, "counts": counts(plan), "notes": "All secure.",
               "client_ref": "c-1"}
    first = ok(api(h.polisher_member).post(url, payload), 201)
    assert first["passed"] is True and first["counts"][0]["matches"] is True
    assert first["workshop"] == h.polisher.name and first["recorded_by"] == "polisher1"
    again = ok(api(h.polisher_member).post(url, payload), 200)
    assert again["id"] == first["id"] and SettingControl.objects.count() == 1
    # Photos go on the control afterwards, as multipart.
    token = token_create(actor=h.polisher_member, user=h.polisher_member, name="t")[1]
    response = Client().post(f"{API}/setting/controls/{first['id']}/photos",
                             {"photos": [png("a.png"), png("b.png")]},
                             headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.content
    assert len(response.json()["photos"]) == 2
    listed = ok(api(h.manager).get(f"/setting/pieces/{returned.pk}/controls"))
    assert [c["id"] for c in listed] == [first["id"]] and len(listed[0]["photos"]) == 2
    assert ok(api(h.manager).get(f"/setting/controls/{first['id']}"))["notes"] == "All secure."
    for who in (h.client_contact, h.setter_member, h.caster_member):
        assert_error(api(who).get(f"/setting/controls/{first['id']}"), 404)
    assert_error(api(h.manager).get("/setting/controls/999999"), 404)


def test_a_failed_control_over_the_api_holds_the_piece(h, api, returned):
    plan = SettingPlan.objects.get()
    body = ok(api(h.quality).post(f"/setting/pieces/{returned.pk}/control",
                                  {"stones_secure": False, "counts": counts(plan)}), 201)
    assert body["passed"] is False and body["on_hold"] is True
    returned.refresh_from_db()
    assert returned.status == "on_hold"


@pytest.mark.parametrize("who, status", [("polisher_member", 201), ("manager", 201),
                                         ("quality", 201), ("sales", 403), ("designer", 403),
                                         ("setter_member", 404), ("caster_member", 404),
                                         ("client_contact", 404)])
def test_record_control_per_role(h, api, returned, who, status):
    plan = SettingPlan.objects.get()
    response = api(getattr(h, who)).post(f"/setting/pieces/{returned.pk}/control",
                                         {"stones_secure": True, "counts": counts(plan)})
    if status == 201:
        ok(response, 201)
    else:
        assert_error(response, status)
        assert not SettingControl.objects.exists()


def test_control_bad_input(h, api, returned, other_setter):
    plan = SettingPlan.objects.get()
    url = f"/setting/pieces/{returned.pk}/control"
    m = api(h.manager)
    assert error_fields(m.post(url, {"counts": counts(plan)})) == {"stones_secure"}
    assert error_fields(m.post(url, {"stones_secure": True})) == {"counts"}
    assert error_fields(m.post(url, {"stones_secure": True,
                                     "counts": [{"group_id": "x", "counted": 1}]})) \
        == {"counts.0.group_id"}
    body = assert_error(m.post(url, {"stones_secure": True, "counts": []}), 400)
    assert body["details"]["field"] == "counts" and "not counted" in body["message"]
    body = assert_error(m.post(url, {"stones_secure": True,
                                     "counts": counts(plan, g1=-1)}), 400)
    assert body["details"]["field"] == "counts[0].counted"
    # The stones were never issued to the setter: none can have broken there.
    assert_error(m.post(url, {"stones_secure": True, "counts": counts(plan),
                              "breakages": [{"group_id": plan.groups.get().pk, "count": 1,
                                             "reason": "Chipped"}]}), 409)
    _ws, galli = other_setter
    assert_error(api(galli).post(url, {"stones_secure": True, "counts": counts(plan)}), 404)
    assert not SettingControl.objects.exists()


def test_control_not_due_answers_409(h, api, at_setting):
    plan, _lot = plan_with_lot(h, at_setting)
    body = assert_error(api(h.manager).post(f"/setting/pieces/{at_setting.pk}/control", {
        "stones_secure": True, "counts": counts(plan)}), 409, "control_not_due")
    assert "not back" in body["message"]


def test_photos_endpoint_refusals(h, api, returned, media):
    plan = SettingPlan.objects.get()
    control = ok(api(h.polisher_member).post(f"/setting/pieces/{returned.pk}/control",
                                             {"stones_secure": True, "counts": counts(plan)}),
                 201)
    url = f"{API}/setting/controls/{control['id']}/photos"
    sales = token_create(actor=h.sales, user=h.sales, name="t")[1]
    response = Client().post(url, {"photos": [png()]},
                             headers={"Authorization": f"Bearer {sales}"})
    assert_error(response, 403)
    manager = token_create(actor=h.manager, user=h.manager, name="t")[1]
    from django.core.files.uploadedfile import SimpleUploadedFile

    svg = SimpleUploadedFile("x.png", b"<svg onload=alert(1)></svg>", content_type="image/png")
    response = Client().post(url, {"photos": [svg]},
                             headers={"Authorization": f"Bearer {manager}"})
    assert_error(response, 400)
    response = Client().post(url, {}, headers={"Authorization": f"Bearer {manager}"})
    assert response.status_code == 422
