"""Quality pages: the queue, the inspection form (live verdict), sign-off, the sheet,
nonconformities with their rework, and the templates.

Thin on purpose: reads through `selectors`, writes through `services`. House staff read;
quality inspectors, production managers and administrators write (others get 403 on a write);
workshops and clients get 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as HttpForbidden
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etabli.core.errors import Conflict, DomainError, ValidationFailed
from etabli.core.web import form_error, page_of
from etabli.workshops.models import StepKind

from . import selectors, services
from .forms import (
    BLANK_DIMENSION_ROWS,
    CauseForm,
    MeasurementForm,
    NewInspectionForm,
    PhotoForm,
    ReworkForm,
    SignForm,
    TemplateCreateForm,
    TemplateForm,
)
from .models import (
    InspectionDimension,
    InspectionStatus,
    InspectionTemplate,
    NonconformityStatus,
    Verdict,
    WeightSource,
)
from .services import MAX_DIMENSIONS
from .verdicts import assess


def _reader(request) -> None:
    if not services.reads_quality(request.user):
        raise Http404("No such page.")


def _writer(request) -> None:
    _reader(request)
    if not services.can_inspect(request.user):
        raise HttpForbidden(_("Only quality inspectors, production managers and "
                              "administrators record inspections."))


def _safe_next(request) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


def _piece_url(user, piece_id: int) -> str | None:
    """The piece's page, for those who may open it (quality sees pieces in finishing only)."""
    from etabli.production.models import Piece

    if Piece.objects.visible_to(user).filter(pk=piece_id).exists():
        return reverse("production:piece", args=[piece_id])
    return None


def _active_templates():
    return list(InspectionTemplate.objects.filter(is_active=True)
                .order_by("-is_default", "name", "id"))


# ---------------------------------------------------------------------------------------------
# the queue and the lists


@login_required
def queue(request):
    """What waits for the inspector: pieces to inspect, pieces stopped by quality."""
    _reader(request)
    user = request.user
    recent = selectors.inspection_list(
        user, selectors.InspectionFilters(status=InspectionStatus.SIGNED))[:10]
    return render(request, "quality/queue.html", {
        "waiting": selectors.waiting_for_inspection(user),
        "open_ncs": selectors.held_by_quality(user),
        "recent": list(recent),
        "can_inspect": services.can_inspect(user),
        "templates": _active_templates(),
    })


def _filters(query, schema, names):
    values = {}
    for name in names:
        raw = (query.get(name) or "").strip()
        if raw:
            try:
                values[name] = getattr(schema.model_validate({name: raw}), name)
            except Exception:  # noqa: BLE001 - a filter not understood is ignored
                continue
    return schema(**values), values


@login_required
def inspection_list(request):
    _reader(request)
    filters, applied = _filters(request.GET, selectors.InspectionFilters,
                                ["status", "verdict", "q"])
    page = page_of(request, selectors.inspection_list(request.user, filters))
    return render(request, "quality/inspections.html", {
        "page": page, "applied": applied, "statuses": InspectionStatus.choices,
        "verdicts": [v for v in Verdict.choices if v[0] != Verdict.NOT_APPLICABLE]})


@login_required
def nonconformity_list(request):
    _reader(request)
    filters, applied = _filters(request.GET, selectors.NonconformityFilters,
                                ["status", "root_cause"])
    page = page_of(request, selectors.nonconformity_list(request.user, filters))
    from .models import RootCause

    return render(request, "quality/nonconformities.html", {
        "page": page, "applied": applied, "statuses": NonconformityStatus.choices,
        "causes": RootCause.choices})


# ---------------------------------------------------------------------------------------------
# one inspection


@login_required
@require_POST
def inspect(request, piece_id: int):
    """Open the inspection of a piece (or go back to the one being measured)."""
    _writer(request)
    form = NewInspectionForm(request.POST, templates=_active_templates())
    template_id = form.cleaned_data.get("template_id") if form.is_valid() else None
    try:
        ins = services.inspection_create(actor=request.user, piece_id=piece_id,
                                         template_id=template_id)
    except Conflict as exc:
        existing = (exc.details or {}).get("inspection_id")
        if existing:
            messages.info(request, exc.message)
            return redirect("quality:inspection", inspection_id=existing)
        messages.error(request, exc.message)
    except DomainError as exc:
        messages.error(request, _("No inspection opened: %(why)s") % {"why": exc.message})
    else:
        return redirect("quality:inspection", inspection_id=ins.pk)
    return redirect(_safe_next(request) or reverse("quality:queue"))


