"""The inbox, preferences and webhook pages: who sees what, query budgets, bad input."""

from __future__ import annotations

import pytest
from django.test import Client

from etabli.accounts.models import Role
from etabli.notifications import services
from etabli.notifications.models import Notification, Preference, WebhookSubscription
from tests.notifications.conftest import make_alert, piece_sent_to_setter, with_email

pytestmark = pytest.mark.django_db

WEBHOOK_ADMINS = ["admin", "manager"]
NOT_WEBHOOK_ADMINS = ["sales", "designer", "quality", "logistics", "setter_member",
                      "client_contact"]


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_inbox_shows_my_notifications_and_the_unread_count(house_setup,
                                                           django_assert_max_num_queries):
    h = house_setup
    piece = h.launched_piece()
    for _ in range(12):
        make_alert(h, piece=piece, role=Role.PRODUCTION_MANAGER, workshop=h.caster)
    me = browser(h.manager)
    with django_assert_max_num_queries(10):
        page = me.get("/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count(f"Step overdue: {piece.serial}") == 12
    assert 'class="badge info unread-count"' in html and ">12</span>" in html
    # Another person's inbox is empty.
    other = browser(h.admin).get("/inbox/").content.decode()
    assert piece.serial not in other and "Nothing here." in other


def test_the_unread_count_is_in_every_pages_header(house_setup):
    h = house_setup
    piece_sent_to_setter(h)
    html = browser(h.setter_member).get("/workshop/").content.decode()
    assert 'id="inbox-link"' in html and ">1</span>" in html
    html = browser(h.polisher_member).get("/workshop/").content.decode()
    assert 'id="inbox-link"' in html and "unread-count" not in html


def test_mark_read_open_and_read_all(house_setup):
    h = house_setup
    piece = piece_sent_to_setter(h)
    make_alert(h, role=Role.WORKSHOP, workshop=h.setter)
    first, second = Notification.objects.filter(recipient=h.setter_member).order_by("id")
    me = browser(h.setter_member)
    response = me.post(f"/inbox/{first.pk}/open/")
    assert response.status_code == 302 and response["Location"] == \
        f"/workshop/pieces/{piece.pk}/"
    first.refresh_from_db()
    assert first.read_at is not None
    row = me.post(f"/inbox/{second.pk}/read/", headers={"HX-Request": "true"})
    assert row.status_code == 200 and f'id="notification-{second.pk}"' in row.content.decode()
    second.refresh_from_db()
    assert second.read_at is not None
    Notification.objects.update(read_at=None)
    assert me.post("/inbox/read-all/").status_code == 302
    assert not Notification.objects.filter(recipient=h.setter_member, read_at=None).exists()
    # Unread filter and someone else's notification.
    assert me.get("/inbox/?unread=1").status_code == 200
    assert browser(h.caster_member).post(f"/inbox/{first.pk}/read/").status_code == 404
    assert browser(h.caster_member).post(f"/inbox/{first.pk}/open/").status_code == 404
    assert me.get(f"/inbox/{first.pk}/read/").status_code == 405


def test_inbox_needs_a_login():
    response = Client().get("/inbox/")
    assert response.status_code == 302 and "login" in response["Location"]


def test_preferences_page(house_setup, django_assert_max_num_queries):
    h = house_setup
    with_email(h.sales)
    me = browser(h.sales)
    with django_assert_max_num_queries(8):
        assert me.get("/inbox/preferences/").status_code == 200
    response = me.post("/inbox/preferences/", {
        "inbox_pieces_sent": "on", "email_pieces_sent": "off",
        "email_alert_opened": "digest"})
    assert response.status_code == 302
    prefs = {p.event: (p.inbox, p.email) for p in Preference.objects.filter(user=h.sales)}
    assert prefs == {"pieces_sent": (True, "off"), "alert_opened": (False, "digest")}


def test_preferences_page_shows_refusals(house_setup):
    me = browser(house_setup.designer)  # no e-mail address
    response = me.post("/inbox/preferences/", {"inbox_pieces_sent": "on",
                                               "email_pieces_sent": "bogus",
                                               "email_alert_opened": "immediate"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown e-mail choice" in html and "Add an e-mail address" in html


@pytest.mark.parametrize("who", WEBHOOK_ADMINS)
def test_webhook_pages(house_setup, who, django_assert_max_num_queries):
    h = house_setup
    me = browser(getattr(h, who))
    response = me.post("/inbox/webhooks/", {"name": "ERP", "url": "https://erp.example/h",
                                            "events": ["pieces_sent"], "active": "on"})
    assert response.status_code == 302
    sub = WebhookSubscription.objects.get()
    assert response["Location"] == f"/inbox/webhooks/{sub.pk}/"
    piece_sent_to_setter(h)
    for _ in range(3):
        piece_sent_to_setter(h)
    with django_assert_max_num_queries(10):
        html = me.get("/inbox/webhooks/").content.decode()
    assert "ERP" in html and "pieces_sent" in html
    with django_assert_max_num_queries(10):
        html = me.get(f"/inbox/webhooks/{sub.pk}/").content.decode()
    assert sub.secret in html and "Delivery log" in html
    assert me.get(f"/inbox/webhooks/{sub.pk}/?status=pending").status_code == 200
    old = sub.secret
    assert me.post(f"/inbox/webhooks/{sub.pk}/", {"action": "new_secret"}).status_code == 302
    sub.refresh_from_db()
    assert sub.secret != old
    assert me.post(f"/inbox/webhooks/{sub.pk}/", {"name": "ERP 2", "url": sub.url,
                                                  "events": ["alert_opened"]}).status_code == 302
    sub.refresh_from_db()
    assert (sub.name, sub.events, sub.active) == ("ERP 2", ["alert_opened"], False)
    assert me.post(f"/inbox/webhooks/{sub.pk}/", {"action": "delete"}).status_code == 302
    assert not WebhookSubscription.objects.exists()


def test_webhook_page_refuses_bad_urls(house_setup):
    me = browser(house_setup.admin)
    response = me.post("/inbox/webhooks/", {"name": "x", "url": "ftp://files.example/",
                                            "events": ["pieces_sent"]})
    assert response.status_code == 400
    assert "http:// or https://" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("who", NOT_WEBHOOK_ADMINS)
def test_webhook_pages_are_hidden_from_everybody_else(house_setup, who):
    h = house_setup
    sub = services.webhook_create(actor=h.admin, name="ERP", url="https://erp.example/",
                                  events=["pieces_sent"])
    me = browser(getattr(h, who))
    assert me.get("/inbox/webhooks/").status_code == 404
    assert me.get(f"/inbox/webhooks/{sub.pk}/").status_code == 404
    assert me.post(f"/inbox/webhooks/{sub.pk}/", {"action": "delete"}).status_code == 404
    assert "Webhooks" not in me.get("/inbox/").content.decode()
    assert WebhookSubscription.objects.exists()


def test_read_all_says_how_many_in_the_readers_language(house_setup):
    h = house_setup
    piece_sent_to_setter(h)
    make_alert(h, role=Role.WORKSHOP, workshop=h.setter)
    me = browser(h.setter_member)
    response = me.post("/inbox/read-all/", follow=True)
    assert "2 notifications marked read." in response.content.decode()
    Notification.objects.filter(recipient=h.setter_member).update(read_at=None)
    Notification.objects.filter(recipient=h.setter_member).order_by("id").first().delete()
    h.setter_member.language = "fr"
    h.setter_member.save(update_fields=["language"])
    response = me.post("/inbox/read-all/", follow=True)
    assert "1 notification marquée comme lue." in response.content.decode()
