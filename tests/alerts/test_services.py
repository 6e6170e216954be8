"""What people do with alerts: who sees, acknowledges, resolves, assigns; the rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from etabli.alerts import selectors, services
from etabli.alerts.models import Alert, AlertRule, AlertStatus
from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.core.models import AuditEntry
from tests.alerts.conftest import make_alert


@pytest.fixture
def two_workshops(house_setup):
    h = house_setup
    return (make_alert(workshop=h.caster, role="production_manager"),
            make_alert(workshop=h.setter, role="logistics"),
            make_alert("qc_failure", role="quality"),
            make_alert("change_request_waiting", role="sales", assignee=h.sales))


def test_visibility_per_role(house_setup, two_workshops):
    h = house_setup
    caster_alert, setter_alert, qc, cr = two_workshops
    every = set(Alert.objects.values_list("pk", flat=True))

    def seen(user):
        return set(Alert.objects.visible_to(user).values_list("pk", flat=True))

    assert seen(h.manager) == seen(h.admin) == every
    assert seen(h.caster_member) == {caster_alert.pk}  # never another workshop's
    assert seen(h.setter_member) == {setter_alert.pk}
    assert seen(h.polisher_member) == set()
    assert seen(h.quality) == {qc.pk}
    assert seen(h.logistics) == {setter_alert.pk}
    assert seen(h.sales) == {cr.pk}
    assert seen(h.designer) == set()
    assert seen(h.client_contact) == set()
    # A workshop never sees quality or order-level kinds, even about its own workshop.
    hidden = make_alert("qc_failure", workshop=h.caster, role="quality")
    assert hidden.pk not in seen(h.caster_member)


def test_owners(house_setup, two_workshops):
    h = house_setup
    caster_alert, setter_alert, qc, cr = two_workshops
    assert selectors.owners(caster_alert) == [h.manager]
    assert selectors.owners(qc) == [h.quality]
    assert selectors.owners(cr) == [h.sales]
    to_workshop = make_alert(workshop=h.setter, role="workshop")
    assert selectors.owners(to_workshop) == [h.setter_member]
    assert selectors.owners(make_alert("order_at_risk", workshop=h.setter,
                                       role="workshop")) == []
    h.sales.is_active = False
    h.sales.save()
    assert selectors.owners(cr) == []


def test_acknowledge_then_resolve_with_a_comment(house_setup, two_workshops):
    h = house_setup
    _c, setter_alert, _q, _cr = two_workshops
    a = services.alert_acknowledge(actor=h.logistics, alert_id=setter_alert.pk,
                                   comment="Calling the courier.")
    assert a.status == AlertStatus.ACKNOWLEDGED and a.acknowledged_by == h.logistics
    with pytest.raises(TransitionNotAllowed):
        services.alert_acknowledge(actor=h.logistics, alert_id=a.pk)
    with pytest.raises(ValidationFailed):
        services.alert_resolve(actor=h.logistics, alert_id=a.pk, comment="   ")
    with pytest.raises(ValidationFailed):
        services.alert_resolve(actor=h.logistics, alert_id=a.pk, comment="x" * 2001)
    a = services.alert_resolve(actor=h.logistics, alert_id=a.pk, comment="Received today.")
    assert a.status == AlertStatus.RESOLVED and a.resolved_by == h.logistics
    assert not a.auto_resolved and a.resolution == "Received today."
    with pytest.raises(TransitionNotAllowed):
        services.alert_resolve(actor=h.manager, alert_id=a.pk, comment="again")
    actions = set(AuditEntry.objects.filter(object_id=str(a.pk), object_type="alerts.alert")
                  .values_list("action", flat=True))
    assert actions == {"alert.acknowledged", "alert.resolved"}


def test_guards_per_role(house_setup, two_workshops):
    h = house_setup
    caster_alert, setter_alert, qc, cr = two_workshops
    # Outside one's scope: not found (never "forbidden", which would say it exists).
    for user, alert in ((h.setter_member, caster_alert), (h.client_contact, qc),
                        (h.sales, qc), (h.designer, cr)):
        with pytest.raises(NotFound):
            services.alert_acknowledge(actor=user, alert_id=alert.pk)
    # A workshop member sees their workshop's alert but does not handle it.
    with pytest.raises(PermissionDenied):
        services.alert_resolve(actor=h.caster_member, alert_id=caster_alert.pk, comment="ok")
    with pytest.raises(NotFound):
        services.alert_acknowledge(actor=h.manager, alert_id=999999)
    with pytest.raises(NotFound):
        services.alert_acknowledge(actor=h.manager, alert_id=2**63)
    caster_alert.refresh_from_db()
    assert caster_alert.status == AlertStatus.OPEN


def test_assign_to_a_person_or_a_role(house_setup, two_workshops):
    h = house_setup
    caster_alert, _s, qc, _cr = two_workshops
    a = services.alert_assign(actor=h.manager, alert_id=caster_alert.pk,
                              assignee_id=h.logistics.pk)
    assert a.assignee == h.logistics and a.assigned_role == "logistics"
    assert a.pk in set(Alert.objects.visible_to(h.logistics).values_list("pk", flat=True))
    a = services.alert_assign(actor=h.admin, alert_id=a.pk, role="quality")
    assert a.assignee is None and a.assigned_role == "quality"
    with pytest.raises(PermissionDenied):
        services.alert_assign(actor=h.quality, alert_id=qc.pk, role="sales")
    with pytest.raises(NotFound):
        services.alert_assign(actor=h.sales, alert_id=qc.pk, role="sales")
    for bad in ({"assignee_id": h.client_contact.pk}, {"assignee_id": h.caster_member.pk},
                {"assignee_id": 999999}, {"role": "client"}, {"role": "nobody"}, {}):
        with pytest.raises(ValidationFailed):
            services.alert_assign(actor=h.manager, alert_id=qc.pk, **bad)
    qc.refresh_from_db()
    assert qc.assigned_role == "quality"
    services.alert_resolve(actor=h.manager, alert_id=qc.pk, comment="done")
    with pytest.raises(TransitionNotAllowed):
        services.alert_assign(actor=h.manager, alert_id=qc.pk, role="sales")


def test_rule_update_guards(house_setup):
    h = house_setup
    rule = services.rule_update(actor=h.manager, kind="piece_on_hold", threshold="5",
                                critical_threshold=None, severity="critical",
                                assigned_role="logistics", assignee_id=h.logistics.pk,
                                enabled=False, lookback_days=10, margin_percent=20)
    assert rule.threshold == Decimal("5.00") and rule.critical_threshold is None
    assert not rule.enabled and rule.assignee == h.logistics and rule.severity == "critical"
    assert AuditEntry.objects.filter(action="alert_rule.updated").count() == 1
    with pytest.raises(PermissionDenied):
        services.rule_update(actor=h.sales, kind="piece_on_hold", threshold=1)
    with pytest.raises(NotFound):
        services.rule_update(actor=h.manager, kind="nope", threshold=1)
    for bad in ({"threshold": "-1"}, {"threshold": "abc"}, {"threshold": "NaN"},
                {"threshold": True}, {"threshold": None}, {"severity": "loud"},
                {"margin_percent": "x"}, {"lookback_days": 0}, {"enabled": "yes"},
                {"assigned_role": "client"}, {"assignee_id": h.client_contact.pk},
                {"colour": "red"}, {"assigned_role": "", "assignee_id": None}):
        with pytest.raises(ValidationFailed):
            services.rule_update(actor=h.manager, kind="piece_on_hold", **bad)
    assert AlertRule.objects.get(kind="piece_on_hold").threshold == Decimal("5.00")


def test_new_alerts_of_a_rule_go_to_its_person(house_setup):
    from etabli.alerts.detection import run_detection
    from tests.alerts.conftest import later

    h = house_setup
    services.rule_update(actor=h.manager, kind="step_overdue", assignee_id=h.sales.pk)
    h.launched_piece()
    run_detection(now=later(400))
    alert = Alert.objects.get(kind="step_overdue")
    assert alert.assignee == h.sales
    assert selectors.owners(alert) == [h.sales]
