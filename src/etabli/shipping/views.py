"""Delivery pages: the shipments (pieces ready, shipments by status, open follow-ups), one
shipment (prepare, pack, ship, deliver), one order's delivery (invoice, documents, reception
for the client, follow-ups), and the printed documents.

Thin on purpose: reads start from `visible_to` (through `selectors`), every write is one
service call, and a refusal is shown next to the field it is about.
"""

from __future__ import annotations

import uuid
from functools import wraps
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from etabli.core.errors import DomainError, NotFound, ValidationFailed
from etabli.core.printing import pdf_response
from etabli.core.web import form_error, page_of
from etabli.orders.models import Order

from . import documents, invoicing, reception, selectors, services
from .access import handles_receptions, runs_shipments, sees_shipments
from .forms import (
    AddPiecesForm,
    AmountsForm,
    CancelForm,
    DeliverForm,
    InvoicePricesForm,
    PackForm,
    ReceptionForm,
    ResolveForm,
    ShipForm,
    ShipmentEditForm,
    ShipmentForm,
)
from .models import Invoice, Shipment, ShipmentStatus

STATUS_TABS = [("", None), ("prepared", ShipmentStatus.PREPARED),
               ("shipped", ShipmentStatus.SHIPPED), ("delivered", ShipmentStatus.DELIVERED),
               ("cancelled", ShipmentStatus.CANCELLED)]
READY_SHOWN = 100
ON_THEIR_WAY_SHOWN = 20


