"""The demo's stone setting: every piece that went to a setter did so with a checked plan whose
stones came from the house's lots through the ledger, every piece back from a setter and
started since was controlled, and the story's broken and lost spares went through controls."""

from __future__ import annotations

import pytest
from django.db.models import Count

from etabli.core.demo import build_demo
from etabli.core.models import AuditEntry
from etabli.materials.models import AllocationStatus, EntryKind, StoneAllocation
from etabli.production.models import StepRun, StepStatus, TrackingEvent
from etabli.stonesetting.models import PlanStatus, SettingControl, SettingPlan
from etabli.stonesetting.selectors import group_covered, is_controlled_setting_run
from etabli.workshops.models import StepKind

pytestmark = pytest.mark.django_db


def test_demo_setting(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    build_demo(7)

    # Every piece sent to a setter had a checked plan before the send, its stones covered.
    sent = TrackingEvent.objects.filter(kind="sent", step_run__step=StepKind.SETTING)
    assert sent.exists()
    for event in sent.select_related("piece"):
        plan = SettingPlan.objects.get(piece=event.piece)
        assert plan.status == PlanStatus.CHECKED and plan.checked_at <= event.occurred_at
        assert all(group_covered(g, plan.piece_id)
                   for g in plan.groups.select_related("allocation"))
    # Drafted by the designer for bespoke pieces, the lots chosen by the manager; checked by
    # quality mostly; one reopened (audited) and checked again.
    assert SettingPlan.objects.filter(created_by__username="designer").exists()
    assert SettingPlan.objects.filter(checked_by__username="quality").exists()
    assert SettingPlan.objects.filter(revision=2).count() == 1
    assert AuditEntry.objects.filter(action="setting_plan.reopen").count() == 1
    assert SettingPlan.objects.filter(groups__supplied_by_client=True).exists()

    # Stones set in pieces through the ledger: allocations set once the job closed.
    assert StoneAllocation.objects.filter(status=AllocationStatus.SET,
                                          setting_group__isnull=False).exists()

    # Every step started after a setting step was controlled first, and passed.
    for run in StepRun.objects.filter(status__in=[StepStatus.IN_PROGRESS, StepStatus.DONE,
                                                  StepStatus.ON_HOLD],
                                      actual_start__isnull=False).select_related("piece"):
        prev = (run.piece.runs.filter(position__lt=run.position)
                .exclude(status=StepStatus.SKIPPED).order_by("-position").first())
        if is_controlled_setting_run(prev) and SettingPlan.objects.filter(
                piece=run.piece).exists():
            control = SettingControl.objects.get(setting_run=prev)
            assert control.passed and control.recorded_at <= run.actual_start
    controls = SettingControl.objects.all()
    assert controls.count() >= 10
    assert controls.filter(recorded_by__role="workshop").exists()
    assert controls.annotate(n=Count("photos")).filter(n__gt=0).exists()
    # One spare broken and one lost at two setters, booked through controls.
    kinds = [e.kind for c in controls for e in c.stone_entries.all()]
    assert sorted(kinds) == [EntryKind.BREAKAGE, EntryKind.LOST]
    booked = [c for c in controls if c.stone_entries.exists()]
    assert len({c.setting_run.workshop_id for c in booked}) == 2
    assert all(c.recorded_by.username == "manager" for c in booked)
