"""Finishing pages: record one operation (the panels' forms post here), waive one, add the
assay office's step, and the hallmark exemptions page.

Thin on purpose: reads start from `visible_to()`, writes go through `finishing.services`, and a
refusal is shown next to its field on the operation's own page.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etabli.accounts.models import Role
from etabli.core.errors import DomainError
from etabli.core.web import form_error
from etabli.materials.models import Metal
from etabli.production.models import Piece

from . import selectors, services
from .forms import (
    OPERATION_FORMS,
    AssayStepForm,
    ExemptionEditForm,
    ExemptionForm,
    WaiveForm,
    blank_form,
    new_ref,
)
from .models import HallmarkExemption, RecordOperation, RecordStatus


def _piece_or_404(user, piece_id: int) -> Piece:
    piece = None
    if user.role != Role.CLIENT:
        piece = (Piece.objects.visible_to(user).select_related("line__alloy", "order")
                 .filter(pk=piece_id).first())
    if piece is None:
        raise Http404("No such piece.")
    return piece


def piece_url(user, piece: Piece) -> str:
    if user.role == Role.WORKSHOP:
        return reverse("workshop:piece", args=[piece.pk])
    return reverse("production:piece", args=[piece.pk])


def _back(request, piece: Piece) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return piece_url(request.user, piece)


def _show_error(form, exc: DomainError) -> None:
    field = (exc.details or {}).get("field")
    if field == "fineness_mark" and "fineness_mark" not in form.fields:
        field = None
    if field and field in form.fields:
        form.add_error(field, exc.message)
    else:
        form.add_error(None, exc.message)


# ---------------------------------------------------------------------------------------------
# one operation


@login_required
def record(request, piece_id: int, operation: str):
    """The form of one operation; the panels post here and come back on success."""
    if operation not in OPERATION_FORMS:
        raise Http404("No such operation.")
    user = request.user
    piece = _piece_or_404(user, piece_id)
    run = selectors.open_finishing_run(piece)
    requirement = (selectors.hallmark_requirement(piece)
                   if operation == RecordOperation.HALLMARKING else None)
    if request.method == "POST":
        form = OPERATION_FORMS[operation](request.POST, prefix=operation)
        if form.is_valid():
            try:
                rec = services.finishing_record_create(
                    actor=user, piece_id=piece.pk, operation=operation,
                    data=form.data_for_service(), comment=form.cleaned_data["comment"],
                    client_ref=form.cleaned_data["client_ref"] or None)
            except DomainError as exc:
                _show_error(form, exc)
            else:
                label = RecordOperation(operation).label
                if getattr(rec, "replayed", False):
                    messages.info(request, _("Already recorded: nothing was done twice."))
                elif rec.status == RecordStatus.REFUSED:
                    messages.warning(request, _("%(serial)s: hallmark refused; the piece is on "
                                                "hold.") % {"serial": piece.serial})
                else:
                    messages.success(request, _("%(serial)s: %(operation)s recorded.")
                                     % {"serial": piece.serial, "operation": label})
                if user.role == Role.WORKSHOP \
                        and not Piece.objects.visible_to(user).filter(pk=piece.pk).exists():
                    return redirect("workshop:queue")
                return redirect(_back(request, piece))
    else:
        form = blank_form(operation, piece, requirement)
    return render(request, "finishing/record.html", {
        "piece": piece, "run": run, "operation": operation,
        "operation_label": RecordOperation(operation).label, "form": form,
        "requirement": requirement, "next": _back(request, piece),
        "body_class": "portal" if user.role == Role.WORKSHOP else "",
    })


@login_required
def waive(request, piece_id: int):
    """The production manager waives an operation of the open finishing step."""
    user = request.user
    if not user.runs_production:
        raise Http404("No such page.")
    piece = _piece_or_404(user, piece_id)
    run = selectors.open_finishing_run(piece)
    missing = selectors.missing_records(run) if run else []
    form = WaiveForm(request.POST or None, operations=missing,
                     initial={"client_ref": new_ref()})
    if request.method == "POST" and form.is_valid():
        try:
            services.finishing_operation_waive(
                actor=user, piece_id=piece.pk, operation=form.cleaned_data["operation"],
                reason=form.cleaned_data["reason"],
                client_ref=form.cleaned_data["client_ref"] or None)
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, _("%(serial)s: %(operation)s waived.") % {
                "serial": piece.serial,
                "operation": RecordOperation(form.cleaned_data["operation"]).label})
            return redirect(_back(request, piece))
    return render(request, "finishing/waive.html", {
        "piece": piece, "run": run, "form": form, "next": _back(request, piece)})


@login_required
@require_POST
def assay_step(request, piece_id: int):
    """Add the assay office's step to the piece's route (production manager)."""
    user = request.user
    if not user.runs_production:
        raise Http404("No such page.")
    piece = _piece_or_404(user, piece_id)
    form = AssayStepForm(request.POST, offices=services.assay_offices())
    workshop_id = form.cleaned_data["workshop_id"] if form.is_valid() else None
    try:
        run = services.assay_step_add(actor=user, piece_id=piece.pk, workshop_id=workshop_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(serial)s: hallmarking at %(office)s added to the route "
                                    "(step %(position)s).")
                         % {"serial": piece.serial, "office": run.workshop.name,
                            "position": run.position})
    return redirect(_back(request, piece))


# ---------------------------------------------------------------------------------------------
# hallmark exemptions


def house_staff_only(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.sees_clients:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


@house_staff_only
def hallmarks(request):
    """Each country's weights under which a piece need not carry the guarantee mark."""
    user = request.user
    manages = user.runs_production
    add_form = ExemptionForm(prefix="new") if manages else None
    bound_id, bound_form = None, None
    if request.method == "POST":
        if not manages:
            raise Http404("No such page.")
        action = request.POST.get("action", "")
        try:
            if action == "create":
                add_form = ExemptionForm(request.POST, prefix="new")
                if add_form.is_valid():
                    d = add_form.cleaned_data
                    try:
                        row = services.hallmark_exemption_create(
                            actor=user, country=d["country"], metal=d["metal"],
                            under_weight_g=d["under_weight_g"],
                            legal_reference=d["legal_reference"])
                    except DomainError as exc:
                        form_error(add_form, exc)
                    else:
                        messages.success(request, _("Exemption added: %(row)s.")
                                         % {"row": _describe(row)})
                        return redirect("finishing:hallmarks")
            elif action in ("update", "delete"):
                bound_id = int(request.POST.get("exemption_id", ""))
                if action == "delete":
                    services.hallmark_exemption_delete(actor=user, exemption_id=bound_id)
                    messages.success(request, _("Exemption removed."))
                    return redirect("finishing:hallmarks")
                bound_form = ExemptionEditForm(request.POST, prefix=f"x{bound_id}")
                if bound_form.is_valid():
                    d = bound_form.cleaned_data
                    try:
                        row = services.hallmark_exemption_update(
                            actor=user, exemption_id=bound_id,
                            under_weight_g=d["under_weight_g"],
                            legal_reference=d["legal_reference"])
                    except DomainError as exc:
                        form_error(bound_form, exc)
                    else:
                        messages.success(request, _("Exemption saved: %(row)s.")
                                         % {"row": _describe(row)})
                        return redirect("finishing:hallmarks")
            else:
                raise Http404("No such action.")
        except ValueError as exc:  # a tampered exemption id
            raise Http404("No such exemption.") from exc
        except DomainError as exc:  # an exemption gone meanwhile
            messages.error(request, exc.message)
            return redirect("finishing:hallmarks")
    country = selectors.hallmark_country()
    rows = list(selectors.exemptions_for(user))
    for row in rows:
        row.in_force = row.country == country
        row.form = None
        if manages:
            row.form = bound_form if row.pk == bound_id and bound_form is not None else \
                ExemptionEditForm(prefix=f"x{row.pk}", initial={
                    "under_weight_g": row.under_weight_g,
                    "legal_reference": row.legal_reference})
    countries: dict[str, list[HallmarkExemption]] = {}
    for row in sorted(rows, key=lambda r: (not r.in_force, r.country, r.metal)):
        countries.setdefault(row.country, []).append(row)
    return render(request, "finishing/hallmarks.html", {
        "countries": countries, "country": country, "manages": manages,
        "add_form": add_form, "has_rule_in_force": country in countries,
    })


def _describe(row: HallmarkExemption) -> str:
    return _("%(country)s, %(metal)s under %(weight)s g") % {
        "country": row.country, "metal": Metal(row.metal).label.lower(),
        "weight": row.under_weight_g}
