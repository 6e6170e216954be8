"""The house's pages for precious metal: balances, prices, slips, statements, stock-takes and
casting trees, under /materials/.

Thin on purpose: reads start from the models' `visible_to()` and `selectors`, every write is one
call to `services` (which has the last word on who may do what). A person whose role has no
materials pages gets a 404 (a workshop member is sent to their portal); prices and values are
only ever shown to `user.sees_prices`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etabli.accounts.models import Role, User
from etabli.core.errors import Conflict, DomainError, TransitionNotAllowed
from etabli.core.web import form_error, page_of, role_home
from etabli.production.models import Piece
from etabli.workshops.models import Operation, Workshop

from . import ledger, selectors, services, units
from .access import HOUSE_RECEIVING_ROLES, manages_materials
from .forms import (
    COUNTABLE_KINDS,
    AllowanceForm,
    AlloyForm,
    BalanceFilterForm,
    CastingIssueForm,
    CastingTreeForm,
    IssueForm,
    PeriodForm,
    PriceForm,
    PriceImportForm,
    PurchaseForm,
    ReasonForm,
    ReceiveForm,
    SlipFilterForm,
    StockTakeCountForm,
    StockTakeLocationForm,
    StockTakePostForm,
    split_serials,
)
from .models import (
    Alloy,
    CastingStatus,
    CastingTree,
    EntryKind,
    Location,
    LossAllowance,
    MaterialSlip,
    Metal,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    SlipKind,
    SlipStatus,
    StockTake,
    StockTakeStatus,
)
from .pdf import slip_pdf, statement_pdf

PER_PAGE = 50
PRICES_PER_METAL = 30
RECENT_PURCHASES = 20
MAX_IMPORT_BYTES = 2 * 1024 * 1024
SESSION_REFS = "materials_form_refs"
KEPT_REFS = 50


# ---------------------------------------------------------------------------------------------
# access


def reads_materials(user) -> bool:
    """The roles for whom `Location.visible_to` opens the whole house's ledger."""
    return bool(user.is_active and (user.is_house_wide or user.role == Role.LOGISTICS))


def house_materials_page(view):
    """login_required, then: the house's materials readers only; a workshop member is sent to
    their portal, anyone else gets a 404."""
    @login_required
    @wraps(view)
    def inner(request, *args, **kwargs):
        user = request.user
        if not reads_materials(user):
            if user.is_active and user.role == Role.WORKSHOP:
                return redirect(role_home(user))
            raise Http404("No such page.")
        return view(request, *args, **kwargs)
    return inner


def _require(condition: bool) -> None:
    if not condition:
        raise Http404("No such page.")


# ---------------------------------------------------------------------------------------------
# forms and service errors


def _form_field(name: str) -> str:
    """The form field for a service's field name (`metal[0].weight_g` → `weight_g_1`, …)."""
    if m := re.fullmatch(r"metal\[(\d+)\]\.weight_g", name):
        return f"weight_g_{int(m.group(1)) + 1}"
    if re.fullmatch(r"metal\[\d+\]\.alloy", name):
        return "alloy"
    if m := re.fullmatch(r"line (\d+)(?:\.(count|carats))?", name):
        return f"line_{m.group(1)}" + (f"_{m.group(2)}" if m.group(2) else "")
    if name.startswith("counts."):
        return "count_" + name.removeprefix("counts.")
    if name in ("piece_ids", "pieces") or name.startswith(("pieces[", "piece_ids[")):
        return "serials"
    return name


def _show(request, form, exc: DomainError) -> None:
    """A service's refusal, next to the field it names (else at the top of the form), and in
    the page's messages."""
    field = (exc.details or {}).get("field") or ""
    form_error(form, DomainError(exc.message, details={"field": _form_field(field)}))
    messages.error(request, _("Not recorded: %(why)s") % {"why": exc.message})


def _invalid(request) -> None:
    messages.error(request, _("Not recorded: check the form."))


def _once(request, ref: str | None, write):
    """Call `write()` once per form: a form sent twice (double click, back and send again)
    finds its id among the last ones this session sent and writes nothing more. For services
    that have no client_ref of their own. Returns (result or None, replayed)."""
    if not ref:
        return write(), False
    with transaction.atomic():
        # One at a time per person, and the session read again under the lock.
        User.objects.select_for_update().filter(pk=request.user.pk).first()
        stored = request.session.__class__(request.session.session_key) \
            if request.session.session_key else None
        done = list((stored.get(SESSION_REFS) if stored is not None else None)
                    or request.session.get(SESSION_REFS) or [])
        if ref in done:
            return None, True
        result = write()
        request.session[SESSION_REFS] = (done + [ref])[-KEPT_REFS:]
        request.session.save()
        return result, False


