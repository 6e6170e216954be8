"""The workshop portal's "Metal & stones": what the bench holds, slips to receive and weigh,
jobs to return, breakage. A phone at the bench, like the rest of the portal.

Only workshop members come here, and only for their own workshops: reads start from
`visible_to`, writes are one call to the same services as the API. No prices, no clients.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Prefetch, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from etabli.core.errors import Conflict, DomainError
from etabli.production.models import Piece
from etabli.production.workshop_views import workshop_only
from etabli.workshops.models import Workshop

from . import ledger, services, stone_services
from .models import (
    METAL_LINE_KINDS,
    SCRAP_LINE_KINDS,
    STONE_LINE_KINDS,
    CastingStatus,
    LineKind,
    MaterialSlip,
    MaterialSlipLine,
    MetalBalance,
    SlipKind,
    SlipStatus,
    StoneBalance,
    StoneLot,
)
from .stone_views import already_done, breakage_message, done_before, new_ref, remember_done

RECENT_SLIPS = 10


def _grams_field(label, required=False, help_text=None):
    return forms.CharField(
        label=label, required=required, max_length=20,
        help_text=help_text or gettext_lazy("In grams, to the milligram (e.g. 12.345)."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))


def _count_field(label, required=False):
    return forms.CharField(label=label, required=required, max_length=12,
                           widget=forms.TextInput(attrs={"inputmode": "numeric",
                                                         "autocomplete": "off"}))


def _carats_field(label, required=False):
    return forms.CharField(label=label, required=required, max_length=20,
                           widget=forms.TextInput(attrs={"inputmode": "decimal",
                                                         "autocomplete": "off"}))


def _lot_label(lot: StoneLot) -> str:
    size = f"{lot.size_mm} mm" if lot.size_mm else (lot.sieve or "")
    parts = [lot.number, lot.get_stone_type_display(), lot.get_shape_display(), size]
    return " · ".join(str(p) for p in parts if p)


class PortalForm(forms.Form):
    client_ref = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    field_map: dict[str, str]

    def service_error(self, exc: DomainError) -> None:
        """A service's refusal next to the field it is about (services name them their way)."""
        field = str((exc.details or {}).get("field") or "")
        name = self.field_map.get(field, field)
        self.add_error(name if name in self.fields else None, exc.message)


# ---------------------------------------------------------------------------------------------
# receive a slip: weigh or count every line


