"""Design pages: the designer's list, a line's design page (brief, rounds, files, the client's
decision, the approval), the prototype form, and the client's round page in the portal.

Thin: reads start from the models' `visible_to` (through `selectors`), writes go through
`services`; a refusal is shown next to its field, never as an error page.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from etabli.accounts.models import Role
from etabli.clients.views import client_only
from etabli.core.errors import DomainError
from etabli.core.web import form_error
from etabli.documents.models import Document
from etabli.production.models import Piece

from . import budget, selectors, services
from .forms import (
    BriefForm,
    ClientDecisionForm,
    OnBehalfForm,
    PrototypeForm,
    RoundFileForm,
    RoundForm,
)
from .models import DesignApproval, DesignRound, Prototype, RoundStatus


def _staff_or_404(user) -> None:
    if not (user.is_active and user.sees_clients):
        raise Http404("No such page.")


def _line_or_404(user, line_id: int):
    _staff_or_404(user)
    line = selectors.line_for(user, line_id)
    if line is None:
        raise Http404("No such order line.")
    return line


def _round_or_404(user, round_id: int) -> DesignRound:
    rnd = selectors.round_for(user, round_id)
    if rnd is None:
        raise Http404("No such design round.")
    return rnd


def _show(form, exc: DomainError, rename: dict | None = None) -> None:
    field = (exc.details or {}).get("field")
    field = (rename or {}).get(field, field)
    form_error(form, DomainError(exc.message, details={"field": field}))


# ---------------------------------------------------------------------------------------------
# the designer's list


@require_GET
@login_required
def home(request):
    user = request.user
    if not selectors.works_on_design(user):
        raise Http404("No such page.")
    work = selectors.worklist(user)
    return render(request, "design/home.html", {"work": work, "limit": selectors.round_limit()})


# ---------------------------------------------------------------------------------------------
# a line's design page


def _brief_initial(line, brief) -> dict:
    initial = {"budget_metal_g": line.budget_metal_g,
               "budget_stone_count": line.budget_stone_count,
               "budget_stone_ct": line.budget_stone_ct, "target_price": line.target_price}
    if brief is not None:
        initial |= {"client_intent": brief.client_intent,
                    "technical_constraints": brief.technical_constraints,
                    "aesthetic_constraints": brief.aesthetic_constraints}
    return initial


def _previous_files(rounds) -> list[Document]:
    """Files of the line's rounds that a new version may replace (current versions only)."""
    seen, out = set(), []
    for r in rounds:
        for d in r.shown_files:
            if d.pk not in seen and getattr(d, "is_current", True):
                seen.add(d.pk)
                out.append(d)
    return out


def _line_page(request, line, bound: dict | None = None, status: int = 200):
    user = request.user
    bound = bound or {}
    works = selectors.works_on_design(user)
    rounds = list(DesignRound.objects.visible_to(user).filter(line=line)
                  .select_related("approval__approved_by", "approval__document", "decided_by",
                                  "sent_by", "created_by")
                  .order_by("number"))
    selectors.files_for(user, rounds)
    state = selectors.line_state(line, rounds)
    for r in rounds:
        r.figures = budget.of_round(r, line)
        r.is_latest = state.latest is not None and r.pk == state.latest.pk
        r.client_sees = [d for d in r.shown_files if d.visibility == "client"]
    brief = selectors.brief_of(user, line)
    draft = state.draft
    previous = _previous_files(rounds)
    pieces = list(Piece.objects.visible_to(user).filter(line=line)
                  .select_related("current_workshop").order_by("unit_no"))
    prototypes = list(Prototype.objects.visible_to(user).filter(line=line)
                      .select_related("piece", "recorded_by", "invalidates")
                      .order_by("recorded_at", "id"))
    order_documents = list(Document.objects.visible_to(user).filter(order=line.order_id)
                           .order_by("-uploaded_at", "-id")[:50]) if user.takes_orders else []
    context = {
        "line": line, "order": line.order, "state": state, "rounds": list(reversed(rounds)),
        "brief": brief, "works": works, "sees_prices": user.sees_prices,
        "takes_orders": user.takes_orders, "pieces": pieces, "prototypes": prototypes,
        "draft": draft,
        "brief_form": bound.get("brief") or BriefForm(initial=_brief_initial(line, brief),
                                                      sees_prices=user.sees_prices),
        "new_round_form": bound.get("new_round") or RoundForm(),
        "round_form": bound.get("round") or (RoundForm(initial={
            "designer_note": draft.designer_note,
            "estimated_metal_g": draft.estimated_metal_g if draft.metal_source == "entered"
            else None,
            "estimated_stone_count": draft.estimated_stone_count,
            "estimated_stone_ct": draft.estimated_stone_ct}) if draft else None),
        "file_form": bound.get("file") or RoundFileForm(previous=previous),
        "behalf_form": bound.get("behalf") or OnBehalfForm(documents=order_documents),
        "order_url": reverse("orders:detail", args=[line.order_id]),
    }
    return render(request, "design/line.html", context, status=status)