def _replayed(request) -> None:
    messages.info(request, _("Already recorded: this form had already been sent, nothing was "
                             "recorded twice."))


def _alloys():
    return list(Alloy.objects.order_by("metal", "-fineness_permille", "code"))


def _outside_workshops(user):
    return list(Workshop.objects.visible_to(user).exclude(kind="house").filter(is_active=True)
                .only("pk", "name").order_by("name"))


def _operations():
    return list(Operation.objects.order_by("position", "code"))


def _pieces_by_serial(user, text: str) -> tuple[list[int], list[str]]:
    """(ids of the pieces named, serials not found among the pieces `user` can see)."""
    serials = list(dict.fromkeys(s.upper() for s in split_serials(text)))
    found = {p.serial.upper(): p.pk for p in Piece.objects.visible_to(user)
             .filter(serial__in=serials).only("pk", "serial")}
    return [found[s] for s in serials if s in found], [s for s in serials if s not in found]


def _this_month() -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    return today.replace(day=1), today


def _period(request, default) -> tuple[PeriodForm, dt.date, dt.date]:
    form = PeriodForm(request.GET or None)
    start, end = default
    if form.is_bound and form.is_valid():
        start = form.cleaned_data.get("start") or start
        end = form.cleaned_data.get("end") or end
        if start > end:
            start, end = end, start
    elif not form.is_bound:
        form = PeriodForm(initial={"start": start, "end": end})
    return form, start, end


def _weight_title(grams) -> str:
    if grams is None:
        return ""
    c = units.conversions(grams)
    return f"{c['ozt']} oz t · {c['dwt']} dwt · {c['gr']} gr"


# ---------------------------------------------------------------------------------------------
# home: balances at any date, flags, links


@house_materials_page
def home(request):
    user = request.user
    form = BalanceFilterForm(request.GET or None)
    at = price_date = None
    if form.is_bound and form.is_valid():
        at = form.cleaned_data.get("at")
        price_date = form.cleaned_data.get("price_date")
    sees_prices = user.sees_prices
    rows = selectors.metal_balances(user, at=at, with_prices=sees_prices, price_date=price_date)
    places: list[dict] = []
    for r in rows:
        if not places or places[-1]["location"].pk != r.location.pk:
            statement_url = ""
            if r.location.workshop_id:
                statement_url = reverse("materials:statement", args=[r.location.workshop_id])
            places.append({"location": r.location, "name": ledger.display_name(r.location),
                           "statement_url": statement_url, "rows": []})
        r.title = _weight_title(r.alloy_g)
        r.fine_ozt = units.to_unit(r.fine_g, "ozt", 3)
        r.fine_dwt = units.to_unit(r.fine_g, "dwt", 2)
        places[-1]["rows"].append(r)
    prices = {}
    if sees_prices:
        prices = selectors.prices_on(price_date or (at.date() if at else None))
    totals = []
    for metal, fine_g in sorted(selectors.fine_totals_by_metal(rows).items()):
        price = prices.get(metal)
        totals.append({"metal": Metal(metal).label, "fine_g": fine_g,
                       "ozt": units.to_unit(fine_g, "ozt", 3), "title": _weight_title(fine_g),
                       "price": price, "value": selectors.value_of(fine_g, price)
                       if sees_prices else None})
    total_value = sum((t["value"] for t in totals if t["value"] is not None), Decimal("0"))
    return render(request, "materials/home.html", {
        "form": form, "at": at, "places": places, "totals": totals,
        "total_value": total_value if sees_prices and any(t["value"] for t in totals) else None,
        "sees_prices": sees_prices, "price_date": price_date or (at.date() if at else
                                                                   timezone.localdate()),
        "flags": selectors.flags(user), "manages": manages_materials(user),
        "workshops": _outside_workshops(user),
    })


# ---------------------------------------------------------------------------------------------
# prices


def _prices_context(user, form=None, import_form=None) -> dict:
    history = []
    for metal, label in Metal.choices:
        rows = list(MetalPrice.objects.filter(metal=metal).select_related("entered_by")
                    .order_by("-priced_on", "currency")[:PRICES_PER_METAL])
        history.append({"metal": label, "rows": rows})
    return {"form": form or PriceForm(initial={"priced_on": timezone.localdate()}),
            "import_form": import_form or PriceImportForm(), "history": history,
            "default_currency": settings.ETABLI_DEFAULT_CURRENCY}