class ReceiveForm(PortalForm):
    def __init__(self, *args, lines: list[MaterialSlipLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        self.field_map = {}
        for ln in lines:
            if ln.kind in METAL_LINE_KINDS:
                what = ln.piece.serial if ln.piece_id else ln.get_kind_display()
                name = f"line_{ln.pk}"
                self.fields[name] = _grams_field(
                    _("%(what)s, %(alloy)s: weight received (g)")
                    % {"what": what, "alloy": _(ln.alloy.name)}, required=True,
                    help_text=_("Sent: %(w)s g. Weigh it and write what the scale says.")
                    % {"w": ln.gross_weight_g or ln.weight_sent_g})
                self.field_map[f"line {ln.pk}"] = name
                ln.fields = [name]
            else:
                label = _lot_label(ln.lot)
                if ln.piece_id:
                    label = _("%(lot)s, for %(serial)s") % {"lot": label,
                                                             "serial": ln.piece.serial}
                c, ct = f"line_{ln.pk}_count", f"line_{ln.pk}_carats"
                self.fields[c] = _count_field(
                    _("%(lot)s: stones counted") % {"lot": label}, required=True)
                self.fields[c].help_text = _("Sent: %(n)s stones, %(ct)s ct. Write 0 if none "
                                             "arrived.") % {"n": ln.stone_count,
                                                            "ct": ln.carats_sent}
                self.fields[ct] = _carats_field(_("Carats weighed"))
                self.field_map.update({f"line {ln.pk}": c, f"line {ln.pk}.count": c,
                                       f"line {ln.pk}.carats": ct})
                ln.fields = [c, ct]
        for ln in lines:
            ln.bound = [self[name] for name in ln.fields]

    def payload(self) -> list[dict]:
        data = self.cleaned_data
        out = []
        for ln in self.lines:
            if ln.kind in METAL_LINE_KINDS:
                out.append({"line_id": ln.pk, "weight_g": data[f"line_{ln.pk}"]})
            else:
                out.append({"line_id": ln.pk, "count": data[f"line_{ln.pk}_count"],
                            "carats": data[f"line_{ln.pk}_carats"]})
        return out


# ---------------------------------------------------------------------------------------------
# return what a job made and what is left of it


SCRAP_LABELS = {LineKind.SCRAP: gettext_lazy("Scrap (g)"),
                LineKind.FILINGS: gettext_lazy("Filings (g)"),
                LineKind.SWEEPS: gettext_lazy("Sweeps (g)"),
                LineKind.BUTTON: gettext_lazy("Button and sprues (g)")}


class ReturnForm(PortalForm):
    closes_issue = forms.BooleanField(
        label=gettext_lazy("This is the last return for this slip"), required=False,
        help_text=gettext_lazy("Nothing more will come back: when the house receives it, the "
                               "job is settled and what is missing is booked as loss."))
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, issue: MaterialSlip, pieces: list[Piece], lots: list[StoneLot],
                 has_metal: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.pieces, self.lots, self.has_metal = pieces, lots, has_metal
        self.piece_fields, self.scrap_fields, self.stone_groups = [], [], []
        self.field_map = {}
        if has_metal:
            for p in pieces:
                name = f"piece_{p.pk}"
                self.fields[name] = _grams_field(
                    _("%(serial)s: weight (g)") % {"serial": p.serial},
                    help_text=_("The whole piece, with any stones in it."))
                self.piece_fields.append(name)
            for kind in SCRAP_LINE_KINDS:
                name = f"scrap_{kind}"
                self.fields[name] = _grams_field(SCRAP_LABELS[kind])
                self.scrap_fields.append(name)
        for lot in lots:
            rows = [(f"unused_{lot.pk}", _("Unused, back to the vault"))]
            rows += [(f"set_{p.pk}_{lot.pk}", _("Set in %(serial)s") % {"serial": p.serial})
                     for p in pieces]
            group = []
            for prefix, label in rows:
                self.fields[f"{prefix}_count"] = _count_field(
                    _("%(what)s: stones") % {"what": label})
                self.fields[f"{prefix}_carats"] = _carats_field(
                    _("%(what)s: carats") % {"what": label})
                group.append((self[f"{prefix}_count"], self[f"{prefix}_carats"]))
            self.stone_groups.append((lot, _lot_label(lot), group))
        self.order_fields(["client_ref", *self.piece_fields, *self.scrap_fields])

    def pieces_bound(self):
        return [self[name] for name in self.piece_fields]

    def scrap_bound(self):
        return [self[name] for name in self.scrap_fields]

    def payload(self) -> dict:
        """The service's arguments, remembering which of our fields each item came from."""
        data = self.cleaned_data
        pieces, scrap, stones = [], [], []
        for p in self.pieces if self.has_metal else []:
            weight = data.get(f"piece_{p.pk}")
            if weight:
                self.field_map[f"pieces[{len(pieces)}].weight_g"] = f"piece_{p.pk}"
                self.field_map[f"pieces[{len(pieces)}].piece_id"] = f"piece_{p.pk}"
                pieces.append({"piece_id": p.pk, "weight_g": weight})
        for kind in SCRAP_LINE_KINDS if self.has_metal else []:
            weight = data.get(f"scrap_{kind}")
            if weight:
                for suffix in ("weight_g", "kind", "alloy"):
                    self.field_map[f"scrap[{len(scrap)}].{suffix}"] = f"scrap_{kind}"
                scrap.append({"kind": kind, "weight_g": weight})
        for lot in self.lots:
            targets = [(f"unused_{lot.pk}", None)] + [(f"set_{p.pk}_{lot.pk}", p.pk)
                                                      for p in self.pieces]
            for prefix, piece_id in targets:
                count, carats = data.get(f"{prefix}_count"), data.get(f"{prefix}_carats")
                if not count and not carats:
                    continue
                i = len(stones)
                self.field_map.update({f"stones[{i}].count": f"{prefix}_count",
                                       f"stones[{i}].carats": f"{prefix}_carats",
                                       f"stones[{i}].lot_id": f"{prefix}_count",
                                       f"stones[{i}].piece_id": f"{prefix}_count"})
                item = {"lot_id": lot.pk, "count": count, "carats": carats}
                if piece_id:
                    item["piece_id"] = piece_id
                stones.append(item)
        return {"pieces": pieces, "scrap": scrap, "stones": stones,
                "closes_issue": data["closes_issue"], "comment": data["comment"]}


class TreeReturnForm(PortalForm):
    button_g = _grams_field(gettext_lazy("Button and sprues (g)"))
    scrap_g = _grams_field(gettext_lazy("Scrap (g)"))

    def __init__(self, *args, pieces: list[Piece], **kwargs):
        super().__init__(*args, **kwargs)
        self.pieces = pieces
        self.piece_fields = []
        for p in pieces:
            name = f"piece_{p.pk}"
            self.fields[name] = _grams_field(_("%(serial)s: weight (g)") % {"serial": p.serial},
                                             help_text=_("Leave empty if it did not come out."))
            self.piece_fields.append(name)
        self.order_fields(["client_ref", *self.piece_fields, "button_g", "scrap_g"])
        self.field_map = {"button_g": "button_g", "scrap_g": "scrap_g"}

    def payload(self) -> dict:
        data = self.cleaned_data
        pieces = []
        for p in self.pieces:
            if data.get(f"piece_{p.pk}"):
                i = len(pieces)
                self.field_map[f"pieces[{i}].weight_g"] = f"piece_{p.pk}"
                self.field_map[f"pieces[{i}].piece_id"] = f"piece_{p.pk}"
                pieces.append({"piece_id": p.pk, "weight_g": data[f"piece_{p.pk}"]})
        for i in range(len(pieces), len(pieces) + 2):
            self.field_map[f"scrap[{i}].weight_g"] = "scrap_g"
        return {"pieces": pieces, "button_g": data["button_g"] or None,
                "scrap_g": data["scrap_g"] or None}


# ---------------------------------------------------------------------------------------------
# breakage at the bench


class BreakageForm(PortalForm):
    lot_id = forms.ChoiceField(label=gettext_lazy("Which stones"))
    count = _count_field(gettext_lazy("Number of stones"), required=True)
    carats = _carats_field(gettext_lazy("Carats"), required=True)
    reason = forms.CharField(label=gettext_lazy("What happened"), max_length=240,
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))
    piece_id = forms.ChoiceField(label=gettext_lazy("In which piece"), required=False)
    lost = forms.BooleanField(label=gettext_lazy("Lost, not broken"), required=False)

    def __init__(self, *args, lots=(), pieces=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lot_id"].choices = [("", "—")] + [(lot.pk, _lot_label(lot)) for lot in lots]
        self.fields["piece_id"].choices = [("", _("Not in a piece"))] + [
            (p.pk, p.serial) for p in pieces]
        self.field_map = {}


# ---------------------------------------------------------------------------------------------
# reads


def _my_workshops(user) -> list[Workshop]:
    return list(Workshop.objects.visible_to(user).filter(pk__in=user.workshop_ids())
                .order_by("name"))


def _open_issues(user, workshop) -> list[MaterialSlip]:
    """Jobs at the workshop: issues it received that are not settled yet."""
    issues = list(MaterialSlip.objects.visible_to(user)
                  .filter(workshop=workshop, kind=SlipKind.ISSUE, status=SlipStatus.RECEIVED,
                          settled_at__isnull=True)
                  .select_related("casting_tree")
                  .prefetch_related("pieces",
                                    Prefetch("returns", to_attr="live_returns",
                                             queryset=MaterialSlip.objects.exclude(
                                                 status=SlipStatus.CANCELLED)))
                  .order_by("sent_at", "id"))
    for issue in issues:
        issue.last_return_sent = any(r.closes_issue for r in issue.live_returns)
    return issues


def _held_lots(workshop) -> list[StoneBalance]:
    return list(StoneBalance.objects.filter(location=ledger.workshop_location(workshop))
                .filter(Q(count__gt=0) | Q(carats__gt=0)).select_related("lot")
                .order_by("lot__number"))


def _breakage_form(workshop, held, open_issues, data=None):
    pieces = {p.pk: p for issue in open_issues for p in issue.pieces.all()}
    return BreakageForm(data, prefix=f"breakage-{workshop.pk}",
                        initial=None if data else {"client_ref": new_ref()},
                        lots=[b.lot for b in held],
                        pieces=sorted(pieces.values(), key=lambda p: p.serial))


def _workshop_section(user, workshop, bound_breakage=None) -> dict:
    loc = ledger.workshop_location(workshop)
    metal = list(MetalBalance.objects.filter(location=loc)
                 .filter(Q(alloy_g__gt=0) | Q(fine_g__gt=0)).select_related("alloy")
                 .order_by("alloy__metal", "-alloy__fineness_permille", "alloy__code"))
    held = _held_lots(workshop)
    open_issues = _open_issues(user, workshop)
    slips = MaterialSlip.objects.visible_to(user).filter(workshop=workshop)
    incoming = list(slips.filter(status=SlipStatus.SENT, to_location=loc)
                    .prefetch_related(Prefetch("lines", queryset=MaterialSlipLine.objects
                                               .select_related("alloy", "lot", "piece")))
                    .order_by("sent_at", "id"))
    recent = list(slips.order_by("-sent_at", "-id")[:RECENT_SLIPS])
    return {
        "workshop": workshop, "metal": metal, "stones": held, "incoming": incoming,
        "open_issues": open_issues, "recent": recent,
        "breakage_form": bound_breakage or _breakage_form(workshop, held, open_issues),
    }


def _render_overview(request, bound: dict | None = None, status: int = 200):
    user = request.user
    bound = bound or {}
    sections = [_workshop_section(user, w, bound.get(w.pk)) for w in _my_workshops(user)]
    return render(request, "workshop/materials_overview.html", {
        "sections": sections, "pdf_url_name": _slip_pdf_url_name(),
    }, status=status)


def _slip_pdf_url_name() -> str | None:
    """The house pages' slip PDF, when they provide one."""
    from django.urls import NoReverseMatch

    for name in ("materials:slip_pdf", "materials:slip-pdf"):
        try:
            reverse(name, args=[1])
        except NoReverseMatch:
            continue
        return name
    return None


@require_GET
@workshop_only
def overview(request):
    return _render_overview(request)


def _slip_or_404(user, slip_id: int) -> MaterialSlip:
    slip = (MaterialSlip.objects.visible_to(user).filter(pk=slip_id)
            .exclude(kind=SlipKind.REFINER).select_related("workshop", "to_location",
                                                          "casting_tree", "issue").first())
    if slip is None or slip.workshop_id not in user.workshop_ids():
        raise Http404("No such slip.")
    return slip


def _slip_lines(slip) -> list[MaterialSlipLine]:
    return list(slip.lines.select_related("alloy", "lot", "piece").order_by("id"))


def _is_open_job(slip) -> bool:
    return (slip.kind == SlipKind.ISSUE and slip.status == SlipStatus.RECEIVED
            and slip.settled_at is None
            and not slip.returns.filter(closes_issue=True)
            .exclude(status=SlipStatus.CANCELLED).exists())


def _return_form(slip, lines, data=None):
    lots = list({ln.lot_id: ln.lot for ln in lines if ln.kind in STONE_LINE_KINDS}.values())
    pieces = sorted(slip.pieces.all(), key=lambda p: p.serial)
    return ReturnForm(data, prefix="return", issue=slip, pieces=pieces, lots=lots,
                      has_metal=any(ln.kind in METAL_LINE_KINDS for ln in lines),
                      initial=None if data else {"client_ref": new_ref()})


def _tree_form(slip, data=None):
    pieces = sorted(slip.casting_tree.pieces.all(), key=lambda p: p.serial)
    return TreeReturnForm(data, prefix="tree", pieces=pieces,
                          initial=None if data else {"client_ref": new_ref()})


def _render_slip(request, slip, bound: dict | None = None, status: int = 200):
    bound = bound or {}
    lines = _slip_lines(slip)
    context = {"slip": slip, "lines": lines, "pdf_url_name": _slip_pdf_url_name(),
               "receive_form": None, "return_form": None, "tree_form": None,
               "returns": [], "figures": None}
    addressed_here = slip.to_location.workshop_id == slip.workshop_id
    if slip.status == SlipStatus.SENT and addressed_here:
        context["receive_form"] = bound.get("receive") or ReceiveForm(
            prefix="receive", lines=lines, initial={"client_ref": new_ref()})
    if slip.kind == SlipKind.ISSUE:
        context["returns"] = list(slip.returns.order_by("sent_at", "id"))
        if _is_open_job(slip):
            tree = slip.casting_tree
            if tree is not None and tree.status == CastingStatus.ISSUED:
                context["tree_form"] = bound.get("tree") or _tree_form(slip)
            else:
                context["return_form"] = bound.get("return") or _return_form(slip, lines)
        if slip.status == SlipStatus.RECEIVED and any(ln.kind in METAL_LINE_KINDS
                                                      for ln in lines):
            context["figures"] = services.job_figures(slip)
    return render(request, "workshop/materials_slip.html", context, status=status)


@require_GET
@workshop_only
def slip_detail(request, slip_id: int):
    return _render_slip(request, _slip_or_404(request.user, slip_id))


# ---------------------------------------------------------------------------------------------
# writes


@require_POST
@workshop_only
def slip_receive(request, slip_id: int):
    user = request.user
    slip = _slip_or_404(user, slip_id)
    if slip.status != SlipStatus.SENT:
        if slip.status == SlipStatus.RECEIVED:
            return already_done(request, reverse("workshop_materials:slip", args=[slip.pk]))
        messages.error(request, _("Slip %(slip)s was cancelled.") % {"slip": slip.number})
        return redirect("workshop_materials:slip", slip_id=slip.pk)
    form = ReceiveForm(request.POST, prefix="receive", lines=_slip_lines(slip))
    if form.is_valid():
        try:
            slip = services.material_slip_receive(actor=user, slip_id=slip.pk,
                                                  lines=form.payload())
        except Conflict as exc:
            if exc.code != "already_received":
                form.service_error(exc)
            else:
                return already_done(request, reverse("workshop_materials:slip",
                                                      args=[slip.pk]))
        except DomainError as exc:
            form.service_error(exc)
        else:
            messages.success(request, _("Slip %(slip)s received.") % {"slip": slip.number})
            if slip.weight_flagged:
                messages.warning(request, _("What arrived differs from what was sent: the "
                                            "house has been told."))
            return redirect("workshop_materials:slip", slip_id=slip.pk)
    return _render_slip(request, slip, {"receive": form}, status=400)


def _returned_before(user, ref: str | None) -> MaterialSlip | None:
    if not ref:
        return None
    return MaterialSlip.objects.filter(client_ref=ref, sent_by=user,
                                       kind=SlipKind.RETURN).first()


@require_POST
@workshop_only
def slip_return(request, slip_id: int):
    user = request.user
    slip = _slip_or_404(user, slip_id)
    if slip.kind != SlipKind.ISSUE:
        raise Http404("Only an issue slip is answered by a return.")
    first = _returned_before(user, request.POST.get("return-client_ref"))
    if first is not None:
        return already_done(request, reverse("workshop_materials:slip", args=[first.pk]))
    form = _return_form(slip, _slip_lines(slip), request.POST)
    if form.is_valid():
        payload = form.payload()
        try:
            ret = services.material_return(actor=user, issue_id=slip.pk,
                                           client_ref=form.cleaned_data["client_ref"] or None,
                                           **payload)
        except DomainError as exc:
            form.service_error(exc)
        else:
            messages.success(request, _("Return slip %(slip)s sent to the house.")
                             % {"slip": ret.number})
            return redirect("workshop_materials:slip", slip_id=ret.pk)
    return _render_slip(request, slip, {"return": form}, status=400)


@require_POST
@workshop_only
def tree_return(request, slip_id: int):
    user = request.user
    slip = _slip_or_404(user, slip_id)
    if slip.kind != SlipKind.ISSUE or slip.casting_tree_id is None:
        raise Http404("No casting tree on this slip.")
    first = _returned_before(user, request.POST.get("tree-client_ref"))
    if first is not None:
        return already_done(request, reverse("workshop_materials:slip", args=[first.pk]))
    form = _tree_form(slip, request.POST)
    if form.is_valid():
        try:
            ret = services.casting_tree_return(
                actor=user, tree_id=slip.casting_tree_id,
                client_ref=form.cleaned_data["client_ref"] or None, **form.payload())
        except DomainError as exc:
            form.service_error(exc)
        else:
            messages.success(request, _("Tree %(tree)s returned on slip %(slip)s.")
                             % {"tree": slip.casting_tree.number, "slip": ret.number})
            return redirect("workshop_materials:slip", slip_id=ret.pk)
    return _render_slip(request, slip, {"tree": form}, status=400)


@require_POST
@workshop_only
def breakage(request, workshop_id: int):
    user = request.user
    workshop = next((w for w in _my_workshops(user) if w.pk == workshop_id), None)
    if workshop is None:
        raise Http404("No such workshop.")
    prefix = f"breakage-{workshop.pk}"
    first = done_before(request, request.POST.get(f"{prefix}-client_ref"))
    if first:
        return already_done(request, first)
    form = _breakage_form(workshop, _held_lots(workshop), _open_issues(user, workshop),
                          request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            entry = stone_services.stone_breakage_record(
                actor=user, workshop_id=workshop.pk, lot_id=data["lot_id"], count=data["count"],
                carats=data["carats"], reason=data["reason"],
                piece_id=data["piece_id"] or None, lost=data["lost"])
        except DomainError as exc:
            form.service_error(exc)
        else:
            url = reverse("workshop_materials:overview")
            remember_done(request, data["client_ref"], url)
            messages.success(request, breakage_message(entry.count, data["lost"]))
            return redirect(url)
    return _render_overview(request, {workshop.pk: form}, status=400)