def _inspection_or_404(request, inspection_id: int):
    ins = selectors.inspection_get(request.user, inspection_id)
    if ins is None:
        raise Http404("No such inspection.")
    return ins


def _row_count(request, dims) -> int:
    try:
        rows = int(request.POST.get("rows", ""))
    except ValueError:
        rows = len(dims) + BLANK_DIMENSION_ROWS
    return max(1, min(rows, MAX_DIMENSIONS))


def _measurement_form(ins, dims, data=None, rows=None):
    kwargs = {"stones": ins.stones_applicable,
              "weight_editable": ins.theoretical_weight_source != WeightSource.PIECE}
    if data is not None:
        return MeasurementForm(data, rows=rows, **kwargs)
    return MeasurementForm(initial=MeasurementForm.initial_for(ins, dims),
                           rows=len(dims) + BLANK_DIMENSION_ROWS, **kwargs)


def _inspection_context(request, ins, *, form=None, sign_form=None, photo_form=None) -> dict:
    user = request.user
    dims = list(ins.dimensions.all())
    piece = ins.piece
    run = ins.run
    editable = (not ins.is_signed and services.can_inspect(user)
                and piece.current_run_id == run.pk)
    nc = getattr(ins, "nonconformity", None) if ins.is_signed else None
    return {
        "inspection": ins, "piece": piece, "run": run, "order": piece.order,
        "assessment": assess(ins, dims), "dimensions": dims,
        "photos": list(ins.photos.all()), "earlier_photos":
            services.earlier_finishing_photos(ins) if not ins.is_signed else [],
        "editable": editable, "can_inspect": services.can_inspect(user),
        "left_step": not ins.is_signed and piece.current_run_id != run.pk,
        "form": form or (_measurement_form(ins, dims) if editable else None),
        "sign_form": sign_form or SignForm(), "photo_form": photo_form or PhotoForm(),
        "nonconformity": nc, "piece_url": _piece_url(user, piece.pk),
    }


@login_required
def inspection_page(request, inspection_id: int):
    """The inspection: the measurement form with its live verdict, photos, the sign button;
    once signed, the results, the signature and the sheet."""
    _reader(request)
    ins = _inspection_or_404(request, inspection_id)
    if request.method != "POST":
        return render(request, "quality/inspection.html", _inspection_context(request, ins))
    _writer(request)
    dims = list(ins.dimensions.all())
    form = _measurement_form(ins, dims, request.POST, _row_count(request, dims))
    status = 400
    if form.is_valid():
        try:
            saved = services.inspection_measure(actor=request.user, inspection_id=ins.pk,
                                                **form.measurements())
        except DomainError as exc:
            form_error(form, exc)
            status = exc.status if exc.status in (403, 404, 409) else 400
        else:
            messages.success(request, _("Measurements saved. Verdict: %(verdict)s.")
                             % {"verdict": Verdict(saved.verdict).label})
            return redirect("quality:inspection", inspection_id=ins.pk)
    return render(request, "quality/inspection.html",
                  _inspection_context(request, ins, form=form), status=status)


@login_required
@require_POST
def preview(request, inspection_id: int):
    """The verdict of what is in the form right now (htmx), computed like the real thing and
    saved nowhere."""
    _writer(request)
    ins = _inspection_or_404(request, inspection_id)
    dims = list(ins.dimensions.all())
    error = ""
    if ins.is_signed:
        assessment = assess(ins, dims)
    else:
        form = _measurement_form(ins, dims, request.POST, _row_count(request, dims))
        form.is_valid()
        try:
            fields, rows = services.clean_measurements(ins, ins.piece, **form.measurements())
        except ValidationFailed as exc:
            error, assessment = exc.message, None
        else:
            for name, value in fields.items():
                setattr(ins, name, value)  # this copy is never saved
            assessment = assess(ins, [InspectionDimension(**row) for row in rows])
    return render(request, "quality/_verdict.html",
                  {"assessment": assessment, "error": error, "live": True})


