"""Who may do what in delivery (the reads are scoped by each model's `visible_to`)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.core.errors import PermissionDenied

SHIPPING_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.LOGISTICS})
# The house people who talk to the client about a delivery: they may record the client's
# reception on their behalf and resolve the follow-ups.
RECEPTION_HOUSE_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.SALES,
                                   Role.LOGISTICS})


def _active(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def runs_shipments(user) -> bool:
    return _active(user) and user.role in SHIPPING_ROLES


def sees_shipments(user) -> bool:
    """The house roles that see every shipment (sales read them)."""
    return _active(user) and (user.is_house_wide or user.role == Role.LOGISTICS)


def handles_receptions(user) -> bool:
    return _active(user) and user.role in RECEPTION_HOUSE_ROLES


def is_client(user) -> bool:
    return _active(user) and user.role == Role.CLIENT


def check_runs_shipments(user) -> None:
    if not runs_shipments(user):
        raise PermissionDenied(_("Only logistics, production managers and administrators "
                                 "prepare and ship shipments."))


def check_sees_prices(user, field: str) -> None:
    if not user.sees_prices:
        raise PermissionDenied(_("Only sales, production managers and administrators set "
                                 "amounts."), details={"field": field})


def check_handles_receptions(user) -> None:
    if not handles_receptions(user):
        raise PermissionDenied(_("Only the house's sales, logistics, production managers and "
                                 "administrators handle receptions and follow-ups."))