@house_materials_page
def prices(request):
    """The price of a fine gram of each metal over time; add one, or import a CSV history."""
    user = request.user
    _require(user.sees_prices)
    if request.method == "POST":
        form = PriceForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                row = services.metal_price_set(actor=user, metal=d["metal"],
                                               priced_on=d["priced_on"],
                                               price_per_fine_g=d["price_per_fine_g"],
                                               currency=d["currency"], source=d["source"])
            except DomainError as exc:
                _show(request, form, exc)
            else:
                messages.success(request, _("Price of %(metal)s on %(date)s recorded.")
                                 % {"metal": row.get_metal_display(), "date": row.priced_on})
                return redirect("materials:prices")
        else:
            _invalid(request)
        return render(request, "materials/prices.html", _prices_context(user, form=form))
    return render(request, "materials/prices.html", _prices_context(user))


@house_materials_page
@require_POST
def prices_import(request):
    user = request.user
    _require(user.sees_prices)
    form = PriceImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        text = None
        if upload.size > MAX_IMPORT_BYTES:
            form.add_error("file", _("A price file is at most 2 MB."))
        else:
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                form.add_error("file", _("The file is not a text (UTF-8) CSV file."))
        if text is not None:
            try:
                n = services.metal_prices_import(actor=user, text=text,
                                                 source=_("CSV import: %(name)s")
                                                 % {"name": upload.name[:60]})
            except DomainError as exc:
                _show(request, form, exc)
            else:
                messages.success(request, _("%(n)s prices imported.") % {"n": n})
                return redirect("materials:prices")
        else:
            _invalid(request)
    else:
        _invalid(request)
    return render(request, "materials/prices.html", _prices_context(user, import_form=form))


# ---------------------------------------------------------------------------------------------
# purchases, allowances, alloys


@house_materials_page
def purchase(request):
    """Metal bought (or brought in) into the vault."""
    user = request.user
    _require(manages_materials(user))
    alloys = _alloys()
    form = PurchaseForm(request.POST or None, alloys=alloys)
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            try:
                entry, replayed = _once(request, d["client_ref"], lambda: services.metal_purchase(
                    actor=user, alloy=d["alloy"], weight_g=d["weight_g"], supplier=d["supplier"],
                    reference=d["reference"]))
            except DomainError as exc:
                _show(request, form, exc)
            else:
                if replayed:
                    _replayed(request)
                else:
                    messages.success(request, _("%(g)s g of %(alloy)s entered into the vault.")
                                     % {"g": entry.alloy_g, "alloy": entry.alloy.name})
                return redirect("materials:purchase")
        else:
            _invalid(request)
    recent = list(MetalEntry.objects.filter(kind=EntryKind.PURCHASE)
                  .select_related("alloy", "actor").order_by("-occurred_at", "-id")
                  [:RECENT_PURCHASES])
    return render(request, "materials/purchase.html", {"form": form, "recent": recent})


@house_materials_page
def allowances(request):
    """The loss allowed per operation: the house default and each workshop's own."""
    user = request.user
    manages = manages_materials(user)
    workshops = _outside_workshops(user)
    operations = _operations()
    form = AllowanceForm(request.POST or None, workshops=workshops, operations=operations)
    if request.method == "POST":
        _require(manages)
        if form.is_valid():
            d = form.cleaned_data
            try:
                row = services.loss_allowance_set(actor=user, operation=d["operation"],
                                                  percent=d["percent"],
                                                  workshop_id=d["workshop_id"])
            except DomainError as exc:
                _show(request, form, exc)
            else:
                messages.success(request, _("Allowance for %(op)s set to %(pct)s %%.")
                                 % {"op": row.operation, "pct": row.percent})
                return redirect("materials:allowances")
        else:
            _invalid(request)
    names = {o.code: _(o.name) for o in operations}
    rows = list(LossAllowance.objects.select_related("workshop")
                .order_by("operation", "workshop__name"))
    for r in rows:
        r.operation_name = names.get(r.operation, r.operation)
    return render(request, "materials/allowances.html",
                  {"form": form if manages else None, "rows": rows})


