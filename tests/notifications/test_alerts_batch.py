"""Many alerts told at once (`alerts_opened`, what a detection pass calls): the same
notifications, e-mails and webhook deliveries as telling each alert alone, each person by
their own choices and only of their own workshop's pieces, in a number of queries that does
not grow with the number of alerts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from etabli.accounts.models import Role, User
from etabli.alerts.models import Alert
from etabli.notifications import services
from etabli.notifications.models import Notification, OutgoingEmail, WebhookDelivery
from tests.factories import make_user
from tests.notifications.conftest import with_email

pytestmark = pytest.mark.django_db


def new_alert(n: int, *, kind="step_overdue", piece=None, order=None, workshop=None, role="",
              assignee=None, severity="warning") -> Alert:
    """An alert stored as detection stores it, not yet told to anyone."""
    now = timezone.now()
    return Alert.objects.create(
        kind=kind, severity=severity, cause_key=f"batch:{n}", piece=piece,
        order=order or (piece.order if piece else None), workshop=workshop, assignee=assignee,
        assigned_role=role, opened_at=now, updated_at=now,
        params={"serial": piece.serial if piece else "", "step": "setting", "days": n,
                "workshop": workshop.name if workshop else "", "due": "2026-01-01"})


def inactive(user: User) -> User:
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()
    return user


@pytest.fixture
def people(house_setup):
    """Owners with different choices, languages and workshops."""
    h = house_setup
    with_email(h.manager)                                   # defaults: inbox + e-mail at once
    french = with_email(make_user(Role.PRODUCTION_MANAGER, username="chef"), language="fr")
    services.preference_set(actor=french, event="alert_opened", inbox=True, email="digest")
    quiet = with_email(make_user(Role.PRODUCTION_MANAGER, username="quiet"))
    services.preference_set(actor=quiet, event="alert_opened", inbox=False, email="off")
    mail_only = with_email(make_user(Role.PRODUCTION_MANAGER, username="mailonly"))
    services.preference_set(actor=mail_only, event="alert_opened", inbox=False,
                            email="immediate")
    inactive(make_user(Role.PRODUCTION_MANAGER, username="gone"))
    with_email(h.setter_member, language="fr")
    second_setter = make_user(Role.WORKSHOP, username="setter2", workshops=[h.setter])
    both = make_user(Role.WORKSHOP, username="both", workshops=[h.setter, h.caster])
    return h, french, quiet, mail_only, second_setter, both


@pytest.fixture
def batch(people):
    h, french, quiet, mail_only, second_setter, both = people
    piece, other = h.launched_piece(), h.launched_piece()
    away = inactive(make_user(Role.QUALITY, username="away"))
    alerts = [
        new_alert(1, piece=piece, workshop=h.setter, role=Role.PRODUCTION_MANAGER),
        new_alert(2, piece=piece, workshop=h.setter, role=Role.WORKSHOP),
        new_alert(3, piece=other, workshop=h.caster, role=Role.WORKSHOP, severity="critical"),
        new_alert(4, kind="qc_failure", piece=other, workshop=h.caster, role=Role.WORKSHOP),
        new_alert(5, kind="qc_failure", piece=piece, assignee=h.quality),
        new_alert(6, piece=piece, workshop=h.setter, assignee=h.caster_member),
        new_alert(7, piece=other, workshop=h.caster, assignee=both),
        new_alert(8, kind="qc_failure", piece=piece, assignee=away),
        new_alert(9, kind="order_at_risk", order=other.order, role=Role.SALES),
        new_alert(10, kind="transfer_not_received", workshop=h.polisher,
                  role=Role.PRODUCTION_MANAGER),
        new_alert(11, piece=piece, workshop=h.setter, role=Role.CLIENT),
        new_alert(12, piece=piece, workshop=h.setter, role=""),
    ]
    hooks = [services.webhook_create(actor=h.admin, name="A", url="https://a.example/",
                                     events=["alert_opened"]),
             services.webhook_create(actor=h.admin, name="B", url="https://b.example/",
                                     events=["pieces_sent", "alert_opened"])]
    services.webhook_create(actor=h.admin, name="P", url="https://p.example/",
                            events=["pieces_sent"])
    services.webhook_create(actor=h.admin, name="Off", url="https://o.example/",
                            events=["alert_opened"], active=False)
    return h, alerts, hooks, piece, other


def told() -> dict:
    """Everything stored for the alerts, without ids and times."""
    notes = sorted(
        (n.alert_id, n.recipient.username, n.in_inbox, n.url, n.piece_id, n.order_id,
         n.workshop_id, tuple(sorted(n.params.items())))
        for n in Notification.objects.filter(kind="alert_opened").select_related("recipient"))
    emails = sorted(
        (e.notification.alert_id, e.recipient.username, e.to_address, e.kind, e.status)
        for e in OutgoingEmail.objects.select_related("notification", "recipient"))
    hooks = sorted(
        (d.subscription.name, d.event, d.status, d.payload["event"], d.payload["id"] == str(d.uid),
         tuple(sorted((k, str(v)) for k, v in d.payload["data"].items())))
        for d in WebhookDelivery.objects.select_related("subscription"))
    return {"notes": notes, "emails": emails, "hooks": hooks}


def clear() -> None:
    Notification.objects.all().delete()
    OutgoingEmail.objects.all().delete()
    WebhookDelivery.objects.all().delete()


def test_a_batch_tells_each_owner_by_their_own_choices(batch, people):
    h, alerts, hooks, piece, other = batch
    _h, french, quiet, mail_only, second_setter, both = people
    clear()
    notes = services.alerts_opened(alerts=alerts)
    a = {i + 1: alert for i, alert in enumerate(alerts)}
    recipients = {}
    for n in Notification.objects.filter(kind="alert_opened"):
        recipients.setdefault(n.alert_id, set()).add(n.recipient.username)
    managers = {"manager", "chef", "mailonly"}          # not "quiet" (nothing), not "gone"
    assert recipients == {
        a[1].pk: managers,
        # The workshop role: the setter's members only (a member of two workshops too).
        a[2].pk: {"setter1", "setter2", "both"},
        a[3].pk: {"caster1", "both"},
        # qc_failure is not for workshops; an assignee of another workshop hears nothing; an
        # inactive assignee neither; nor client contacts; nor an alert without an owner.
        a[5].pk: {"quality"},
        a[7].pk: {"both"},
        a[9].pk: {"sales"},
        a[10].pk: managers,
    }
    assert len(notes) == sum(len(v) for v in recipients.values())
    note = Notification.objects.get(alert_id=a[1].pk, recipient=h.manager)
    assert note.in_inbox and note.url == f"/alerts/{a[1].pk}/"
    assert (note.piece_id, note.order_id, note.workshop_id) == (piece.pk, piece.order_id,
                                                                h.setter.pk)
    assert note.params == {"alert_kind": "step_overdue", "severity": "warning",
                           "subject": piece.serial}
    assert Notification.objects.get(alert_id=a[9].pk).params["subject"] == \
        other.order.reference
    assert Notification.objects.filter(alert_id=a[10].pk).first().params["subject"] == \
        "transfer_not_received"
    assert not Notification.objects.get(alert_id=a[1].pk, recipient=mail_only).in_inbox
    # E-mails at once: the manager and the e-mail-only manager (the French manager chose the
    # digest; the setter has an address, the others none).
    emails = {(e.notification.alert_id, e.recipient.username)
              for e in OutgoingEmail.objects.select_related("notification", "recipient")}
    assert emails == {(a[1].pk, "manager"), (a[1].pk, "mailonly"), (a[10].pk, "manager"),
                      (a[10].pk, "mailonly"), (a[2].pk, "setter1")}
    # One delivery per alert and active subscription listening to alert_opened.
    deliveries = WebhookDelivery.objects.all()
    assert deliveries.count() == len(alerts) * len(hooks)
    data = deliveries.filter(subscription=hooks[0], payload__data__alert_id=a[3].pk).get()
    assert data.payload["data"]["piece"] == other.serial
    assert data.payload["data"]["workshop"] == "caster"
    assert data.payload["data"]["severity"] == "critical"
    assert data.payload["data"]["order"] == other.order.reference
    assert data.payload["data"]["title"] == f"Step overdue: {other.serial}"


def test_a_batch_stores_what_telling_each_alert_alone_stores(batch):
    _h, alerts, _hooks, _piece, _other = batch
    clear()
    for alert in alerts:
        services.alert_opened(alert=alert)
    one_by_one = told()
    clear()
    services.alerts_opened(alerts=alerts)
    assert told() == one_by_one
    assert one_by_one["notes"] and one_by_one["emails"] and one_by_one["hooks"]


def test_nothing_to_tell(house_setup):
    with CaptureQueriesContext(connection) as queries:
        assert services.alerts_opened(alerts=[]) == []
    assert [q for q in queries.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))] == []


def _queries(alerts) -> int:
    with CaptureQueriesContext(connection) as queries:
        services.alerts_opened(alerts=alerts)
    return len(queries.captured_queries)


def test_the_queries_do_not_grow_with_the_number_of_alerts(people):
    h, *_ = people
    services.webhook_create(actor=h.admin, name="A", url="https://a.example/",
                            events=["alert_opened"])
    piece = h.launched_piece()
    kinds = [(Role.PRODUCTION_MANAGER, h.setter), (Role.WORKSHOP, h.setter),
             (Role.WORKSHOP, h.caster)]

    def some(start: int, count: int) -> list[Alert]:
        return [new_alert(start + i, piece=piece, role=kinds[i % 3][0],
                          workshop=kinds[i % 3][1]) for i in range(count)]

    few, many = _queries(some(100, 3)), _queries(some(200, 20))
    assert few == many
    assert many <= 12


def test_a_batch_reaches_the_alerts_owners_as_the_alerts_app_names_them(batch):
    """The batch resolves owners itself (in two queries); it must name the same people as
    `alerts.selectors.owners`, less client contacts and members of other workshops."""
    from etabli.alerts import selectors

    _h, alerts, _hooks, _piece, _other = batch
    for alert, told in zip(alerts, services._alert_audience(alerts), strict=True):
        expected = [u.pk for u in selectors.owners(alert)
                    if u.role != Role.CLIENT and (u.role != Role.WORKSHOP
                                                  or alert.workshop_id in u.workshop_ids())]
        assert [u.pk for u in told] == expected, alert.cause_key
