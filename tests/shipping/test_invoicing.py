"""The invoice: prepared at the agreed prices, priced by the house, issued once and frozen."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.core.models import AuditEntry
from etabli.materials import stone_services
from etabli.shipping import invoicing
from etabli.shipping.models import Invoice, InvoiceStatus
from tests.factories import default_line

pytestmark = pytest.mark.django_db

TWO_LINES = [default_line(), default_line(description="Hoop earrings", model_reference="E-7",
                                          quantity=2, target_price="350.50", size="")]


def test_prepare_from_the_order_lines(h):
    order = h.launched_order(lines=TWO_LINES)
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    assert invoice.created and invoice.status == InvoiceStatus.DRAFT and invoice.number is None
    lines = list(invoice.lines.order_by("position"))
    assert [(ln.description, ln.quantity, ln.unit_price) for ln in lines] == [
        ("Solitaire ring, 1 ct", 1, Decimal("1200.00")),
        ("Hoop earrings", 2, Decimal("350.50"))]
    again = invoicing.invoice_prepare(actor=h.manager, order_id=order.pk)
    assert again.pk == invoice.pk and not again.created
    assert Invoice.objects.count() == 1
    assert AuditEntry.objects.filter(action="invoice.prepare").count() == 1
    figures = invoicing.figures(invoice)
    assert (figures.subtotal, figures.vat_amount, figures.total) == (
        Decimal("1901.00"), Decimal("380.20"), Decimal("2281.20"))


def test_who_prepares(h):
    order = h.launched_order()
    for user in (h.logistics, h.client_contact):
        with pytest.raises(PermissionDenied):
            invoicing.invoice_prepare(actor=user, order_id=order.pk)
    for user in (h.caster_member, h.other_client_contact):
        with pytest.raises(NotFound):
            invoicing.invoice_prepare(actor=user, order_id=order.pk)
    assert invoicing.invoice_prepare(actor=h.admin, order_id=order.pk).created_by == h.admin
    draft = h.draft_order()
    with pytest.raises(TransitionNotAllowed):
        invoicing.invoice_prepare(actor=h.sales, order_id=draft.pk)


def test_prices_change_until_issued(h):
    order = h.launched_order(lines=[default_line(target_price=None)])
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    line = invoice.lines.get()
    assert line.unit_price is None
    with pytest.raises(ValidationFailed, match="every line"):
        invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    for bad in ("-5", "1.234", "x", None, ""):
        with pytest.raises(ValidationFailed):
            invoicing.invoice_line_price(actor=h.sales, invoice_id=invoice.pk, line_id=line.pk,
                                         unit_price=bad)
    with pytest.raises(NotFound):
        invoicing.invoice_line_price(actor=h.sales, invoice_id=invoice.pk, line_id=999999,
                                     unit_price="10")
    with pytest.raises(NotFound):  # logistics never sees invoices
        invoicing.invoice_line_price(actor=h.logistics, invoice_id=invoice.pk,
                                     line_id=line.pk, unit_price="10")
    invoicing.invoice_line_price(actor=h.sales, invoice_id=invoice.pk, line_id=line.pk,
                                 unit_price="10.03")
    issued = invoicing.invoice_issue(actor=h.manager, invoice_id=invoice.pk)
    # 10.03 × 20 % = 2.006: rounded half up to the cent.
    assert (issued.subtotal, issued.vat_amount, issued.total) == (
        Decimal("10.03"), Decimal("2.01"), Decimal("12.04"))
    with pytest.raises(TransitionNotAllowed, match=issued.number):
        invoicing.invoice_line_price(actor=h.sales, invoice_id=invoice.pk, line_id=line.pk,
                                     unit_price="20")
    line.refresh_from_db()
    assert line.unit_price == Decimal("10.03")


THREE_LINES = TWO_LINES + [default_line(description="Pendant", model_reference="P-2",
                                        target_price="800", size="")]


def test_prices_are_set_together_or_not_at_all(h):
    order = h.launched_order(lines=THREE_LINES)
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    first, second, third = invoice.lines.order_by("position")
    with pytest.raises(ValidationFailed) as exc:
        invoicing.invoice_prices_set(actor=h.sales, invoice_id=invoice.pk, prices={
            first.pk: "1300", second.pk: "400", third.pk: "12.345"})
    assert exc.value.details["line_id"] == third.pk
    assert set(exc.value.details["errors"]) == {str(third.pk)}
    assert [ln.unit_price for ln in invoice.lines.order_by("position")] == [
        Decimal("1200.00"), Decimal("350.50"), Decimal("800.00")]
    assert not AuditEntry.objects.filter(action="invoice.price").exists()
    with pytest.raises(ValidationFailed):  # a price cannot be taken away
        invoicing.invoice_prices_set(actor=h.sales, invoice_id=invoice.pk,
                                     prices={first.pk: ""})
    with pytest.raises(NotFound):
        invoicing.invoice_prices_set(actor=h.sales, invoice_id=invoice.pk,
                                     prices={999999: "10"})
    with pytest.raises(NotFound):  # logistics never sees invoices
        invoicing.invoice_prices_set(actor=h.logistics, invoice_id=invoice.pk,
                                     prices={first.pk: "10"})
    # the same amount written otherwise is no change: no audit entry
    changed = invoicing.invoice_prices_set(actor=h.sales, invoice_id=invoice.pk, prices={
        first.pk: "1200", second.pk: "350,5", third.pk: "850"})
    assert [ln.pk for ln in changed] == [third.pk]
    assert [ln.unit_price for ln in invoice.lines.order_by("position")] == [
        Decimal("1200.00"), Decimal("350.50"), Decimal("850.00")]
    assert AuditEntry.objects.filter(action="invoice.price").count() == 1
    invoicing.invoice_issue(actor=h.manager, invoice_id=invoice.pk)
    with pytest.raises(TransitionNotAllowed):
        invoicing.invoice_prices_set(actor=h.sales, invoice_id=invoice.pk,
                                     prices={first.pk: "10"})


def test_issue_numbers_once_and_freezes(h, settings):
    settings.ETABLI_VAT_PERCENT = "5.5"
    first = invoicing.invoice_prepare(actor=h.sales, order_id=h.launched_order().pk)
    second = invoicing.invoice_prepare(actor=h.sales,
                                       order_id=h.launched_order(lines=TWO_LINES).pk)
    a = invoicing.invoice_issue(actor=h.sales, invoice_id=second.pk)
    b = invoicing.invoice_issue(actor=h.sales, invoice_id=first.pk)
    assert re.fullmatch(r"INV-\d{4}-\d{5}", a.number)
    assert int(b.number[-5:]) == int(a.number[-5:]) + 1
    assert a.vat_percent == Decimal("5.50")
    assert (a.subtotal, a.vat_amount, a.total) == (Decimal("1901.00"), Decimal("104.56"),
                                                   Decimal("2005.56"))
    assert a.client_name == "Bijouterie Roux" and a.issued_by == h.sales
    with pytest.raises(TransitionNotAllowed, match="issued"):
        invoicing.invoice_issue(actor=h.sales, invoice_id=a.pk)
    # A later change of rate or of the client does not touch an issued invoice.
    settings.ETABLI_VAT_PERCENT = "20"
    h.client.name = "Renamed"
    h.client.save()
    figures = invoicing.figures(Invoice.objects.get(pk=a.pk))
    assert (figures.vat_percent, figures.total) == (Decimal("5.50"), Decimal("2005.56"))
    entry = AuditEntry.objects.get(action="invoice.issue", object_id=str(a.pk))
    assert entry.before["number"] is None and entry.after["number"] == a.number


def test_issue_roles(h):
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=h.launched_order().pk)
    with pytest.raises(NotFound):
        invoicing.invoice_issue(actor=h.client_contact, invoice_id=invoice.pk)  # a draft
    with pytest.raises(NotFound):
        invoicing.invoice_issue(actor=h.logistics, invoice_id=invoice.pk)
    invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    # Issued, the client sees it, but may not touch it.
    with pytest.raises(PermissionDenied):
        invoicing.invoice_issue(actor=h.client_contact, invoice_id=invoice.pk)
    assert Invoice.objects.visible_to(h.client_contact).count() == 1
    assert Invoice.objects.visible_to(h.other_client_contact).count() == 0
    assert Invoice.objects.visible_to(h.logistics).count() == 0


def test_bad_vat_setting(h, settings):
    settings.ETABLI_VAT_PERCENT = "twenty"
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=h.launched_order().pk)
    with pytest.raises(ValidationFailed, match="ETABLI_VAT_PERCENT"):
        invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    assert Invoice.objects.get(pk=invoice.pk).number is None


# ---------------------------------------------------------------------------------------------
# diamond jewellery


def test_diamonds_from_the_line_or_from_the_stones_allocated(h):
    plain = h.launched_order()
    assert not invoicing.order_has_diamonds(plain)
    asked = h.launched_order(lines=[default_line(stones="1 round brilliant diamond 0.50 ct")])
    assert invoicing.order_has_diamonds(asked)
    french = h.launched_order(lines=[default_line(stones="Pavé de diamants 0,20 ct")])
    assert invoicing.order_has_diamonds(french)
    sapphire = h.launched_order(lines=[default_line(stones="1 sapphire 1.2 ct")])
    assert not invoicing.order_has_diamonds(sapphire)
    lot = stone_services.stone_lot_receive(
        actor=h.manager, stone_type="diamond", shape="round", count=10, carats="0.50",
        size_mm="1.5", compliance_statement="Conflict free per SoW")
    piece = sapphire.pieces.get()
    allocation = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk,
                                               lot_id=lot.pk, count=2, carats="0.10")
    assert invoicing.order_has_diamonds(sapphire)
    stone_services.stone_allocation_release(actor=h.manager, allocation_id=allocation.pk)
    assert not invoicing.order_has_diamonds(sapphire)


def test_the_statement_is_frozen_with_the_invoice(h):
    order = h.launched_order(lines=[default_line(stones="Diamond pavé")])
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    assert invoicing.figures(invoice).includes_diamonds
    issued = invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    assert issued.includes_diamonds
    assert "WDC SoW Guidelines" in invoicing.SOW_STATEMENT
