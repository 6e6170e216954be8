"""What tests do so a piece satisfies stone setting's gates (called by tests.gate_support).

Before a piece goes to a setter: a setting plan whose stones come from a lot received for it
(allocated through the materials service), checked by the production manager — when the order
line lists stones (or already has a plan). Before the step after setting starts: the receipt
control, every stone counted and secure, by whoever works at that step.
"""

from __future__ import annotations

from decimal import Decimal

from etabli.materials import stone_services
from etabli.stonesetting import selectors, services
from etabli.stonesetting.models import PlanStatus, SettingControl, SettingPlan
from etabli.workshops.models import StepKind

COMPLIANCE = ("The diamonds herein invoiced have been purchased from legitimate sources not "
              "involved in funding conflict and in compliance with United Nations resolutions.")


def stone_lot(h, *, count: int = 40, carats: str = "0.400", size_mm: str = "1.30",
              stone_type: str = "diamond", shape: str = "round", **kwargs):
    """A parcel of stones received into the vault by the production manager."""
    return stone_services.stone_lot_receive(
        actor=h.manager, stone_type=stone_type, shape=shape, count=count, carats=carats,
        size_mm=size_mm, compliance_statement=COMPLIANCE if stone_type == "diamond" else "",
        **kwargs)


def checked_plan(h, piece, *, count: int | None = None, carats: Decimal | None = None):
    """A checked setting plan for `piece`: one group of round diamonds from a fresh lot."""
    line = piece.line
    count = count or line.budget_stone_count or 1
    carats = carats if carats is not None else line.budget_stone_ct
    lot_ct = max((carats or Decimal("0.010") * count) * 2, Decimal("0.500"))
    lot = stone_lot(h, count=count + 10, carats=f"{lot_ct:.3f}")
    plan = SettingPlan.objects.filter(piece=piece).first()
    if plan is None:
        plan = services.setting_plan_create(
            actor=h.manager, piece_id=piece.pk,
            groups=[{"setting_type": "prong", "position": "centre", "count": count,
                     "carats": carats, "lot_id": lot.pk}])
    if plan.status == PlanStatus.DRAFT:
        services.setting_plan_check(actor=h.manager, piece_id=piece.pk, stones_match=True,
                                    preparation_checked=True, note="Checked for the test.")
    return SettingPlan.objects.get(pk=plan.pk)


def before_send(h, piece, run) -> None:
    if run.step != StepKind.SETTING:
        return
    plan = SettingPlan.objects.filter(piece=piece).first()
    if plan is None and not selectors.plan_required(piece):
        return
    if plan is None or plan.status != PlanStatus.CHECKED:
        checked_plan(h, piece)


def control_actor(h, run):
    """Who records the control: the member of the workshop that received the piece, the
    production manager at the house."""
    return h.members.get(run.workshop_id, h.manager)


def record_passing_control(h, piece, run=None):
    piece.refresh_from_db()
    run = run or piece.current_run
    plan = SettingPlan.objects.get(piece=piece)
    return services.setting_control_record(
        actor=control_actor(h, run), piece_id=piece.pk, stones_secure=True,
        counts=[{"group_id": g.pk, "counted": g.count} for g in plan.groups.all()])


def before_start(h, piece, run) -> None:
    prev = selectors.previous_run(piece, run)
    if not selectors.is_controlled_setting_run(prev):
        return
    if SettingControl.objects.filter(setting_run=prev).exists():
        return
    if not SettingPlan.objects.filter(piece=piece).exists():
        return
    record_passing_control(h, piece, run)


def before_complete(h, piece, run) -> None:
    pass