@house_materials_page
def alloys(request):
    """Alloys with their fineness and density (the density is editable: it turns a wax or a
    CAD volume into a weight)."""
    user = request.user
    manages = manages_materials(user)
    bound_code, bound_form = None, None
    if request.method == "POST":
        _require(manages)
        bound_code = request.POST.get("code", "")
        bound_form = AlloyForm(request.POST)
        if bound_form.is_valid():
            d = bound_form.cleaned_data
            try:
                alloy = services.alloy_update(actor=user, code=bound_code, name=d["name"],
                                              colour=d["colour"],
                                              density_g_cm3=d["density_g_cm3"])
            except DomainError as exc:
                _show(request, bound_form, exc)
            else:
                messages.success(request, _("%(alloy)s saved.") % {"alloy": alloy.name})
                return redirect("materials:alloys")
        else:
            _invalid(request)
    rows = _alloys()
    for a in rows:
        a.form = None
        if manages:
            a.form = bound_form if a.code == bound_code else AlloyForm(
                initial={"name": a.name, "colour": a.colour, "density_g_cm3": a.density_g_cm3},
                auto_id=f"id_{a.code}_%s")
    return render(request, "materials/alloys.html", {"alloys": rows, "manages": manages})


# ---------------------------------------------------------------------------------------------
# slips


@house_materials_page
def slip_list(request):
    user = request.user
    workshops = list(Workshop.objects.visible_to(user).exclude(kind="house")
                     .only("pk", "name").order_by("name"))
    form = SlipFilterForm(request.GET or None, workshops=workshops)
    qs = MaterialSlip.objects.visible_to(user).select_related("workshop", "issue")
    applied = {}
    if form.is_bound:
        form.is_valid()  # a bad value is shown next to its filter; the others still apply
        d = form.cleaned_data
        if d.get("status"):
            qs = qs.filter(status=d["status"])
        if d.get("kind"):
            qs = qs.filter(kind=d["kind"])
        if d.get("workshop_id"):
            qs = qs.filter(workshop_id=d["workshop_id"])
        if d.get("flagged"):
            qs = qs.filter(Q(weight_flagged=True) | Q(over_allowance=True))
        applied = {k: ("on" if v is True else v) for k, v in d.items() if v}
    page = page_of(request, qs.order_by("-sent_at", "-id"), PER_PAGE)
    return render(request, "materials/slips.html", {
        "form": form, "page": page, "query": urlencode(applied), "filtered": bool(applied),
        "manages": manages_materials(user),
    })


@house_materials_page
def slip_new(request):
    """Issue metal from the vault to a workshop, optionally for given pieces."""
    user = request.user
    _require(manages_materials(user))
    kwargs = {"workshops": _outside_workshops(user), "operations": _operations(),
              "alloys": _alloys()}
    form = IssueForm(request.POST or None, **kwargs)
    if request.method == "GET" and request.GET.get("workshop_id"):
        form = IssueForm(initial={"workshop_id": request.GET["workshop_id"],
                                  "serials": request.GET.get("serials", "")}, **kwargs)
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            piece_ids, unknown = _pieces_by_serial(user, d["serials"])
            if unknown:
                form.add_error("serials", _("No piece with serial %(serials)s.")
                               % {"serials": ", ".join(unknown)})
                _invalid(request)
            else:
                metal = [{"alloy": d["alloy"], "weight_g": d[name]}
                         for name in form.weight_lines() if d.get(name) is not None]
                try:
                    slip = services.material_issue(
                        actor=user, workshop_id=d["workshop_id"], operation=d["operation"],
                        metal=metal, piece_ids=piece_ids, comment=d["comment"],
                        client_ref=d["client_ref"] or None)
                except DomainError as exc:
                    _show(request, form, exc)
                else:
                    messages.success(request, _("Slip %(slip)s issued to %(ws)s.")
                                     % {"slip": slip.number, "ws": slip.workshop.name})
                    return redirect("materials:slip", slip_id=slip.pk)
        else:
            _invalid(request)
    return render(request, "materials/slip_new.html", {"form": form})


def _slip_or_404(user, slip_id: int) -> MaterialSlip:
    slip = (MaterialSlip.objects.visible_to(user)
            .select_related("workshop", "issue", "casting_tree", "from_location", "to_location",
                            "sent_by", "received_by")
            .filter(pk=slip_id).first())
    if slip is None:
        raise Http404("No such slip.")
    return slip


def _lines(slip: MaterialSlip) -> list:
    lines = list(slip.lines.select_related("alloy", "piece", "lot"))
    for ln in lines:
        ln.difference_g = None
        if ln.weight_received_g is not None and ln.weight_sent_g is not None:
            ln.difference_g = ln.weight_received_g - ln.weight_sent_g
        ln.title = _weight_title(ln.weight_sent_g)
    return lines


