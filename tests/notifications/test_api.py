"""/api/v1/notifications/...: my inbox, my preferences, the webhooks and their log."""

from __future__ import annotations

import pytest

from etabli.accounts.models import Role
from etabli.notifications import services
from etabli.notifications.models import Notification, WebhookSubscription
from tests.apiclient import assert_error, error_fields, ok
from tests.notifications.conftest import make_alert, piece_sent_to_setter, with_email

pytestmark = pytest.mark.django_db


def test_my_inbox(house_setup, api, django_assert_max_num_queries):
    h = house_setup
    piece = h.launched_piece()
    for _ in range(5):
        make_alert(h, piece=piece, role=Role.PRODUCTION_MANAGER)
    me = api(h.manager)
    me.get("/notifications/unread-count")  # the token is made and used once
    with django_assert_max_num_queries(8):
        body = ok(me.get("/notifications", {"limit": 3}))
    assert body["count"] == 5 and body["unread"] == 5 and len(body["items"]) == 3
    item = body["items"][0]
    assert item["title"] == f"Step overdue: {piece.serial}" and item["kind"] == "alert_opened"
    assert item["url"].startswith("/alerts/") and item["read_at"] is None
    assert ok(me.post(f"/notifications/{item['id']}/read"))["read_at"] is not None
    assert ok(me.get("/notifications/unread-count")) == {"unread": 4}
    assert ok(me.get("/notifications", {"unread": "true"}))["count"] == 4
    assert ok(me.post("/notifications/read-all")) == {"marked": 4}
    assert ok(me.get("/notifications/unread-count")) == {"unread": 0}


def test_french_reader_gets_french_words(house_setup, api):
    h = house_setup
    with_email(h.setter_member, "fr")
    piece_sent_to_setter(h)
    item = ok(api(h.setter_member).get("/notifications"))["items"][0]
    assert "Sertissage" in item["body"]


def test_nobody_reads_anothers_notifications(house_setup, api):
    h = house_setup
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    note = Notification.objects.get()
    for who in (h.admin, h.sales, h.setter_member, h.client_contact):
        assert ok(api(who).get("/notifications"))["count"] == 0
        assert_error(api(who).post(f"/notifications/{note.pk}/read"), 404, "not_found")
    assert_error(api(None).get("/notifications"), 401)


def test_preferences(house_setup, api):
    h = house_setup
    with_email(h.quality)
    me = api(h.quality)
    prefs = ok(me.get("/notifications/preferences"))
    assert {p["event"] for p in prefs} == {"pieces_sent", "alert_opened"}
    assert all(p["inbox"] and p["email"] == "immediate" for p in prefs)
    prefs = ok(me.put("/notifications/preferences", {"preferences": [
        {"event": "alert_opened", "inbox": False, "email": "digest"}]}))
    assert {"event": "alert_opened", "label": "Alerts for me", "inbox": False,
            "email": "digest"} in prefs


@pytest.mark.parametrize("body", [
    {"preferences": [{"event": "nope", "inbox": True, "email": "off"}]},
    {"preferences": [{"event": "alert_opened", "inbox": True, "email": "weekly"}]},
    {"preferences": [{"event": "alert_opened", "email": "off"}]},
    {"preferences": []},
    {},
])
def test_bad_preferences_are_422(house_setup, api, body):
    assert error_fields(api(house_setup.quality).put("/notifications/preferences", body))


def test_preferences_are_all_or_nothing(house_setup, api):
    me = api(house_setup.designer)  # no e-mail address: the second one is refused
    assert_error(me.put("/notifications/preferences", {"preferences": [
        {"event": "pieces_sent", "inbox": False, "email": "off"},
        {"event": "alert_opened", "inbox": True, "email": "immediate"}]}), 400, "invalid")
    assert all(p["inbox"] for p in ok(me.get("/notifications/preferences")))


@pytest.mark.parametrize("who", ["admin", "manager"])
def test_webhooks_api(house_setup, api, who):
    h = house_setup
    me = api(getattr(h, who))
    sub = ok(me.post("/notifications/webhooks", {
        "name": "ERP", "url": "https://erp.example/hook", "events": ["pieces_sent"]}), 201)
    assert len(sub["secret"]) == 64 and sub["active"]
    assert ok(me.get("/notifications/webhooks"))["count"] == 1
    assert ok(me.get(f"/notifications/webhooks/{sub['id']}"))["name"] == "ERP"
    changed = ok(me.patch(f"/notifications/webhooks/{sub['id']}", {"active": False,
                                                                  "new_secret": True}))
    assert not changed["active"] and changed["secret"] != sub["secret"]
    ok(me.patch(f"/notifications/webhooks/{sub['id']}", {"active": True}))
    piece_sent_to_setter(h)
    log = ok(me.get(f"/notifications/webhooks/{sub['id']}/deliveries"))
    assert log["count"] >= 1
    first = log["items"][0]
    assert first["status"] == "pending" and first["event"] == "pieces_sent"
    assert first["payload"]["event"] == "pieces_sent"
    assert ok(me.get(f"/notifications/webhooks/{sub['id']}/deliveries",
                     {"status": "sent"}))["count"] == 0
    assert_error(me.post(f"/notifications/webhooks/deliveries/{first['id']}/retry"), 409)
    assert ok(me.delete(f"/notifications/webhooks/{sub['id']}"), 204) is None
    assert_error(me.get(f"/notifications/webhooks/{sub['id']}"), 404)


@pytest.mark.parametrize("body,status", [
    ({"name": "x", "url": "ftp://files.example/", "events": ["pieces_sent"]}, 400),
    ({"name": "x", "url": "gopher://x", "events": ["pieces_sent"]}, 400),
    ({"name": "x", "url": "https://x.example/", "events": ["pieces_sent"],
      "secret": "short"}, 400),
    ({"name": "x", "url": "https://x.example/", "events": []}, 422),
    ({"name": "x", "url": "https://x.example/", "events": ["bogus"]}, 422),
    ({"name": "", "url": "https://x.example/", "events": ["pieces_sent"]}, 422),
    ({"url": "https://x.example/", "events": ["pieces_sent"]}, 422),
])
def test_bad_webhooks_are_refused(house_setup, api, body, status):
    response = api(house_setup.admin).post("/notifications/webhooks", body)
    assert_error(response, status)
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("who", ["sales", "designer", "quality", "logistics", "setter_member",
                                 "client_contact"])
def test_webhooks_are_hidden_from_everybody_else(house_setup, api, who):
    h = house_setup
    sub = services.webhook_create(actor=h.admin, name="ERP", url="https://erp.example/",
                                  events=["pieces_sent"])
    me = api(getattr(h, who))
    assert_error(me.get("/notifications/webhooks"), 404)
    assert_error(me.get(f"/notifications/webhooks/{sub.pk}"), 404)
    assert_error(me.post("/notifications/webhooks", {
        "name": "x", "url": "https://x.example/", "events": ["pieces_sent"]}), 404)
    assert_error(me.patch(f"/notifications/webhooks/{sub.pk}", {"active": False}), 404)
    assert_error(me.delete(f"/notifications/webhooks/{sub.pk}"), 404)
    assert_error(me.get(f"/notifications/webhooks/{sub.pk}/deliveries"), 404)
    sub.refresh_from_db()
    assert sub.active


def test_unknown_ids_are_404(house_setup, api):
    me = api(house_setup.admin)
    assert_error(me.post("/notifications/999999/read"), 404)
    assert_error(me.patch("/notifications/webhooks/999999", {"active": False}), 404)
    assert_error(me.post("/notifications/webhooks/deliveries/999999/retry"), 404)
