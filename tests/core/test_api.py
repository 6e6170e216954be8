"""API-wide behaviour: the OpenAPI document, the docs page, unknown addresses."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.apiclient import API, assert_error, ok

pytestmark = pytest.mark.django_db

ROUTERS = {
    "accounts": ["/me", "/tokens", "/tokens/{token_id}", "/users"],
    "workshops": ["/operations", "/workshops", "/workshops/{workshop_id}"],
    "clients": ["/clients", "/clients/{client_id}"],
    "materials": ["/alloys"],
    "route templates": ["/route-templates"],
    "orders": ["/orders", "/orders/{order_id}", "/orders/{order_id}/lines",
               "/orders/{order_id}/lines/{line_id}", "/orders/{order_id}/checklist/{code}",
               "/orders/{order_id}/deadline-check", "/orders/{order_id}/route",
               "/orders/{order_id}/route/{step_id}", "/orders/{order_id}/route/{step_id}/skip",
               "/orders/{order_id}/route/order", "/orders/{order_id}/launch",
               "/orders/{order_id}/cancel", "/orders/{order_id}/audit",
               "/orders/{order_id}/change-requests", "/change-requests/{cr_id}/assess",
               "/change-requests/{cr_id}/decide"],
    "pieces": ["/pieces", "/pieces/by-serial/{serial}", "/pieces/{piece_id}",
               "/pieces/{piece_id}/events", "/pieces/{piece_id}/audit",
               "/pieces/{piece_id}/receive", "/pieces/{piece_id}/start",
               "/pieces/{piece_id}/complete", "/pieces/{piece_id}/send",
               "/pieces/{piece_id}/hold", "/pieces/{piece_id}/release",
               "/pieces/{piece_id}/rework", "/pieces/{piece_id}/notes",
               "/pieces/{piece_id}/steps", "/pieces/{piece_id}/steps/order",
               "/steps/{run_id}/skip", "/steps/{run_id}"],
    "transfers": ["/transfers", "/transfers/{transfer_id}", "/transfers/{transfer_id}/receive"],
}


def test_openapi_document_lists_every_router(db):
    response = Client().get(API + "/openapi.json")  # public: integrators read it first
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    doc = json.loads(response.content)
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "Établi API"
    paths = doc["paths"]
    tags = {op.get("tags", [None])[0] for item in paths.values() for op in item.values()}
    assert set(ROUTERS) <= tags
    for router, expected in ROUTERS.items():
        for path in expected:
            assert API + path in paths, (router, path)
    assert "BearerAuth" in json.dumps(doc["components"]["securitySchemes"]) \
        or any(s.get("scheme") == "bearer" for s in doc["components"]["securitySchemes"]
               .values())
    # Every operation is secured: the token or the session.
    for item in paths.values():
        for operation in item.values():
            assert operation.get("security"), operation.get("operationId")


def test_docs_page(db):
    response = Client().get(API + "/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/nothing", "/pieces/1/fly", "/v2/orders", ""])
def test_unknown_api_address_is_json_404(house_setup, api, method, path):
    # With or without credentials the answer is the same.
    for client in (Client(), api(house_setup.admin).client):
        url = (API + path) if path != "/v2/orders" else "/api/v2/orders"
        kwargs = {"content_type": "application/json"} if method != "get" else {}
        response = getattr(client, method)(url, **kwargs)
        assert_error(response, 404, "not_found")


def test_wrong_method_is_405(house_setup, api):
    response = api(house_setup.admin).client.delete(API + "/orders")
    assert_error(response, 405, "method_not_allowed")
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert "DELETE is not allowed" in response.json()["message"]
    assert ok(api(house_setup.admin).get("/orders"))["count"] == 0


# ---------------------------------------------------------------------------------------------
# input the schemas let through but the database would refuse (found by tests/test_api_fuzz.py)


@pytest.mark.parametrize("path,params", [
    ("/pieces", {"q": "a\x00b"}),
    ("/pieces", {"step": "\x00"}),
    ("/clients", {"q": "\x00"}),
    ("/transfers", {"status": "\x00"}),
    ("/pieces/by-serial/P\x00", {}),
])
def test_nul_characters_in_the_address_are_422(house_setup, api, path, params):
    body = assert_error(api(house_setup.admin).get(path, params), 422, "invalid_input")
    assert body["details"]["errors"][0]["field"] == "request"


@pytest.mark.parametrize("path", ["/pieces?q=a&q=b", "/stone-lots?q=1&q=2&limit=5",
                                  "/pieces?limit=5&limit=6"])
def test_a_query_parameter_given_twice_is_422(house_setup, api, path):
    body = assert_error(api(house_setup.admin).get(path, {}), 422, "invalid_input")
    assert body["details"]["errors"][0]["field"] == "query"
    assert "more than once" in body["details"]["errors"][0]["message"]


def test_nul_characters_in_a_body_are_422_and_write_nothing(house_setup, api):
    from etabli.clients.models import Client
    from etabli.orders.models import Order

    h = house_setup
    me = api(h.sales)
    clients, orders = Client.objects.count(), Order.objects.count()
    body = assert_error(me.post("/clients", {"code": "nul", "name": "a\x00b"}), 422,
                        "invalid_input")
    assert body["details"]["errors"] == [{"field": "body", "message":
                                          "NUL characters (\\u0000) are not allowed."}]
    assert_error(me.post("/orders", {"client_id": h.client.pk,
                                     "lines": [{"description": "x", "stones": "\x00"}]}),
                 422, "invalid_input")
    assert_error(me.post("/orders", {"client_id": h.client.pk, "\x00": 1}), 422,
                 "invalid_input")
    assert (Client.objects.count(), Order.objects.count()) == (clients, orders)


@pytest.mark.parametrize("raw", ["[null, null]", "[]", "\"name\"", "5", "null", "true"])
def test_a_body_that_is_not_a_json_object_is_422(house_setup, api, raw):
    from etabli.accounts.models import ApiToken

    me = api(house_setup.sales)
    before = ApiToken.objects.count()
    body = assert_error(me.post("/tokens", raw=raw), 422, "invalid_input")
    assert body["details"]["errors"][0]["field"] == "body"
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize("path,params", [
    ("/pieces", {"client_id": -(10**21)}),
    ("/pieces", {"order_id": 10**30}),
    ("/orders", {"client_id": 10**30}),
    ("/transfers", {"to_workshop_id": 10**30}),
    ("/pieces/100000000000000000000000", {}),
])
def test_integers_past_64_bits_are_not_a_server_error(house_setup, api, path, params):
    response = api(house_setup.admin).get(path, params)
    # SQLite cannot bind them (400); PostgreSQL compares them and finds nothing.
    assert response.status_code in (200, 400, 404), response.content
    if response.status_code == 200:
        assert response.json()["count"] == 0
    else:
        assert_error(response, response.status_code)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"limit": 10**20},
                                    {"offset": -1}, {"offset": 10**20}])
def test_pagination_bounds(house_setup, api, params):
    body = assert_error(api(house_setup.admin).get("/pieces", params), 422, "invalid_input")
    assert set(params) <= {e["field"] for e in body["details"]["errors"]}


def test_pagination_at_its_bounds(house_setup, api):
    me = api(house_setup.admin)
    assert ok(me.get("/workshops", {"limit": 1000, "offset": 1_000_000_000}))["items"] == []
    assert len(ok(me.get("/workshops", {"limit": 1}))["items"]) == 1


@pytest.mark.parametrize("path,payload,field", [
    ("/workshops", {"code": "w9", "name": "W9", "email": "x" * 255}, "email"),
    ("/users", {"username": "u9", "password": "a-long-passphrase", "role": "sales",
                "first_name": "x" * 151}, "first_name"),
    ("/users", {"username": "u9", "password": "a-long-passphrase", "role": "sales",
                "email": "x" * 255}, "email"),
])
def test_text_longer_than_its_column_is_422(house_setup, api, path, payload, field):
    response = api(house_setup.admin).post(path, payload)
    body = assert_error(response, 422, "invalid_input")
    assert field in {e["field"] for e in body["details"]["errors"]}


def test_workshop_patch_email_longer_than_its_column_is_422(house_setup, api):
    h = house_setup
    response = api(h.manager).patch(f"/workshops/{h.caster.pk}", {"email": "x" * 255})
    assert_error(response, 422, "invalid_input")
