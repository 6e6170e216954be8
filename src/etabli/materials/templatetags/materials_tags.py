"""Template tags for materials shown on other apps' pages (the house dashboard's flags)."""

import datetime as dt

from django import template
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from etabli.materials import selectors
from etabli.materials.access import manages_materials
from etabli.materials.models import MaterialSlip
from etabli.reference_data import OPERATIONS

register = template.Library()

FLAG_DAYS = 90  # as selectors.flags


@register.inclusion_tag("materials/_dashboard_flags.html", takes_context=True)
def materials_flags(context):
    """Jobs over their loss allowance and slips received with a weight difference, for the
    people who keep the vault (nothing for anyone else). One query when there is nothing to
    show, so the dashboard keeps its query budget."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not manages_materials(user):
        return {"show": False}
    since = timezone.now() - dt.timedelta(days=FLAG_DAYS)
    if not MaterialSlip.objects.visible_to(user).filter(
            Q(over_allowance=True, settled_at__gte=since)
            | Q(weight_flagged=True, received_at__gte=since)).exists():
        return {"show": False}
    return {"show": True, "flags": selectors.flags(user, days=FLAG_DAYS)}


_REFERENCE_OPERATIONS = {code: name for code, name, _step in OPERATIONS}


@register.filter
def operation_label(code: str) -> str:
    """An operation's name in the reader's language: the reference operations without a query,
    one the house added by its own name, else the code as stored."""
    if not code:
        return ""
    if code in _REFERENCE_OPERATIONS:
        return gettext(_REFERENCE_OPERATIONS[code])
    from etabli.workshops.models import Operation

    name = Operation.objects.filter(code=code).values_list("name", flat=True).first()
    return gettext(name) if name else code
