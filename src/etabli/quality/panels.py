"""What quality control adds to shared pages (see core.panels): a list of dicts, each with a
`template` to include and whatever that template needs.

Only house staff see quality records: the client portal and the workshop portal get nothing
(a client never sees a nonconformity)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.production.models import StepStatus
from etabli.workshops.models import StepKind

from . import selectors, services

_OPENABLE = (StepStatus.READY, StepStatus.RECEIVED, StepStatus.IN_PROGRESS)


def piece_panels(request, piece) -> list[dict]:
    user = request.user
    if not services.reads_quality(user):
        return []
    data = selectors.piece_panel(user, piece)
    run = data["run"]
    in_finishing = (data["run_is_open"] and run.step == StepKind.FINISHING
                    and run.status in _OPENABLE and piece.location_id == run.workshop_id)
    if not data["inspections"] and not data["open_nc"] and not in_finishing:
        return []
    draft = next((i for i in data["inspections"]
                  if not i.is_signed and run is not None and i.run_id == run.pk), None)
    passed = any(i.is_signed and i.verdict == "pass" and run is not None and i.run_id == run.pk
                 for i in data["inspections"])
    can_open = services.can_inspect(user) and in_finishing and draft is None and not passed
    return [{"template": "quality/_piece_panel.html", **data, "draft": draft,
             "can_open": can_open}]


def order_panels(request, order) -> list[dict]:
    return []


def portal_order_panels(request, order) -> list[dict]:
    return []


def workshop_piece_panels(request, piece) -> list[dict]:
    return []


def nav_items(user) -> list[tuple[str, str]]:
    if user.is_active and (user.role == Role.QUALITY or user.is_house_wide):
        return [(_("Quality"), reverse("quality:queue"))]
    return []
