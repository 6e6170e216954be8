"""Accounts API: authentication (tokens and sessions), /me, tokens, users."""

from __future__ import annotations

import pytest
from django.test import Client

from etabli.accounts.models import ApiToken, Role, User
from etabli.accounts.services import token_create
from etabli.core.models import AuditEntry
from tests.apiclient import API, ApiClient, assert_error, error_fields, ok
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------------------------------------
# authentication


@pytest.mark.parametrize("method,path", [("get", "/me"), ("get", "/pieces"), ("get", "/orders"),
                                         ("post", "/orders"), ("post", "/tokens"),
                                         ("get", "/transfers")])
def test_no_credentials_is_401_json(house_setup, method, path):
    anonymous = ApiClient(None)
    response = getattr(anonymous, method)(path)
    body = assert_error(response, 401, "not_authenticated")
    assert "Bearer" in body["message"]


@pytest.mark.parametrize("key", ["etb_not-a-real-key", "nope", "", "etb_" + "x" * 300])
def test_bad_token_is_401(house_setup, key):
    response = Client().get(API + "/me", headers={"Authorization": f"Bearer {key}"})
    assert_error(response, 401, "not_authenticated")


def test_other_authorization_schemes_are_401(house_setup):
    _token, key = token_create(actor=house_setup.sales, user=house_setup.sales)
    for header in (f"Token {key}", f"Basic {key}", key):
        response = Client().get(API + "/me", headers={"Authorization": header})
        assert_error(response, 401, "not_authenticated")


def test_revoked_token_is_401(house_setup):
    h = house_setup
    token, key = token_create(actor=h.sales, user=h.sales)
    me = ApiClient(h.sales, key=key)
    assert ok(me.get("/me"))["username"] == "sales"
    ok(me.delete(f"/tokens/{token.pk}"))
    assert_error(me.get("/me"), 401, "not_authenticated")


def test_token_of_deactivated_user_is_401(house_setup):
    h = house_setup
    me = ApiClient(h.designer)
    assert me.get("/me").status_code == 200
    User.objects.filter(pk=h.designer.pk).update(is_active=False)
    assert_error(me.get("/me"), 401)


def test_token_use_is_recorded(house_setup):
    token, key = token_create(actor=house_setup.sales, user=house_setup.sales)
    assert token.last_used_at is None
    ok(ApiClient(house_setup.sales, key=key).get("/me"))
    token.refresh_from_db()
    assert token.last_used_at is not None


# ---------------------------------------------------------------------------------------------
# /me


def test_me_for_each_kind_of_user(house_setup, api):
    h = house_setup
    me = ok(api(h.caster_member).get("/me"))
    assert me["username"] == "caster1"
    assert me["role"] == Role.WORKSHOP and me["role_label"] == "Workshop member"
    assert me["workshops"] == [{"id": h.caster.pk, "code": "caster", "name": "Fonderie Dupont"}]
    assert me["client"] is None
    assert set(me) == {"id", "username", "first_name", "last_name", "email", "role",
                       "role_label", "language", "workshops", "client"}

    me = ok(api(h.client_contact).get("/me"))
    assert me["role"] == Role.CLIENT
    assert me["client"] == {"id": h.client.pk, "code": "bijouterie-roux",
                            "name": "Bijouterie Roux"}
    assert me["workshops"] == []

    me = ok(api(h.admin).get("/me"))
    assert me["role"] == Role.ADMIN and me["workshops"] == [] and me["client"] is None


# ---------------------------------------------------------------------------------------------
# session authentication and CSRF


def _csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(API + "/docs")  # the interactive docs page sets the csrftoken cookie
    return client, client.cookies["csrftoken"].value


def test_session_get_needs_no_csrf_token(house_setup):
    client, _token = _csrf_client(house_setup.sales)
    assert ok(client.get(API + "/me"))["username"] == "sales"


def test_session_post_without_csrf_header_is_json_403(house_setup):
    client, _token = _csrf_client(house_setup.sales)
    tokens_before, audit_before = ApiToken.objects.count(), AuditEntry.objects.count()
    response = client.post(API + "/tokens", {"name": "browser"}, content_type="application/json")
    body = assert_error(response, 403, "forbidden")
    assert "CSRF" in body["message"]
    assert ApiToken.objects.count() == tokens_before
    assert AuditEntry.objects.count() == audit_before


def test_session_post_with_csrf_header_succeeds(house_setup):
    client, csrf = _csrf_client(house_setup.sales)
    response = client.post(API + "/tokens", {"name": "browser"}, content_type="application/json",
                           headers={"X-CSRFToken": csrf})
    created = ok(response, 201)
    assert created["user"] == "sales" and created["key"].startswith("etb_")


