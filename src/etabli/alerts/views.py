"""Alert pages: the list with filters and actions, one alert, the rules' settings.

Thin on purpose: reads through `selectors`, writes through `services`. Client contacts get 404;
refused actions come back as a message (and a 4xx status when nothing is redirected).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etabli.accounts.models import HOUSE_STAFF_ROLES, Role, User
from etabli.core.errors import DomainError
from etabli.core.web import page_of

from . import selectors, services
from .models import AlertKind, AlertRule, AlertStatus, Severity

FILTERS = ("status", "kind", "severity", "mine")


def _reader(request) -> None:
    user = request.user
    if not user.is_active or user.role == Role.CLIENT:
        raise Http404("No such page.")


def _filters(query) -> tuple[selectors.AlertFilters, dict]:
    values, applied = {}, {}
    for name, choices in (("status", AlertStatus.values), ("kind", AlertKind.values),
                          ("severity", Severity.values)):
        raw = (query.get(name) or "").strip()
        if raw in choices:
            values[name] = applied[name] = raw
    if query.get("mine") in ("1", "true", "on"):
        values["mine"], applied["mine"] = True, "1"
    if not values.get("status") and query.get("status") != "all":
        values["open_only"] = True
    elif query.get("status") == "all":
        applied["status"] = "all"
    return selectors.AlertFilters(**values), applied


def _roles() -> list[tuple[str, str]]:
    return [(r.value, r.label) for r in Role if r in HOUSE_STAFF_ROLES]


def _staff():
    return User.objects.filter(is_active=True, role__in=[r.value for r in HOUSE_STAFF_ROLES])\
        .only("id", "username", "first_name", "last_name", "role").order_by("username")


@login_required
def alert_list(request):
    _reader(request)
    filters, applied = _filters(request.GET)
    page = page_of(request, selectors.alert_list(request.user, filters))
    user = request.user
    return render(request, "alerts/list.html", {
        "page": page, "applied": applied, "statuses": AlertStatus.choices,
        "kinds": AlertKind.choices, "severities": Severity.choices,
        "can_handle": {a.pk for a in page.object_list if services.can_handle(user, a)},
        "manages": services.manages_alerts(user),
        "staff": _staff() if services.manages_alerts(user) else [], "roles": _roles()})


@login_required
def alert_page(request, alert_id: int):
    _reader(request)
    alert = selectors.alert_get(request.user, alert_id)
    if alert is None:
        raise Http404("No such alert.")
    manages = services.manages_alerts(request.user)
    return render(request, "alerts/detail.html", {
        "alert": alert, "can_handle": services.can_handle(request.user, alert),
        "manages": manages, "staff": _staff() if manages else [], "roles": _roles()})


def _back(request, alert_id: int):
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                  request.is_secure()):
        return redirect(target)
    return redirect("alerts:detail", alert_id=alert_id)


def _act(request, alert_id: int, action, done: str):
    _reader(request)
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.message)
        if exc.status == 404:
            raise Http404(exc.message) from None
        alert = selectors.alert_get(request.user, alert_id)
        manages = services.manages_alerts(request.user)
        return render(request, "alerts/detail.html", {
            "alert": alert, "can_handle": services.can_handle(request.user, alert),
            "manages": manages, "staff": _staff() if manages else [], "roles": _roles(),
            "error": exc.message}, status=exc.status)
    messages.success(request, done)
    return _back(request, alert_id)


@login_required
@require_POST
def acknowledge(request, alert_id: int):
    return _act(request, alert_id, lambda: services.alert_acknowledge(
        actor=request.user, alert_id=alert_id, comment=request.POST.get("comment", "")),
        _("Alert acknowledged."))


@login_required
@require_POST
def resolve(request, alert_id: int):
    return _act(request, alert_id, lambda: services.alert_resolve(
        actor=request.user, alert_id=alert_id, comment=request.POST.get("comment", "")),
        _("Alert resolved."))


@login_required
@require_POST
def assign(request, alert_id: int):
    raw = (request.POST.get("assignee_id") or "").strip()

    def run():
        if raw and not raw.isdigit():
            from etabli.core.errors import ValidationFailed

            raise ValidationFailed(_("Choose a person from the list."))
        return services.alert_assign(actor=request.user, alert_id=alert_id,
                                     assignee_id=int(raw) if raw else None,
                                     role=request.POST.get("role", ""))

    return _act(request, alert_id, run, _("Alert assigned."))


def _manager(request) -> None:
    _reader(request)
    if not services.manages_alerts(request.user):
        raise Http404("No such page.")


@login_required
def rule_list(request):
    _manager(request)
    return render(request, "alerts/rules.html", {"rules": list(selectors.rules()),
                                                 "roles": _roles(), "staff": _staff(),
                                                 "severities": Severity.choices})


@login_required
@require_POST
def rule_edit(request, kind: str):
    _manager(request)
    if kind not in AlertKind.values:
        raise Http404("No such rule.")
    post = request.POST
    assignee = (post.get("assignee_id") or "").strip()
    changes = {
        "enabled": post.get("enabled") in ("1", "on", "true"),
        "threshold": post.get("threshold", ""),
        "critical_threshold": post.get("critical_threshold", ""),
        "severity": post.get("severity", ""),
        "assigned_role": post.get("assigned_role", ""),
        "assignee_id": int(assignee) if assignee.isdigit() else None,
    }
    for name in ("margin_percent", "lookback_days"):
        if post.get(name, "").strip():
            changes[name] = post[name].strip()
    try:
        if assignee and not assignee.isdigit():
            from etabli.core.errors import ValidationFailed

            raise ValidationFailed(_("Choose a person from the list."))
        services.rule_update(actor=request.user, kind=kind, **changes)
    except DomainError as exc:
        return render(request, "alerts/rules.html", {
            "rules": list(selectors.rules()), "roles": _roles(), "staff": _staff(),
            "severities": Severity.choices, "error": exc.message, "error_kind": kind},
            status=exc.status)
    messages.success(request, _("Rule saved: %(rule)s.") % {"rule": AlertRule(kind=kind)})
    return redirect(reverse("alerts:rules") + f"#rule-{kind}")
