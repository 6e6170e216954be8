"""Words for notifications, in the reader's language, made when they are shown or sent.

Notifications are stored as a kind + params, so one stored event reads in English for one
person and in French for another, and a later translation fix shows in old notifications too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from etabli.workshops.models import StepKind

from .models import Event, Notification


@contextlib.contextmanager
def in_language_of(user) -> Iterator[None]:
    """Render what follows in `user`'s language (the site default if they chose none)."""
    with translation.override(getattr(user, "language", "") or settings.LANGUAGE_CODE):
        yield


def absolute(url: str) -> str:
    """A link for an e-mail or a webhook: the public address of this Établi + the path."""
    if not url or url.startswith(("http://", "https://")):
        return url
    return f"{settings.ETABLI_PUBLIC_URL}{url}" if settings.ETABLI_PUBLIC_URL else url


def _step_label(step: str) -> str:
    try:
        return str(StepKind(step).label)
    except ValueError:
        return step


def attach_alerts(notifications: Iterable[Notification]) -> None:
    """Fetch the alerts of alert notifications in one query (for their words)."""
    items = [n for n in notifications if n.alert_id is not None]
    if not items:
        return
    from etabli.alerts.models import Alert

    alerts = Alert.objects.in_bulk({n.alert_id for n in items})
    for n in items:
        n._alert = alerts.get(n.alert_id)


def _alert_of(n: Notification):
    if not hasattr(n, "_alert"):
        attach_alerts([n])
    return getattr(n, "_alert", None)


def title(n: Notification) -> str:
    p = n.params or {}
    if n.kind == Event.PIECES_SENT:
        serials = p.get("serials") or []
        count = len(serials)
        if count == 1:
            return _("Piece %(serial)s is on its way to you") % {"serial": serials[0]}
        return ngettext("%(count)d piece is on its way to you",
                        "%(count)d pieces are on their way to you", count) % {"count": count}
    if n.kind == Event.ALERT_OPENED:
        alert = _alert_of(n)
        if alert is not None:
            return str(alert.title())
        return _("Alert: %(subject)s") % {"subject": p.get("subject") or _("(removed)")}
    return str(n.kind)


def body(n: Notification) -> str:
    p = n.params or {}
    if n.kind == Event.PIECES_SENT:
        return _("From %(origin)s on slip %(slip)s, for %(step)s: %(serials)s.") % {
            "origin": p.get("from", ""), "slip": p.get("slip", ""),
            "step": _step_label(p.get("step", "")), "serials": ", ".join(p.get("serials", []))}
    if n.kind == Event.ALERT_OPENED:
        alert = _alert_of(n)
        if alert is not None:
            return str(alert.message())
        return _("This alert no longer exists.")
    return ""


def notification_email(n: Notification) -> tuple[str, str]:
    """Subject and plain-text body of the e-mail for one notification."""
    with in_language_of(n.recipient):
        subject = title(n)
        lines = [body(n)]
        if n.url:
            lines += ["", _("Open it: %(url)s") % {"url": absolute(n.url)}]
        lines += ["", _("You receive this because of your notification preferences "
                        "(%(url)s).") % {"url": absolute("/inbox/preferences/")}]
        return f"[{settings.ETABLI_HOUSE_NAME}] {subject}", "\n".join(lines)


def digest_email(user, notifications: list[Notification], alerts: list) -> tuple[str, str]:
    """Subject and body of one person's daily digest."""
    attach_alerts(notifications)
    with in_language_of(user):
        subject = _("Your daily summary: %(unread)d unread, %(alerts)d open alerts") % {
            "unread": len(notifications), "alerts": len(alerts)}
        lines = [_("Hello %(name)s,") % {"name": user.get_full_name() or user.username}, ""]
        if notifications:
            lines.append(_("Unread notifications of the last day:"))
            for n in notifications:
                lines.append(f"- {title(n)}")
                lines.append(f"  {body(n)}")
                if n.url:
                    lines.append(f"  {absolute(n.url)}")
            lines.append("")
        if alerts:
            lines.append(_("Open alerts of the last day:"))
            for alert in alerts:
                severity = getattr(alert, "get_severity_display", lambda a=alert: a.severity)()
                lines.append(f"- [{severity}] {alert.title()}")
            lines.append("")
        lines.append(_("Your inbox: %(url)s") % {"url": absolute("/inbox/")})
        return f"[{settings.ETABLI_HOUSE_NAME}] {subject}", "\n".join(lines)
