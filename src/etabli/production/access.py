"""Who may record which event on a piece they can see."""

from __future__ import annotations

from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.core.errors import PermissionDenied

from .models import EventKind, Piece

E = EventKind
_WORK = {E.RECEIVED, E.STARTED, E.COMPLETED, E.SENT, E.HELD, E.NOTE}

ROLE_EVENTS: dict[str, set[str]] = {
    Role.WORKSHOP: _WORK,
    # Designers send a piece back from its prototype to design when the CAD must change.
    Role.DESIGNER: _WORK | {E.REWORK},
    Role.LOGISTICS: _WORK,
    Role.QUALITY: _WORK | {E.RELEASED, E.REWORK},
    Role.SALES: {E.NOTE, E.HELD},
}


def check_can_record(user, piece: Piece, kind: str) -> None:
    """Raise PermissionDenied unless `user` may record `kind` on `piece` (already visible)."""
    if user.runs_production:
        return
    allowed = ROLE_EVENTS.get(user.role, set())
    if kind not in allowed:
        raise PermissionDenied(
            _("Your role (%(role)s) cannot record '%(event)s' on a piece.")
            % {"role": Role(user.role).label, "event": E(kind).label})
    if user.role == Role.WORKSHOP:
        ids = user.workshop_ids()
        if kind == E.RECEIVED:
            if piece.transit_to_id not in ids:
                raise PermissionDenied(_("This piece is not on its way to your workshop."))
        elif kind != E.NOTE and piece.location_id not in ids:
            raise PermissionDenied(
                _("This piece is not at your workshop yet: receive it before working on it."))


def check_can_plan(user) -> None:
    if not user.runs_production:
        raise PermissionDenied(
            _("Only a production manager or administrator can change routes."))
