"""House pages for stones: the lots, receiving a parcel, one lot's balances and story,
allocating stones to pieces, issuing them to a setter, breakage, and breakage rates.

Thin on purpose: reads start from `visible_to` (and `selectors`), every write is one call to
`stone_services` or `services`, so a page never shows or does what the API would refuse.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from functools import wraps
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import DecimalField, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from etabli.accounts.models import Role
from etabli.core.errors import DomainError
from etabli.core.web import form_error, page_of
from etabli.production.models import Piece
from etabli.workshops.models import Workshop, WorkshopKind

from . import selectors, services, stone_services
from .access import manages_materials
from .models import (
    AllocationStatus,
    LocationKind,
    MaterialSlip,
    StoneAllocation,
    StoneBalance,
    StoneEntry,
    StoneLot,
    StoneShape,
    StoneType,
)

LOT_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.SALES, Role.LOGISTICS,
                       Role.DESIGNER, Role.QUALITY})
MOVEMENTS_SHOWN = 200
REMEMBERED_REFS = 50


def sees_lots(user) -> bool:
    """The house roles `StoneLot.objects.visible_to` shows every lot to."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and user.role in LOT_ROLES)


def lots_only(view):
    """House staff who see stone lots; anyone else is told the page does not exist."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not sees_lots(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def vault_keepers_only(view):
    """The vault's keepers (production manager, administrator): the writes."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not manages_materials(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# a second tap does nothing twice (for the services that take no client_ref)


def new_ref() -> str:
    return uuid.uuid4().hex


def done_before(request, ref: str | None) -> str | None:
    """Where the first submission of the form carrying `ref` led, if it went through."""
    if not ref:
        return None
    return (request.session.get("etabli_done_refs") or {}).get(ref)


def remember_done(request, ref: str | None, url: str) -> None:
    if not ref:
        return
    refs = dict(request.session.get("etabli_done_refs") or {})
    refs[ref] = url
    if len(refs) > REMEMBERED_REFS:
        refs = dict(list(refs.items())[-REMEMBERED_REFS:])
    request.session["etabli_done_refs"] = refs


def breakage_message(count: int, lost: bool) -> str:
    if lost:
        return ngettext("%(count)s stone recorded as lost.",
                        "%(count)s stones recorded as lost.", count) % {"count": count}
    return ngettext("%(count)s stone recorded as broken.",
                    "%(count)s stones recorded as broken.", count) % {"count": count}


def already_done(request, url: str):
    messages.info(request, _("Already recorded: nothing was done twice."))
    return redirect(url)


# ---------------------------------------------------------------------------------------------
# forms


def _decimal_input():
    return forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})


def _count_input():
    return forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"})


def count_field(label=None, required=True):
    return forms.CharField(label=label or gettext_lazy("Number of stones"), max_length=12,
                           required=required, widget=_count_input())


def carats_field(label=None, required=True):
    return forms.CharField(label=label or gettext_lazy("Carats"), max_length=20,
                           required=required, widget=_decimal_input(),
                           help_text=gettext_lazy("To the thousandth of a carat, e.g. 1.205 "
                                                  "(1 ct = 0.2 g)."))


class RefForm(forms.Form):
    client_ref = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


class LotFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=100,
                        help_text=gettext_lazy("Lot number, colour, clarity, certificate, "
                                               "supplier"))
    stone_type = forms.ChoiceField(label=gettext_lazy("Stone"), required=False,
                                   choices=[("", "—")] + list(StoneType.choices))
    shape = forms.ChoiceField(label=gettext_lazy("Shape"), required=False,
                              choices=[("", "—")] + list(StoneShape.choices))
    certified = forms.ChoiceField(label=gettext_lazy("Certificate"), required=False,
                                  choices=[("", "—"), ("yes", gettext_lazy("Certified")),
                                           ("no", gettext_lazy("Not certified"))])
    free = forms.BooleanField(label=gettext_lazy("Only lots with free stones"), required=False)


