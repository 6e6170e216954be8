"""The setting pages: a piece's setting plan (drafting, checking, reopening), the control on
return from the setter, and the house's list of plans.

Thin: reads start from `pieces_for_setting` (the plan's scope), every write is one service
call, and a refusal is shown next to its field.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.db.models import F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from etabli.accounts.models import Role
from etabli.core.errors import DomainError
from etabli.core.web import page_of
from etabli.materials.access import manages_materials
from etabli.materials.models import (
    AllocationStatus,
    LocationKind,
    StoneAllocation,
    StoneBalance,
    StoneLot,
)
from etabli.materials.stone_views import already_done, done_before, new_ref, remember_done

from . import selectors, services
from .forms import CheckForm, ControlForm, GroupForm, RefForm, ReopenForm, field_of
from .models import SettingGroup

LOT_CHOICES = 300


def _piece_or_404(user, piece_id: int):
    piece = selectors.piece_for_setting(user, piece_id)
    if piece is None:
        raise Http404("No such piece.")
    return piece


def house_only(view):
    """House staff (the plans list); anyone else is told the page does not exist."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.sees_clients:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def _error(form, exc: DomainError) -> None:
    name = field_of(str((exc.details or {}).get("field") or ""), form)
    form.add_error(name, exc.message)


def lots_for_groups(user, keep_ids=()):
    """Lots with stones free in the vault (and the lots already chosen), in one query."""
    vault = StoneBalance.objects.filter(lot=OuterRef("pk"), location__kind=LocationKind.VAULT)
    reserved = (StoneAllocation.objects.filter(lot=OuterRef("pk"),
                                               status=AllocationStatus.RESERVED)
                .order_by().values("lot").annotate(n=Sum("count")).values("n"))
    lots = StoneLot.objects.visible_to(user).annotate(
        vault_count=Coalesce(Subquery(vault.values("count")[:1]), Value(0),
                             output_field=IntegerField()),
        reserved_count=Coalesce(Subquery(reserved), Value(0), output_field=IntegerField()),
    ).annotate(free_count=F("vault_count") - F("reserved_count"))
    return list(lots.filter(Q(free_count__gt=0) | Q(pk__in=list(keep_ids)))
                .order_by("stone_type", "shape", "size_mm", "number")[:LOT_CHOICES])


def plan_context(request, piece, bound: dict | None = None) -> dict:
    user = request.user
    bound = bound or {}
    plan = selectors.plan_for(piece)
    groups = list(plan.groups.all()) if plan else []
    for g in groups:
        g.label = selectors.group_label(g)
        g.covered = selectors.group_covered(g, piece.pk)
    comparison = selectors.compare(plan, groups) if plan else None
    keeper = manages_materials(user)
    can_edit = bool(plan is not None and not plan.is_checked and services.may_edit_plan(user)
                    and piece.status != "delivered")
    lots = lots_for_groups(user, [g.lot_id for g in groups if g.lot_id]) \
        if can_edit and keeper else []
    group_forms = []
    if can_edit:
        for g in groups:
            form = bound.get(f"group-{g.pk}") or GroupForm.for_group(
                g, lots=lots, keeper=keeper, prefix=f"g{g.pk}",
                initial={"client_ref": new_ref()})
            group_forms.append((g, form, f"group-{g.pk}" in bound))
    awaiting = selectors.setting_run_awaiting_control(piece)
    control_refusal = services.control_refusal(user, piece) if awaiting else None
    control_form = None
    if awaiting is not None and plan is not None and control_refusal is None:
        control_form = bound.get("control") or ControlForm(
            groups=groups, books_stones=services.may_book_stones(user, awaiting.workshop_id),
            prefix="control", initial={"client_ref": new_ref()})
    controls = selectors.with_visible_photos(user, selectors.controls_for(piece))
    return {
        "piece": piece, "line": piece.line, "plan": plan, "groups": groups,
        "group_forms": group_forms, "comparison": comparison,
        "sees_clients": user.sees_clients, "is_workshop": user.role == Role.WORKSHOP,
        "keeper": keeper, "can_edit": can_edit,
        "can_create": plan is None and services.may_edit_plan(user)
        and piece.status != "delivered",
        "can_check": bool(plan is not None and not plan.is_checked
                          and services.may_check_plan(user)),
        "can_reopen": bool(plan is not None and plan.is_checked
                           and services.may_reopen_plan(user)),
        "required": selectors.plan_required(piece),
        "create_form": bound.get("create") or RefForm(initial={"client_ref": new_ref()},
                                                      prefix="create"),
        "add_form": bound.get("add") or GroupForm(lots=lots, keeper=keeper, prefix="add",
                                                  initial={"client_ref": new_ref()}),
        "check_form": bound.get("check") or CheckForm(prefix="check",
                                                      initial={"client_ref": new_ref()}),
        "reopen_form": bound.get("reopen") or ReopenForm(prefix="reopen",
                                                         initial={"client_ref": new_ref()}),
        "awaiting": awaiting, "control_form": control_form,
        "control_refusal": control_refusal, "controls": controls,
        "open_form": next(iter(bound), ""),
        "piece_url": _piece_url(user, piece),
    }