@login_required
@require_POST
def photo_add(request, inspection_id: int):
    _writer(request)
    ins = _inspection_or_404(request, inspection_id)
    form = PhotoForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            photo = services.inspection_photo_add(
                actor=request.user, inspection_id=ins.pk, uploaded_file=form.cleaned_data["file"],
                moment=form.cleaned_data["moment"],
                client_ref=form.cleaned_data.get("client_ref") or None)
        except DomainError as exc:
            messages.error(request, _("Photo not added: %(why)s") % {"why": exc.message})
        else:
            if not photo.replayed:
                messages.success(request, _("Photo added."))
    else:
        why = " ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, _("Photo not added: %(why)s") % {"why": why})
    return redirect("quality:inspection", inspection_id=ins.pk)


@login_required
@require_POST
def photo_remove(request, inspection_id: int, photo_id: int):
    _writer(request)
    ins = _inspection_or_404(request, inspection_id)
    try:
        services.inspection_photo_remove(actor=request.user, inspection_id=ins.pk,
                                         photo_id=photo_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("quality:inspection", inspection_id=ins.pk)


@login_required
@require_POST
def sign(request, inspection_id: int):
    _writer(request)
    ins = _inspection_or_404(request, inspection_id)
    form = SignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Not signed: tick the box to confirm the signature."))
        return redirect("quality:inspection", inspection_id=ins.pk)
    try:
        signed = services.inspection_sign(actor=request.user, inspection_id=ins.pk)
    except DomainError as exc:
        messages.error(request, _("Not signed: %(why)s") % {"why": exc.message})
        return redirect("quality:inspection", inspection_id=ins.pk)
    if signed.verdict == Verdict.PASS:
        messages.success(request, _("%(ref)s signed: %(serial)s passed inspection.")
                         % {"ref": signed.reference, "serial": ins.piece.serial})
        return redirect("quality:inspection", inspection_id=ins.pk)
    nc = signed.nonconformity
    messages.warning(request, _("%(ref)s signed: %(serial)s failed. It is on hold and "
                                "nonconformity %(nc)s is open: record the root cause and send "
                                "it to rework.") % {"ref": signed.reference,
                                                    "serial": ins.piece.serial,
                                                    "nc": nc.reference})
    return redirect("quality:nonconformity", nc_id=nc.pk)


@login_required
@require_POST
def discard(request, inspection_id: int):
    _writer(request)
    ins = _inspection_or_404(request, inspection_id)
    try:
        services.inspection_discard(actor=request.user, inspection_id=ins.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("quality:inspection", inspection_id=ins.pk)
    messages.success(request, _("Inspection %(ref)s discarded.") % {"ref": ins.reference})
    return redirect("quality:queue")


@login_required
def sheet(request, inspection_id: int):
    from .sheet import sheet_response

    _reader(request)
    return sheet_response(request, _inspection_or_404(request, inspection_id))


# ---------------------------------------------------------------------------------------------
# nonconformities


def _nc_or_404(request, nc_id: int):
    nc = selectors.nonconformity_get(request.user, nc_id)
    if nc is None:
        raise Http404("No such nonconformity.")
    return nc


def _targets(nc):
    choices = []
    run = nc.inspection.run
    for r in selectors.rework_targets(nc.piece, run):
        label = f"{r.position}. {StepKind(r.step).label} · {r.workshop.name}"
        if r.pk == run.pk:
            label += " " + _("(this step again)")
        choices.append((r.pk, label))
    return choices


def _nc_context(request, nc, *, cause_form=None, rework_form=None) -> dict:
    ins = nc.inspection
    failed = [c for c in assess(ins, list(ins.dimensions.all())).criteria
              if c.verdict == Verdict.FAIL]
    can = services.can_inspect(request.user)
    initial = {"root_cause": nc.root_cause, "corrective_action": nc.corrective_action}
    return {
        "nc": nc, "inspection": ins, "piece": nc.piece, "failed": failed, "can_inspect": can,
        "cause_form": cause_form or CauseForm(initial=initial),
        "rework_form": rework_form or (ReworkForm(targets=_targets(nc))
                                       if nc.status == NonconformityStatus.OPEN else None),
        "piece_url": _piece_url(request.user, nc.piece_id),
    }


@login_required
def nonconformity_page(request, nc_id: int):
    """A nonconformity: what failed; the root cause and corrective action (POST); the rework."""
    _reader(request)
    nc = _nc_or_404(request, nc_id)
    if request.method != "POST":
        return render(request, "quality/nonconformity.html", _nc_context(request, nc))
    _writer(request)
    form = CauseForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.nonconformity_record_cause(
                actor=request.user, nc_id=nc.pk, root_cause=form.cleaned_data["root_cause"],
                corrective_action=form.cleaned_data["corrective_action"])
        except DomainError as exc:
            form_error(form, exc)
            status = exc.status if exc.status in (403, 404, 409) else 400
        else:
            messages.success(request, _("Root cause and corrective action recorded."))
            return redirect("quality:nonconformity", nc_id=nc.pk)
    return render(request, "quality/nonconformity.html",
                  _nc_context(request, nc, cause_form=form), status=status)


@login_required
@require_POST
def nonconformity_rework(request, nc_id: int):
    _writer(request)
    nc = _nc_or_404(request, nc_id)
    form = ReworkForm(request.POST, targets=_targets(nc)
                      if nc.status == NonconformityStatus.OPEN else [])
    if form.is_valid():
        try:
            services.nonconformity_send_to_rework(
                actor=request.user, nc_id=nc.pk,
                target_run_id=form.cleaned_data["target_run_id"],
                comment=form.cleaned_data.get("comment", ""))
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, _("%(serial)s is sent back for rework; it will be "
                                        "inspected again in finishing.")
                             % {"serial": nc.piece.serial})
            return redirect("quality:nonconformity", nc_id=nc.pk)
    if nc.status != NonconformityStatus.OPEN:
        messages.error(request, _("Not sent: %(ref)s is no longer open.") % {
            "ref": nc.reference})
        return redirect("quality:nonconformity", nc_id=nc.pk)
    return render(request, "quality/nonconformity.html",
                  _nc_context(request, nc, rework_form=form), status=400)


# ---------------------------------------------------------------------------------------------
# templates


@login_required
def template_list(request):
    _reader(request)
    templates = list(selectors.templates_for(request.user))
    form = TemplateCreateForm(templates=templates)
    if request.method == "POST":
        _writer(request)
        form = TemplateCreateForm(request.POST, templates=templates)
        if form.is_valid():
            try:
                template = services.template_create(
                    actor=request.user, code=form.cleaned_data["code"],
                    name=form.cleaned_data["name"],
                    copy_from_id=form.cleaned_data["copy_from_id"])
            except DomainError as exc:
                form_error(form, exc)
            else:
                messages.success(request, _("Template created: set its tolerances."))
                return redirect("quality:template", template_id=template.pk)
    return render(request, "quality/templates.html", {
        "templates": templates, "form": form, "can_edit": services.can_inspect(request.user)},
        status=400 if form.is_bound else 200)


@login_required
def template_page(request, template_id: int):
    _reader(request)
    template = selectors.template_get(request.user, template_id)
    if template is None:
        raise Http404("No such template.")
    can_edit = services.can_inspect(request.user)
    status = 200
    if request.method == "POST":
        _writer(request)
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                services.template_update(
                    actor=request.user, template_id=template.pk, name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    is_active=form.cleaned_data["is_active"], criteria=form.criteria())
            except DomainError as exc:
                form_error(form, exc)
            else:
                messages.success(request, _("Template saved. Inspections already opened keep "
                                            "their tolerances."))
                return redirect("quality:template", template_id=template.pk)
        status = 400
    else:
        form = TemplateForm(initial=TemplateForm.initial_for(template))
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "quality/template.html",
                  {"template": template, "form": form, "can_edit": can_edit}, status=status)
