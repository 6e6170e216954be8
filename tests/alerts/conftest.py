"""Helpers for the alert tests: a detection pass at a chosen time, and the facts rules see."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from etabli.alerts.detection import run_detection
from etabli.alerts.models import Alert, AlertRule
from etabli.materials.ledger import location, workshop_location
from etabli.materials.models import (
    EntryKind,
    LocationKind,
    MaterialSlip,
    SlipKind,
    SlipStatus,
    StoneEntry,
    StoneLot,
)

_numbers = itertools.count(1)


def later(days: float = 0, hours: float = 0) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days, hours=hours)


def detect(days: float = 0, **kwargs) -> dict:
    """One detection pass, `days` from now."""
    return run_detection(now=later(days, **kwargs))


def alerts(kind: str | None = None, **filters):
    qs = Alert.objects.filter(**filters)
    return qs.filter(kind=kind) if kind else qs


def rule(kind: str) -> AlertRule:
    return AlertRule.objects.get(kind=kind)


def set_rule(kind: str, **values) -> AlertRule:
    AlertRule.objects.filter(kind=kind).update(**values)
    return rule(kind)


def settled_issue(workshop, *, loss_g="3.000", allowance_g="1.000", over=True,
                  settled_at=None) -> MaterialSlip:
    """An issue slip to `workshop`, settled with the given loss (the materials app's own
    settlement is tested there; the alert only reads the outcome)."""
    n = next(_numbers)
    return MaterialSlip.objects.create(
        number=f"MS-T{n:05d}", kind=SlipKind.ISSUE, status=SlipStatus.RECEIVED,
        workshop=workshop, from_location=location(LocationKind.VAULT),
        to_location=workshop_location(workshop), operation="casting",
        sent_at=timezone.now() - dt.timedelta(days=3), received_at=timezone.now(),
        settled_at=settled_at or timezone.now(), loss_g=Decimal(loss_g),
        allowance_g=Decimal(allowance_g), over_allowance=over)


def sent_material_slip(workshop, *, sent_days_ago: float = 0) -> MaterialSlip:
    n = next(_numbers)
    return MaterialSlip.objects.create(
        number=f"MS-S{n:05d}", kind=SlipKind.ISSUE, status=SlipStatus.SENT, workshop=workshop,
        from_location=location(LocationKind.VAULT), to_location=workshop_location(workshop),
        operation="casting", sent_at=timezone.now() - dt.timedelta(days=sent_days_ago))


def breakage(workshop, *, count: int = 1, piece=None) -> StoneEntry:
    n = next(_numbers)
    lot = StoneLot.objects.create(number=f"LOT-T{n:04d}", stone_type="diamond", shape="round",
                                  count_received=10, carats_received=Decimal("1.000"),
                                  received_at=timezone.now())
    return StoneEntry.objects.create(
        occurred_at=timezone.now(), kind=EntryKind.BREAKAGE, lot=lot, count=count,
        carats=Decimal("0.010") * count, from_location=workshop_location(workshop),
        to_location=location(LocationKind.LOSS), workshop=workshop, piece=piece)


@pytest.fixture
def late_piece(house_setup):
    """A launched piece waiting for design (due in a few days: late in a detection pass run
    well after that)."""
    return house_setup.launched_piece()


def make_alert(kind: str = "step_overdue", *, workshop=None, piece=None, order=None,
               role: str = "production_manager", assignee=None, severity: str = "warning",
               key: str | None = None) -> Alert:
    """A stored alert, as detection would leave it (for the tests of what people do)."""
    n = next(_numbers)
    now = timezone.now()
    return Alert.objects.create(
        kind=kind, severity=severity, cause_key=key or f"test:{n}", workshop=workshop,
        piece=piece, order=order or (piece.order if piece else None), assigned_role=role,
        assignee=assignee, params={"serial": piece.serial if piece else f"P{n}", "days": 2,
                                   "step": "setting", "workshop": "W", "due": "2026-01-01"},
        opened_at=now, updated_at=now)
