"""Each delivery PDF renders and says what it must (read back with pypdf): the delivery slip,
the invoice (with the System of Warranties statement only for diamond jewellery), the
certificates and the care card, in the order's language."""

from __future__ import annotations

import io
import re

import pytest
from django.urls import reverse
from pypdf import PdfReader

from etabli.materials import stone_services
from etabli.shipping import invoicing, services
from tests.factories import default_line, make_client
from tests.shipping.conftest import at_delivery
from tests.shipping.support import ship_and_deliver

pytestmark = pytest.mark.django_db

SOW_START = "The diamonds herein invoiced have been purchased from legitimate sources"
SOW_END = "confirms adherence to the WDC SoW Guidelines."


def pdf_text(response) -> str:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    reader = PdfReader(io.BytesIO(response.content))
    # Line breaks inside a paragraph depend on the layout: compare words, not lines.
    return " ".join(" ".join(p.extract_text() for p in reader.pages).split())


def get(client, user, name, *args):
    client.force_login(user)
    return client.get(reverse(f"shipping:{name}", args=args))


def prepared(h, order, pieces, **kwargs):
    kwargs.setdefault("carrier", "Malca-Amit")
    shipment = services.shipment_create(actor=h.logistics, order_id=order.pk,
                                        piece_ids=[p.pk for p in pieces], method="courier",
                                        **kwargs)
    services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk, pieces=[
        {"piece_id": p.pk, "case": "ring_box", "protection": "foam_insert"} for p in pieces])
    return shipment


def test_delivery_slip_lists_the_pieces_without_prices(h, client):
    order, pieces = at_delivery(h, quantity=2, client_reference="PO-77")
    shipment = prepared(h, order, pieces)
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                           tracking_number="MA778899")
    text = pdf_text(get(client, h.logistics, "slip_pdf", shipment.pk))
    for expected in (shipment.number, order.reference, "PO-77", "DELIVERY SLIP",
                     "Malca-Amit", "MA778899", "Solitaire ring, 1 ct", "18k yellow gold (750)",
                     "Ring box", "Fitted foam insert", "2 pieces in this parcel",
                     "Required on delivery", "Neutral (unmarked)", "Bijouterie Roux"):
        assert expected in text, expected
    for piece in pieces:
        assert piece.serial in text
    assert "1200" not in text and "EUR" not in text  # no prices on a delivery slip
    assert "Received by" in text


def test_invoice_with_its_number_totals_and_no_statement_without_diamonds(h, client):
    order = h.launched_order(lines=[default_line(), default_line(
        description="Hoop earrings", quantity=2, target_price="350.50")])
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    draft = pdf_text(get(client, h.sales, "invoice_pdf", order.pk))
    assert "DRAFT INVOICE" in draft and "NOT VALID FOR PAYMENT" in draft
    invoice = invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    text = pdf_text(get(client, h.sales, "invoice_pdf", order.pk))
    for expected in (invoice.number, order.reference, "Bijouterie Roux", "Hoop earrings",
                     "350.50", "701.00", "1901.00 EUR", "VAT 20.00 %", "380.20 EUR",
                     "2281.20 EUR", "Total including VAT"):
        assert expected in text, expected
    assert "DRAFT" not in text
    assert SOW_START not in text and "System of Warranties" not in text


def test_invoice_for_diamond_jewellery_carries_the_statement(h, client):
    order = h.launched_order(lines=[default_line(stones="1 round brilliant diamond 0.50 ct")])
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    text = pdf_text(get(client, h.manager, "invoice_pdf", order.pk))
    assert SOW_START in text and SOW_END in text
    assert text.index(SOW_START) < text.index(SOW_END)


def test_allocated_diamonds_bring_the_statement_and_their_certificates(h, client):
    order, pieces = at_delivery(h)  # the line says nothing of diamonds
    lot = stone_services.stone_lot_receive(
        actor=h.manager, stone_type="diamond", shape="round", count=1, carats="0.52",
        size_mm="5.2", colour="F", clarity="VS1", certificate_lab="GIA",
        certificate_number="2141234567", compliance_statement="Conflict free per SoW")
    stone_services.stone_allocate(actor=h.manager, piece_id=pieces[0].pk, lot_id=lot.pk,
                                  count=1, carats="0.52")
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    assert SOW_START in pdf_text(get(client, h.sales, "invoice_pdf", order.pk))
    ship_and_deliver(h, pieces[0])
    text = pdf_text(get(client, h.client_contact, "certificates_pdf", order.pk))
    for expected in ("CERTIFICATES", "CERTIFICATE OF WARRANTY", pieces[0].serial, "GIA",
                     "2141234567", "0.52", "fineness 750 ‰", "2 years", "Diamond"):
        assert expected in text, expected