def _job(slip: MaterialSlip) -> dict | None:
    """An issue's figures: issued, returned in pieces and scrap, what remains (the loss once
    settled) against the allowance."""
    if slip.kind != SlipKind.ISSUE or slip.status == SlipStatus.CANCELLED:
        return None
    figures = services.job_figures(slip)
    pct = services.allowance_percent(slip.workshop, slip.operation)
    allowance_g = slip.allowance_g
    if allowance_g is None and pct is not None:
        allowance_g = (figures["issued_g"] * pct / 100).quantize(Decimal("0.001"))
    loss_g = slip.loss_g if slip.settled_at else figures["remaining_g"]
    return figures | {
        "percent": pct, "allowance_g": allowance_g, "loss_g": loss_g,
        "loss_percent": (loss_g * 100 / figures["issued_g"]).quantize(Decimal("0.01"))
        if figures["issued_g"] else None,
        "over": (slip.over_allowance if slip.settled_at
                 else allowance_g is not None and loss_g > allowance_g),
        "settled": slip.settled_at is not None,
        "returns": list(slip.returns.order_by("sent_at", "id")),
    }


def _slip_context(request, slip: MaterialSlip, *, receive_form=None, cancel_form=None) -> dict:
    user = request.user
    manages = manages_materials(user)
    lines = _lines(slip)
    can_receive = (slip.kind == SlipKind.RETURN and slip.status == SlipStatus.SENT
                   and user.role in HOUSE_RECEIVING_ROLES)
    can_cancel = slip.status == SlipStatus.SENT and manages and slip.kind != SlipKind.REFINER
    can_settle = (slip.kind == SlipKind.ISSUE and slip.status == SlipStatus.RECEIVED
                  and slip.settled_at is None and manages)
    return {
        "slip": slip, "lines": lines, "job": _job(slip),
        "pieces": list(slip.pieces.order_by("serial").only("pk", "serial")),
        "from_name": ledger.display_name(slip.from_location),
        "to_name": ledger.display_name(slip.to_location),
        "receive_form": (receive_form or ReceiveForm(lines=lines)) if can_receive else None,
        "cancel_form": (cancel_form or ReasonForm()) if can_cancel else None,
        "can_settle": can_settle,
        "tolerance_g": services._tolerance_g(),
    }


@login_required
def slip_page(request, slip_id: int):
    """A slip: lines sent and received with their differences, the job's figures for an issue,
    and what the reader may do with it. The slip's QR code leads here."""
    user = request.user
    if not reads_materials(user):
        if user.is_active and user.role == Role.WORKSHOP \
                and MaterialSlip.objects.visible_to(user).filter(pk=slip_id).exists():
            for name in ("workshop_materials:slip",):
                try:
                    return redirect(reverse(name, args=[slip_id]))
                except NoReverseMatch:
                    continue
            return redirect(role_home(user))
        if user.is_active and user.role == Role.WORKSHOP:
            return redirect(role_home(user))
        raise Http404("No such page.")
    slip = _slip_or_404(user, slip_id)
    return render(request, "materials/slip.html", _slip_context(request, slip))


@house_materials_page
@require_POST
def slip_receive(request, slip_id: int):
    """The house weighs what came back on a return slip and confirms it."""
    user = request.user
    slip = _slip_or_404(user, slip_id)
    lines = list(slip.lines.select_related("alloy", "piece", "lot"))
    form = ReceiveForm(request.POST, lines=lines)
    if form.is_valid():
        try:
            services.material_slip_receive(actor=user, slip_id=slip.pk,
                                           lines=form.line_payload(),
                                           comment=form.cleaned_data["comment"])
        except Conflict as exc:
            if exc.code != "already_received":
                _show(request, form, exc)
            else:
                _replayed(request)
                return redirect("materials:slip", slip_id=slip.pk)
        except DomainError as exc:
            _show(request, form, exc)
        else:
            slip.refresh_from_db()
            if slip.weight_flagged:
                messages.warning(request, _("Slip %(slip)s received with a weight difference "
                                            "beyond tolerance: it is flagged.")
                                 % {"slip": slip.number})
            else:
                messages.success(request, _("Slip %(slip)s received.") % {"slip": slip.number})
            return redirect("materials:slip", slip_id=slip.pk)
    else:
        _invalid(request)
    slip = _slip_or_404(user, slip_id)
    return render(request, "materials/slip.html",
                  _slip_context(request, slip, receive_form=form))


