"""The design API, per endpoint and per role: briefs, rounds and files, decisions, approvals,
prototypes. Objects outside the caller's scope answer 404."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from etabli.design.models import DesignApproval, DesignRound
from etabli.production.services import piece_start
from etabli.workshops.models import StepKind
from tests.apiclient import API, assert_error, error_fields, ok
from tests.design.conftest import custom_line
from tests.design.support import pdf_file, render_file, stl_file, written_acceptance

pytestmark = pytest.mark.django_db


def upload(me, path: str, data: dict):
    return me.client.post(API + path, data, headers=me._headers())


def new_sent_round(api, h, line_id: int, *, cad: bool = False) -> dict:
    designer = api(h.designer)
    rnd = ok(designer.post(f"/design/lines/{line_id}/rounds", {"designer_note": "Option A",
                                                                "estimated_metal_g": "5.4"}),
             201)
    ok(upload(designer, f"/design/rounds/{rnd['id']}/files",
              {"file": render_file(), "kind": "render"}), 201)
    if cad:
        ok(upload(designer, f"/design/rounds/{rnd['id']}/files",
                  {"file": stl_file(), "kind": "cad", "visibility": "house"}), 201)
    return ok(designer.post(f"/design/rounds/{rnd['id']}/send"))


@pytest.fixture
def piece(house_setup):
    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    piece_start(actor=h.designer, piece_id=piece.pk)
    return piece


# ---------------------------------------------------------------------------------------------
# briefs


def test_brief_for_sales_with_the_price(house_setup, api, piece):
    h = house_setup
    me = api(h.sales)
    brief = ok(me.get(f"/design/lines/{piece.line_id}/brief"))
    assert brief["prices_shown"] is True and brief["target_price"] == "1200.00"
    assert brief["budget_metal_g"] == "5.000" and brief["client_intent"] == ""
    saved = ok(me.put(f"/design/lines/{piece.line_id}/brief", {
        "client_intent": "Engagement, summer wedding", "budget_metal_g": 6.1,
        "target_price": "3900"}))
    assert saved["client_intent"] == "Engagement, summer wedding"
    assert (saved["budget_metal_g"], saved["target_price"]) == ("6.100", "3900.00")
    assert saved["updated_by"]["id"] == h.sales.pk
    # only the fields sent change
    saved = ok(me.put(f"/design/lines/{piece.line_id}/brief", {"budget_stone_count": 4}))
    assert (saved["client_intent"], saved["budget_stone_count"]) == (
        "Engagement, summer wedding", 4)


def test_brief_for_the_designer_without_the_price(house_setup, api, piece):
    h = house_setup
    me = api(h.designer)
    brief = ok(me.get(f"/design/lines/{piece.line_id}/brief"))
    assert brief["prices_shown"] is False and brief["target_price"] is None
    assert ok(me.put(f"/design/lines/{piece.line_id}/brief",
                     {"technical_constraints": "Client's sapphire, 8 × 6 mm"}))[
        "technical_constraints"] == "Client's sapphire, 8 × 6 mm"
    body = assert_error(me.put(f"/design/lines/{piece.line_id}/brief", {"target_price": 1}),
                        403, "forbidden")
    assert body["details"] == {"field": "target_price"}


def test_brief_scope_and_bad_input(house_setup, api, piece):
    h = house_setup
    url = f"/design/lines/{piece.line_id}/brief"
    for user in (h.client_contact, h.other_client_contact, h.caster_member):
        assert_error(api(user).get(url), 404, "not_found")
        assert_error(api(user).put(url, {"client_intent": "x"}), 404, "not_found")
    assert_error(api(h.quality).get(url), 404)  # quality sees no order with a piece at design
    assert_error(api(h.quality).put(url, {"client_intent": "x"}), 404)
    assert_error(api(None).get(url), 401)
    assert_error(api(h.sales).get("/design/lines/999999/brief"), 404)
    assert error_fields(api(h.sales).put(url, {"budget_metal_g": "lots"})) == {"budget_metal_g"}
    assert error_fields(api(h.sales).put(url, {"budget_stone_count": "x"})) == {
        "budget_stone_count"}
    body = assert_error(api(h.sales).put(url, {"budget_metal_g": -1}), 400, "invalid")
    assert body["details"] == {"field": "budget_metal_g"}
    assert_error(api(h.sales).put(url, raw="[1, 2]"), 422)


# ---------------------------------------------------------------------------------------------
# rounds


def test_round_lifecycle_over_the_api(house_setup, api, piece):
    h = house_setup
    designer = api(h.designer)
    rnd = ok(designer.post(f"/design/lines/{piece.line_id}/rounds",
                           {"designer_note": "Two views", "estimated_stone_count": 3}), 201)
    assert (rnd["number"], rnd["status"], rnd["files"]) == (1, "draft", [])
    assert_error(designer.post(f"/design/lines/{piece.line_id}/rounds", {}), 409, "conflict")
    body = assert_error(designer.post(f"/design/rounds/{rnd['id']}/send"), 400, "invalid")
    assert body["details"] == {"field": "files"}
    added = ok(upload(designer, f"/design/rounds/{rnd['id']}/files",
                      {"file": render_file(), "kind": "render"}), 201)
    assert [f["kind"] for f in added["files"]] == ["render"]
    added = ok(upload(designer, f"/design/rounds/{rnd['id']}/files",
                      {"file": stl_file(), "kind": "cad"}), 201)
    assert added["estimated_metal_g"] == "3.100" and added["metal_source"] == "cad"
    cad = next(f for f in added["files"] if f["kind"] == "cad")
    assert cad["visibility"] == "workshops" and len(cad["sha256"]) == 64
    assert "render" in {f["kind"] for f in added["files"]}
    assert error_fields(upload(designer, f"/design/rounds/{rnd['id']}/files",
                               {"file": render_file(), "kind": "photo"})) == {"form.kind"}
    assert error_fields(upload(designer, f"/design/rounds/{rnd['id']}/files",
                               {"kind": "render"})) == {"file.file"}
    patched = ok(designer.patch(f"/design/rounds/{rnd['id']}", {"estimated_metal_g": "3.3"}))
    assert (patched["estimated_metal_g"], patched["metal_source"],
            patched["designer_note"]) == ("3.300", "entered", "Two views")
    removed = ok(designer.delete(f"/design/rounds/{rnd['id']}/files/{cad['id']}"))
    assert [f["kind"] for f in removed["files"]] == ["render"]
    assert_error(designer.delete(f"/design/rounds/{rnd['id']}/files/{cad['id']}"), 404)
    sent = ok(designer.post(f"/design/rounds/{rnd['id']}/send"))
    assert sent["status"] == "sent" and sent["sent_at"]
    assert_error(designer.post(f"/design/rounds/{rnd['id']}/send"), 409,
                 "transition_not_allowed")
    assert_error(designer.patch(f"/design/rounds/{rnd['id']}", {"designer_note": "x"}), 409)
    line = ok(designer.get(f"/design/lines/{piece.line_id}"))
    assert (line["status"], line["rounds_sent"], line["round_limit"], line["over_limit"]) == (
        "waiting", 1, 3, False)
    assert "waiting for the client's decision" in line["missing"]


def test_what_each_role_sees_of_a_round(house_setup, api, piece):
    h = house_setup
    sent = new_sent_round(api, h, piece.line_id, cad=True)
    kinds = {f["kind"] for f in sent["files"]}
    assert kinds == {"render", "cad"}
    ok(api(h.client_contact).post(f"/design/rounds/{sent['id']}/decision",
                                  {"decision": "request_changes", "comment": "Thinner"}))
    ok(api(h.designer).post(f"/design/lines/{piece.line_id}/rounds", {}), 201)  # a draft
    # the client: their rounds sent, only the files shared with them, never a draft
    mine = ok(api(h.client_contact).get(f"/design/lines/{piece.line_id}/rounds"))
    assert [(r["number"], r["status"]) for r in mine] == [(1, "changes_requested")]
    assert [f["kind"] for f in mine[0]["files"]] == ["render"]
    line = ok(api(h.client_contact).get(f"/design/lines/{piece.line_id}"))
    assert line["missing"] == "" and len(line["rounds"]) == 1
    assert len(ok(api(h.sales).get(f"/design/lines/{piece.line_id}/rounds"))) == 2
    draft = DesignRound.objects.get(status="draft")
    assert_error(api(h.client_contact).get(f"/design/rounds/{draft.pk}"), 404)
    # another client, a workshop: nothing
    for user in (h.other_client_contact, h.caster_member):
        me = api(user)
        assert_error(me.get(f"/design/lines/{piece.line_id}"), 404)
        assert_error(me.get(f"/design/lines/{piece.line_id}/rounds"), 404)
        assert_error(me.get(f"/design/orders/{piece.order_id}/rounds"), 404)
        assert_error(me.get(f"/design/rounds/{sent['id']}"), 404)
        assert_error(me.post(f"/design/lines/{piece.line_id}/rounds", {}), 404)
    assert_error(api(h.client_contact).post(f"/design/lines/{piece.line_id}/rounds", {}), 403)


def test_order_rounds_list_in_a_fixed_number_of_queries(house_setup, api):
    h = house_setup
    order = h.launched_order(lines=[custom_line(), custom_line(description="Second ring"),
                                    custom_line(description="Third ring")])
    for p in order.pieces.all():
        piece_start(actor=h.designer, piece_id=p.pk)
    line_ids = list(order.lines.values_list("pk", flat=True))
    new_sent_round(api, h, line_ids[0])
    me = api(h.sales)
    with CaptureQueriesContext(connection) as one:
        assert len(ok(me.get(f"/design/orders/{order.pk}/rounds"))) == 1
    for line_id in line_ids[1:]:
        new_sent_round(api, h, line_id, cad=True)
    with CaptureQueriesContext(connection) as three:
        assert len(ok(me.get(f"/design/orders/{order.pk}/rounds"))) == 3
    assert len(three) == len(one)


# ---------------------------------------------------------------------------------------------
# decisions and approvals


def test_the_client_decides_once(house_setup, api, piece):
    h = house_setup
    sent = new_sent_round(api, h, piece.line_id)
    url = f"/design/rounds/{sent['id']}/decision"
    assert error_fields(api(h.client_contact).post(url, {"decision": "maybe"})) == {"decision"}
    body = assert_error(api(h.client_contact).post(url, {"decision": "request_changes"}), 400)
    assert body["details"] == {"field": "comment"}
    assert_error(api(h.other_client_contact).post(url, {"decision": "approve"}), 404)
    assert_error(api(h.caster_member).post(url, {"decision": "approve"}), 404)
    assert_error(api(h.designer).post(url, {"decision": "approve"}), 403)
    assert_error(api(h.client_contact).post("/design/rounds/999999/decision",
                                            {"decision": "approve"}), 404)
    decided = ok(api(h.client_contact).post(url, {"decision": "approve", "comment": "Yes!"}))
    assert decided["status"] == "approved" and decided["approval_id"]
    body = assert_error(api(h.client_contact).post(url, {"decision": "approve"}), 409,
                        "already_decided")
    assert "already approved" in body["message"]
    approval = ok(api(h.client_contact).get(f"/design/approvals/{decided['approval_id']}"))
    assert (approval["round_number"], approval["on_behalf"], approval["valid"]) == (1, False,
                                                                                    True)
    assert approval["approved_by"]["id"] == h.client_contact.pk
    assert approval["budget"]["metal"] == {"estimated": "5.400", "budget": "5.000",
                                           "difference": "0.400", "difference_pct": "8.0",
                                           "over": True}
    assert [f["kind"] for f in approval["files"]] == ["render"]
    assert_error(api(h.other_client_contact).get(f"/design/approvals/{approval['id']}"), 404)
    assert_error(api(h.caster_member).get(f"/design/approvals/{approval['id']}"), 404)
    listed = ok(api(h.sales).get(f"/design/lines/{piece.line_id}/approvals"))
    assert [a["id"] for a in listed] == [approval["id"]]


def test_the_house_records_an_approval_with_the_written_proof(house_setup, api, piece):
    h = house_setup
    sent = new_sent_round(api, h, piece.line_id)
    me = api(h.sales)
    url = f"/design/rounds/{sent['id']}/decision"
    body = assert_error(me.post(url, {"decision": "approve", "comment": "By phone"}), 400)
    assert body["details"] == {"field": "document"}
    other_order_doc = written_acceptance(h, h.launched_order())
    assert_error(me.post(url, {"decision": "approve", "comment": "Mail",
                               "document_id": other_order_doc.pk}), 404)
    body = assert_error(upload(me, f"/design/rounds/{sent['id']}/written-approval",
                               {"file": pdf_file()}), 400)
    assert body["details"] == {"field": "comment"}
    assert not DesignApproval.objects.exists()
    decided = ok(upload(me, f"/design/rounds/{sent['id']}/written-approval",
                        {"file": pdf_file("signed.pdf"), "note": "Signed renders, 3 May"}))
    assert decided["status"] == "approved" and decided["decided_on_behalf"] is True
    approval = ok(me.get(f"/design/approvals/{decided['approval_id']}"))
    assert approval["on_behalf"] and approval["note"] == "Signed renders, 3 May"
    assert approval["document_id"]


def test_on_behalf_with_an_existing_document(house_setup, api, piece):
    h = house_setup
    sent = new_sent_round(api, h, piece.line_id)
    letter = written_acceptance(h, piece.order)
    decided = ok(api(h.manager).post(f"/design/rounds/{sent['id']}/decision", {
        "decision": "approve", "comment": "Letter of 3 May", "document_id": letter.pk}))
    assert decided["status"] == "approved"
    assert DesignApproval.objects.get().document == letter


# ---------------------------------------------------------------------------------------------
# prototypes


@pytest.fixture
def proto_piece(house_setup):
    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    return piece


def test_the_prototyping_workshop_records_its_prototype(house_setup, api, proto_piece):
    h = house_setup
    url = f"/design/pieces/{proto_piece.pk}/prototypes"
    caster = api(h.caster_member)
    assert error_fields(caster.post(url, {"method": "clay", "result": "approved"})) == {"method"}
    assert error_fields(caster.post(url, {"method": "wax_print"})) == {"result"}
    body = assert_error(caster.post(url, {"method": "wax_print", "result": "approved"}), 400)
    assert body["details"] == {"field": "fit_ok"}
    assert_error(caster.post(url, {"method": "wax_print", "result": "changes_needed",
                                   "reason": "Too thick", "fit_ok": True}), 403)
    for user in (h.setter_member, h.other_client_contact):
        assert_error(api(user).post(url, {"method": "wax_print", "result": "approved",
                                          "fit_ok": True}), 404)
        assert_error(api(user).get(url), 404)
    # the client follows their piece, but prototypes are the house's working records
    assert_error(api(h.client_contact).get(url), 404)
    assert_error(api(h.client_contact).post(url, {"method": "wax_print", "result": "approved",
                                                  "fit_ok": True}), 403)
    made = ok(caster.post(url, {"method": "wax_print", "result": "approved", "fit_ok": True,
                                "fit_notes": "Good on the 52 gauge"}), 201)
    assert (made["result"], made["fit_ok"], made["serial"]) == ("approved", True,
                                                                proto_piece.serial)
    assert_error(caster.post(url, {"method": "cnc", "result": "approved", "fit_ok": True}),
                 409, "conflict")
    assert [p["id"] for p in ok(caster.get(url))] == [made["id"]]
    assert [p["id"] for p in ok(api(h.designer).get(url))] == [made["id"]]
    assert ok(caster.post(f"/pieces/{proto_piece.pk}/complete", {}), 201)


def test_the_designer_sends_a_prototype_back(house_setup, api, proto_piece):
    h = house_setup
    made = ok(api(h.designer).post(f"/design/pieces/{proto_piece.pk}/prototypes", {
        "method": "resin_print", "result": "changes_needed", "fit_ok": False,
        "reason": "Gallery too low for the stone"}), 201)
    assert made["invalidates_approval_id"] == DesignApproval.objects.get().pk
    line = ok(api(h.designer).get(f"/design/lines/{proto_piece.line_id}"))
    assert line["status"] == "invalidated" and not line["approved"]
    approval = ok(api(h.sales).get(f"/design/approvals/{made['invalidates_approval_id']}"))
    assert approval["valid"] is False and approval["invalidated_by_prototype_id"] == made["id"]
    detail = ok(api(h.designer).get(f"/pieces/{proto_piece.pk}"))
    assert detail["current_step"] == "design" and detail["rework_count"] == 1


def test_an_approval_as_the_client_reads_it(house_setup, api, piece):
    """The client reads only the files shared with them, neither the house's written approval
    nor the name of the house's people who recorded it."""
    h = house_setup
    sent = new_sent_round(api, h, piece.line_id, cad=True)
    decided = ok(upload(api(h.sales), f"/design/rounds/{sent['id']}/written-approval",
                        {"file": pdf_file("signed.pdf"), "note": "Signed renders, 3 May"}))
    url = f"/design/approvals/{decided['approval_id']}"
    house = ok(api(h.sales).get(url))
    assert {f["kind"] for f in house["files"]} == {"render", "cad"}
    assert house["document_id"] and house["approved_by"]["id"] == h.sales.pk
    assert ok(api(h.sales).get(f"/design/rounds/{sent['id']}"))["decided_by"]["id"] == \
        h.sales.pk
    mine = ok(api(h.client_contact).get(url))
    assert [f["kind"] for f in mine["files"]] == ["render"]
    assert mine["document_id"] is None and mine["approved_by"] is None
    assert ok(api(h.client_contact).get(f"/design/lines/{piece.line_id}/approvals"))[0][
        "files"] == mine["files"]
    rnd = ok(api(h.client_contact).get(f"/design/rounds/{sent['id']}"))
    assert rnd["decided_by"] is None and rnd["decided_on_behalf"] is True
    line = ok(api(h.client_contact).get(f"/design/lines/{piece.line_id}"))
    assert line["rounds"][0]["decided_by"] is None