def house_only(view):
    """The house roles that see shipments; anyone else is told the page does not exist."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not sees_shipments(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def _new_ref() -> str:
    return uuid.uuid4().hex


def _order_or_404(user, order_id: int) -> Order:
    order = Order.objects.visible_to(user).select_related("client").filter(pk=order_id).first()
    if order is None:
        raise Http404("No such order.")
    return order


# ---------------------------------------------------------------------------------------------
# the shipments


@require_GET
@house_only
def shipment_list(request):
    user = request.user
    status = request.GET.get("status", "")
    if status not in dict(STATUS_TABS):
        status = ""
    q = (request.GET.get("q") or "").strip()[:100]
    filters = selectors.ShipmentFilters(status=dict(STATUS_TABS)[status] or None, q=q or None)
    page = page_of(request, selectors.shipment_list(user, filters))
    ready = list(selectors.ready_pieces(user)[:READY_SHOWN + 1])
    groups: dict[int, dict] = {}
    for piece in ready[:READY_SHOWN]:
        groups.setdefault(piece.order_id, {"order": piece.order, "pieces": []})["pieces"] \
            .append(piece)
    on_their_way = list(selectors.pieces_on_their_way(user)[:ON_THEIR_WAY_SHOWN])
    return render(request, "shipping/list.html", {
        "page": page, "status": status, "q": q, "tabs": STATUS_TABS,
        "query": urlencode({k: v for k, v in (("status", status), ("q", q)) if v}),
        "ready_groups": list(groups.values()), "ready_cut": len(ready) > READY_SHOWN,
        "on_their_way": on_their_way, "follow_ups": list(selectors.open_follow_ups(user)[:50]),
        "can_ship": runs_shipments(user),
    })


@require_http_methods(["GET", "POST"])
@house_only
def shipment_new(request, order_id: int):
    user = request.user
    if not runs_shipments(user):
        raise Http404("No such page.")
    order = _order_or_404(user, order_id)
    pieces = list(selectors.ready_pieces(user).filter(order=order))
    form_kwargs = {"pieces": pieces, "sees_prices": user.sees_prices}
    if request.method == "POST":
        ref = (request.POST.get("client_ref") or "").strip()
        done = Shipment.objects.visible_to(user).filter(client_ref=ref, order=order).first() \
            if ref else None
        if done is not None:  # the same form sent again: its pieces are on that shipment now
            messages.info(request, _("Already recorded: nothing was done twice."))
            return redirect("shipping:shipment", shipment_id=done.pk)
        form = ShipmentForm(request.POST, **form_kwargs)
        if form.is_valid():
            data = form.cleaned_data
            try:
                shipment = services.shipment_create(
                    actor=user, order_id=order.pk, piece_ids=[int(i) for i in data["pieces"]],
                    method=data["method"], carrier=data["carrier"],
                    tracking_number=data["tracking_number"], address=data["address"] or None,
                    signature_required=data["signature_required"],
                    neutral_outer_packaging=data["neutral_outer_packaging"], note=data["note"],
                    declared_value=data.get("declared_value"),
                    insurance_value=data.get("insurance_value"),
                    client_ref=data["client_ref"] or None)
            except DomainError as exc:
                form_error(form, _field_alias(exc, {"piece_ids": "pieces"}))
            except IntegrityError:
                form.add_error(None, _("Another shipment took one of these pieces at the same "
                                       "time; reload and try again."))
            else:
                if shipment.replayed:
                    messages.info(request, _("Already recorded: nothing was done twice."))
                else:
                    messages.success(request, _("Shipment %(number)s prepared.")
                                     % {"number": shipment.number})
                return redirect("shipping:shipment", shipment_id=shipment.pk)
    else:
        form = ShipmentForm(initial={"client_ref": _new_ref(), "signature_required": True,
                                     "neutral_outer_packaging": True,
                                     "pieces": [str(p.pk) for p in pieces]}, **form_kwargs)
    return render(request, "shipping/new.html", {"order": order, "form": form,
                                                 "pieces": pieces})


def _field_alias(exc: DomainError, aliases: dict[str, str]) -> DomainError:
    field = (exc.details or {}).get("field")
    if field in aliases:
        exc.details = (exc.details or {}) | {"field": aliases[field]}
    return exc


def _shipment_or_404(user, shipment_id: int):
    shipment = selectors.shipment_get(user, shipment_id)
    if shipment is None:
        raise Http404("No such shipment.")
    return shipment


def shipment_context(request, shipment, bound: dict | None = None) -> dict:
    user = request.user
    bound = bound or {}
    items = shipment.active_items
    prepared = shipment.status == ShipmentStatus.PREPARED
    can = runs_shipments(user)
    ready = list(selectors.ready_pieces(user).filter(order_id=shipment.order_id)) \
        if can and prepared else []
    ctx = {
        "shipment": shipment, "order": shipment.order, "items": items,
        "can_ship": can, "prepared": prepared, "sees_prices": user.sees_prices,
        "show_slip": documents.slip_visible(user, shipment)
        and shipment.status != ShipmentStatus.CANCELLED,
        "all_packed": bool(items) and all(i.is_packed for i in items),
    }
    if can and prepared:
        ctx["pack_form"] = bound.get("pack") or PackForm(
            items=items, initial={"neutral_outer_packaging": shipment.neutral_outer_packaging})
        ctx["add_form"] = bound.get("add") or (AddPiecesForm(pieces=ready) if ready else None)
        ctx["edit_form"] = bound.get("edit") or ShipmentEditForm(initial={
            "method": shipment.method, "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number, "address": shipment.address,
            "signature_required": shipment.signature_required,
            "neutral_outer_packaging": shipment.neutral_outer_packaging,
            "note": shipment.note})
        ctx["cancel_form"] = bound.get("cancel") or CancelForm()
        if not shipment.is_pickup:
            ctx["ship_form"] = bound.get("ship") or ShipForm(initial={
                "carrier": shipment.carrier, "tracking_number": shipment.tracking_number})
    if can and (shipment.status == ShipmentStatus.SHIPPED
                or (prepared and shipment.is_pickup)):
        ctx["deliver_form"] = bound.get("deliver") or DeliverForm()
    if user.sees_prices and prepared:
        ctx["amounts_form"] = bound.get("amounts") or AmountsForm(initial={
            "declared_value": shipment.declared_value,
            "insurance_value": shipment.insurance_value})
    return ctx


@require_GET
@house_only
def shipment_detail(request, shipment_id: int):
    shipment = _shipment_or_404(request.user, shipment_id)
    return render(request, "shipping/shipment.html", shipment_context(request, shipment))


ACTIONS = {"pack", "add", "remove", "edit", "amounts", "ship", "deliver", "cancel"}
DONE = {
    "pack": gettext_lazy("Packaging recorded."), "add": gettext_lazy("Pieces added."),
    "remove": gettext_lazy("Piece taken off."), "edit": gettext_lazy("Shipment updated."),
    "amounts": gettext_lazy("Amounts updated."),
    "ship": gettext_lazy("Shipment %(number)s shipped."),
    "deliver": gettext_lazy("Shipment %(number)s delivered."),
    "cancel": gettext_lazy("Shipment %(number)s cancelled."),
}


def _run_action(user, shipment, action: str, form) -> None:
    data = form.cleaned_data
    sid = shipment.pk
    if action == "pack":
        packed = form.packed()
        if form.errors:
            return
        services.shipment_pack(actor=user, shipment_id=sid, pieces=packed,
                               neutral_outer_packaging=data["neutral_outer_packaging"])
    elif action == "add":
        services.shipment_add_pieces(actor=user, shipment_id=sid,
                                     piece_ids=[int(i) for i in data["pieces"]])
    elif action == "edit":
        services.shipment_update(actor=user, shipment_id=sid, **data)
    elif action == "amounts":
        services.shipment_update(actor=user, shipment_id=sid, **data)
    elif action == "ship":
        services.shipment_ship(actor=user, shipment_id=sid, carrier=data["carrier"],
                               tracking_number=data["tracking_number"])
    elif action == "deliver":
        services.shipment_deliver(actor=user, shipment_id=sid, signed_by=data["signed_by"],
                                  comment=data["comment"])
    elif action == "cancel":
        services.shipment_cancel(actor=user, shipment_id=sid, reason=data["reason"])


def _action_form(action: str, data, shipment, user):
    if action == "pack":
        return PackForm(data, items=shipment.active_items)
    if action == "add":
        ready = selectors.ready_pieces(user).filter(order_id=shipment.order_id)
        return AddPiecesForm(data, pieces=list(ready))
    return {"edit": ShipmentEditForm, "amounts": AmountsForm, "ship": ShipForm,
            "deliver": DeliverForm, "cancel": CancelForm}[action](data)


@require_POST
@house_only
def shipment_action(request, shipment_id: int, action: str):
    if action not in ACTIONS:
        raise Http404("No such action.")
    user = request.user
    shipment = _shipment_or_404(user, shipment_id)
    if action == "remove":
        try:
            piece_id = int(request.POST.get("piece_id", ""))
            services.shipment_remove_piece(actor=user, shipment_id=shipment.pk,
                                           piece_id=piece_id)
        except (ValueError, OverflowError):
            messages.error(request, _("Not recorded: choose a piece."))
        except DomainError as exc:
            messages.error(request, _("Not recorded: %(why)s") % {"why": exc.message})
        else:
            messages.success(request, str(DONE["remove"]))
        return redirect("shipping:shipment", shipment_id=shipment.pk)
    form = _action_form(action, request.POST, shipment, user)
    if form.is_valid():
        try:
            _run_action(user, shipment, action, form)
        except DomainError as exc:
            form_error(form, _field_alias(exc, {"piece_ids": "pieces"}))
        except IntegrityError:
            form.add_error(None, _("This change clashes with another one made at the same "
                                   "time; reload and try again."))
        else:
            if not form.errors:
                messages.success(request, str(DONE[action]) % {"number": shipment.number})
                return redirect("shipping:shipment", shipment_id=shipment.pk)
    if not any(name != "__all__" for name in form.errors):
        # Nothing to correct in the form: the shipment's state or the role refused it (the
        # form may not even be on the page any more).
        messages.error(request, _("Not recorded: %(why)s")
                       % {"why": " ".join(str(e) for e in form.non_field_errors())})
        return redirect("shipping:shipment", shipment_id=shipment.pk)
    shipment = _shipment_or_404(user, shipment_id)
    return render(request, "shipping/shipment.html",
                  shipment_context(request, shipment, bound={action: form}))


# ---------------------------------------------------------------------------------------------
# one order's delivery: invoice, documents, reception, follow-ups


def order_context(request, order: Order, bound: dict | None = None) -> dict:
    user = request.user
    bound = bound or {}
    data = selectors.order_delivery(user, order)
    pieces = list(order.pieces.select_related("line").order_by("serial"))
    ctx = {"order": order, "delivery": data, "pieces": pieces,
           "documents": documents.order_documents(user, order, data.shipments, data.invoice),
           "can_ship": runs_shipments(user), "sees_prices": user.sees_prices,
           "can_receive": handles_receptions(user) and data.reception is None
           and order.status == "delivered",
           "can_resolve": handles_receptions(user)}
    if ctx["can_receive"]:
        ctx["reception_form"] = bound.get("reception") or ReceptionForm(pieces=pieces,
                                                                        on_behalf=True)
    if ctx["can_resolve"]:
        ctx["resolve_forms"] = {f.pk: bound.get(("resolve", f.pk)) or ResolveForm(
            prefix=f"f{f.pk}") for f in data.open_follow_ups}
        for f in data.follow_ups:
            f.resolve_form = ctx["resolve_forms"].get(f.pk)
    return ctx


@require_GET
@house_only
def order_delivery(request, order_id: int):
    order = _order_or_404(request.user, order_id)
    return render(request, "shipping/order.html", order_context(request, order))


@require_POST
@house_only
def order_reception(request, order_id: int):
    user = request.user
    order = _order_or_404(user, order_id)
    pieces = list(order.pieces.select_related("line").order_by("serial"))
    form = ReceptionForm(request.POST, pieces=pieces, on_behalf=True)
    if form.is_valid():
        try:
            reception.reception_record(actor=user, order_id=order.pk,
                                       outcome=form.cleaned_data["outcome"],
                                       note=form.cleaned_data["note"],
                                       reservations=form.reservations())
        except DomainError as exc:
            form_error(form, _field_alias(exc, {"reservations": "reservation"}))
        else:
            messages.success(request, _("Reception of order %(ref)s recorded.")
                             % {"ref": order.reference})
            return redirect("shipping:order", order_id=order.pk)
    order.refresh_from_db()
    return render(request, "shipping/order.html",
                  order_context(request, order, bound={"reception": form}))


@require_POST
@house_only
def follow_up_resolve(request, follow_up_id: int):
    user = request.user
    from .models import FollowUp

    follow_up = FollowUp.objects.visible_to(user).filter(pk=follow_up_id).first()
    if follow_up is None:
        raise Http404("No such follow-up.")
    form = ResolveForm(request.POST, prefix=f"f{follow_up.pk}")
    if form.is_valid():
        try:
            reception.follow_up_resolve(actor=user, follow_up_id=follow_up.pk,
                                        resolution=form.cleaned_data["resolution"])
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, _("Follow-up resolved."))
            return redirect("shipping:order", order_id=follow_up.order_id)
    order = _order_or_404(user, follow_up.order_id)
    return render(request, "shipping/order.html",
                  order_context(request, order, bound={("resolve", follow_up.pk): form}))


# ---------------------------------------------------------------------------------------------
# the invoice


def _prices_only(user) -> None:
    if not user.sees_prices:
        raise Http404("No such page.")


def invoice_context(request, order: Order, invoice: Invoice | None, form=None) -> dict:
    ctx = {"order": order, "invoice": invoice, "figures": None, "form": form}
    if invoice is not None:
        ctx["figures"] = invoicing.figures(invoice)
        if not invoice.is_issued and form is None:
            ctx["form"] = InvoicePricesForm(lines=ctx["figures"].lines)
    return ctx


@require_GET
@house_only
def invoice_page(request, order_id: int):
    _prices_only(request.user)
    order = _order_or_404(request.user, order_id)
    invoice = Invoice.objects.filter(order=order).first()
    return render(request, "shipping/invoice.html", invoice_context(request, order, invoice))


@require_POST
@house_only
def invoice_action(request, order_id: int, action: str):
    user = request.user
    _prices_only(user)
    order = _order_or_404(user, order_id)
    if action not in ("prepare", "prices", "issue"):
        raise Http404("No such action.")
    invoice = Invoice.objects.filter(order=order).first()
    form = None
    try:
        if action == "prepare":
            invoicing.invoice_prepare(actor=user, order_id=order.pk)
            messages.success(request, _("Draft invoice prepared."))
            return redirect("shipping:invoice", order_id=order.pk)
        if invoice is None:
            raise NotFound(_("Prepare the invoice first."))
        if action == "prices":
            form = InvoicePricesForm(request.POST, lines=invoicing.figures(invoice).lines)
            if form.is_valid():
                try:
                    invoicing.invoice_prices_set(
                        actor=user, invoice_id=invoice.pk,
                        prices={line.pk: form.cleaned_data[field.name]
                                for line, field in form.rows})
                except ValidationFailed as exc:
                    errors = exc.details.get("errors") or {}
                    for line, field in form.rows:
                        if str(line.pk) in errors:
                            form.add_error(field.name, errors[str(line.pk)])
                    if not form.errors:
                        raise
                else:
                    messages.success(request, _("Prices saved."))
                    return redirect("shipping:invoice", order_id=order.pk)
        else:
            invoice = invoicing.invoice_issue(actor=user, invoice_id=invoice.pk)
            messages.success(request, _("Invoice %(number)s issued.")
                             % {"number": invoice.number})
            return redirect("shipping:invoice", order_id=order.pk)
    except DomainError as exc:
        messages.error(request, _("Not recorded: %(why)s") % {"why": exc.message})
        if form is None:
            return redirect("shipping:invoice", order_id=order.pk)
    invoice = Invoice.objects.filter(order=order).first()
    return render(request, "shipping/invoice.html",
                  invoice_context(request, order, invoice, form))


# ---------------------------------------------------------------------------------------------
# the printed documents (house and client alike: `documents` says who may read which)


def _or_404(get, *args):
    try:
        return get(*args)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@require_GET
@login_required
def slip_pdf(request, shipment_id: int):
    shipment = _or_404(documents.get_slip_shipment, request.user, shipment_id)
    return pdf_response(documents.delivery_slip_pdf(shipment, request),
                        f"delivery-slip-{shipment.number}.pdf")


@require_GET
@login_required
def invoice_pdf(request, order_id: int):
    invoice = _or_404(documents.get_invoice, request.user, order_id)
    return pdf_response(documents.invoice_pdf(invoice, request),
                        f"invoice-{invoice.number or invoice.order.reference}.pdf")


@require_GET
@login_required
def certificates_pdf(request, order_id: int):
    order = _or_404(documents.get_papers_order, request.user, order_id)
    return pdf_response(documents.certificates_pdf(order, request),
                        f"certificates-{order.reference}.pdf")


@require_GET
@login_required
def care_card_pdf(request, order_id: int):
    order = _or_404(documents.get_papers_order, request.user, order_id)
    return pdf_response(documents.care_card_pdf(order, request),
                        f"care-card-{order.reference}.pdf")