@house_materials_page
@require_POST
def slip_cancel(request, slip_id: int):
    user = request.user
    slip = _slip_or_404(user, slip_id)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.material_slip_cancel(actor=user, slip_id=slip.pk,
                                          reason=form.cleaned_data["reason"])
        except TransitionNotAllowed as exc:
            if slip.status == SlipStatus.CANCELLED:
                _replayed(request)
                return redirect("materials:slip", slip_id=slip.pk)
            _show(request, form, exc)
        except DomainError as exc:
            _show(request, form, exc)
        else:
            messages.success(request, _("Slip %(slip)s cancelled.") % {"slip": slip.number})
            return redirect("materials:slip", slip_id=slip.pk)
    else:
        _invalid(request)
    return render(request, "materials/slip.html",
                  _slip_context(request, slip, cancel_form=form))


@house_materials_page
@require_POST
def slip_settle(request, slip_id: int):
    """Close the job: what the workshop still holds of it is booked as its loss."""
    user = request.user
    slip = _slip_or_404(user, slip_id)
    try:
        slip = services.material_issue_settle(actor=user, issue_id=slip.pk)
    except Conflict as exc:
        if exc.code == "already_settled":
            _replayed(request)
        else:
            messages.error(request, _("Not recorded: %(why)s") % {"why": exc.message})
    except DomainError as exc:
        messages.error(request, _("Not recorded: %(why)s") % {"why": exc.message})
    else:
        messages.success(request, _("Slip %(slip)s settled: %(loss)s g lost.")
                         % {"slip": slip.number, "loss": slip.loss_g})
    return redirect("materials:slip", slip_id=slip.pk)


@login_required
def slip_print(request, slip_id: int):
    """The printable slip (anyone who can see the slip; no prices on it)."""
    slip = _slip_or_404(request.user, slip_id)
    url = request.build_absolute_uri(reverse("materials:slip", args=[slip.pk]))
    pdf = slip_pdf(request, slip=slip, lines=_lines(slip), url=url,
                   from_name=ledger.display_name(slip.from_location),
                   to_name=ledger.display_name(slip.to_location),
                   pieces=list(slip.pieces.order_by("serial").only("serial")))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="slip-{slip.number}.pdf"'
    return response


# ---------------------------------------------------------------------------------------------
# workshop statements and losses


def _statement(request, workshop_id: int):
    user = request.user
    workshop = Workshop.objects.visible_to(user).exclude(kind="house").filter(
        pk=workshop_id).first()
    if workshop is None:
        raise Http404("No such workshop.")
    form, start, end = _period(request, _this_month())
    statement = selectors.workshop_statement(workshop, start, end)
    for ln in statement.lines:
        fine = ln.alloy.fine_weight_g
        ln.fine = {"opening": fine(ln.opening_g), "issued": fine(ln.issued_g),
                   "pieces": fine(ln.returned_pieces_g), "scrap": fine(ln.returned_scrap_g),
                   "loss": fine(ln.loss_g), "other": fine(ln.other_g)}
        ln.closing_title = _weight_title(ln.closing_g)
    for job in statement.jobs:
        job.loss_percent = None
        issued = job.loss_g is not None and services.job_figures(job)["issued_g"]
        if issued:
            job.loss_percent = (job.loss_g * 100 / issued).quantize(Decimal("0.01"))
    return {"workshop": workshop, "statement": statement, "form": form, "start": start,
            "end": end, "query": urlencode({"start": start, "end": end}),
            "printed_at": timezone.localtime()}


@house_materials_page
def statement(request, workshop_id: int):
    """A workshop's metal over a period, per alloy: opening, issued, returned in pieces and as
    scrap, loss, closing; its settled jobs against their allowances; slips in transit."""
    return render(request, "materials/statement.html", _statement(request, workshop_id))


@house_materials_page
def statement_print(request, workshop_id: int):
    context = _statement(request, workshop_id)
    pdf = statement_pdf(request, context)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (f'inline; filename="statement-{context["workshop"].code}-'
                                       f'{context["start"]}-{context["end"]}.pdf"')
    return response


@house_materials_page
def losses(request):
    """Settled jobs per workshop and operation: metal issued, lost, allowed."""
    today = timezone.localdate()
    form, start, end = _period(request, (today.replace(month=1, day=1), today))
    rows = selectors.losses_by_workshop(request.user, start, end)
    names = {o.code: _(o.name) for o in _operations()}
    for r in rows:
        r.operation_name = names.get(r.operation, r.operation or "—")
        r.over_limit = r.loss_g > r.allowance_g if r.allowance_g else False
    return render(request, "materials/losses.html", {"form": form, "rows": rows, "start": start,
                                                      "end": end})


# ---------------------------------------------------------------------------------------------
# stock-takes


