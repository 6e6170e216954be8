from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.materials.stone_views import sees_lots


def _items(user) -> list[tuple[str, str]]:
    from etabli.core import panels

    if user.role == Role.WORKSHOP:
        return [(_("My queue"), reverse("workshop:queue")), (_("Scan"), reverse("workshop:scan")),
                (_("Metal & stones"), reverse("workshop_materials:overview"))] \
            + panels.nav_items(user)
    if user.role == Role.CLIENT:
        return [(_("My orders"), reverse("portal:orders"))] + panels.nav_items(user)
    items = []
    if user.is_house_wide:
        items.append((_("Dashboard"), reverse("production:dashboard")))
    items.append((_("Orders"), reverse("orders:list")))
    items.append((_("Pieces"), reverse("production:pieces")))
    if user.is_house_wide or user.role == Role.LOGISTICS:  # Location.visible_to: the ledger
        items.append((_("Materials"), reverse("materials:home")))
    if sees_lots(user):
        items.append((_("Stones"), reverse("stones:lots")))
    items.extend(panels.nav_items(user))
    if user.takes_orders:
        items.append((_("New order"), reverse("orders:new")))
    if user.role == Role.ADMIN:
        items.append((_("Administration"), reverse("admin:index")))
    return items


def etabli(request):
    user = getattr(request, "user", None)
    nav = []
    if user is not None and user.is_authenticated:
        path = request.path
        items = _items(user)
        matches = [url for _label, url in items
                   if path == url or (url != "/" and path.startswith(url))]
        # The most specific entry is the current one (/workshop/materials/ over /workshop/).
        current = max(matches, key=len) if matches else None
        nav = [{"label": label, "url": url, "active": url == current} for label, url in items]
    return {"house_name": settings.ETABLI_HOUSE_NAME, "nav_items": nav,
            "inbox_unread": _inbox_unread(user)}


def _inbox_unread(user):
    """The unread count in the header: a callable, so one query, only where a page shows it."""
    from etabli.notifications.selectors import unread_count

    return lambda: unread_count(user)
