"""The daily digest: once a day, from the configured hour, only for those who chose it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from etabli.accounts.models import Role
from etabli.notifications import delivery, services
from etabli.notifications.models import DigestLog, Notification, OutgoingEmail
from tests.notifications.conftest import make_alert, with_email

pytestmark = pytest.mark.django_db


def at(hour: int, day: int = 0) -> dt.datetime:
    tz = zoneinfo.ZoneInfo("Europe/Paris")
    today = timezone.localtime(timezone.now(), tz).date() + dt.timedelta(days=day)
    return dt.datetime.combine(today, dt.time(hour, 5), tzinfo=tz)


@pytest.fixture
def digest_people(house_setup, settings):
    settings.TIME_ZONE = "Europe/Paris"
    settings.ETABLI_DIGEST_HOUR = 8
    h = house_setup
    with_email(h.manager, "fr")
    with_email(h.admin)
    services.preference_set(actor=h.manager, event="alert_opened", inbox=True, email="digest")
    return h


def test_nothing_before_the_digest_hour(digest_people):
    make_alert(digest_people, role=Role.PRODUCTION_MANAGER)
    assert delivery.digest_run(now=at(7))["queued"] == 0
    assert not DigestLog.objects.exists()


def test_one_digest_a_day_to_those_who_chose_it(digest_people, smtp_server):
    h = digest_people
    alert = make_alert(h, role=Role.PRODUCTION_MANAGER, serial="P26-999999")
    make_alert(h, role=Role.ADMIN)
    # The admin chose e-mails at once: theirs went already, they get no digest.
    assert delivery.digest_run(now=at(9))["queued"] == 1
    assert delivery.digest_run(now=at(10))["queued"] == 0  # once a day
    mail = OutgoingEmail.objects.get(kind="digest")
    assert mail.recipient == h.manager
    assert mail.params["alert_ids"] == [alert.pk]
    assert len(mail.params["notification_ids"]) == 1
    delivery.deliver_emails(now=at(9))
    [message] = smtp_server.to(h.manager.email)
    text = message.get_body().get_content()
    assert "P26-999999" in text
    assert "/inbox/" in text
    assert DigestLog.objects.get(user=h.manager).items == 2
    # The next day, with nothing new: no e-mail (the day is still recorded).
    Notification.objects.update(read_at=timezone.now())
    assert delivery.digest_run(now=at(9, day=2))["queued"] == 0
    assert DigestLog.objects.filter(user=h.manager).count() == 2


def test_read_notifications_are_left_out(digest_people):
    h = digest_people
    services.preference_set(actor=h.manager, event="alert_opened", inbox=True, email="digest")
    make_alert(h, role=Role.PRODUCTION_MANAGER)
    services.notifications_read_all(actor=h.manager)
    delivery.digest_run(now=at(9))
    mail = OutgoingEmail.objects.get(kind="digest")
    assert mail.params["notification_ids"] == []
    assert len(mail.params["alert_ids"]) == 1  # the alert is still open


def test_digest_hour_from_settings(settings):
    settings.ETABLI_DIGEST_HOUR = 18
    assert delivery.digest_hour() == 18
    settings.ETABLI_DIGEST_HOUR = "nonsense"
    assert delivery.digest_hour() == 7
    settings.ETABLI_DIGEST_HOUR = 30
    assert delivery.digest_hour() == 7


def test_the_jobs_are_registered():
    from etabli.core import jobs
    from etabli.notifications import jobs as notification_jobs

    assert jobs.REGISTRY["notifications.deliver"].every == dt.timedelta(seconds=15)
    assert "notifications.digest" in jobs.REGISTRY
    assert notification_jobs.deliver.call() == {
        "emails": {"sent": 0, "retry": 0, "failed": 0},
        "webhooks": {"sent": 0, "retry": 0, "failed": 0}}
