"""Delivery's pages per role: the shipments, a shipment from preparation to delivery, one
order's delivery (invoice, reception for the client, follow-ups), the panels on the shared
pages and the client portal."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from etabli.orders.models import OrderStatus
from etabli.production.models import PieceStatus
from etabli.shipping import invoicing, services
from etabli.shipping.models import FollowUp, Invoice, Reception, Shipment, ShipmentStatus
from tests.shipping.conftest import delivered
from tests.shipping.support import ship_and_deliver

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def new_shipment(h, order, pieces, **kwargs):
    kwargs.setdefault("carrier", "Ferrari Group")
    return services.shipment_create(actor=h.logistics, order_id=order.pk,
                                    piece_ids=[p.pk for p in pieces], method="courier",
                                    **kwargs)


# ---------------------------------------------------------------------------------------------
# the shipments page


def test_shipments_page_per_role(h, client, ready):
    order, pieces = ready
    url = reverse("shipping:list")
    html = html_of(as_user(client, h.logistics).get(url))
    assert order.reference in html and all(p.serial in html for p in pieces)
    assert "Prepare a shipment" in html and reverse("shipping:new", args=[order.pk]) in html
    html = html_of(as_user(client, h.sales).get(url))
    assert order.reference in html and "Prepare a shipment" not in html  # sales read
    for user in (h.admin, h.manager):
        assert "Prepare a shipment" in html_of(as_user(client, user).get(url))
    for user in (h.client_contact, h.caster_member, h.designer, h.quality):
        assert as_user(client, user).get(url).status_code == 404, user.role
    client.logout()
    assert client.get(url).status_code == 302


def test_nav_entry(h, client):
    for user in (h.logistics, h.sales, h.manager, h.admin):
        html = html_of(as_user(client, user).get(reverse("orders:list")))
        assert f'href="{reverse("shipping:list")}">Shipments<' in html, user.role
    for user, url in ((h.client_contact, reverse("portal:orders")),
                      (h.caster_member, reverse("workshop:queue"))):
        html = html_of(as_user(client, user).get(url))
        assert reverse("shipping:list") not in html


def test_shipments_list_by_status_search_and_query_budget(h, client, ready,
                                                          django_assert_max_num_queries):
    order, (a, b) = ready
    first = new_shipment(h, order, [a])
    second = new_shipment(h, order, [b], carrier="Brink's")
    services.shipment_cancel(actor=h.logistics, shipment_id=first.pk, reason="x")
    as_user(client, h.manager)
    url = reverse("shipping:list")
    html = html_of(client.get(url, {"status": "cancelled"}))
    assert first.number in html and second.number not in html
    html = html_of(client.get(url, {"q": second.number}))
    assert second.number in html and first.number not in html
    html = html_of(client.get(url, {"status": "nonsense", "page": "x"}))  # ignored, no error
    assert first.number in html and second.number in html
    client.get(url)
    with django_assert_max_num_queries(16):
        client.get(url)


# ---------------------------------------------------------------------------------------------
# one shipment, through the pages


def test_prepare_pack_ship_and_deliver_through_the_pages(h, client, ready):
    order, pieces = ready
    as_user(client, h.logistics)
    url = reverse("shipping:new", args=[order.pk])
    form = html_of(client.get(url))
    assert all(p.serial in form for p in pieces)
    assert "Declared value" not in form  # not for logistics
    ref = client.get(url).context["form"]["client_ref"].value()
    data = {"client_ref": ref, "pieces": [str(p.pk) for p in pieces], "method": "courier",
            "carrier": "Ferrari Group", "address": "Bijouterie Roux\nLyon",
            "signature_required": "on", "neutral_outer_packaging": "on"}
    response = client.post(url, data)
    shipment = Shipment.objects.get()
    page = reverse("shipping:shipment", args=[shipment.pk])
    assert response.status_code == 302 and response["Location"] == page
    assert any("prepared" in m for m in msgs(response))
    again = client.post(url, data)  # the same form, sent twice
    assert again["Location"] == page and any("Already recorded" in m for m in msgs(again))
    assert Shipment.objects.count() == 1

    html = html_of(client.get(page))
    assert "Record the packaging" in html and "Not packed yet" in html
    assert "Declared value" not in html

    act = lambda name: reverse("shipping:shipment_action", args=[shipment.pk, name])  # noqa
    # A half-filled packaging row is refused next to the field.
    a, b = pieces
    response = client.post(act("pack"), {f"case_{a.pk}": "ring_box"})
    assert response.status_code == 200
    assert response.context["pack_form"].errors[f"protection_{a.pk}"]
    response = client.post(act("pack"), {
        f"case_{a.pk}": "ring_box", f"protection_{a.pk}": "foam_insert",
        f"case_{b.pk}": "pouch", f"protection_{b.pk}": "anti_tarnish",
        "neutral_outer_packaging": "on"})
    assert response.status_code == 302
    assert shipment.items.filter(packed_at__isnull=False).count() == 2

    response = client.post(act("ship"), {"carrier": "Ferrari Group", "tracking_number": ""})
    assert response.status_code == 200
    assert response.context["ship_form"].errors["tracking_number"]
    response = client.post(act("ship"), {"carrier": "Ferrari Group",
                                         "tracking_number": "FG778899FR"})
    assert response.status_code == 302
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.SHIPPED

    response = client.post(act("deliver"), {"signed_by": ""})
    assert response.status_code == 200
    assert response.context["deliver_form"].errors["signed_by"]
    response = client.post(act("deliver"), {"signed_by": "M. Roux"})
    assert response.status_code == 302 and any("delivered" in m for m in msgs(response))
    for p in pieces:
        p.refresh_from_db()
        assert p.status == PieceStatus.DELIVERED
    html = html_of(client.get(page))
    assert "FG778899FR" in html and "signed by M. Roux" in html
    assert "Record the packaging" not in html and "Record the delivery" not in html
    # A repeated delivery is refused with a message, never a 500.
    response = client.post(act("deliver"), {"signed_by": "M. Roux"})
    assert response.status_code == 302
    assert any("already been delivered" in m for m in msgs(response))


def test_shipment_page_per_role_and_changes(h, client, ready):
    order, (a, b) = ready
    shipment = new_shipment(h, order, [a])
    page = reverse("shipping:shipment", args=[shipment.pk])
    act = lambda name: reverse("shipping:shipment_action", args=[shipment.pk, name])  # noqa
    html = html_of(as_user(client, h.sales).get(page))
    assert "2400" not in html and "1200.00 EUR" in html  # sales sees the declared value
    assert "Record the packaging" not in html and "Declared value and insurance" in html
    response = as_user(client, h.sales).post(act("cancel"), {"reason": "x"})
    assert response.status_code == 302 and any("Only logistics" in m for m in msgs(response))
    for user in (h.client_contact, h.caster_member):
        assert as_user(client, user).get(page).status_code == 404
        assert as_user(client, user).post(act("cancel"), {"reason": "x"}).status_code == 404

    as_user(client, h.logistics)
    html = html_of(client.get(page))
    assert "1200.00" not in html  # logistics does not see prices
    response = client.post(act("add"), {"pieces": [str(b.pk)]})
    assert response.status_code == 302
    assert shipment.items.filter(active=True).count() == 2
    response = client.post(act("remove"), {"piece_id": str(b.pk)})
    assert response.status_code == 302
    assert shipment.items.filter(active=True).count() == 1
    response = client.post(act("remove"), {"piece_id": "nope"})
    assert response.status_code == 302 and any("Not recorded" in m for m in msgs(response))
    response = client.post(act("edit"), {"method": "value_transport", "carrier": "Brink's",
                                         "tracking_number": "", "address": "Vault 3",
                                         "note": "Armoured van"})
    assert response.status_code == 302
    shipment.refresh_from_db()
    assert (shipment.method, shipment.carrier, shipment.signature_required) == \
        ("value_transport", "Brink's", False)
    response = client.post(act("cancel"), {"reason": ""})
    assert response.status_code == 200 and response.context["cancel_form"].errors["reason"]
    response = client.post(act("cancel"), {"reason": "Client travelling"})
    assert response.status_code == 302
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.CANCELLED
    assert client.post(act("frobnicate"), {}).status_code == 404

    as_user(client, h.manager)
    other = new_shipment(h, order, [a, b])
    response = client.post(reverse("shipping:shipment_action", args=[other.pk, "amounts"]),
                           {"declared_value": "-3", "insurance_value": ""})
    assert response.status_code == 200
    assert response.context["amounts_form"].errors["declared_value"]
    response = client.post(reverse("shipping:shipment_action", args=[other.pk, "amounts"]),
                           {"declared_value": "2600", "insurance_value": "2500"})
    assert response.status_code == 302
    other.refresh_from_db()
    assert str(other.declared_value) == "2600.00"


def test_new_shipment_page_refusals(h, client, ready):
    order, pieces = ready
    new_shipment(h, order, pieces)
    as_user(client, h.logistics)
    html = html_of(client.get(reverse("shipping:new", args=[order.pk])))
    assert "No piece of this order is waiting" in html
    assert as_user(client, h.sales).get(reverse("shipping:new", args=[order.pk])) \
        .status_code == 404
    assert as_user(client, h.logistics).get(reverse("shipping:new", args=[999999])) \
        .status_code == 404


# ---------------------------------------------------------------------------------------------
# one order's delivery: reception for the client, follow-ups, invoice


def test_the_house_records_a_reception_with_reservations_and_resolves_them(h, client):
    order = delivered(h, quantity=2)
    first = order.pieces.order_by("serial").first()
    url = reverse("shipping:order", args=[order.pk])
    as_user(client, h.sales)
    html = html_of(client.get(url))
    assert "Record the reception" in html and first.serial in html
    post = reverse("shipping:reception", args=[order.pk])
    response = client.post(post, {"outcome": "accepted", "note": ""})
    assert response.status_code == 200
    assert response.context["reception_form"].errors["note"]
    response = client.post(post, {"outcome": "accepted", "note": "By phone",
                                  f"reservation_{first.pk}": "Scratched"})
    assert response.context["reception_form"].errors["outcome"]
    response = client.post(post, {"outcome": "reservations", "note": "By phone"})
    assert response.context["reception_form"].errors["reservation"]
    assert not Reception.objects.exists()
    response = client.post(post, {"outcome": "reservations", "note": "Phoned on Monday",
                                  f"reservation_{first.pk}": "Scratched band"})
    assert response.status_code == 302
    follow_up = FollowUp.objects.get()
    assert follow_up.piece_id == first.pk
    html = html_of(client.get(url))
    assert "Scratched band" in html and "Resolve" in html and "Record the reception" not in html
    resolve = reverse("shipping:resolve", args=[follow_up.pk])
    response = client.post(resolve, {f"f{follow_up.pk}-resolution": ""})
    assert response.status_code == 200
    response = client.post(resolve, {f"f{follow_up.pk}-resolution": "Repolished"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED
    html = html_of(client.get(url))
    assert "Repolished" in html and "closed" in html
    for user in (h.client_contact, h.caster_member):
        assert as_user(client, user).get(url).status_code == 404
        assert as_user(client, user).post(resolve, {}).status_code == 404


def test_invoice_page(h, client):
    order = h.launched_order()
    url = reverse("shipping:invoice", args=[order.pk])
    act = lambda name: reverse("shipping:invoice_action", args=[order.pk, name])  # noqa
    for user in (h.logistics, h.client_contact, h.caster_member):
        assert as_user(client, user).get(url).status_code == 404
        assert as_user(client, user).post(act("prepare")).status_code == 404
    as_user(client, h.sales)
    assert "Prepare the invoice" in html_of(client.get(url))
    assert client.post(act("issue")).status_code == 302  # nothing to issue: a message
    assert client.post(act("prepare")).status_code == 302
    invoice = Invoice.objects.get()
    line = invoice.lines.get()
    html = html_of(client.get(url))
    assert "1200.00" in html and "1440.00" in html and "Not needed: no diamonds." in html
    response = client.post(act("prices"), {f"price_{line.pk}": "12.345"})
    assert response.status_code == 200 and response.context["form"].errors[f"price_{line.pk}"]
    response = client.post(act("prices"), {f"price_{line.pk}": "1350"})
    assert response.status_code == 302
    line.refresh_from_db()
    assert str(line.unit_price) == "1350.00"
    response = client.post(act("issue"))
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.is_issued
    html = html_of(client.get(url))
    assert invoice.number in html and "can no longer change" in html
    assert "Save the prices" not in html and "Issue the invoice" not in html
    response = client.post(act("issue"))
    assert any("issued" in m for m in msgs(response))
    assert client.post(act("nonsense")).status_code == 404


def test_invoice_prices_are_saved_together(h, client):
    from etabli.core.models import AuditEntry
    from tests.factories import default_line

    order = h.launched_order(lines=[
        default_line(), default_line(description="Hoop earrings", target_price="350.50"),
        default_line(description="Pendant", target_price="800")])
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    first, second, third = invoice.lines.order_by("position")
    act = reverse("shipping:invoice_action", args=[order.pk, "prices"])
    as_user(client, h.sales)
    response = client.post(act, {f"price_{first.pk}": "1300", f"price_{second.pk}": "400",
                                 f"price_{third.pk}": "12.345"})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {f"price_{third.pk}"}
    assert [ln.unit_price for ln in invoice.lines.order_by("position")] == [
        first.unit_price, second.unit_price, third.unit_price]
    # the prices as shown, written without their cents: no change, nothing audited
    response = client.post(act, {f"price_{first.pk}": "1200", f"price_{second.pk}": "350.5",
                                 f"price_{third.pk}": "800"})
    assert response.status_code == 302
    assert not AuditEntry.objects.filter(action="invoice.price").exists()


# ---------------------------------------------------------------------------------------------
# the panels on the shared pages


def test_order_page_panel(h, client, ready):
    order, (a, b) = ready
    shipment = new_shipment(h, order, [a])
    url = reverse("orders:detail", args=[order.pk])
    html = html_of(as_user(client, h.sales).get(url))
    assert shipment.number in html and reverse("shipping:order", args=[order.pk]) in html
    assert "1 piece waiting to be shipped" in html and "Not prepared" in html
    html = html_of(as_user(client, h.logistics).get(url))
    assert shipment.number in html and "Not prepared" not in html  # no invoice for logistics


def test_piece_page_panel(h, client, ready):
    order, (a, b) = ready
    shipment = new_shipment(h, order, [a])
    html = html_of(as_user(client, h.logistics).get(reverse("production:piece", args=[a.pk])))
    assert shipment.number in html and "Not packed yet" in html
    html = html_of(client.get(reverse("production:piece", args=[b.pk])))
    assert "Waiting at the house to be shipped." in html
    assert reverse("shipping:new", args=[order.pk]) in html


def test_portal_panel_tracking_and_documents(h, client, ready):
    order, (a, b) = ready
    shipment = new_shipment(h, order, [a, b])
    url = reverse("portal:order", args=[order.pk])
    html = html_of(as_user(client, h.client_contact).get(url))
    assert "Being prepared" in html and "FG" not in html
    assert reverse("shipping:slip_pdf", args=[shipment.pk]) not in html
    services.shipment_pack(actor=h.logistics, shipment_id=shipment.pk, pieces=[
        {"piece_id": p.pk, "case": "ring_box", "protection": "foam_insert"} for p in (a, b)])
    services.shipment_ship(actor=h.logistics, shipment_id=shipment.pk,
                           tracking_number="FG55667788")
    html = html_of(client.get(url))
    assert "On its way" in html and "FG55667788" in html and "Ferrari Group" in html
    assert reverse("shipping:slip_pdf", args=[shipment.pk]) in html
    assert reverse("shipping:care_card_pdf", args=[order.pk]) in html
    assert "2400" not in html and "Declared" not in html
    assert client.get(reverse("shipping:slip_pdf", args=[shipment.pk])).status_code == 200


def test_portal_reception_with_reservations(h, client):
    order = delivered(h, quantity=2)
    first = order.pieces.order_by("serial").first()
    invoice = invoicing.invoice_prepare(actor=h.sales, order_id=order.pk)
    invoice = invoicing.invoice_issue(actor=h.sales, invoice_id=invoice.pk)
    url = reverse("portal:order", args=[order.pk])
    as_user(client, h.client_contact)
    html = html_of(client.get(url))
    assert "Confirm reception" in html and "Something is not right?" in html
    assert invoice.number in html and reverse("shipping:invoice_pdf", args=[order.pk]) in html
    post = reverse("portal:confirm_reception", args=[order.pk])
    response = client.post(post, {"outcome": "reservations", "note": ""})
    assert response.status_code == 200 and response.context["form"].errors["reservation"]
    response = client.post(post, {"outcome": "reservations", "note": "Box dented",
                                  f"reservation_{first.pk}": "One stone is loose"})
    assert response.status_code == 302 and any("reservations are noted" in m
                                               for m in msgs(response))
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    html = html_of(client.get(url))
    assert "One stone is loose" in html and "Being handled" in html
    assert "Received, with reservations" in html
    assert "your reservations are being handled" in html_of(client.get(reverse("portal:orders")))
    again = client.post(post, {"outcome": "accepted"})
    assert again.status_code == 200 and "already confirmed" in again.content.decode()
    follow_up = FollowUp.objects.get()
    from etabli.shipping.reception import follow_up_resolve

    follow_up_resolve(actor=h.sales, follow_up_id=follow_up.pk, resolution="Stone secured")
    html = html_of(client.get(url))
    assert "Stone secured" in html and "Resolved" in html
    assert "Delivered — reception confirmed" in html_of(client.get(reverse("portal:orders")))


def test_support_ships_a_piece_already_on_a_prepared_shipment(h, ready):
    order, (a, b) = ready
    shipment = new_shipment(h, order, [a, b])
    ship_and_deliver(h, a)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    b.refresh_from_db()
    assert b.status == PieceStatus.DELIVERED
