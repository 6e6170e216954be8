"""The order's invoice: prepared from the order lines at their agreed price, priced by the
house, then issued once with its number, its VAT and, for diamond jewellery, the System of
Warranties statement. An issued invoice never changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.core.sequences import yearly_reference
from etabli.orders.models import Order, OrderStatus

from .models import Invoice, InvoiceLine, InvoiceStatus
from .services import clean_amount

CENT = Decimal("0.01")
INVOICE_FIELDS = ["status", "number", "vat_percent", "subtotal", "vat_amount", "total",
                  "includes_diamonds"]
INVOICEABLE = (OrderStatus.LAUNCHED, OrderStatus.DELIVERED, OrderStatus.CLOSED)

# The World Diamond Council's System of Warranties statement (the upgraded SoW, 2021), which
# every invoice for diamonds or jewellery set with diamonds must carry word for word. It is a
# trade declaration with a fixed wording: never translated.
SOW_STATEMENT = (
    "The diamonds herein invoiced have been purchased from legitimate sources not involved in "
    "funding conflict, in compliance with United Nations Resolutions and corresponding "
    "national laws. The seller hereby guarantees that these diamonds are conflict free and "
    "confirms adherence to the WDC SoW Guidelines.")
DIAMOND_WORDS = re.compile(r"\bdiam(?:ond|ant)s?\b", re.IGNORECASE)


def order_has_diamonds(order: Order) -> bool:
    """Diamond jewellery: a piece has diamonds allocated to it, or a line asks for them."""
    from etabli.materials.models import AllocationStatus, StoneAllocation, StoneType

    allocated = (StoneAllocation.objects.filter(piece__order=order,
                                                lot__stone_type=StoneType.DIAMOND)
                 .exclude(status=AllocationStatus.RELEASED).exists())
    if allocated:
        return True
    return any(DIAMOND_WORDS.search(stones or "")
               for stones in order.lines.values_list("stones", flat=True))


def vat_percent() -> Decimal:
    try:
        rate = Decimal(str(settings.ETABLI_VAT_PERCENT).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("ETABLI_VAT_PERCENT is not a percentage.")) from exc
    if not rate.is_finite() or not 0 <= rate < 100:
        raise ValidationFailed(_("ETABLI_VAT_PERCENT is not a percentage."))
    return rate.quantize(CENT)


@dataclass
class Figures:
    lines: list[InvoiceLine]
    subtotal: Decimal | None
    vat_percent: Decimal
    vat_amount: Decimal | None
    total: Decimal | None
    includes_diamonds: bool

    @property
    def complete(self) -> bool:
        return self.total is not None


def totals(amounts: list[Decimal | None], rate: Decimal
           ) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(subtotal, VAT, total), each to the cent; None while a line has no price."""
    if any(a is None for a in amounts):
        return None, None, None
    subtotal = sum(amounts, Decimal(0)).quantize(CENT)
    vat = (subtotal * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return subtotal, vat, subtotal + vat


def figures(invoice: Invoice) -> Figures:
    """What the invoice says: frozen once issued, computed from today's draft before."""
    lines = list(invoice.lines.select_related("order_line__alloy").order_by("position"))
    if invoice.is_issued:
        return Figures(lines, invoice.subtotal, invoice.vat_percent, invoice.vat_amount,
                       invoice.total, invoice.includes_diamonds)
    rate = vat_percent()
    subtotal, vat, total = totals([line.amount for line in lines], rate)
    return Figures(lines, subtotal, rate, vat, total, order_has_diamonds(invoice.order))


def _check_prices(actor) -> None:
    if not actor.sees_prices:
        raise PermissionDenied(_("Only sales, production managers and administrators prepare "
                                 "and issue invoices."))


def _lock_invoice(actor, invoice_id: int) -> Invoice:
    invoice = (Invoice.objects.visible_to(actor).select_for_update(of=("self",))
               .select_related("order__client").filter(pk=invoice_id).first())
    if invoice is None:
        raise NotFound(_("No invoice with id %(id)s.") % {"id": invoice_id})
    _check_prices(actor)
    return invoice


def _require_draft(invoice: Invoice) -> None:
    if invoice.is_issued:
        raise TransitionNotAllowed(
            _("Invoice %(number)s has been issued: it can no longer change.")
            % {"number": invoice.number}, details={"status": invoice.status})


@transaction.atomic
def invoice_prepare(*, actor, order_id: int) -> Invoice:
    """The order's draft invoice (made on first call, from the lines at their agreed price)."""
    order = (Order.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=order_id).first())
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    _check_prices(actor)
    existing = Invoice.objects.filter(order=order).first()
    if existing is not None:
        existing.created = False
        return existing
    if order.status not in INVOICEABLE:
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s: it is invoiced once launched.")
            % {"ref": order.reference, "status": OrderStatus(order.status).label.lower()},
            details={"status": order.status})
    invoice = Invoice.objects.create(order=order, currency=order.currency, created_by=actor,
                                     created_at=timezone.now())
    for line in order.lines.order_by("position"):
        InvoiceLine.objects.create(invoice=invoice, order_line=line, position=line.position,
                                   description=line.description, quantity=line.quantity,
                                   unit_price=line.target_price)
    audit.record(actor=actor, action="invoice.prepare", obj=invoice,
                 after={"status": invoice.status, "currency": invoice.currency},
                 order_id=order.pk)
    invoice.created = True
    return invoice