def _countable_locations(user):
    locs = list(Location.objects.visible_to(user).filter(kind__in=COUNTABLE_KINDS)
                .order_by("kind", "name"))
    return [(loc, ledger.display_name(loc)) for loc in locs]


@house_materials_page
def stock_takes(request):
    takes = (StockTake.objects.visible_to(request.user)
             .select_related("location", "counted_by", "posted_by")
             .annotate(n_lines=Count("lines")).order_by("-counted_at", "-id"))
    page = page_of(request, takes, PER_PAGE)
    for t in page.object_list:
        t.place = ledger.display_name(t.location)
    return render(request, "materials/stock_takes.html", {
        "page": page, "manages": manages_materials(request.user)})


@house_materials_page
def stock_take_new(request):
    """Count a place: one weight per alloy, the book figure beside it."""
    user = request.user
    _require(manages_materials(user))
    locations = _countable_locations(user)
    raw_loc = request.POST.get("location_id") if request.method == "POST" \
        else request.GET.get("location_id")
    loc = None
    try:
        loc = next((x for x, _label in locations if x.pk == int(raw_loc or "")), None)
    except ValueError:
        loc = None
    if loc is None:
        return render(request, "materials/stock_take_new.html", {
            "choose": StockTakeLocationForm(locations=locations), "form": None})
    book = {b.alloy_id: b.alloy_g for b in MetalBalance.objects.filter(location=loc)}
    alloys = _alloys()
    form = StockTakeCountForm(request.POST or None, alloys=alloys, book=book,
                              initial={"location_id": loc.pk})
    if request.method == "POST":
        if form.is_valid():
            counts = form.counts()
            ref = request.POST.get("client_ref") or None
            try:
                take, replayed = _once(request, ref, lambda: services.stock_take_create(
                    actor=user, location_id=loc.pk, counts=counts))
            except DomainError as exc:
                _show(request, form, exc)
            else:
                if replayed:
                    _replayed(request)
                    return redirect("materials:stock_takes")
                messages.success(request, _("Count %(n)s recorded: check the differences, then "
                                            "post it.") % {"n": take.number})
                return redirect("materials:stock_take", take_id=take.pk)
        else:
            _invalid(request)
    return render(request, "materials/stock_take_new.html", {
        "form": form, "location": loc, "place": ledger.display_name(loc),
        "client_ref": request.POST.get("client_ref") or uuid.uuid4().hex})


def _take_or_404(user, take_id: int) -> StockTake:
    take = (StockTake.objects.visible_to(user).select_related("location", "counted_by",
                                                              "posted_by")
            .filter(pk=take_id).first())
    if take is None:
        raise Http404("No such stock-take.")
    return take


def _take_context(request, take, form=None) -> dict:
    lines = list(take.lines.select_related("alloy"))
    can_post = take.status == StockTakeStatus.DRAFT and manages_materials(request.user)
    return {"take": take, "lines": lines, "place": ledger.display_name(take.location),
            "form": (form or StockTakePostForm()) if can_post else None,
            "differs": any(ln.difference_g for ln in lines)}


@house_materials_page
def stock_take(request, take_id: int):
    take = _take_or_404(request.user, take_id)
    return render(request, "materials/stock_take.html", _take_context(request, take))


@house_materials_page
@require_POST
def stock_take_post(request, take_id: int):
    user = request.user
    take = _take_or_404(user, take_id)
    form = StockTakePostForm(request.POST)
    if form.is_valid():
        try:
            services.stock_take_post(actor=user, stock_take_id=take.pk,
                                     reason=form.cleaned_data["reason"])
        except Conflict as exc:
            if exc.code == "already_posted":
                _replayed(request)
                return redirect("materials:stock_take", take_id=take.pk)
            _show(request, form, exc)
        except DomainError as exc:
            _show(request, form, exc)
        else:
            messages.success(request, _("Stock-take %(n)s posted.") % {"n": take.number})
            return redirect("materials:stock_take", take_id=take.pk)
    else:
        _invalid(request)
    return render(request, "materials/stock_take.html", _take_context(request, take, form))


# ---------------------------------------------------------------------------------------------
# casting trees


@house_materials_page
def casting_list(request):
    trees = (CastingTree.objects.visible_to(request.user).select_related("alloy", "workshop")
             .annotate(n_pieces=Count("pieces")).order_by("-created_at", "-id"))
    page = page_of(request, trees, PER_PAGE)
    return render(request, "materials/casting_trees.html", {
        "page": page, "manages": manages_materials(request.user)})


