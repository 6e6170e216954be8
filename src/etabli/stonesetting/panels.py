"""What stone setting adds to shared pages (see core.panels): a list of dicts, each with a
`template` to include and whatever that template needs.

- The house piece page: the plan's status and check, the last control, a link to the plan.
- The house order page: each piece's plan and control, for orders whose pieces are set.
- The workshop portal piece page: the setter sees the plan (phone-first); the workshop that
  receives a piece back from setting records its control there.
- Clients see nothing of this.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.production.models import CLOSED_STEP_STATUSES, StepRun, StepStatus
from etabli.workshops.models import StepKind

from . import selectors, services
from .forms import ControlForm
from .models import SettingControl, pieces_for_setting


def _has_setting_step(piece) -> bool:
    return piece.runs.filter(step=StepKind.SETTING).exclude(status=StepStatus.SKIPPED).exists()


def piece_panels(request, piece) -> list[dict]:
    user = request.user
    if not user.sees_clients and user.role != Role.WORKSHOP:
        return []
    if not pieces_for_setting(user).filter(pk=piece.pk).exists():
        return []
    plan = selectors.plan_for(piece)
    if plan is None and not (selectors.plan_required(piece) and _has_setting_step(piece)):
        return []
    groups = list(plan.groups.all()) if plan else []
    comparison = selectors.compare(plan, groups) if plan else None
    last = (SettingControl.objects.filter(piece=piece).select_related("recorded_by")
            .order_by("-recorded_at", "-id").first())
    awaiting = selectors.setting_run_awaiting_control(piece)
    return [{"template": "stonesetting/_piece_panel.html", "plan": plan, "groups": groups,
             "comparison": comparison, "last_control": last, "control_due": awaiting,
             "url": reverse("stonesetting:plan", args=[piece.pk]),
             "required": selectors.plan_required(piece)}]


def order_panels(request, order) -> list[dict]:
    user = request.user
    if not user.sees_clients:
        return []
    setting = StepRun.objects.filter(piece=OuterRef("pk"), step=StepKind.SETTING).exclude(
        status=StepStatus.SKIPPED)
    pieces = list(order.pieces.annotate(has_setting=Exists(setting))
                  .select_related("setting_plan").order_by("serial"))
    if not any(p.has_setting or hasattr(p, "setting_plan") for p in pieces):
        return []
    last: dict[int, SettingControl] = {}
    for c in SettingControl.objects.filter(piece__order=order).order_by("recorded_at", "id"):
        last[c.piece_id] = c
    rows = []
    for p in pieces:
        plan = getattr(p, "setting_plan", None)
        rows.append({"piece": p, "plan": plan, "control": last.get(p.pk),
                     "url": reverse("stonesetting:plan", args=[p.pk])})
    return [{"template": "stonesetting/_order_panel.html", "rows": rows}]


def portal_order_panels(request, order) -> list[dict]:
    return []  # the client sees nothing of the setting plan or its controls


def workshop_piece_panels(request, piece) -> list[dict]:
    user = request.user
    if user.role != Role.WORKSHOP:
        return []
    ids = user.workshop_ids()
    awaiting = selectors.setting_run_awaiting_control(piece)
    setting_here = piece.runs.filter(step=StepKind.SETTING, workshop_id__in=ids).exclude(
        status__in=CLOSED_STEP_STATUSES).exists()
    recorded = None
    if awaiting is None and not setting_here and piece.current_run is not None:
        prev = selectors.previous_run(piece, piece.current_run)
        if selectors.is_controlled_setting_run(prev):
            recorded = SettingControl.objects.filter(setting_run=prev).first()
    if recorded is not None:
        return [{"template": "stonesetting/_workshop_panel.html", "recorded": recorded,
                 "url": reverse("stonesetting:plan", args=[piece.pk])}]
    if not (setting_here or awaiting):
        return []
    plan = selectors.plan_for(piece)
    groups = list(plan.groups.all()) if plan else []
    for g in groups:
        g.label = selectors.group_label(g)
    control_form = None
    refusal = None
    if awaiting is not None and plan is not None:
        refusal = services.control_refusal(user, piece)
        if refusal is None:
            control_form = ControlForm(
                groups=groups, books_stones=services.may_book_stones(user, awaiting.workshop_id),
                prefix="control", initial={"client_ref": _ref()})
    return [{"template": "stonesetting/_workshop_panel.html", "plan": plan, "groups": groups,
             "setting_here": setting_here, "control_due": awaiting,
             "control_form": control_form, "control_refusal": refusal,
             "next": reverse("workshop:piece", args=[piece.pk]),
             "url": reverse("stonesetting:plan", args=[piece.pk])}]


def _ref() -> str:
    import uuid

    return uuid.uuid4().hex


def nav_items(user) -> list[tuple[str, str]]:
    if getattr(user, "is_active", False) and user.role in (services.EDIT_ROLES
                                                           | services.CHECK_ROLES):
        return [(_("Setting"), reverse("stonesetting:plans"))]
    return []

