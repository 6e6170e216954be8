"""What stone setting requires before a piece may move on (called by production.gates).

Each function raises a domain error (TransitionNotAllowed, usually) with a message a person can
act on, or returns None when the piece may go ahead.

- Before a piece goes to the setter, its setting plan is checked (stones matching the order,
  preparation confirmed) and every group's stones are allocated.
- After a setting step, the next step does not start until the piece's receipt control is
  recorded, and passed.

A piece whose order line lists no stones and has no plan goes through untouched, as does every
piece whose route has no setting step.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.core.errors import TransitionNotAllowed
from etabli.workshops.models import StepKind

from . import selectors
from .models import PlanStatus, SettingControl, SettingPlan


def _plan_url(piece) -> str:
    return reverse("stonesetting:plan", args=[piece.pk])


def check_send(piece, run) -> None:
    """Before `piece` is sent to the workshop of `run` (its open step)."""
    if run.step != StepKind.SETTING:
        return
    plan = SettingPlan.objects.filter(piece=piece).first()
    if plan is None:
        if not selectors.plan_required(piece):
            return
        raise TransitionNotAllowed(
            _("%(serial)s cannot go to the setter: it has no setting plan. Draft it and have "
              "it checked on the piece's setting plan page (%(url)s).")
            % {"serial": piece.serial, "url": _plan_url(piece)},
            code="setting_plan_missing", details={"url": _plan_url(piece)})
    if plan.status != PlanStatus.CHECKED:
        raise TransitionNotAllowed(
            _("%(serial)s cannot go to the setter: its setting plan has not been checked "
              "(stones against the order, preparation of seats and prongs). Check it on the "
              "setting plan page (%(url)s).")
            % {"serial": piece.serial, "url": _plan_url(piece)},
            code="setting_plan_not_checked", details={"url": _plan_url(piece)})
    groups = list(plan.groups.select_related("allocation"))
    uncovered = [g for g in groups if not selectors.group_covered(g, piece.pk)]
    if uncovered:
        raise TransitionNotAllowed(
            _("%(serial)s cannot go to the setter: the stones of group %(groups)s are no "
              "longer allocated to it. Reopen the setting plan and allocate them (%(url)s).")
            % {"serial": piece.serial, "groups": ", ".join(str(g.number) for g in uncovered),
               "url": _plan_url(piece)},
            code="setting_allocations_missing", details={"url": _plan_url(piece)})


def check_start(piece, run) -> None:
    """Before work starts on `run`: if the piece comes back from setting, its receipt control
    must be recorded and passed."""
    prev = selectors.previous_run(piece, run)
    if not selectors.is_controlled_setting_run(prev):
        return
    control = SettingControl.objects.filter(setting_run=prev).first()
    if control is None:
        if not selectors.plan_required(piece) \
                and not SettingPlan.objects.filter(piece=piece).exists():
            return
        raise TransitionNotAllowed(
            _("%(serial)s is back from the setter: record its receipt control (stones counted "
              "and secure, photos) before starting, on the setting plan page (%(url)s).")
            % {"serial": piece.serial, "url": _plan_url(piece)},
            code="setting_control_missing", details={"url": _plan_url(piece)})
    if not control.passed:
        raise TransitionNotAllowed(
            _("%(serial)s failed its control on return from the setter: it goes back to "
              "setting (rework) before any further work. See %(url)s.")
            % {"serial": piece.serial, "url": _plan_url(piece)},
            code="setting_control_failed", details={"url": _plan_url(piece)})


def check_leave(piece, run) -> None:
    """Before `run` is completed (the piece leaves the step)."""