def test_the_client_reads_their_own_name_on_their_decision(house_setup, api, piece):
    h = house_setup
    sent = new_sent_round(api, h, piece.line_id)
    decided = ok(api(h.client_contact).post(f"/design/rounds/{sent['id']}/decision",
                                            {"decision": "approve"}))
    assert decided["decided_by"]["id"] == h.client_contact.pk
    approval = ok(api(h.client_contact).get(f"/design/approvals/{decided['approval_id']}"))
    assert approval["approved_by"]["id"] == h.client_contact.pk


def test_line_approvals_in_a_fixed_number_of_queries(house_setup, api, proto_piece):
    h = house_setup
    me = api(h.sales)
    url = f"/design/lines/{proto_piece.line_id}/approvals"
    me.get(url)  # warm the token
    with CaptureQueriesContext(connection) as one:
        assert len(ok(me.get(url))) == 1
    made = ok(api(h.designer).post(f"/design/pieces/{proto_piece.pk}/prototypes", {
        "method": "resin_print", "result": "changes_needed", "fit_ok": False,
        "reason": "Gallery too low for the stone"}), 201)
    sent = new_sent_round(api, h, proto_piece.line_id)
    ok(api(h.client_contact).post(f"/design/rounds/{sent['id']}/decision",
                                  {"decision": "approve"}))
    with CaptureQueriesContext(connection) as two:
        approvals = ok(me.get(url))
    assert [(a["round_number"], a["valid"], a["invalidated_by_prototype_id"])
            for a in approvals] == [(1, False, made["id"]), (2, True, None)]
    assert len(two) == len(one)
