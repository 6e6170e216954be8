"""The delivery API, per endpoint and per role: scope (404 outside it), roles (403), bad input
(4xx with a clear message), what each role is shown."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from etabli.orders.models import OrderStatus
from etabli.shipping.models import FollowUp, Shipment
from tests.apiclient import assert_error, error_fields, ok
from tests.factories import default_line
from tests.shipping.conftest import at_delivery, delivered

pytestmark = pytest.mark.django_db

P = "/delivery"


def new_shipment(api, user, order, pieces, **extra):
    body = {"order_id": order.pk, "piece_ids": [p.pk for p in pieces], "method": "courier",
            "carrier": "Ferrari Group"} | extra
    return api(user).post(f"{P}/shipments", body)


def pack_body(pieces):
    return {"pieces": [{"piece_id": p.pk, "case": "ring_box", "protection": "foam_insert"}
                       for p in pieces]}


def shipped_via_api(api, h, order, pieces):
    body = ok(new_shipment(api, h.logistics, order, pieces), 201)
    sid = body["id"]
    ok(api(h.logistics).post(f"{P}/shipments/{sid}/packaging", pack_body(pieces)))
    ok(api(h.logistics).post(f"{P}/shipments/{sid}/ship", {"tracking_number": "FG0001FR"}))
    return sid


def pdf_text(response) -> str:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)


# ---------------------------------------------------------------------------------------------
# shipments


def test_the_whole_shipment_through_the_api(h, api, ready):
    order, pieces = ready
    r = new_shipment(api, h.logistics, order, pieces, client_ref="api-1")
    body = ok(r, 201)
    sid = body["id"]
    assert body["status"] == "prepared" and body["method"] == "courier"
    assert body["method_label"] == "Specialised courier"
    assert [i["serial"] for i in body["items"]] == [p.serial for p in pieces]
    assert body["declared_value"] is None  # logistics does not see prices
    again = ok(new_shipment(api, h.logistics, order, pieces, client_ref="api-1"), 200)
    assert again["id"] == sid and Shipment.objects.count() == 1

    body = ok(api(h.manager).get(f"{P}/shipments/{sid}"))
    assert body["declared_value"] == "2400.00" and body["insurance_value"] == "2400.00"

    body = ok(api(h.logistics).post(f"{P}/shipments/{sid}/packaging",
                                    pack_body(pieces) | {"neutral_outer_packaging": True}))
    assert all(i["case"] == "ring_box" and i["packed_at"] for i in body["items"])
    assert body["items"][0]["case_label"] == "Ring box"
    body = ok(api(h.logistics).post(f"{P}/shipments/{sid}/ship",
                                    {"tracking_number": "FG 0001 FR"}))
    assert body["status"] == "shipped" and body["tracking_number"] == "FG 0001 FR"
    body = ok(api(h.logistics).post(f"{P}/shipments/{sid}/deliver", {"signed_by": "M. Roux"}))
    assert body["status"] == "delivered" and body["signed_by"] == "M. Roux"
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_shipment_errors(h, api, ready):
    order, pieces = ready
    assert error_fields(api(h.logistics).post(f"{P}/shipments", {"order_id": order.pk})) \
        == {"piece_ids", "method"}
    assert "method" in error_fields(new_shipment(api, h.logistics, order, pieces,
                                                 method="pigeon"))
    assert "piece_ids" in error_fields(new_shipment(api, h.logistics, order, []))
    assert "piece_ids.0" in error_fields(api(h.logistics).post(
        f"{P}/shipments", {"order_id": order.pk, "piece_ids": ["x"], "method": "courier"}))
    assert_error(new_shipment(api, h.logistics, order, pieces, declared_value="100"), 403,
                 "forbidden")
    body = assert_error(api(h.logistics).post(f"{P}/shipments", {
        "order_id": order.pk, "piece_ids": [999999], "method": "courier"}), 404, "not_found")
    assert body["details"]["field"] == "piece_ids"
    assert_error(api(h.logistics).post(f"{P}/shipments", {
        "order_id": 999999, "piece_ids": [pieces[0].pk], "method": "courier"}), 404)
    assert_error(api(h.logistics).post(f"{P}/shipments", {
        "order_id": order.pk, "piece_ids": [pieces[0].pk, pieces[0].pk],
        "method": "courier"}), 400, "invalid")
    ok(new_shipment(api, h.logistics, order, pieces[:1]), 201)
    body = assert_error(new_shipment(api, h.logistics, order, pieces), 409, "conflict")
    assert "already on shipment" in body["message"]
    assert_error(api(h.logistics).post(f"{P}/shipments", raw="[1, 2]"), 422)
    assert_error(api(h.logistics).post(f"{P}/shipments", raw="{not json"), 400)


def test_shipments_by_role(h, api, ready):
    order, pieces = ready
    sid = shipped_via_api(api, h, order, pieces)
    for user in (h.admin, h.manager, h.sales, h.logistics):
        body = ok(api(user).get(f"{P}/shipments"))
        assert [s["id"] for s in body["items"]] == [sid], user.role
        ok(api(user).get(f"{P}/shipments/{sid}"))
    # The client sees method, carrier, tracking and status; never the declared value or the
    # house's note.
    body = ok(api(h.client_contact).get(f"{P}/shipments/{sid}"))
    assert body["tracking_number"] == "FG0001FR" and body["carrier"] == "Ferrari Group"
    assert body["declared_value"] is None and body["insurance_value"] is None
    assert body["note"] == ""
    assert ok(api(h.client_contact).get(f"{P}/shipments"))["count"] == 1
    for user in (h.other_client_contact, h.caster_member, h.polisher_member, h.designer,
                 h.quality):
        assert ok(api(user).get(f"{P}/shipments"))["count"] == 0, user.role
        assert_error(api(user).get(f"{P}/shipments/{sid}"), 404, "not_found")
    assert_error(api(None).get(f"{P}/shipments"), 401)


def test_writes_by_role(h, api, ready):
    order, pieces = ready
    for user in (h.sales, h.client_contact):
        assert_error(new_shipment(api, user, order, pieces), 403, "forbidden")
    for user in (h.caster_member, h.other_client_contact):
        assert_error(new_shipment(api, user, order, pieces), 404, "not_found")
    sid = ok(new_shipment(api, h.logistics, order, pieces), 201)["id"]
    for path, body in ((f"{P}/shipments/{sid}/packaging", pack_body(pieces)),
                       (f"{P}/shipments/{sid}/ship", {"tracking_number": "FG1"}),
                       (f"{P}/shipments/{sid}/cancel", {"reason": "x"}),
                       (f"{P}/shipments/{sid}/deliver", {"signed_by": "x"})):
        assert_error(api(h.sales).post(path, body), 403, "forbidden")
        assert_error(api(h.polisher_member).post(path, body), 404, "not_found")
        assert_error(api(h.other_client_contact).post(path, body), 404, "not_found")
    assert_error(api(h.sales).patch(f"{P}/shipments/{sid}", {"carrier": "x"}), 403)
    body = ok(api(h.sales).patch(f"{P}/shipments/{sid}", {"declared_value": "2500.00"}))
    assert body["declared_value"] == "2500.00"
    assert_error(api(h.logistics).patch(f"{P}/shipments/{sid}", {"declared_value": "1"}), 403)
    body = ok(api(h.logistics).patch(f"{P}/shipments/{sid}", {"carrier": "Brink's",
                                                              "signature_required": False}))
    assert body["carrier"] == "Brink's" and body["signature_required"] is False
    assert body["declared_value"] is None
    assert error_fields(api(h.logistics).patch(f"{P}/shipments/{sid}", {"method": "x"})) \
        == {"method"}


def test_add_remove_and_cancel(h, api, ready):
    order, (a, b) = ready
    sid = ok(new_shipment(api, h.logistics, order, [a]), 201)["id"]
    body = ok(api(h.logistics).post(f"{P}/shipments/{sid}/pieces", {"piece_ids": [b.pk]}))
    assert len(body["items"]) == 2
    assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/pieces", {"piece_ids": [b.pk]}),
                 409, "conflict")
    body = ok(api(h.logistics).delete(f"{P}/shipments/{sid}/pieces/{b.pk}"))
    assert [i["serial"] for i in body["items"]] == [a.serial]
    assert_error(api(h.logistics).delete(f"{P}/shipments/{sid}/pieces/{b.pk}"), 404)
    assert_error(api(h.logistics).delete(f"{P}/shipments/{sid}/pieces/{a.pk}"), 400)
    assert error_fields(api(h.logistics).post(f"{P}/shipments/{sid}/cancel", {})) == {"reason"}
    body = ok(api(h.logistics).post(f"{P}/shipments/{sid}/cancel", {"reason": "Client away"}))
    assert body["status"] == "cancelled" and body["items"] == []
    assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/cancel", {"reason": "again"}),
                 409, "transition_not_allowed")
    # The client does not see a cancelled shipment.
    assert_error(api(h.client_contact).get(f"{P}/shipments/{sid}"), 404)


def test_ship_and_deliver_errors(h, api, ready):
    order, pieces = ready
    sid = ok(new_shipment(api, h.logistics, order, pieces, carrier=""), 201)["id"]
    body = assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/ship",
                                              {"tracking_number": "FG1"}), 400)
    assert body["details"]["field"] == "carrier"
    body = assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/ship", {"carrier": "F"}),
                        400)
    assert body["details"]["field"] == "tracking_number"
    body = assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/ship", {
        "carrier": "F", "tracking_number": "FG1"}), 409, "transition_not_allowed")
    assert "Pack every piece" in body["message"]
    assert error_fields(api(h.logistics).post(f"{P}/shipments/{sid}/packaging", {
        "pieces": [{"piece_id": pieces[0].pk, "case": "shoebox",
                    "protection": "foam_insert"}]})) == {"pieces.0.case"}
    body = assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/deliver",
                                              {"signed_by": "X"}), 409)
    assert "ship it" in body["message"]
    ok(api(h.logistics).post(f"{P}/shipments/{sid}/packaging", pack_body(pieces)))
    ok(api(h.logistics).post(f"{P}/shipments/{sid}/ship", {"carrier": "F",
                                                           "tracking_number": "FG1"}))
    assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/ship", {}), 409)
    body = assert_error(api(h.logistics).post(f"{P}/shipments/{sid}/deliver", {}), 400)
    assert body["details"]["field"] == "signed_by"
    assert error_fields(api(h.logistics).post(f"{P}/shipments/{sid}/deliver",
                                              {"signed_by": "x" * 121})) == {"signed_by"}
    assert_error(api(h.logistics).post(f"{P}/shipments/999999/deliver", {"signed_by": "x"}),
                 404)


def test_ready_pieces(h, api, ready):
    order, (a, b) = ready
    body = ok(api(h.logistics).get(f"{P}/ready-pieces"))
    assert [p["serial"] for p in body["items"]] == [a.serial, b.serial]
    ok(new_shipment(api, h.logistics, order, [a]), 201)
    assert [p["serial"] for p in ok(api(h.manager).get(f"{P}/ready-pieces"))["items"]] \
        == [b.serial]
    for user in (h.client_contact, h.caster_member, h.designer):
        assert ok(api(user).get(f"{P}/ready-pieces"))["count"] == 0


def test_list_filters_and_query_budget(h, api, ready, django_assert_max_num_queries):
    order, (a, b) = ready
    first = ok(new_shipment(api, h.logistics, order, [a]), 201)
    ok(new_shipment(api, h.logistics, order, [b], carrier="Brink's"), 201)
    ok(api(h.logistics).post(f"{P}/shipments/{first['id']}/cancel", {"reason": "x"}))
    client = api(h.manager)
    assert ok(client.get(f"{P}/shipments", {"status": "cancelled"}))["count"] == 1
    assert ok(client.get(f"{P}/shipments", {"status": "prepared"}))["count"] == 1
    assert ok(client.get(f"{P}/shipments", {"q": b.serial}))["count"] == 1
    assert ok(client.get(f"{P}/shipments", {"q": first["number"]}))["count"] == 1
    assert ok(client.get(f"{P}/shipments", {"order_id": order.pk}))["count"] == 2
    assert error_fields(client.get(f"{P}/shipments", {"status": "lost"})) == {"status"}
    client.get(f"{P}/shipments")
    with django_assert_max_num_queries(8):
        client.get(f"{P}/shipments")


# ---------------------------------------------------------------------------------------------
# invoices


def test_invoice_endpoints(h, api):
    order = delivered(h, lines=[default_line(stones="1 round diamond 0.30 ct")])
    path = f"{P}/orders/{order.pk}/invoice"
    assert_error(api(h.sales).get(path), 404)
    for user in (h.logistics, h.client_contact):
        assert_error(api(user).post(path), 403, "forbidden")
    assert_error(api(h.caster_member).post(path), 404)
    body = ok(api(h.sales).post(path), 201)
    assert body["status"] == "draft" and body["number"] is None
    assert body["includes_diamonds"] and "WDC SoW Guidelines" in body["system_of_warranties"]
    assert ok(api(h.sales).post(path), 200)["id"] == body["id"]
    assert_error(api(h.client_contact).get(path), 404)  # a draft is the house's business
    line_id = body["lines"][0]["id"]
    lp = f"{P}/invoices/{body['id']}/lines/{line_id}"
    assert error_fields(api(h.sales).patch(lp, {"unit_price": "-1"})) == {"unit_price"}
    assert error_fields(api(h.sales).patch(lp, {"unit_price": "1.234"})) == {"unit_price"}
    assert error_fields(api(h.sales).patch(lp, {})) == {"unit_price"}
    assert_error(api(h.sales).patch(f"{P}/invoices/{body['id']}/lines/999999",
                                    {"unit_price": "1"}), 404)
    assert_error(api(h.logistics).patch(lp, {"unit_price": "1"}), 404)
    body = ok(api(h.sales).patch(lp, {"unit_price": "1500.00"}))
    assert body["subtotal"] == "1500.00" and body["vat_amount"] == "300.00"
    assert body["total"] == "1800.00"
    issued = ok(api(h.manager).post(f"{P}/invoices/{body['id']}/issue"))
    assert issued["status"] == "issued" and issued["number"].startswith("INV-")
    assert_error(api(h.manager).post(f"{P}/invoices/{body['id']}/issue"), 409)
    assert_error(api(h.sales).patch(lp, {"unit_price": "1"}), 409)
    seen = ok(api(h.client_contact).get(path))
    assert seen["number"] == issued["number"] and seen["total"] == "1800.00"
    assert_error(api(h.client_contact).post(f"{P}/invoices/{body['id']}/issue"), 403)
    for user in (h.other_client_contact, h.caster_member, h.logistics):
        assert_error(api(user).get(path), 404)
    text = pdf_text(api(h.client_contact).get(f"{path}.pdf"))
    assert issued["number"] in text and "1800.00" in text
    assert_error(api(h.other_client_contact).get(f"{path}.pdf"), 404)


# ---------------------------------------------------------------------------------------------
# documents


def test_documents_per_role(h, api, ready):
    order, pieces = ready
    sid = ok(new_shipment(api, h.logistics, order, pieces), 201)["id"]
    slip = f"{P}/shipments/{sid}/delivery-slip.pdf"
    papers = [f"{P}/orders/{order.pk}/certificates.pdf", f"{P}/orders/{order.pk}/care-card.pdf"]
    assert pieces[0].serial in pdf_text(api(h.logistics).get(slip))
    for path in papers:
        pdf_text(api(h.sales).get(path))
    # Before the parcel leaves, the client has nothing to open.
    for path in [slip, *papers]:
        assert_error(api(h.client_contact).get(path), 404)
    ok(api(h.logistics).post(f"{P}/shipments/{sid}/packaging", pack_body(pieces)))
    ok(api(h.logistics).post(f"{P}/shipments/{sid}/ship", {"tracking_number": "FG1"}))
    for path in [slip, *papers]:
        pdf_text(api(h.client_contact).get(path))
        for user in (h.other_client_contact, h.caster_member, h.designer):
            assert_error(api(user).get(path), 404)
    summary = ok(api(h.client_contact).get(f"{P}/orders/{order.pk}"))
    assert [d["kind"] for d in summary["documents"]] == ["delivery_slip", "certificates",
                                                          "care_card"]
    assert summary["shipments"][0]["declared_value"] is None
    assert_error(api(h.other_client_contact).get(f"{P}/orders/{order.pk}"), 404)
    assert_error(api(h.caster_member).get(f"{P}/orders/{order.pk}"), 404)
    body = ok(api(h.sales).get(f"{P}/orders/{order.pk}"))
    assert body["shipments"][0]["declared_value"] == "2400.00"


# ---------------------------------------------------------------------------------------------
# reception and follow-ups


def test_reception_endpoints(h, api):
    order = delivered(h, quantity=2)
    first = order.pieces.order_by("serial").first()
    path = f"{P}/orders/{order.pk}/reception"
    assert_error(api(h.client_contact).get(path), 404)
    assert_error(api(h.other_client_contact).post(path, {}), 404)
    assert_error(api(h.caster_member).post(path, {}), 404)
    assert error_fields(api(h.client_contact).post(path, {"outcome": "meh"})) == {"outcome"}
    assert error_fields(api(h.client_contact).post(
        path, {"outcome": "reservations", "reservations": [{"text": ""}]})) \
        == {"reservations.0.text"}
    body = assert_error(api(h.client_contact).post(path, {"outcome": "reservations"}), 400)
    assert body["details"]["field"] == "reservations"
    body = assert_error(api(h.sales).post(path, {}), 400)
    assert body["details"]["field"] == "note"
    body = ok(api(h.client_contact).post(path, {
        "outcome": "reservations", "note": "Parcel dented",
        "reservations": [{"piece_id": first.pk, "text": "Stone loose"}]}), 201)
    assert body["outcome"] == "reservations" and not body["on_behalf"]
    assert [(f["serial"], f["status"]) for f in body["follow_ups"]] == [(first.serial, "open")]
    again = assert_error(api(h.client_contact).post(path, {}), 409, "conflict")
    assert "already confirmed" in again["message"]
    assert ok(api(h.logistics).get(path))["note"] == "Parcel dented"

    follow_ups = ok(api(h.sales).get(f"{P}/follow-ups", {"status": "open"}))
    assert follow_ups["count"] == 1
    fid = follow_ups["items"][0]["id"]
    assert ok(api(h.client_contact).get(f"{P}/follow-ups"))["count"] == 1
    for user in (h.other_client_contact, h.caster_member):
        assert ok(api(user).get(f"{P}/follow-ups"))["count"] == 0
    rp = f"{P}/follow-ups/{fid}/resolve"
    assert_error(api(h.client_contact).post(rp, {"resolution": "ok"}), 403)
    assert_error(api(h.caster_member).post(rp, {"resolution": "ok"}), 404)
    assert error_fields(api(h.sales).post(rp, {})) == {"resolution"}
    body = ok(api(h.sales).post(rp, {"resolution": "Stone reset at the house"}))
    assert body["status"] == "resolved"
    assert_error(api(h.sales).post(rp, {"resolution": "again"}), 409)
    order.refresh_from_db()
    assert order.status == OrderStatus.CLOSED
    assert FollowUp.objects.get().resolution == "Stone reset at the house"


def test_a_client_reads_who_recorded_their_reception_only_when_it_was_them(h, api):
    path = f"{P}/orders/{{pk}}/reception"
    by_house = delivered(h)
    ok(api(h.sales).post(path.format(pk=by_house.pk), {"note": "Client phoned"}), 201)
    assert ok(api(h.sales).get(path.format(pk=by_house.pk)))["recorded_by"] == \
        h.sales.username
    mine = ok(api(h.client_contact).get(path.format(pk=by_house.pk)))
    assert mine["on_behalf"] and mine["recorded_by"] is None
    by_client = delivered(h)
    ok(api(h.client_contact).post(path.format(pk=by_client.pk), {}), 201)
    assert ok(api(h.client_contact).get(path.format(pk=by_client.pk)))["recorded_by"] == \
        h.client_contact.username
    assert ok(api(h.logistics).get(path.format(pk=by_client.pk)))["recorded_by"] == \
        h.client_contact.username


def test_the_orders_endpoint_still_confirms(h, api):
    order = delivered(h)
    body = ok(api(h.sales).post(f"/orders/{order.pk}/confirm-reception",
                                {"note": "Client phoned"}))
    assert body["status"] == "closed" and body["reception_note"] == "Client phoned"


def test_shipments_of_one_order_for_a_pieces_still_elsewhere(h, api):
    order, pieces = at_delivery(h)
    assert ok(api(h.client_contact).get(f"{P}/orders/{order.pk}"))["shipments"] == []
    pdf = api(h.sales).get(f"{P}/orders/{order.pk}/care-card.pdf")
    assert "chlorine" in pdf_text(pdf)
