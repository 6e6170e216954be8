"""Workshops API: operations, workshops as each role sees them, creation and changes."""

from __future__ import annotations

import pytest

from etabli.core.models import AuditEntry
from etabli.workshops.models import Operation, Workshop
from tests.apiclient import assert_error, error_fields, ok
from tests.factories import make_workshop

pytestmark = pytest.mark.django_db

WORKSHOP_KEYS = {"id", "code", "name", "kind", "capacity_benches", "address", "email", "phone",
                 "is_active", "skills", "contacts"}


def test_operations_list(house_setup, api):
    body = ok(api(house_setup.caster_member).get("/operations", {"limit": 1000}))
    assert body["count"] == Operation.objects.count() > 0
    first = body["items"][0]
    assert set(first) == {"code", "name", "step"}
    codes = [op["code"] for op in body["items"]]
    assert codes == list(Operation.objects.order_by("position", "id").values_list("code",
                                                                                   flat=True))
    page = ok(api(house_setup.caster_member).get("/operations", {"limit": 3, "offset": 2}))
    assert [op["code"] for op in page["items"]] == codes[2:5]


def test_house_staff_see_every_workshop_in_name_order(house_setup, api):
    h = house_setup
    for user in (h.admin, h.manager, h.sales, h.designer, h.quality, h.logistics):
        body = ok(api(user).get("/workshops"))
        assert body["count"] == 4
        names = [w["name"] for w in body["items"]]
        assert names == sorted(names)
        assert {w["code"] for w in body["items"]} == {"house", "caster", "setter", "polisher"}
    caster = next(w for w in body["items"] if w["code"] == "caster")
    assert set(caster) == WORKSHOP_KEYS
    assert caster["kind"] == "external" and caster["capacity_benches"] == 3
    assert "casting" in caster["skills"]


def test_workshop_member_sees_only_their_workshop(house_setup, api):
    h = house_setup
    me = api(h.setter_member)
    body = ok(me.get("/workshops"))
    assert body["count"] == 1 and body["items"][0]["code"] == "setter"
    assert ok(me.get(f"/workshops/{h.setter.pk}"))["code"] == "setter"
    for other in (h.caster, h.polisher, h.house):
        assert_error(me.get(f"/workshops/{other.pk}"), 404, "not_found")


def test_client_sees_no_workshop(house_setup, api):
    h = house_setup
    me = api(h.client_contact)
    assert ok(me.get("/workshops")) == {"items": [], "count": 0}
    assert_error(me.get(f"/workshops/{h.caster.pk}"), 404, "not_found")


def test_workshop_list_paginates(house_setup, api):
    for i in range(6):
        make_workshop(f"extra{i}", name=f"Atelier {i}")
    me = api(house_setup.manager)
    everything = ok(me.get("/workshops"))
    assert everything["count"] == 10
    ids = [w["id"] for w in everything["items"]]
    page = ok(me.get("/workshops", {"limit": 4, "offset": 4}))
    assert page["count"] == 10 and [w["id"] for w in page["items"]] == ids[4:8]
    assert ok(me.get("/workshops", {"limit": 4, "offset": 4})) == page  # stable


def test_unknown_workshop_is_404(house_setup, api):
    assert_error(api(house_setup.admin).get("/workshops/999999"), 404, "not_found")
    assert_error(api(house_setup.admin).get("/workshops/nope"), 422, "invalid_input")


def test_create_workshop(house_setup, api):
    created = ok(api(house_setup.manager).post("/workshops", {
        "code": "Engraver", "name": "Gravure Petit", "kind": "external",
        "skills": ["engraving_hallmarking"], "capacity_benches": 2, "phone": "+33 1 23",
        "contacts": [{"name": "Anne Petit", "function": "owner", "email": "a@example.com"}],
    }), 201)
    assert set(created) == WORKSHOP_KEYS
    assert created["code"] == "engraver"  # codes are kept in lower case
    assert created["skills"] == ["engraving_hallmarking"]
    assert created["contacts"] == [{"name": "Anne Petit", "function": "owner",
                                    "email": "a@example.com", "phone": ""}]
    entry = AuditEntry.objects.filter(action="workshop.create").order_by("-id").first()
    assert entry.actor.username == "manager" and entry.after["code"] == "engraver"
    assert ok(api(house_setup.admin).get(f"/workshops/{created['id']}"))["name"] == "Gravure Petit"


