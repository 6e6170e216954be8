"""Template helpers for links to printed documents."""

from __future__ import annotations

from django import template

register = template.Library()


def _transfer_id(item) -> int | None:
    from etabli.production.models import Transfer

    if isinstance(item, Transfer):
        return item.pk
    if isinstance(item, int):
        return item
    slip = getattr(item, "slip", None)  # a queue item: the slip the piece is coming on
    if isinstance(slip, Transfer):
        return slip.pk
    return getattr(item, "transfer_id", None)  # a tracking event, a transfer line


@register.simple_tag(takes_context=True)
def printable_slips(context, items) -> set[int]:
    """Ids of the transfer slips among `items` (slips, events, lines, queue pieces) that the
    page's user may print: one query, through `Transfer.objects.visible_to`, so a link is shown
    only where the slip would open."""
    from etabli.production.models import Transfer

    ids = {tid for tid in (_transfer_id(i) for i in items or ()) if tid}
    request = context.get("request")
    if not ids or request is None:
        return set()
    return set(Transfer.objects.visible_to(request.user).filter(pk__in=ids)
               .values_list("pk", flat=True))
