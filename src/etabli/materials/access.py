"""Who may do what with precious materials."""

from __future__ import annotations

from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.core.errors import PermissionDenied

# The vault is kept by the production manager (and the administrator): buying metal, issuing
# it, settling jobs, counting stock, stone lots.
MATERIALS_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER})
# Who may receive a slip at the house (the person opening the envelopes).
HOUSE_RECEIVING_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.LOGISTICS})


def manages_materials(user) -> bool:
    return bool(getattr(user, "is_active", False) and user.role in MATERIALS_ROLES)


def check_manages_materials(user) -> None:
    if not manages_materials(user):
        raise PermissionDenied(
            _("Only a production manager or administrator manages the vault and the metal "
              "and stone ledgers."))


def check_sets_prices(user) -> None:
    if not user.sees_prices:
        raise PermissionDenied(_("Your role cannot enter metal prices."))


def check_acts_for_workshop(user, workshop) -> None:
    """A workshop member acts for their own workshops; the vault's keepers for any."""
    if manages_materials(user):
        return
    if user.role == Role.WORKSHOP and workshop.pk in user.workshop_ids():
        return
    raise PermissionDenied(_("You cannot act for %(workshop)s.") % {"workshop": workshop.name})
