"""The inbox, the notification preferences and (administrators and managers) the webhooks.

Thin: reads through `selectors`, writes through `services`. Everyone signed in has an inbox
and preferences of their own; the webhook pages answer 404 to everybody else.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from etabli.core.errors import DomainError
from etabli.core.web import page_of

from . import rendering, selectors, services
from .models import DeliveryStatus, EmailMode, Event


def _rows(notifications) -> list[dict]:
    notifications = list(notifications)
    rendering.attach_alerts(notifications)
    return [{"n": n, "title": rendering.title(n), "body": rendering.body(n)}
            for n in notifications]


@login_required
def inbox(request):
    unread = request.GET.get("unread") == "1"
    page = page_of(request, selectors.inbox(request.user, unread=unread), per_page=30)
    return render(request, "notifications/inbox.html", {
        "page": page, "rows": _rows(page.object_list), "unread_only": unread,
        "applied": {"unread": "1"} if unread else {},
        "can_manage_webhooks": services.can_manage_webhooks(request.user),
    })


def _back(request) -> str:
    target = request.POST.get("next")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("notifications:inbox")


@login_required
@require_POST
def read(request, notification_id: int):
    try:
        note = services.notification_read(actor=request.user, notification_id=notification_id)
    except DomainError as exc:
        raise Http404(exc.message) from None
    if request.headers.get("HX-Request"):
        return render(request, "notifications/_row.html", {"row": _rows([note])[0]})
    return redirect(_back(request))


@login_required
@require_POST
def open_notification(request, notification_id: int):
    """Mark it read and go where it points (the inbox when it points nowhere)."""
    try:
        note = services.notification_read(actor=request.user, notification_id=notification_id)
    except DomainError as exc:
        raise Http404(exc.message) from None
    if note.url and url_has_allowed_host_and_scheme(note.url, allowed_hosts=None):
        return redirect(note.url)
    return redirect("notifications:inbox")


@login_required
@require_POST
def read_all(request):
    count = services.notifications_read_all(actor=request.user)
    messages.success(request, ngettext("%(n)d notification marked read.",
                                       "%(n)d notifications marked read.", count) % {"n": count})
    return redirect(_back(request))


@login_required
def preferences(request):
    choices = selectors.preferences_for(request.user)
    errors: dict[str, str] = {}
    if request.method == "POST":
        for choice in choices:
            inbox = request.POST.get(f"inbox_{choice.event}") == "on"
            email = request.POST.get(f"email_{choice.event}", "")
            try:
                services.preference_set(actor=request.user, event=choice.event, inbox=inbox,
                                        email=email)
            except DomainError as exc:
                errors[choice.event] = exc.message
                choice.inbox, choice.email = inbox, email
        if not errors:
            messages.success(request, _("Your notification preferences are saved."))
            return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {
        "choices": choices, "errors": errors, "email_modes": EmailMode.choices,
        "has_email": bool(request.user.email)}, status=400 if errors else 200)


# ---------------------------------------------------------------------------------------------
# webhooks


def _webhook_admin(request) -> None:
    if not services.can_manage_webhooks(request.user):
        raise Http404("No such page.")


def _webhook_form(post) -> dict:
    return {"name": post.get("name", ""), "url": post.get("url", ""),
            "events": post.getlist("events"), "active": post.get("active") == "on"}


@login_required
def webhooks(request):
    _webhook_admin(request)
    form, error = {"name": "", "url": "", "events": list(Event.values), "active": True}, None
    if request.method == "POST":
        form = _webhook_form(request.POST)
        try:
            sub = services.webhook_create(actor=request.user, secret=request.POST.get("secret"),
                                          **form)
        except DomainError as exc:
            error = exc
        else:
            messages.success(request, _("Webhook %(name)s added.") % {"name": sub.name})
            return redirect("notifications:webhook", sub.pk)
    return render(request, "notifications/webhooks.html", {
        "subscriptions": selectors.webhooks_for(request.user), "form": form, "error": error,
        "events": Event.choices,
        "recent": selectors.deliveries_for(request.user)[:20],
    }, status=400 if error else 200)


@login_required
def webhook(request, subscription_id: int):
    _webhook_admin(request)
    sub = selectors.webhook_get(request.user, subscription_id)
    if sub is None:
        raise Http404("No such webhook.")
    error = None
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action == "delete":
                services.webhook_delete(actor=request.user, subscription_id=sub.pk)
                messages.success(request, _("Webhook %(name)s removed.") % {"name": sub.name})
                return redirect("notifications:webhooks")
            if action == "new_secret":
                services.webhook_update(actor=request.user, subscription_id=sub.pk,
                                        new_secret=True)
                messages.success(request, _("A new secret was made: update the receiver."))
            else:
                services.webhook_update(actor=request.user, subscription_id=sub.pk,
                                        **_webhook_form(request.POST))
                messages.success(request, _("Webhook saved."))
        except DomainError as exc:
            error = exc
        else:
            return redirect("notifications:webhook", sub.pk)
    status = request.GET.get("status") or None
    if status not in DeliveryStatus.values:
        status = None
    page = page_of(request, selectors.deliveries_for(request.user, sub.pk, status), per_page=30)
    return render(request, "notifications/webhook.html", {
        "sub": sub, "page": page, "error": error, "events": Event.choices,
        "statuses": DeliveryStatus.choices, "status": status,
        "applied": {"status": status} if status else {},
    }, status=400 if error else 200)


@login_required
@require_POST
def delivery_retry(request, delivery_id: int):
    _webhook_admin(request)
    try:
        delivery = services.webhook_delivery_retry(actor=request.user, delivery_id=delivery_id)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        messages.error(request, exc.message)
        return redirect("notifications:webhooks")
    messages.success(request, _("The delivery will be tried again in a moment."))
    return redirect("notifications:webhook", delivery.subscription_id)