def test_session_with_password_login(house_setup):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="designer", password=PASSWORD)
    assert ok(client.get(API + "/me"))["role"] == Role.DESIGNER
    client.logout()
    assert_error(client.get(API + "/me"), 401)


def test_token_requests_need_no_csrf_token(house_setup):
    """A Bearer token is not a cookie a browser sends on its own: no CSRF check."""
    _token, key = token_create(actor=house_setup.sales, user=house_setup.sales)
    client = Client(enforce_csrf_checks=True)
    response = client.post(API + "/tokens", {"name": "ci"}, content_type="application/json",
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201


# ---------------------------------------------------------------------------------------------
# tokens


def test_token_create_shows_key_once_and_list_shows_prefix_only(house_setup, api):
    h = house_setup
    me = api(h.setter_member)
    created = ok(me.post("/tokens", {"name": "bench phone"}), 201)
    assert set(created) == {"id", "name", "prefix", "user", "created_at", "last_used_at",
                            "revoked_at", "key"}
    key = created["key"]
    assert key.startswith("etb_") and len(key) > 30
    assert created["prefix"] == key[:12]
    assert created["name"] == "bench phone" and created["user"] == "setter1"
    assert created["revoked_at"] is None
    # Only the hash is stored.
    row = ApiToken.objects.get(pk=created["id"])
    assert key not in (row.key_hash, row.prefix)

    listed = ok(me.get("/tokens"))
    assert set(listed) == {"items", "count"}
    entry = next(t for t in listed["items"] if t["id"] == created["id"])
    assert "key" not in entry and entry["prefix"] == key[:12]
    assert all("key" not in t and "key_hash" not in t for t in listed["items"])
    # The new key works.
    assert ok(ApiClient(key=key).get("/me"))["username"] == "setter1"


def test_token_default_name(house_setup, api):
    assert ok(api(house_setup.sales).post("/tokens", {}), 201)["name"] == "api"


def test_token_list_is_own_for_users_and_all_for_admin(house_setup, api):
    h = house_setup
    for user in (h.sales, h.designer, h.caster_member):
        token_create(actor=user, user=user, name="extra")
    sales = ok(api(h.sales).get("/tokens"))
    assert {t["user"] for t in sales["items"]} == {"sales"}
    assert sales["count"] == 2  # the api fixture's token and "extra"
    admin = ok(api(h.admin).get("/tokens", {"limit": 100}))
    assert {"sales", "designer", "caster1", "admin"} <= {t["user"] for t in admin["items"]}
    assert admin["count"] == ApiToken.objects.count()


def test_token_list_paginates_newest_first(house_setup, api):
    h = house_setup
    me = api(h.quality)
    for i in range(5):
        token_create(actor=h.quality, user=h.quality, name=f"t{i}")
    full = ok(me.get("/tokens"))
    assert full["count"] == 6
    ids = [t["id"] for t in full["items"]]
    assert ids == sorted(ids, reverse=True)
    page1 = ok(me.get("/tokens", {"limit": 2, "offset": 0}))
    page2 = ok(me.get("/tokens", {"limit": 2, "offset": 2}))
    page4 = ok(me.get("/tokens", {"limit": 2, "offset": 6}))
    assert page1["count"] == page2["count"] == 6
    assert [t["id"] for t in page1["items"] + page2["items"]] == ids[:4]
    assert page4["items"] == []


def test_non_admin_cannot_create_a_token_for_someone_else(house_setup, api):
    h = house_setup
    clients = [api(user) for user in (h.sales, h.manager, h.caster_member)]
    before, audit_before = ApiToken.objects.count(), AuditEntry.objects.count()
    for client in clients:
        response = client.post("/tokens", {"username": "setter1"})
        assert_error(response, 403, "forbidden")
    assert ApiToken.objects.count() == before
    assert AuditEntry.objects.count() == audit_before


def test_naming_yourself_is_allowed(house_setup, api):
    assert ok(api(house_setup.sales).post("/tokens", {"username": "sales"}), 201)["user"] == "sales"


def test_admin_creates_a_token_for_someone_else(house_setup, api):
    h = house_setup
    created = ok(api(h.admin).post("/tokens", {"username": "polisher1", "name": "bench"}), 201)
    assert created["user"] == "polisher1"
    assert ok(ApiClient(key=created["key"]).get("/me"))["username"] == "polisher1"
    entry = AuditEntry.objects.filter(action="token.create").order_by("-id").first()
    assert entry.actor_id == h.admin.pk and entry.after["user"] == "polisher1"


def test_admin_token_for_unknown_user_is_404(house_setup, api):
    admin = api(house_setup.admin)
    before = ApiToken.objects.count()
    assert_error(admin.post("/tokens", {"username": "ghost"}), 404, "not_found")
    assert ApiToken.objects.count() == before


def test_token_create_bad_input(house_setup, api):
    me = api(house_setup.sales)
    before = ApiToken.objects.count()
    assert_error(me.post("/tokens", raw="{bad"), 400, "bad_request")
    assert "name" in error_fields(me.post("/tokens", {"name": 12}))
    assert "name" in error_fields(me.post("/tokens", {"name": ""}))
    assert "name" in error_fields(me.post("/tokens", {"name": "x" * 81}))
    assert "username" in error_fields(me.post("/tokens", {"username": ["sales"]}))
    assert ApiToken.objects.count() == before


def test_revoke_token(house_setup, api):
    h = house_setup
    me = api(h.sales)
    token, key = token_create(actor=h.sales, user=h.sales, name="old")
    revoked = ok(me.delete(f"/tokens/{token.pk}"))
    assert revoked["id"] == token.pk and revoked["revoked_at"] is not None
    assert "key" not in revoked
    entry = AuditEntry.objects.filter(action="token.revoke").get()
    assert entry.before == {"revoked_at": None} and entry.after["revoked_at"]
    # Twice is a conflict, not a silent no-op.
    assert_error(me.delete(f"/tokens/{token.pk}"), 409, "conflict")
    assert_error(ApiClient(key=key).get("/me"), 401)


def test_revoke_someone_elses_token(house_setup, api):
    h = house_setup
    token, _key = token_create(actor=h.designer, user=h.designer)
    assert_error(api(h.sales).delete(f"/tokens/{token.pk}"), 404, "not_found")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    ok(api(h.admin).delete(f"/tokens/{token.pk}"))
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_revoke_unknown_token_is_404(house_setup, api):
    assert_error(api(house_setup.admin).delete("/tokens/999999"), 404, "not_found")
    assert_error(api(house_setup.admin).delete("/tokens/abc"), 422, "invalid_input")


# ---------------------------------------------------------------------------------------------
# users


def test_admin_creates_users(house_setup, api):
    h = house_setup
    admin = api(h.admin)
    created = ok(admin.post("/users", {"username": "caster2", "password": "a-long-passphrase",
                                       "role": "workshop", "workshops": ["caster"],
                                       "first_name": "Luc", "language": "fr"}), 201)
    assert created["role"] == "workshop" and created["language"] == "fr"
    assert [w["code"] for w in created["workshops"]] == ["caster"]
    user = User.objects.get(username="caster2")
    assert user.check_password("a-long-passphrase")
    assert "password" not in created

    created = ok(admin.post("/users", {"username": "roux2", "password": "a-long-passphrase",
                                       "role": "client", "client": "bijouterie-roux"}), 201)
    assert created["client"]["code"] == "bijouterie-roux"
    entry = AuditEntry.objects.filter(action="user.create").order_by("-id").first()
    assert entry.actor_id == h.admin.pk and entry.after["client"] == "bijouterie-roux"


def test_only_admin_creates_users(house_setup, api):
    h = house_setup
    clients = [api(user) for user in (h.manager, h.sales, h.caster_member, h.client_contact)]
    before, audit_before = User.objects.count(), AuditEntry.objects.count()
    for client in clients:
        response = client.post("/users", {"username": "intruder",
                                          "password": "a-long-passphrase", "role": "admin"})
        assert_error(response, 403, "forbidden")
    assert User.objects.count() == before
    assert AuditEntry.objects.count() == audit_before


def test_user_create_bad_input(house_setup, api):
    admin = api(house_setup.admin)
    users, audit_before = User.objects.count(), AuditEntry.objects.count()
    good = {"username": "newbie", "password": "a-long-passphrase", "role": "sales"}
    assert_error(admin.post("/users", raw="{bad"), 400, "bad_request")
    assert "role" in error_fields(admin.post("/users", good | {"role": "king"}))
    assert "password" in error_fields(admin.post("/users", good | {"password": "short"}))
    assert {"username", "password", "role"} <= error_fields(admin.post("/users", {}))
    assert "language" in error_fields(admin.post("/users", good | {"language": "de"}))
    assert "workshops" in error_fields(admin.post("/users", good | {"workshops": "caster"}))
    # Well-formed but refused by the service.
    assert_error(admin.post("/users", good | {"role": "workshop"}), 400, "invalid")
    assert_error(admin.post("/users", good | {"role": "workshop", "workshops": ["nowhere"]}),
                 404, "not_found")
    assert_error(admin.post("/users", good | {"role": "client", "client": "nobody"}),
                 404, "not_found")
    assert_error(admin.post("/users", good | {"workshops": ["caster"]}), 400, "invalid")
    assert_error(admin.post("/users", good | {"username": "SALES"}), 409, "conflict")
    assert_error(admin.post("/users", good | {"password": "password"}), 400, "invalid")
    assert User.objects.count() == users
    assert AuditEntry.objects.count() == audit_before