def test_only_production_roles_create_workshops(house_setup, api):
    h = house_setup
    clients = [api(u) for u in (h.sales, h.designer, h.caster_member)]
    before = Workshop.objects.count()
    for client in clients:
        assert_error(client.post("/workshops", {"code": "x1", "name": "X"}), 403, "forbidden")
    assert_error(api(h.client_contact).post("/workshops", {"code": "x1", "name": "X"}),
                 403, "forbidden")
    assert Workshop.objects.count() == before


def test_create_workshop_bad_input(house_setup, api):
    me = api(house_setup.admin)
    before, audit_before = Workshop.objects.count(), AuditEntry.objects.count()
    good = {"code": "newbench", "name": "New bench"}
    assert_error(me.post("/workshops", raw="{bad"), 400, "bad_request")
    assert {"code", "name"} <= error_fields(me.post("/workshops", {}))
    assert "code" in error_fields(me.post("/workshops", good | {"code": "has space"}))
    assert "capacity_benches" in error_fields(me.post("/workshops", good
                                                      | {"capacity_benches": 0}))
    assert "capacity_benches" in error_fields(me.post("/workshops", good
                                                      | {"capacity_benches": "many"}))
    assert "kind" in error_fields(me.post("/workshops", good | {"kind": "castle"}))
    assert "skills" in error_fields(me.post("/workshops", good | {"skills": "casting"}))
    assert "contacts.0.name" in error_fields(me.post("/workshops", good | {"contacts": [{}]}))
    # Well-formed but refused.
    assert_error(me.post("/workshops", good | {"skills": ["casting", "juggling"]}),
                 404, "not_found")
    assert_error(me.post("/workshops", good | {"code": "CASTER"}), 409, "conflict")
    assert_error(me.post("/workshops", good | {"kind": "house"}), 409, "conflict")
    assert Workshop.objects.count() == before
    assert AuditEntry.objects.count() == audit_before


def test_update_workshop(house_setup, api):
    h = house_setup
    changed = ok(api(h.manager).patch(f"/workshops/{h.setter.pk}", {
        "capacity_benches": 4, "skills": ["setting", "polishing"], "email": "s@example.com"}))
    assert changed["capacity_benches"] == 4
    assert sorted(changed["skills"]) == ["polishing", "setting"]
    assert changed["name"] == "Sertissage Martin"  # untouched
    entry = AuditEntry.objects.filter(action="workshop.update").get()
    assert entry.before["capacity_benches"] == 1 and entry.after["capacity_benches"] == 4
    assert entry.before["skills"] == ["setting"]
    assert sorted(entry.after["skills"]) == ["polishing", "setting"]


def test_update_workshop_refusals(house_setup, api):
    h = house_setup
    member, me = api(h.setter_member), api(h.manager)
    audit_before = AuditEntry.objects.count()
    # A member sees their workshop but may not change it; another workshop is simply not there.
    assert_error(member.patch(f"/workshops/{h.setter.pk}", {"name": "Mine"}), 403, "forbidden")
    assert_error(member.patch(f"/workshops/{h.caster.pk}", {"name": "Mine"}), 404, "not_found")
    assert_error(me.patch("/workshops/999999", {"name": "X"}), 404, "not_found")
    assert_error(me.patch(f"/workshops/{h.setter.pk}", raw="{bad"), 400, "bad_request")
    assert "capacity_benches" in error_fields(me.patch(f"/workshops/{h.setter.pk}",
                                                       {"capacity_benches": 0}))
    assert "is_active" in error_fields(me.patch(f"/workshops/{h.setter.pk}",
                                                {"is_active": "perhaps"}))
    assert "name" in error_fields(me.patch(f"/workshops/{h.setter.pk}", {"name": ""}))
    assert_error(me.patch(f"/workshops/{h.setter.pk}", {"skills": ["nothing"]}),
                 404, "not_found")
    h.setter.refresh_from_db()
    assert h.setter.name == "Sertissage Martin"
    assert list(h.setter.skills.values_list("code", flat=True)) == ["setting"]
    assert AuditEntry.objects.count() == audit_before
