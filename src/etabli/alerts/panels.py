"""What alerts add to shared pages (see core.panels): the open alerts about a piece or an
order, on the house's pages and on the workshop's piece page (scoped by `visible_to`: a workshop
sees only alerts about its own workshop); the client portal gets nothing."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role

from . import selectors, services

DASHBOARD_LIMIT = 8


def _panel(request, alerts: list) -> list[dict]:
    if not alerts:
        return []
    user = request.user
    return [{"template": "alerts/_panel.html", "alerts": alerts,
             "can_handle": {a.pk for a in alerts if services.can_handle(user, a)}}]


def piece_panels(request, piece) -> list[dict]:
    return _panel(request, selectors.open_alerts(request.user, piece=piece))


def order_panels(request, order) -> list[dict]:
    return _panel(request, selectors.open_alerts(request.user, order=order))


def portal_order_panels(request, order) -> list[dict]:
    return []


def workshop_piece_panels(request, piece) -> list[dict]:
    return _panel(request, selectors.open_alerts(request.user, piece=piece))


def dashboard_section(user) -> dict:
    """The dashboard's alert section: the newest open alerts and how many there are."""
    return {"alerts": selectors.open_alerts(user, limit=DASHBOARD_LIMIT),
            "alerts_open": selectors.open_count(user)}


def nav_items(user) -> list[tuple[str, str]]:
    if user.is_active and user.role != Role.CLIENT:
        return [(_("Alerts"), reverse("alerts:list"))]
    return []
