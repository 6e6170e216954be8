"""What this app adds to shared pages (see core.panels)."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _


def piece_panels(request, piece) -> list[dict]:
    return []


def order_panels(request, order) -> list[dict]:
    return []


def portal_order_panels(request, order) -> list[dict]:
    return []


def workshop_piece_panels(request, piece) -> list[dict]:
    return []


def nav_items(user) -> list[tuple[str, str]]:
    from .selectors import can_read_reports

    if can_read_reports(user):
        return [(_("Reports"), reverse("reports:report"))]
    return []