@require_GET
@login_required
def line_page(request, line_id: int):
    return _line_page(request, _line_or_404(request.user, line_id))


def _back_to_line(line_id: int, anchor: str = ""):
    return redirect(reverse("design:line", args=[line_id]) + anchor)


@require_POST
@login_required
def brief_save(request, line_id: int):
    user = request.user
    line = _line_or_404(user, line_id)
    form = BriefForm(request.POST, sees_prices=user.sees_prices)
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            services.design_brief_save(actor=user, line_id=line.pk, **data)
        except DomainError as exc:
            _show(form, exc)
            return _line_page(request, line, {"brief": form}, status=exc.status)
        messages.success(request, _("The brief is saved."))
        return _back_to_line(line.pk, "#brief")
    return _line_page(request, line, {"brief": form}, status=400)


@require_POST
@login_required
def round_new(request, line_id: int):
    user = request.user
    line = _line_or_404(user, line_id)
    form = RoundForm(request.POST)
    if form.is_valid():
        try:
            rnd = services.design_round_create(actor=user, line_id=line.pk, **form.cleaned_data)
        except DomainError as exc:
            _show(form, exc)
            return _line_page(request, line, {"new_round": form}, status=exc.status)
        messages.success(request, _("Round %(n)s started: add its renders and CAD files.")
                         % {"n": rnd.number})
        return _back_to_line(line.pk, f"#round-{rnd.pk}")
    return _line_page(request, line, {"new_round": form}, status=400)


def _staff_round(request, round_id: int) -> DesignRound:
    _staff_or_404(request.user)
    return _round_or_404(request.user, round_id)


@require_POST
@login_required
def round_edit(request, round_id: int):
    user = request.user
    rnd = _staff_round(request, round_id)
    form = RoundForm(request.POST)
    if form.is_valid():
        try:
            services.design_round_update(actor=user, round_id=rnd.pk, **form.cleaned_data)
        except DomainError as exc:
            _show(form, exc)
            return _line_page(request, rnd.line, {"round": form}, status=exc.status)
        messages.success(request, _("Round %(n)s is saved.") % {"n": rnd.number})
        return _back_to_line(rnd.line_id, f"#round-{rnd.pk}")
    return _line_page(request, rnd.line, {"round": form}, status=400)


@require_POST
@login_required
def round_file(request, round_id: int):
    user = request.user
    rnd = _staff_round(request, round_id)
    previous_ids = list(Document.objects.filter(design_rounds__line=rnd.line).distinct()
                        .values_list("pk", flat=True))
    form = RoundFileForm(request.POST, request.FILES,
                         previous=list(Document.objects.filter(pk__in=previous_ids)))
    if form.is_valid():
        d = form.cleaned_data
        try:
            doc = services.design_round_add_file(
                actor=user, round_id=rnd.pk, uploaded_file=d["file"], kind=d["kind"],
                visibility=d["visibility"] or None, replaces_id=d.get("replaces"))
        except DomainError as exc:
            _show(form, exc, {"replaces_id": "replaces"})
            return _line_page(request, rnd.line, {"file": form}, status=exc.status)
        messages.success(request, _("%(name)s is added to round %(n)s.")
                         % {"name": doc.original_name, "n": rnd.number})
        return _back_to_line(rnd.line_id, f"#round-{rnd.pk}")
    return _line_page(request, rnd.line, {"file": form}, status=400)


@require_POST
@login_required
def round_file_remove(request, round_id: int, document_id: int):
    rnd = _staff_round(request, round_id)
    try:
        services.design_round_remove_file(actor=request.user, round_id=rnd.pk,
                                          document_id=document_id)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from exc
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The file is taken out of round %(n)s.") % {"n": rnd.number})
    return _back_to_line(rnd.line_id, f"#round-{rnd.pk}")


