"""The demo opens alerts by itself: its late steps are found by the first detection pass."""

from __future__ import annotations

import pytest

from etabli.alerts.detection import run_detection
from etabli.alerts.models import Alert, AlertKind
from etabli.core.demo import build_demo

pytestmark = pytest.mark.django_db


def test_the_demo_has_overdue_steps_and_their_alerts():
    build_demo(7)
    overdue = Alert.objects.filter(kind=AlertKind.STEP_OVERDUE, status="open")
    assert overdue.count() >= 5
    assert all(a.piece_id and a.workshop_id and a.params["days"] >= 1 for a in overdue)
    # Each open alert is about something the pass can still see (no stale ones).
    assert not Alert.objects.filter(status="open", auto_resolved=True).exists()
    # The worker's next minute changes nothing.
    again = run_detection()
    assert again["opened"] == 0 and again["resolved"] == 0
