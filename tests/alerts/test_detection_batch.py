"""A pass that opens many alerts tells their owners in one batch: the queries do not grow
with the number of alerts, and each owner hears as their choices say."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from etabli.accounts.models import Role
from etabli.alerts.detection import run_detection
from etabli.alerts.models import AlertKind, AlertStatus
from etabli.notifications import services as notify
from etabli.notifications.models import Notification, OutgoingEmail, WebhookDelivery
from tests.alerts.conftest import alerts, later, set_rule
from tests.factories import make_user
from tests.notifications.conftest import with_email

K = AlertKind


def _due_days(piece) -> int:
    piece.refresh_from_db()
    return (piece.current_due - timezone.localdate()).days


def _pass(now) -> tuple[dict, int]:
    with CaptureQueriesContext(connection) as queries:
        result = run_detection(now=now)
    return result, len(queries.captured_queries)


def test_a_pass_opening_more_alerts_costs_no_more_queries(house_setup):
    h = house_setup
    with_email(h.manager)
    french = with_email(make_user(Role.PRODUCTION_MANAGER, username="chef"), language="fr")
    notify.preference_set(actor=french, event="alert_opened", inbox=True, email="digest")
    notify.webhook_create(actor=h.admin, name="ERP", url="https://erp.example/",
                          events=["alert_opened"])
    set_rule(K.ORDER_AT_RISK, enabled=False)  # one kind, so both passes take the same paths
    first = h.launched_piece()
    now = later(_due_days(first) + 2)
    result, few = _pass(now)
    assert result["opened"] == 1

    more = [h.launched_piece() for _ in range(5)]
    assert {_due_days(p) for p in more} == {_due_days(first)}
    result, many = _pass(now)
    assert result["opened"] == 5 and result["updated"] == result["resolved"] == 0
    assert many == few

    opened = alerts(K.STEP_OVERDUE, status=AlertStatus.OPEN)
    assert opened.count() == 6
    for alert in opened:
        notes = Notification.objects.filter(alert_id=alert.pk)
        assert {n.recipient_id for n in notes} == {h.manager.pk, french.pk}
        assert all(n.piece_id == alert.piece_id and n.in_inbox for n in notes)
        # An e-mail at once for the manager; the French manager chose the daily digest.
        assert [e.recipient_id for e in OutgoingEmail.objects.filter(
            notification__alert_id=alert.pk)] == [h.manager.pk]
        assert WebhookDelivery.objects.filter(payload__data__alert_id=alert.pk).count() == 1


def test_a_workshop_member_hears_only_of_their_own_workshops_pieces(house_setup):
    h = house_setup
    set_rule(K.STEP_OVERDUE, assigned_role=Role.WORKSHOP)
    set_rule(K.ORDER_AT_RISK, enabled=False)
    piece = h.launched_piece()
    h.walk(piece, to="setting")
    piece.refresh_from_db()
    at_house = h.launched_piece()
    days = max(_due_days(piece), _due_days(at_house)) + 30
    result = run_detection(now=later(days))
    assert result["opened"] == 2
    told = {(n.alert_id, n.recipient_id) for n in Notification.objects.filter(
        kind="alert_opened")}
    alert = alerts(K.STEP_OVERDUE, piece=piece).get()
    assert alert.workshop_id == piece.current_workshop_id
    members = set(piece.current_workshop.members.values_list("id", flat=True))
    assert members and told == {(alert.pk, m) for m in members}