def test_certificates_without_certified_stones(h, client):
    order, pieces = at_delivery(h, quantity=2)
    text = pdf_text(get(client, h.logistics, "certificates_pdf", order.pk))
    assert all(p.serial in text for p in pieces)
    assert "No certified stones in this piece." in text
    assert text.count("CERTIFICATE OF WARRANTY") == 2


def test_care_card_per_metal_and_stones(h, client):
    order = h.launched_order(lines=[
        default_line(alloy="750w", stones="Pavé of round diamonds"),
        default_line(description="Pearl pendant", alloy="925ag", stones="1 Akoya pearl 8 mm"),
    ])
    text = pdf_text(get(client, h.sales, "care_card_pdf", order.pk))
    for expected in ("CARE INSTRUCTIONS", "rhodium", "chlorine", "anti-tarnish pouch",
                     "Diamonds attract grease", "restrung"):
        assert expected in text, expected
    assert "Emeralds" not in text and "PLATINUM" not in text
    plain = h.launched_order(lines=[default_line(alloy="950pt", stones="")])
    text = pdf_text(get(client, h.sales, "care_card_pdf", plain.pk))
    assert "mirror finish" in text and "rhodium" not in text and "grease" not in text


def test_a_french_order_prints_in_french(h, client):
    francais = make_client("bijouterie-lyon", name="Bijouterie de Lyon", language="fr",
                           address="12 rue de la République\n69002 Lyon")
    order, pieces = at_delivery(h, client=francais)
    assert order.language == "fr"
    shipment = prepared(h, order, pieces)
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                           tracking_number="MA1234")
    text = pdf_text(get(client, h.logistics, "slip_pdf", shipment.pk))
    assert "Commande" in text and "N° de série" in text and "Quantité" not in text
    assert "Order " not in text
    # Dates are in French too.
    months = ("janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|"
              "novembre|décembre")
    assert re.search(rf"\d{{1,2}} ({months}) \d{{4}}", text), text
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    text = pdf_text(get(client, h.sales, "invoice_pdf", order.pk))
    # French numbers: a decimal comma.
    assert "Commande" in text and "Quantité" in text and "1200,00" in text


def test_documents_are_not_for_everyone(h, client):
    order, pieces = at_delivery(h)
    shipment = prepared(h, order, pieces)
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    client.force_login(h.client_contact)
    for name, arg in (("slip_pdf", shipment.pk), ("invoice_pdf", order.pk),
                      ("certificates_pdf", order.pk), ("care_card_pdf", order.pk)):
        assert client.get(reverse(f"shipping:{name}", args=[arg])).status_code == 404, name
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk, tracking_number="MA1")
    invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    for name, arg in (("slip_pdf", shipment.pk), ("invoice_pdf", order.pk),
                      ("certificates_pdf", order.pk), ("care_card_pdf", order.pk)):
        assert client.get(reverse(f"shipping:{name}", args=[arg])).status_code == 200, name
    for user in (h.other_client_contact, h.caster_member, h.designer):
        client.force_login(user)
        for name, arg in (("slip_pdf", shipment.pk), ("invoice_pdf", order.pk),
                          ("certificates_pdf", order.pk), ("care_card_pdf", order.pk)):
            assert client.get(reverse(f"shipping:{name}", args=[arg])).status_code == 404
    client.force_login(h.logistics)  # logistics ships without seeing prices
    assert client.get(reverse("shipping:invoice_pdf", args=[order.pk])).status_code == 404
    assert client.get(reverse("shipping:slip_pdf", args=[shipment.pk])).status_code == 200
    client.logout()
    response = client.get(reverse("shipping:slip_pdf", args=[shipment.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