def _piece_url(user, piece) -> str | None:
    """The piece's own page, when the user may open it (the plan reaches further)."""
    from etabli.production.models import Piece

    if not Piece.objects.visible_to(user).filter(pk=piece.pk).exists():
        return None
    if user.role == Role.WORKSHOP:
        return reverse("workshop:piece", args=[piece.pk])
    return reverse("production:piece", args=[piece.pk])


@require_GET
@login_required
def plan_page(request, piece_id: int):
    piece = _piece_or_404(request.user, piece_id)
    return render(request, "stonesetting/plan.html", plan_context(request, piece))


def _redisplay(request, piece, name: str, form):
    return render(request, "stonesetting/plan.html",
                  plan_context(request, piece, bound={name: form}), status=400)


def _plan_url(piece) -> str:
    return reverse("stonesetting:plan", args=[piece.pk])


@require_POST
@login_required
def plan_create(request, piece_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    form = RefForm(request.POST, prefix="create")
    if (first := done_before(request, request.POST.get("create-client_ref"))):
        return already_done(request, first)
    if form.is_valid():
        try:
            services.setting_plan_create(actor=user, piece_id=piece.pk)
        except DomainError as exc:
            _error(form, exc)
        else:
            remember_done(request, form.cleaned_data["client_ref"], _plan_url(piece))
            messages.success(request, _("Setting plan started for %(serial)s: add its stones.")
                             % {"serial": piece.serial})
            return redirect(_plan_url(piece))
    return _redisplay(request, piece, "create", form)


def _lots_for_post(user, piece):
    if not manages_materials(user):
        return []
    kept = SettingGroup.objects.filter(plan__piece=piece, lot__isnull=False) \
        .values_list("lot_id", flat=True)
    return lots_for_groups(user, list(kept))


@require_POST
@login_required
def group_add(request, piece_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    if (first := done_before(request, request.POST.get("add-client_ref"))):
        return already_done(request, first)
    form = GroupForm(request.POST, lots=_lots_for_post(user, piece),
                     keeper=manages_materials(user), prefix="add")
    if form.is_valid():
        try:
            group = services.setting_group_add(actor=user, piece_id=piece.pk,
                                               **form.service_fields())
        except DomainError as exc:
            _error(form, exc)
        else:
            remember_done(request, form.cleaned_data["client_ref"], _plan_url(piece))
            messages.success(request, _("Group %(n)s added: %(label)s.")
                             % {"n": group.number, "label": selectors.group_label(group)})
            return redirect(_plan_url(piece))
    return _redisplay(request, piece, "add", form)


def _group_or_404(piece, group_id: int) -> SettingGroup:
    group = SettingGroup.objects.filter(plan__piece=piece, pk=group_id).first()
    if group is None:
        raise Http404("No such group.")
    return group


@require_POST
@login_required
def group_edit(request, piece_id: int, group_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    group = _group_or_404(piece, group_id)
    prefix = f"g{group.pk}"
    if (first := done_before(request, request.POST.get(f"{prefix}-client_ref"))):
        return already_done(request, first)
    form = GroupForm(request.POST, lots=_lots_for_post(user, piece),
                     keeper=manages_materials(user), prefix=prefix)
    if form.is_valid():
        try:
            services.setting_group_update(actor=user, group_id=group.pk, **form.service_fields())
        except DomainError as exc:
            _error(form, exc)
        else:
            remember_done(request, form.cleaned_data["client_ref"], _plan_url(piece))
            messages.success(request, _("Group %(n)s saved.") % {"n": group.number})
            return redirect(_plan_url(piece))
    return _redisplay(request, piece, f"group-{group.pk}", form)


@require_POST
@login_required
def group_remove(request, piece_id: int, group_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    group = SettingGroup.objects.filter(plan__piece=piece, pk=group_id).first()
    if group is None:
        # Already removed (a second tap) or never there.
        messages.info(request, _("That group is no longer on the plan."))
        return redirect(_plan_url(piece))
    try:
        services.setting_group_remove(actor=user, group_id=group.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Group %(n)s taken out of the plan.") % {"n": group.number})
    return redirect(_plan_url(piece))


@require_POST
@login_required
def plan_check(request, piece_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    if (first := done_before(request, request.POST.get("check-client_ref"))):
        return already_done(request, first)
    form = CheckForm(request.POST, prefix="check")
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.setting_plan_check(actor=user, piece_id=piece.pk,
                                        stones_match=data["stones_match"],
                                        preparation_checked=data["preparation_checked"],
                                        note=data["note"])
        except DomainError as exc:
            _error(form, exc)
        else:
            remember_done(request, data["client_ref"], _plan_url(piece))
            messages.success(request, _("Setting plan of %(serial)s checked: the piece may go "
                                        "to the setter.") % {"serial": piece.serial})
            return redirect(_plan_url(piece))
    return _redisplay(request, piece, "check", form)


@require_POST
@login_required
def plan_reopen(request, piece_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    if (first := done_before(request, request.POST.get("reopen-client_ref"))):
        return already_done(request, first)
    form = ReopenForm(request.POST, prefix="reopen")
    if form.is_valid():
        try:
            services.setting_plan_reopen(actor=user, piece_id=piece.pk,
                                         reason=form.cleaned_data["reason"])
        except DomainError as exc:
            _error(form, exc)
        else:
            remember_done(request, form.cleaned_data["client_ref"], _plan_url(piece))
            messages.success(request, _("Setting plan reopened: change it, then have it "
                                        "checked again."))
            return redirect(_plan_url(piece))
    return _redisplay(request, piece, "reopen", form)


def _safe_next(request) -> str | None:
    target = request.POST.get("next")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


@require_POST
@login_required
def control_record(request, piece_id: int):
    user = request.user
    piece = _piece_or_404(user, piece_id)
    next_url = _safe_next(request)
    plan = selectors.plan_for(piece)
    groups = list(plan.groups.all()) if plan else []
    for g in groups:
        g.label = selectors.group_label(g)
    awaiting = selectors.setting_run_awaiting_control(piece)
    form = ControlForm(request.POST, request.FILES, groups=groups, prefix="control",
                       books_stones=bool(awaiting) and services.may_book_stones(
                           user, awaiting.workshop_id))
    if form.is_valid():
        try:
            control = services.setting_control_record(actor=user, piece_id=piece.pk,
                                                      **form.service_args())
        except IntegrityError:
            # The same form sent twice at the same instant: the first one recorded it.
            messages.info(request, _("Already recorded: nothing was done twice."))
            return redirect(next_url or _plan_url(piece))
        except DomainError as exc:
            _error(form, exc)
        else:
            if getattr(control, "replayed", False):
                messages.info(request, _("Already recorded: nothing was done twice."))
            elif control.passed:
                messages.success(request, _("Control recorded for %(serial)s: passed.")
                                 % {"serial": piece.serial})
            else:
                messages.warning(request, _("Control recorded for %(serial)s: failed. The piece "
                                            "is on hold and goes back to setting.")
                                 % {"serial": piece.serial})
            return redirect(next_url or _plan_url(piece))
    if next_url:
        errors = [str(e) for errs in form.errors.values() for e in errs]
        messages.error(request, _("Control not recorded: %(why)s")
                       % {"why": " ".join(errors) or _("check the form.")})
        return redirect(next_url)
    return _redisplay(request, piece, "control", form)


@require_GET
@house_only
def plan_list(request):
    plans = page_of(request, selectors.plans_to_review(request.user))
    for plan in plans:
        plan.piece_url = reverse("stonesetting:plan", args=[plan.piece_id])
    return render(request, "stonesetting/plans.html", {"plans": plans})