@house_materials_page
def casting_new(request):
    """A new tree: caster, alloy, pieces, wax weight; shows the metal needed before saving."""
    user = request.user
    _require(manages_materials(user))
    alloys = _alloys()
    form = CastingTreeForm(request.POST or None, workshops=_outside_workshops(user),
                           alloys=alloys)
    needed = None
    client_ref = request.POST.get("client_ref") or uuid.uuid4().hex
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            alloy = next(a for a in alloys if a.code == d["alloy"])
            if d["wax_density_g_cm3"] > 0 and d["wax_weight_g"] > 0:
                needed = services.casting_metal_needed(
                    wax_weight_g=d["wax_weight_g"], alloy=alloy,
                    wax_density=d["wax_density_g_cm3"],
                    sprue_allowance_percent=d["sprue_allowance_percent"])
            piece_ids, unknown = _pieces_by_serial(user, d["serials"])
            if unknown:
                form.add_error("serials", _("No piece with serial %(serials)s.")
                               % {"serials": ", ".join(unknown)})
                _invalid(request)
            elif "preview" not in request.POST:
                try:
                    tree, replayed = _once(
                        request, client_ref, lambda: services.casting_tree_create(
                            actor=user, workshop_id=d["workshop_id"], alloy=d["alloy"],
                            piece_ids=piece_ids, wax_weight_g=d["wax_weight_g"],
                            wax_density_g_cm3=d["wax_density_g_cm3"],
                            sprue_allowance_percent=d["sprue_allowance_percent"],
                            comment=d["comment"]))
                except DomainError as exc:
                    _show(request, form, exc)
                else:
                    if replayed:
                        _replayed(request)
                        return redirect("materials:casting_trees")
                    messages.success(request, _("Tree %(n)s planned: %(g)s g of %(alloy)s "
                                                "needed.") % {"n": tree.number,
                                                              "g": tree.metal_needed_g,
                                                              "alloy": tree.alloy.name})
                    return redirect("materials:casting_tree", tree_id=tree.pk)
        else:
            _invalid(request)
    return render(request, "materials/casting_new.html", {
        "form": form, "needed": needed, "client_ref": client_ref,
        "needed_title": _weight_title(needed)})


def _tree_or_404(user, tree_id: int) -> CastingTree:
    tree = (CastingTree.objects.visible_to(user).select_related("alloy", "workshop", "created_by")
            .filter(pk=tree_id).first())
    if tree is None:
        raise Http404("No such casting tree.")
    return tree


def _tree_context(request, tree, issue_form=None) -> dict:
    slips = list(tree.slips.select_related("workshop").order_by("sent_at", "id"))
    issue = next((s for s in slips if s.kind == SlipKind.ISSUE
                  and s.status != SlipStatus.CANCELLED), None)
    can_issue = tree.status == CastingStatus.PLANNED and manages_materials(request.user)
    returned = None
    if tree.good_pieces_g is not None:
        returned = (tree.good_pieces_g or 0) + (tree.button_g or 0) + (tree.scrap_g or 0)
    return {"tree": tree, "pieces": list(tree.pieces.order_by("serial")
                                         .select_related("line").only("pk", "serial",
                                                                      "line__description")),
            "slips": slips, "issue": issue, "job": _job(issue) if issue else None,
            "issue_form": (issue_form or CastingIssueForm()) if can_issue else None,
            "returned_g": returned,
            "lost_g": (tree.issued_g - returned) if returned is not None and tree.issued_g
            else None,
            "needed_title": _weight_title(tree.metal_needed_g)}


@house_materials_page
def casting_tree(request, tree_id: int):
    tree = _tree_or_404(request.user, tree_id)
    return render(request, "materials/casting_tree.html", _tree_context(request, tree))


@house_materials_page
@require_POST
def casting_issue(request, tree_id: int):
    user = request.user
    tree = _tree_or_404(user, tree_id)
    form = CastingIssueForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            slip = services.casting_tree_issue(actor=user, tree_id=tree.pk,
                                               weight_g=d["weight_g"],
                                               client_ref=d["client_ref"] or None)
        except DomainError as exc:
            _show(request, form, exc)
        else:
            messages.success(request, _("Slip %(slip)s issued to %(ws)s for tree %(tree)s.")
                             % {"slip": slip.number, "ws": tree.workshop.name,
                                "tree": tree.number})
            return redirect("materials:casting_tree", tree_id=tree.pk)
    else:
        _invalid(request)
    return render(request, "materials/casting_tree.html", _tree_context(request, tree, form))