@transaction.atomic
def invoice_line_price(*, actor, invoice_id: int, line_id: int, unit_price) -> InvoiceLine:
    """Set the agreed unit price of one line of a draft invoice."""
    invoice = _lock_invoice(actor, invoice_id)
    _require_draft(invoice)
    line = invoice.lines.filter(pk=line_id).first()
    if line is None:
        raise NotFound(_("Line %(id)s is not on this invoice.") % {"id": line_id},
                       details={"field": "line_id"})
    price = clean_amount(unit_price, "unit_price")
    if price is None:
        raise ValidationFailed(_("Give the unit price."), details={"field": "unit_price"})
    before = {"unit_price": line.unit_price}
    line.unit_price = price
    line.save(update_fields=["unit_price"])
    audit.record(actor=actor, action="invoice.price", obj=invoice, before=before,
                 after={"unit_price": price, "line": line.position},
                 order_id=invoice.order_id)
    return line


@transaction.atomic
def invoice_prices_set(*, actor, invoice_id: int, prices: dict[int, Any]) -> list[InvoiceLine]:
    """Set the unit prices of several lines of a draft invoice at once: every price is checked
    first, then all are written together (or none). A price equal to the line's once cleaned
    ("1500" for 1500.00) is no change and leaves no audit entry. Returns the lines changed.

    A bad price raises ValidationFailed naming the first bad line (`details["line_id"]`) and,
    in `details["errors"]`, the message for every bad line by its id."""
    invoice = _lock_invoice(actor, invoice_id)
    _require_draft(invoice)
    lines = {line.pk: line for line in invoice.lines.order_by("position")}
    unknown = [line_id for line_id in prices if line_id not in lines]
    if unknown:
        raise NotFound(_("Line %(id)s is not on this invoice.") % {"id": unknown[0]},
                       details={"field": "line_id"})
    cleaned: dict[int, Decimal] = {}
    errors: dict[int, str] = {}
    for line_id, value in prices.items():
        line = lines[line_id]
        try:
            price = clean_amount(value, "unit_price")
            if price is None and line.unit_price is not None:
                raise ValidationFailed(_("Give the unit price."),
                                       details={"field": "unit_price"})
        except ValidationFailed as exc:
            errors[line_id] = exc.message
            continue
        if price != line.unit_price:
            cleaned[line_id] = price
    if errors:
        first = min(errors, key=lambda line_id: lines[line_id].position)
        raise ValidationFailed(errors[first], details={
            "field": "unit_price", "line_id": first,
            "errors": {str(line_id): message for line_id, message in errors.items()}})
    changed = []
    for line_id, price in sorted(cleaned.items(), key=lambda item: lines[item[0]].position):
        line = lines[line_id]
        before = {"unit_price": line.unit_price}
        line.unit_price = price
        line.save(update_fields=["unit_price"])
        audit.record(actor=actor, action="invoice.price", obj=invoice, before=before,
                     after={"unit_price": price, "line": line.position},
                     order_id=invoice.order_id)
        changed.append(line)
    return changed


@transaction.atomic
def invoice_issue(*, actor, invoice_id: int) -> Invoice:
    """Number the invoice and freeze it: rate, totals, client, diamond statement."""
    invoice = _lock_invoice(actor, invoice_id)
    _require_draft(invoice)
    lines = list(invoice.lines.order_by("position"))
    unpriced = [str(line.position) for line in lines if line.unit_price is None]
    if not lines:
        raise ValidationFailed(_("The invoice has no lines."), details={"field": "lines"})
    if unpriced:
        raise ValidationFailed(
            _("Give a unit price to every line before issuing (lines %(lines)s).")
            % {"lines": ", ".join(unpriced)}, details={"field": "unit_price"})
    rate = vat_percent()
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    invoice.subtotal, invoice.vat_amount, invoice.total = totals(
        [line.amount for line in lines], rate)
    invoice.vat_percent = rate
    invoice.includes_diamonds = order_has_diamonds(invoice.order)
    invoice.client_name = invoice.order.client.name
    invoice.client_address = invoice.order.client.address
    invoice.number = yearly_reference("INV", 5)
    invoice.status = InvoiceStatus.ISSUED
    invoice.issued_by, invoice.issued_at = actor, timezone.now()
    invoice.save()
    audit.record(actor=actor, action="invoice.issue", obj=invoice, before=before,
                 after=audit.snapshot(invoice, INVOICE_FIELDS), order_id=invoice.order_id)
    return invoice