class LotReceiveForm(RefForm):
    stone_type = forms.ChoiceField(label=gettext_lazy("Stone"),
                                   choices=[("", "—")] + list(StoneType.choices))
    shape = forms.ChoiceField(label=gettext_lazy("Shape"),
                              choices=[("", "—")] + list(StoneShape.choices))
    count = count_field()
    carats = carats_field(gettext_lazy("Total carats"))
    size_mm = forms.CharField(label=gettext_lazy("Size (mm)"), required=False, max_length=12,
                              widget=_decimal_input(),
                              help_text=gettext_lazy("Diameter or length in millimetres; "
                                                     "or give the sieve size."))
    sieve = forms.CharField(label=gettext_lazy("Sieve"), required=False, max_length=20,
                            help_text=gettext_lazy("e.g. +6.5-7"))
    colour = forms.CharField(label=gettext_lazy("Colour"), required=False, max_length=30)
    clarity = forms.CharField(label=gettext_lazy("Clarity"), required=False, max_length=30)
    certificate_lab = forms.CharField(label=gettext_lazy("Certificate laboratory"),
                                      required=False, max_length=20,
                                      help_text=gettext_lazy("GIA, HRD, IGI…"))
    certificate_number = forms.CharField(label=gettext_lazy("Certificate number"),
                                         required=False, max_length=40)
    origin = forms.CharField(label=gettext_lazy("Origin"), required=False, max_length=80)
    supplier = forms.CharField(label=gettext_lazy("Supplier"), required=False, max_length=120)
    supplier_invoice = forms.CharField(label=gettext_lazy("Supplier invoice"), required=False,
                                       max_length=60)
    compliance_statement = forms.CharField(
        label=gettext_lazy("Kimberley Process / System of Warranties statement"),
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Required for diamonds: copy it from the supplier's invoice."))
    price_per_ct = forms.CharField(label=gettext_lazy("Price per carat"), required=False,
                                   max_length=20, widget=_decimal_input())

    def __init__(self, *args, sees_prices: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not sees_prices:
            del self.fields["price_per_ct"]


class AllocateForm(RefForm):
    serial = forms.CharField(label=gettext_lazy("Piece serial"), max_length=60,
                             widget=forms.TextInput(attrs={"autocomplete": "off",
                                                           "autocapitalize": "characters"}))
    count = count_field()
    carats = carats_field()


class IssueForm(RefForm):
    workshop_id = forms.ChoiceField(label=gettext_lazy("Setter"))
    allocation_ids = forms.MultipleChoiceField(
        label=gettext_lazy("Stones reserved for pieces"), required=False,
        widget=forms.CheckboxSelectMultiple)
    count = count_field(gettext_lazy("Loose stones (count)"), required=False)
    carats = carats_field(gettext_lazy("Loose stones (carats)"), required=False)
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, workshops=(), allocations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop_id"].choices = [("", "—")] + [(w.pk, w.name) for w in workshops]
        self.fields["allocation_ids"].choices = [
            (a.pk, _("%(serial)s: %(count)s stones, %(carats)s ct")
             % {"serial": a.piece.serial, "count": a.count, "carats": a.carats})
            for a in allocations]


class BreakageForm(RefForm):
    workshop_id = forms.ChoiceField(label=gettext_lazy("Workshop"))
    count = count_field()
    carats = carats_field()
    reason = forms.CharField(label=gettext_lazy("What happened"), max_length=240,
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))
    serial = forms.CharField(label=gettext_lazy("Piece serial (if in a piece)"), required=False,
                             max_length=60)
    lost = forms.BooleanField(label=gettext_lazy("Lost, not broken"), required=False)

    def __init__(self, *args, workshops=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workshop_id"].choices = [("", "—")] + [(w.pk, w.name) for w in workshops]


class PeriodForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", _("The end of the period is before its start."))
        return data


# ---------------------------------------------------------------------------------------------
# the lots


def _lots_with_figures(user):
    """Lots with what the vault holds and what is reserved, in one query."""
    vault = StoneBalance.objects.filter(lot=OuterRef("pk"), location__kind=LocationKind.VAULT)
    reserved = (StoneAllocation.objects.filter(lot=OuterRef("pk"),
                                               status=AllocationStatus.RESERVED)
                .order_by().values("lot"))
    ct = DecimalField(max_digits=12, decimal_places=3)
    return StoneLot.objects.visible_to(user).annotate(
        vault_count=Coalesce(Subquery(vault.values("count")[:1]), Value(0),
                             output_field=IntegerField()),
        vault_ct=Coalesce(Subquery(vault.values("carats")[:1]), Value(Decimal("0")),
                          output_field=ct),
        reserved_count=Coalesce(Subquery(reserved.annotate(n=Sum("count")).values("n")),
                                Value(0), output_field=IntegerField()),
        reserved_ct=Coalesce(Subquery(reserved.annotate(c=Sum("carats")).values("c")),
                             Value(Decimal("0")), output_field=ct),
    ).annotate(free_count=F("vault_count") - F("reserved_count"))


def _free(lot) -> None:
    lot.vault_ct = services.q3(lot.vault_ct)
    lot.reserved_ct = services.q3(lot.reserved_ct)
    lot.free_ct = lot.vault_ct - lot.reserved_ct


@require_GET
@lots_only
def lot_list(request):
    form = LotFilterForm(request.GET or None)
    lots = _lots_with_figures(request.user)
    applied = {}
    if form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            q = data["q"].strip()
            lots = lots.filter(Q(number__icontains=q) | Q(colour__icontains=q)
                               | Q(clarity__icontains=q) | Q(certificate_number__icontains=q)
                               | Q(supplier__icontains=q) | Q(sieve__icontains=q))
        if data["stone_type"]:
            lots = lots.filter(stone_type=data["stone_type"])
        if data["shape"]:
            lots = lots.filter(shape=data["shape"])
        if data["certified"] == "yes":
            lots = lots.exclude(certificate_number="")
        elif data["certified"] == "no":
            lots = lots.filter(certificate_number="")
        if data["free"]:
            lots = lots.filter(free_count__gt=0)
        applied = {k: ("1" if v is True else v) for k, v in data.items() if v}
    page = page_of(request, lots.order_by("-received_at", "-id"))
    for lot in page.object_list:
        _free(lot)
    return render(request, "materials/stone_lots.html", {
        "form": form, "page": page, "filtered": bool(applied), "query": urlencode(applied),
        "can_receive": manages_materials(request.user),
    })


@require_http_methods(["GET", "POST"])
@vault_keepers_only
def lot_receive(request):
    user = request.user
    if request.method == "POST":
        first = done_before(request, request.POST.get("client_ref"))
        if first:
            return already_done(request, first)
        form = LotReceiveForm(request.POST, sees_prices=user.sees_prices)
        if form.is_valid():
            data = dict(form.cleaned_data)
            ref = data.pop("client_ref", "")
            try:
                lot = stone_services.stone_lot_receive(actor=user, **data)
            except DomainError as exc:
                form_error(form, exc)
            else:
                url = reverse("stones:lot", args=[lot.pk])
                remember_done(request, ref, url)
                messages.success(request, _("Lot %(lot)s received into the vault: %(count)s "
                                            "stones, %(carats)s ct.")
                                 % {"lot": lot.number, "count": lot.count_received,
                                    "carats": lot.carats_received})
                return redirect(url)
        status = 400
    else:
        form = LotReceiveForm(initial={"client_ref": new_ref()}, sees_prices=user.sees_prices)
        status = 200
    return render(request, "materials/stone_receive.html", {"form": form}, status=status)


# ---------------------------------------------------------------------------------------------
# one lot


def _lot_or_404(user, lot_id: int) -> StoneLot:
    lot = StoneLot.objects.visible_to(user).filter(pk=lot_id).first()
    if lot is None:
        raise Http404("No such lot.")
    return lot


def _setters(user):
    return list(Workshop.objects.visible_to(user).filter(is_active=True)
                .exclude(kind=WorkshopKind.HOUSE).order_by("name"))


def _reserved_allocations(lot: StoneLot):
    return list(StoneAllocation.objects.filter(lot=lot, status=AllocationStatus.RESERVED)
                .select_related("piece").order_by("piece__serial", "id"))


BALANCE_ORDER = [LocationKind.VAULT, LocationKind.WORKSHOP, LocationKind.TRANSIT,
                 LocationKind.IN_PIECES, LocationKind.DELIVERED, LocationKind.BROKEN,
                 LocationKind.LOSS, LocationKind.DIFFERENCE, LocationKind.ADJUSTMENT]


def lot_balance_rows(lot: StoneLot, user) -> dict:
    """Where the stones of a lot are, place by place, and the check that it all adds up to
    what was received."""
    rows = [b for b in selectors.lot_balances(lot, user)
            if b.location.kind != LocationKind.SUPPLIER]
    order = {k: i for i, k in enumerate(BALANCE_ORDER)}
    rows.sort(key=lambda b: (order.get(b.location.kind, 99), b.location.name))
    for b in rows:
        b.place = _display(b.location)
    total_count = sum(b.count for b in rows)
    total_ct = services.q3(sum((b.carats for b in rows), Decimal("0")))
    return {"rows": rows, "total_count": total_count, "total_ct": total_ct,
            "adds_up": (total_count == lot.count_received
                        and total_ct == services.q3(lot.carats_received))}


def _display(location) -> str:
    from . import ledger

    return ledger.display_name(location)


def lot_context(request, lot: StoneLot, bound: dict | None = None) -> dict:
    user = request.user
    bound = bound or {}
    in_vault, in_vault_ct = selectors.lot_in_vault(lot)
    free_count, free_ct = stone_services.lot_free_in_vault(lot)
    allocations = list(StoneAllocation.objects.visible_to(user).filter(lot=lot)
                       .select_related("piece", "slip").order_by("-created_at", "-id"))
    movements = list(StoneEntry.objects.visible_to(user).filter(lot=lot)
                     .select_related("from_location", "to_location", "piece", "workshop",
                                     "actor", "slip").order_by("-occurred_at", "-id")
                     [:MOVEMENTS_SHOWN])
    for m in movements:
        m.from_name = _display(m.from_location)
        m.to_name = _display(m.to_location)
    keeper = manages_materials(user)
    context = {
        "lot": lot, "balances": lot_balance_rows(lot, user), "in_vault": in_vault,
        "in_vault_ct": in_vault_ct, "free_count": free_count, "free_ct": free_ct,
        "allocations": allocations, "movements": movements, "keeper": keeper,
        "movements_cut": len(movements) == MOVEMENTS_SHOWN,
        "sees_prices": user.sees_prices,
    }
    if keeper:
        workshops = _setters(user)
        reserved = _reserved_allocations(lot)
        context.update({
            "allocate_form": bound.get("allocate") or AllocateForm(
                initial={"client_ref": new_ref()}),
            "issue_form": bound.get("issue") or IssueForm(
                initial={"client_ref": new_ref()}, workshops=workshops, allocations=reserved),
            "breakage_form": bound.get("breakage") or BreakageForm(
                initial={"client_ref": new_ref()}, workshops=workshops),
            "open_form": next(iter(bound), None),
        })
    return context


@require_GET
@lots_only
def lot_detail(request, lot_id: int):
    lot = _lot_or_404(request.user, lot_id)
    return render(request, "materials/stone_lot.html", lot_context(request, lot))


def _redisplay(request, lot, name, form):
    return render(request, "materials/stone_lot.html",
                  lot_context(request, lot, bound={name: form}), status=400)


def _piece_by_serial(user, serial: str) -> Piece | None:
    return Piece.objects.visible_to(user).filter(serial__iexact=(serial or "").strip()).first()


@require_POST
@vault_keepers_only
def lot_allocate(request, lot_id: int):
    user = request.user
    lot = _lot_or_404(user, lot_id)
    first = done_before(request, request.POST.get("client_ref"))
    if first:
        return already_done(request, first)
    form = AllocateForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        piece = _piece_by_serial(user, data["serial"])
        if piece is None:
            form.add_error("serial", _("No piece with serial “%(serial)s”.")
                           % {"serial": data["serial"]})
        else:
            try:
                stone_services.stone_allocate(actor=user, piece_id=piece.pk, lot_id=lot.pk,
                                              count=data["count"], carats=data["carats"])
            except DomainError as exc:
                form_error(form, exc)
            else:
                url = reverse("stones:lot", args=[lot.pk])
                remember_done(request, data["client_ref"], url)
                messages.success(request, _("%(count)s stones (%(carats)s ct) reserved for "
                                            "%(serial)s.")
                                 % {"count": data["count"], "carats": data["carats"],
                                    "serial": piece.serial})
                return redirect(url)
    return _redisplay(request, lot, "allocate", form)


@require_POST
@vault_keepers_only
def allocation_release(request, lot_id: int, allocation_id: int):
    user = request.user
    lot = _lot_or_404(user, lot_id)
    if not StoneAllocation.objects.visible_to(user).filter(pk=allocation_id, lot=lot).exists():
        raise Http404("No such allocation.")
    try:
        alloc = stone_services.stone_allocation_release(actor=user, allocation_id=allocation_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The stones reserved for %(serial)s are free again.")
                         % {"serial": alloc.piece.serial})
    return redirect("stones:lot", lot_id=lot.pk)


@require_POST
@vault_keepers_only
def lot_issue(request, lot_id: int):
    user = request.user
    lot = _lot_or_404(user, lot_id)
    ref = (request.POST.get("client_ref") or "").strip()
    if ref and MaterialSlip.objects.filter(client_ref=ref, sent_by=user).exists():
        # A second tap: the first one sent the slip (and its allocations are no longer
        # reserved, so the form would not even accept them again).
        return already_done(request, reverse("stones:lot", args=[lot.pk]))
    form = IssueForm(request.POST, workshops=_setters(user),
                     allocations=_reserved_allocations(lot))
    if form.is_valid():
        data = form.cleaned_data
        stones = []
        if data["count"] or data["carats"]:
            stones = [{"lot_id": lot.pk, "count": data["count"], "carats": data["carats"]}]
        if not stones and not data["allocation_ids"]:
            form.add_error(None, _("Tick the reserved stones to issue, or give a number of "
                                   "loose stones and their carats."))
        else:
            try:
                slip = services.material_issue(
                    actor=user, workshop_id=data["workshop_id"], operation="setting",
                    stones=stones, allocation_ids=[int(a) for a in data["allocation_ids"]],
                    comment=data["comment"], client_ref=data["client_ref"] or None)
            except DomainError as exc:
                _issue_error(form, exc)
            else:
                messages.success(request, _("Slip %(slip)s sent to %(workshop)s.")
                                 % {"slip": slip.number, "workshop": slip.workshop.name})
                return redirect("stones:lot", lot_id=lot.pk)
    return _redisplay(request, lot, "issue", form)


def _issue_error(form, exc: DomainError) -> None:
    field = str((exc.details or {}).get("field") or "")
    if field.startswith("stones[") and (field.endswith(".count") or field.endswith(".carats")):
        field = field.rsplit(".", 1)[1]
    elif field.startswith("allocation_ids"):
        field = "allocation_ids"
    form.add_error(field if field in form.fields else None, exc.message)


@require_POST
@vault_keepers_only
def lot_breakage(request, lot_id: int):
    user = request.user
    lot = _lot_or_404(user, lot_id)
    first = done_before(request, request.POST.get("client_ref"))
    if first:
        return already_done(request, first)
    form = BreakageForm(request.POST, workshops=_setters(user))
    if form.is_valid():
        data = form.cleaned_data
        piece = None
        if data["serial"]:
            piece = _piece_by_serial(user, data["serial"])
            if piece is None:
                form.add_error("serial", _("No piece with serial “%(serial)s”.")
                               % {"serial": data["serial"]})
        if not form.errors:
            try:
                entry = stone_services.stone_breakage_record(
                    actor=user, workshop_id=data["workshop_id"], lot_id=lot.pk,
                    count=data["count"], carats=data["carats"], reason=data["reason"],
                    piece_id=piece.pk if piece else None, lost=data["lost"])
            except DomainError as exc:
                if (exc.details or {}).get("field") == "piece_id":
                    form.add_error("serial", exc.message)
                else:
                    form_error(form, exc)
            else:
                url = reverse("stones:lot", args=[lot.pk])
                remember_done(request, data["client_ref"], url)
                messages.success(request, breakage_message(entry.count, data["lost"]))
                return redirect(url)
    return _redisplay(request, lot, "breakage", form)


# ---------------------------------------------------------------------------------------------
# breakage rates


@require_GET
@lots_only
def breakage_rates(request):
    form = PeriodForm(request.GET or None)
    start = end = None
    if form.is_valid():
        start, end = form.cleaned_data.get("start"), form.cleaned_data.get("end")
        if start or end:
            start = start or dt.date(2000, 1, 1)
            end = end or timezone.localdate()
    rows = selectors.breakage_rates(request.user, start, end)
    labels = dict(StoneType.choices)
    for row in rows:
        row.stone_label = labels.get(row.stone_type, row.stone_type)
    totals = {"received": sum(r.received for r in rows), "broken": sum(r.broken for r in rows),
              "lost": sum(r.lost for r in rows)}
    totals["rate"] = (Decimal(totals["broken"] + totals["lost"]) * 100
                      / totals["received"]).quantize(Decimal("0.01")) \
        if totals["received"] else None
    return render(request, "materials/stone_breakage.html", {
        "form": form, "rows": rows, "totals": totals, "start": start, "end": end,
    })
