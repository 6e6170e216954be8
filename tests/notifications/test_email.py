"""E-mail through a real SMTP server (aiosmtpd), in each recipient's language, with retries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from etabli.accounts.models import Role
from etabli.notifications import delivery, services
from etabli.notifications.models import DeliveryStatus, OutgoingEmail
from tests.factories import make_user
from tests.notifications.conftest import make_alert, piece_sent_to_setter, with_email

pytestmark = pytest.mark.django_db


def test_a_piece_on_its_way_reaches_the_smtp_server(house_setup, smtp_server, settings):
    h = house_setup
    settings.ETABLI_PUBLIC_URL = "https://atelier.example"
    with_email(h.setter_member)
    piece = piece_sent_to_setter(h)
    assert delivery.deliver_emails() == {"sent": 1, "retry": 0, "failed": 0}
    [message] = smtp_server.to("setter1@example.test")
    assert message["Subject"].strip() == f"[{settings.ETABLI_HOUSE_NAME}] Piece " \
                                         f"{piece.serial} is on its way to you"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    text = message.get_body().get_content()
    assert "for Setting" in text and h.caster.name in text
    assert f"https://atelier.example/workshop/pieces/{piece.pk}/" in text
    mail = OutgoingEmail.objects.get()
    assert mail.status == DeliveryStatus.SENT and mail.attempts == 1 and mail.sent_at
    assert mail.subject == message["Subject"].strip()
    # Nothing is sent twice.
    assert delivery.deliver_emails() == {"sent": 0, "retry": 0, "failed": 0}
    assert len(smtp_server.messages) == 1


def test_each_person_reads_in_their_own_language(house_setup, smtp_server):
    h = house_setup
    french = with_email(make_user(Role.WORKSHOP, workshops=[h.setter]), "fr")
    english = with_email(h.setter_member, "en")
    piece_sent_to_setter(h)
    delivery.deliver_emails()
    [fr] = smtp_server.to(french.email)
    [en] = smtp_server.to(english.email)
    assert "Sertissage" in fr.get_body().get_content()
    assert "Setting" in en.get_body().get_content()
    assert "Sertissage" not in en.get_body().get_content()


def test_an_alert_email_in_french(house_setup, smtp_server):
    h = house_setup
    with_email(h.manager, "fr")
    piece = h.launched_piece()
    make_alert(h, piece=piece, role=Role.PRODUCTION_MANAGER, workshop=h.setter)
    delivery.deliver_emails()
    [message] = smtp_server.to(h.manager.email)
    from django.utils import translation

    from etabli.alerts.models import AlertKind
    with translation.override("fr"):
        label = str(AlertKind.STEP_OVERDUE.label)
    assert f"{label}: {piece.serial}" in message["Subject"]
    assert "/alerts/" in message.get_body().get_content()


def test_an_smtp_server_that_is_down_means_retries_then_failure(house_setup, no_smtp_server):
    h = house_setup
    with_email(h.setter_member)
    piece_sent_to_setter(h)
    now = timezone.now()
    assert delivery.deliver_emails(now=now) == {"sent": 0, "retry": 1, "failed": 0}
    mail = OutgoingEmail.objects.get()
    assert mail.status == DeliveryStatus.PENDING and mail.attempts == 1
    assert mail.next_attempt_at == now + dt.timedelta(minutes=1)
    assert "Connection" in mail.last_error or "refused" in mail.last_error.lower()
    # Not due yet: nothing is tried.
    assert delivery.deliver_emails(now=now + dt.timedelta(seconds=30))["retry"] == 0
    for attempt in range(2, delivery.EMAIL_MAX_ATTEMPTS + 1):
        mail.refresh_from_db()
        now = mail.next_attempt_at
        delivery.deliver_emails(now=now)
        mail.refresh_from_db()
        assert mail.attempts == attempt
        if attempt < delivery.EMAIL_MAX_ATTEMPTS:
            assert mail.next_attempt_at - now == delivery.backoff(attempt,
                                                                   delivery.EMAIL_FIRST_RETRY)
    assert mail.status == DeliveryStatus.FAILED and mail.next_attempt_at is None


def test_a_queued_email_is_sent_once_the_server_is_back(house_setup, no_smtp_server, settings):
    h = house_setup
    with_email(h.setter_member)
    piece_sent_to_setter(h)
    now = timezone.now()
    delivery.deliver_emails(now=now)
    from aiosmtpd.controller import Controller

    from tests.notifications.conftest import _Collect, free_port
    handler, port = _Collect(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_PORT = port
        assert delivery.deliver_emails(now=now + dt.timedelta(minutes=2))["sent"] == 1
    finally:
        controller.stop()
    assert len(handler.messages) == 1
    assert OutgoingEmail.objects.get().attempts == 2


def test_preferences_decide_who_gets_an_email(house_setup, smtp_server):
    h = house_setup
    with_email(h.manager)
    with_email(h.admin)
    services.preference_set(actor=h.manager, event="alert_opened", inbox=True, email="off")
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    make_alert(h, role=Role.ADMIN)
    delivery.deliver_emails()
    assert not smtp_server.to(h.manager.email)
    assert len(smtp_server.to(h.admin.email)) == 1