@require_POST
@login_required
def round_send(request, round_id: int):
    rnd = _staff_round(request, round_id)
    try:
        services.design_round_send(actor=request.user, round_id=rnd.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Round %(n)s is sent to the client.") % {"n": rnd.number})
        state = selectors.line_state(rnd.line)
        if state.over_limit:
            messages.warning(request, state.limit_warning)
    return _back_to_line(rnd.line_id, f"#round-{rnd.pk}")


@require_POST
@login_required
def round_decide(request, round_id: int):
    """The house records the client's decision on their behalf."""
    user = request.user
    rnd = _staff_round(request, round_id)
    documents = list(Document.objects.visible_to(user).filter(order=rnd.line.order_id))
    form = OnBehalfForm(request.POST, request.FILES, documents=documents)
    if form.is_valid():
        d = form.cleaned_data
        try:
            services.design_round_decide(
                actor=user, round_id=rnd.pk, approve=d["decision"] == "approve",
                comment=d["comment"], uploaded_file=d.get("file"),
                document_id=d.get("document"))
        except DomainError as exc:
            _show(form, exc, {"document": "file", "document_id": "document"
                              if "document" in form.fields else "file"})
            return _line_page(request, rnd.line, {"behalf": form}, status=exc.status)
        messages.success(request, _("The client's decision on round %(n)s is recorded.")
                         % {"n": rnd.number})
        return _back_to_line(rnd.line_id, f"#round-{rnd.pk}")
    return _line_page(request, rnd.line, {"behalf": form}, status=400)


# ---------------------------------------------------------------------------------------------
# prototypes (from the piece pages)


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


@require_POST
@login_required
def prototype_record(request, piece_id: int):
    from .panels import prototype_panel

    user = request.user
    piece = Piece.objects.visible_to(user).select_related("line").filter(pk=piece_id).first()
    if piece is None or user.role == Role.CLIENT:
        raise Http404("No such piece.")
    default = reverse("workshop:piece", args=[piece.pk]) if user.role == Role.WORKSHOP \
        else reverse("production:piece", args=[piece.pk])
    target = _safe_next(request, default)
    form = PrototypeForm(request.POST, ring_size=piece.line.size
                         if selectors.needs_fit_test(piece.line) else "",
                         workshop=user.role == Role.WORKSHOP)
    if form.is_valid():
        d = form.cleaned_data
        try:
            prototype = services.prototype_record(
                actor=user, piece_id=piece.pk, method=d["method"], result=d["result"],
                fit_ok=form.fit_ok(), fit_notes=d["fit_notes"], reason=d.get("reason", ""),
                notes=d["notes"])
        except DomainError as exc:
            if exc.status == 404:
                raise Http404(exc.message) from exc
            _show(form, exc, {"fit_ok": "fit"})
        else:
            if prototype.result == "approved":
                messages.success(request, _("The prototype of %(serial)s is recorded as "
                                            "approved.") % {"serial": piece.serial})
            else:
                messages.success(request, _("%(serial)s goes back to design: %(reason)s")
                                 % {"serial": piece.serial, "reason": prototype.reason})
            return redirect(target)
    panel = prototype_panel(request, piece, form=form)
    return render(request, "design/prototype_form_page.html",
                  {"piece": piece, "panel": panel, "back": target}, status=400)


# ---------------------------------------------------------------------------------------------
# the client portal


def _portal_round_page(request, rnd: DesignRound, form=None, status: int = 200):
    user = request.user
    selectors.files_for(user, [rnd])
    state = selectors.line_state(rnd.line)
    approval = DesignApproval.objects.filter(round=rnd).select_related("approved_by").first() \
        if rnd.status == RoundStatus.APPROVED else None
    return render(request, "design/portal_round.html", {
        "round": rnd, "line": rnd.line, "order": rnd.line.order, "state": state,
        "figures": budget.of_round(rnd) if approval is None else budget.of_approval(approval),
        "approval": approval, "can_decide": rnd.status == RoundStatus.SENT,
        "form": form or ClientDecisionForm(initial={"decision": "approve"}),
    }, status=status)


@require_GET
@client_only
def portal_round(request, round_id: int):
    return _portal_round_page(request, _round_or_404(request.user, round_id))


@require_POST
@client_only
def portal_decide(request, round_id: int):
    rnd = _round_or_404(request.user, round_id)
    form = ClientDecisionForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            services.design_round_decide(actor=request.user, round_id=rnd.pk,
                                         approve=d["decision"] == "approve",
                                         comment=d["comment"])
        except DomainError as exc:
            if exc.status == 404:
                raise Http404(exc.message) from exc
            _show(form, exc)
            rnd.refresh_from_db()
            return _portal_round_page(request, rnd, form, status=exc.status)
        if d["decision"] == "approve":
            messages.success(request, _("Thank you: you approved the design (round %(n)s). "
                                        "Production can go ahead.") % {"n": rnd.number})
        else:
            messages.success(request, _("Thank you: your comments on round %(n)s are sent to "
                                        "the designer.") % {"n": rnd.number})
        return redirect("design:portal_round", round_id=rnd.pk)
    return _portal_round_page(request, rnd, form, status=400)
