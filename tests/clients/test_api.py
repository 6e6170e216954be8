"""Clients API: who sees which client, filters, creation."""

from __future__ import annotations

import pytest

from etabli.clients.models import Client
from etabli.core.models import AuditEntry
from tests.apiclient import assert_error, error_fields, ok
from tests.factories import make_client

pytestmark = pytest.mark.django_db

CLIENT_KEYS = {"id", "code", "name", "kind", "channel", "email", "phone", "address", "language",
               "created_at", "contacts"}


def test_house_staff_see_every_client(house_setup, api):
    h = house_setup
    for user in (h.admin, h.manager, h.sales, h.designer, h.quality, h.logistics):
        body = ok(api(user).get("/clients"))
        assert body["count"] == 2
        assert [c["name"] for c in body["items"]] == ["Bijouterie Roux", "Maison Blanc"]
    assert set(body["items"][0]) == CLIENT_KEYS


def test_workshops_see_no_client(house_setup, api):
    h = house_setup
    me = api(h.caster_member)
    assert ok(me.get("/clients")) == {"items": [], "count": 0}
    assert_error(me.get(f"/clients/{h.client.pk}"), 404, "not_found")


def test_client_contact_sees_only_their_client(house_setup, api):
    h = house_setup
    me = api(h.client_contact)
    body = ok(me.get("/clients"))
    assert body["count"] == 1 and body["items"][0]["code"] == "bijouterie-roux"
    assert ok(me.get(f"/clients/{h.client.pk}"))["name"] == "Bijouterie Roux"
    assert_error(me.get(f"/clients/{h.other_client.pk}"), 404, "not_found")


def test_client_filters_and_pagination(house_setup, api):
    make_client("eshop", name="Bijoux en ligne", channel="ecommerce", kind="b2c")
    make_client("grossiste", name="Grossiste Or", channel="wholesale")
    me = api(house_setup.sales)
    assert [c["code"] for c in ok(me.get("/clients", {"q": "bijou"}))["items"]] == \
        ["bijouterie-roux", "eshop"]
    assert [c["code"] for c in ok(me.get("/clients", {"channel": "wholesale"}))["items"]] == \
        ["grossiste"]
    assert [c["code"] for c in ok(me.get("/clients", {"kind": "b2c"}))["items"]] == ["eshop"]
    everything = ok(me.get("/clients"))
    assert everything["count"] == 4
    page = ok(me.get("/clients", {"limit": 2, "offset": 1}))
    assert page["count"] == 4
    assert [c["id"] for c in page["items"]] == [c["id"] for c in everything["items"][1:3]]
    assert_error(me.get("/clients", {"channel": "pigeon"}), 422, "invalid_input")
    assert_error(me.get("/clients", {"limit": "ten"}), 422, "invalid_input")


def test_unknown_client_is_404(house_setup, api):
    assert_error(api(house_setup.sales).get("/clients/999999"), 404, "not_found")


def test_create_client(house_setup, api):
    created = ok(api(house_setup.sales).post("/clients", {
        "code": "Galerie-Or", "name": "Galerie d'Or", "kind": "b2b", "channel": "retail",
        "email": "contact@galerie.example", "language": "fr",
        "contacts": [{"name": "Marie", "function": "buyer"}]}), 201)
    assert set(created) == CLIENT_KEYS
    assert created["code"] == "galerie-or" and created["channel"] == "retail"
    assert created["contacts"] == [{"name": "Marie", "function": "buyer", "email": "",
                                    "phone": ""}]
    entry = AuditEntry.objects.filter(action="client.create").order_by("-id").first()
    assert entry.actor.username == "sales" and entry.after["name"] == "Galerie d'Or"


def test_only_order_roles_create_clients(house_setup, api):
    h = house_setup
    clients = [api(u) for u in (h.designer, h.quality, h.logistics, h.caster_member,
                                h.client_contact)]
    before = Client.objects.count()
    for client in clients:
        assert_error(client.post("/clients", {"code": "c9", "name": "C9"}), 403, "forbidden")
    assert Client.objects.count() == before


def test_create_client_bad_input(house_setup, api):
    me = api(house_setup.sales)
    before, audit_before = Client.objects.count(), AuditEntry.objects.count()
    good = {"code": "newclient", "name": "New client"}
    assert_error(me.post("/clients", raw="{bad"), 400, "bad_request")
    assert {"code", "name"} <= error_fields(me.post("/clients", {}))
    assert "channel" in error_fields(me.post("/clients", good | {"channel": "pigeon"}))
    assert "kind" in error_fields(me.post("/clients", good | {"kind": "b2x"}))
    assert "language" in error_fields(me.post("/clients", good | {"language": "xx"}))
    assert "code" in error_fields(me.post("/clients", good | {"code": "a/b"}))
    assert "name" in error_fields(me.post("/clients", good | {"name": 42}))
    assert "contacts" in error_fields(me.post("/clients", good | {"contacts": {"name": "x"}}))
    assert_error(me.post("/clients", good | {"code": "MAISON-BLANC"}), 409, "conflict")
    assert Client.objects.count() == before
    assert AuditEntry.objects.count() == audit_before
