"""Finishing over the API: every endpoint, per role, with bad input and other workshops' ids."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from etabli.finishing.models import FinishingRecord, HallmarkExemption
from etabli.production.models import Piece, PieceStatus
from tests.apiclient import assert_error, error_fields, ok
from tests.finishing.builders import ALL_OPERATIONS, assay_office, finishing_piece, weigh

pytestmark = pytest.mark.django_db

RECORD_KEYS = {"id", "piece_id", "step_run_id", "step_position", "attempt", "operation",
               "operation_label", "status", "status_label", "workshop", "recorded_by",
               "recorded_at", "finish", "thickness_um", "text", "position", "maker_mark",
               "fineness_mark", "hallmark_country", "weight_judged_g", "exemption_id",
               "method", "reason", "comment", "client_ref"}


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def piece(h):
    return finishing_piece(h, operations=ALL_OPERATIONS)


def url(piece, tail: str) -> str:
    return f"/finishing/pieces/{piece.pk}/{tail}"


# ---------------------------------------------------------------------------------------------
# records


def test_record_each_operation_and_list_them(h, api, piece):
    me = api(h.polisher_member)
    polished = ok(me.post(url(piece, "polishing"), {"finish": "satin", "comment": "Matte"}), 201)
    assert set(polished) == RECORD_KEYS
    assert (polished["operation"], polished["status"], polished["finish"]) == (
        "polishing", "done", "satin")
    assert polished["workshop"]["code"] == "polisher" and polished["recorded_by"] == "polisher1"
    engraved = ok(me.post(url(piece, "engraving"), {"text": "Toujours", "position": "back"}), 201)
    assert (engraved["text"], engraved["position"]) == ("Toujours", "back")
    serial = ok(me.post(url(piece, "serial-engraving"), {}), 201)
    assert serial["text"] == piece.serial
    marks = ok(me.post(url(piece, "hallmarking"), {"maker_mark": "EB ◇"}), 201)
    assert (marks["maker_mark"], marks["fineness_mark"], marks["hallmark_country"]) == (
        "EB ◇", "750", "FR")
    assert ok(me.post(url(piece, "cleaning"), {"method": "steam"}), 201)["method"] == "steam"
    listed = ok(me.get(url(piece, "records")))
    assert listed["count"] == 5
    assert [r["operation"] for r in listed["items"]] == [
        "polishing", "engraving", "serial_engraving", "hallmarking", "cleaning"]


def test_plating_on_white_gold_and_refused_on_yellow(h, api, piece):
    me = api(h.polisher_member)
    body = assert_error(me.post(url(piece, "plating"), {"thickness_um": "0.25"}), 400, "invalid")
    assert "only for white metal" in body["message"]
    assert body["details"]["field"] == "thickness_um"
    white = finishing_piece(h, operations=["plating"], alloy="750w")
    plated = ok(me.post(url(white, "plating"), {"thickness_um": 0.3}), 201)
    assert plated["thickness_um"] == "0.30"
    assert error_fields(me.post(url(white, "plating"), {"thickness_um": True})) == {
        "thickness_um"}


@pytest.mark.parametrize("tail, body, fields", [
    ("polishing", {}, {"finish"}),
    ("polishing", {"finish": "mirror"}, {"finish"}),
    ("polishing", {"finish": 3}, {"finish"}),
    ("plating", {"thickness_um": "thin"}, {"thickness_um"}),
    ("engraving", {"text": "x" * 41, "position": "back"}, {"text"}),
    ("engraving", {"text": "ok"}, {"position"}),
    ("engraving", {"text": ["a"], "position": "back"}, {"text"}),
    ("serial-engraving", {"position": "under"}, {"position"}),
    ("cleaning", {"method": "acid"}, {"method"}),
    ("polishing", {"finish": "bright", "client_ref": "x" * 65}, {"client_ref"}),
    ("waivers", {"operation": "plating"}, {"reason"}),
    ("waivers", {"operation": "varnish", "reason": "no"}, {"operation"}),
])
def test_malformed_bodies(h, api, piece, tail, body, fields):
    who = h.manager if tail == "waivers" else h.polisher_member
    assert error_fields(api(who).post(url(piece, tail), body)) == fields
    assert not FinishingRecord.objects.exists()


def test_not_json_and_not_an_object(h, api, piece):
    me = api(h.polisher_member)
    assert_error(me.post(url(piece, "polishing"), raw="finish=bright"), 400)
    assert_error(me.post(url(piece, "polishing"), raw='["bright"]'), 422)


def test_service_refusals_come_back_as_errors(h, api, piece):
    me = api(h.polisher_member)
    ok(me.post(url(piece, "polishing"), {"finish": "bright", "client_ref": "tap-1"}), 201)
    again = ok(me.post(url(piece, "polishing"), {"finish": "bright", "client_ref": "tap-1"}),
               200)
    assert again["client_ref"] == "tap-1"
    assert_error(me.post(url(piece, "polishing"), {"finish": "satin"}), 409, "conflict")
    assert_error(me.post(url(piece, "cleaning"), {"method": "steam", "client_ref": "tap-1"}),
                 409, "conflict")
    body = assert_error(me.post(url(piece, "hallmarking"), {"maker_mark": "EB",
                                                            "fineness_mark": "585"}), 400)
    assert body["details"]["field"] == "fineness_mark"
    narrow = finishing_piece(h, operations=["polishing"])
    body = assert_error(me.post(url(narrow, "cleaning"), {"method": "steam"}), 400)
    assert body["details"]["field"] == "operation"
    waiting = finishing_piece(h, operations=["polishing"], started=False)
    assert_error(me.post(url(waiting, "polishing"), {"finish": "bright"}), 409,
                 "transition_not_allowed")
    assert FinishingRecord.objects.count() == 1


def test_a_refused_hallmark_puts_the_piece_on_hold(h, api, piece):
    me = api(h.polisher_member)
    assert_error(me.post(url(piece, "hallmarking"), {"status": "refused"}), 400)
    refused = ok(me.post(url(piece, "hallmarking"), {"status": "refused",
                                                     "reason": "Solder seam under titre"}), 201)
    assert refused["status"] == "refused" and refused["reason"] == "Solder seam under titre"
    assert Piece.objects.get(pk=piece.pk).status == PieceStatus.ON_HOLD


@pytest.mark.parametrize("who", ["setter_member", "caster_member", "client_contact",
                                 "other_client_contact", "designer"])
def test_outside_scope_answers_404(h, api, piece, who):
    them = api(getattr(h, who))
    assert_error(them.post(url(piece, "polishing"), {"finish": "bright"}), 404, "not_found")
    assert_error(them.get(url(piece, "records")), 404, "not_found")
    assert_error(them.get(url(piece, "hallmark")), 404, "not_found")
    assert_error(them.post(url(piece, "waivers"), {"operation": "plating", "reason": "x"}),
                 404)


@pytest.mark.parametrize("who", ["sales", "quality", "logistics"])
def test_house_roles_that_do_not_record_at_the_polisher(h, api, piece, who):
    response = api(getattr(h, who)).post(url(piece, "polishing"), {"finish": "bright"})
    if who == "logistics":  # logistics does not see pieces in finishing at all
        assert_error(response, 404)
    else:
        assert_error(response, 403, "forbidden")


def test_unknown_piece_and_anonymous(h, api):
    assert_error(api(h.manager).post("/finishing/pieces/999999/polishing",
                                     {"finish": "bright"}), 404)
    assert_error(api(h.manager).get("/finishing/pieces/999999/records"), 404)
    assert_error(api(None).get("/finishing/pieces/1/records"), 401)
    assert_error(api(h.manager).get("/finishing/pieces/abc/records"), 422)


def test_each_workshop_lists_only_its_own_records(h, api):
    office, member = assay_office(h)
    p = finishing_piece(h, operations=["polishing"])
    ok(api(h.polisher_member).post(url(p, "polishing"), {"finish": "bright"}), 201)
    ok(api(h.manager).post(url(p, "assay-step"), {}), 201)
    h.finish_step(p)
    h.advance(p)  # sent to the assay office
    h.advance(p)  # received
    h.advance(p)  # started
    ok(api(member).post(url(p, "hallmarking"), {"maker_mark": "EB"}), 201)
    assert [r["operation"] for r in ok(api(member).get(url(p, "records")))["items"]] == [
        "hallmarking"]
    assert_error(api(h.polisher_member).get(url(p, "records")), 404)  # gone from the polisher
    seen = ok(api(h.manager).get(url(p, "records")))["items"]
    assert [(r["operation"], r["workshop"]["code"]) for r in seen] == [
        ("polishing", "polisher"), ("hallmarking", "assay")]


def test_record_list_query_budget(h, api, piece):
    me = api(h.manager)
    for tail, body in (("polishing", {"finish": "bright"}), ("cleaning", {"method": "steam"}),
                       ("engraving", {"text": "A", "position": "back"})):
        ok(me.post(url(piece, tail), body), 201)
    ok(me.get(url(piece, "records")))
    with CaptureQueriesContext(connection) as few:
        assert ok(me.get(url(piece, "records")))["count"] == 3
    budget = len(few)  # read now: the log it reads from moves on
    ok(me.post(url(piece, "serial-engraving"), {}), 201)
    ok(me.post(url(piece, "hallmarking"), {"maker_mark": "EB"}), 201)
    with CaptureQueriesContext(connection) as more:
        assert ok(me.get(url(piece, "records")))["count"] == 5
    assert len(more) == budget <= 8


# ---------------------------------------------------------------------------------------------
# waivers


def test_waivers(h, api, piece):
    assert_error(api(h.polisher_member).post(url(piece, "waivers"), {
        "operation": "plating", "reason": "Yellow gold"}), 403)
    waived = ok(api(h.manager).post(url(piece, "waivers"), {
        "operation": "plating", "reason": "Yellow gold", "client_ref": "w1"}), 201)
    assert (waived["status"], waived["reason"]) == ("waived", "Yellow gold")
    ok(api(h.manager).post(url(piece, "waivers"), {
        "operation": "plating", "reason": "Yellow gold", "client_ref": "w1"}), 200)
    assert_error(api(h.manager).post(url(piece, "waivers"), {
        "operation": "plating", "reason": "Again"}), 409)


# ---------------------------------------------------------------------------------------------
# hallmark and the assay office


def test_hallmark_requirement_per_role(h, api, piece):
    weigh(h, piece, "2.400")
    for who in (h.polisher_member, h.manager, h.sales, h.quality):
        body = ok(api(who).get(url(piece, "hallmark")))
        assert (body["status"], body["required"], body["weight_g"], body["weight_source"]) == (
            "exempt", False, "2.400", "weighed")
        assert body["rule"]["under_weight_g"] == "3.000" and body["country"] == "FR"
        assert body["fineness"] == 750
        assert "2.400 g of gold is under 3 g (FR)" in body["explanation"]
        assert body["route_has_hallmarking"] is True


def test_hallmark_requirement_unknown_weight(h, api, piece):
    body = ok(api(h.manager).get(url(piece, "hallmark")))
    assert (body["status"], body["weight_g"], body["weight_source"]) == (
        "required", None, "unknown")


def test_assay_step_endpoint(h, api):
    office, _member = assay_office(h)
    p = finishing_piece(h, operations=["polishing", "cleaning"])
    assert_error(api(h.sales).post(url(p, "assay-step"), {}), 403)
    assert_error(api(h.polisher_member).post(url(p, "assay-step"), {}), 403)
    assert error_fields(api(h.manager).post(url(p, "assay-step"), {"planned_days": 0})) == {
        "planned_days"}
    assert_error(api(h.manager).post(url(p, "assay-step"), {"workshop_id": h.setter.pk}), 400)
    run = ok(api(h.manager).post(url(p, "assay-step"), {}), 201)
    assert (run["step"], run["operations"], run["workshop"]["code"], run["status"]) == (
        "finishing", ["hallmarking"], "assay", "pending")
    assert_error(api(h.manager).post(url(p, "assay-step"), {}), 409)
    assert ok(api(h.manager).get(url(p, "hallmark")))["route_has_hallmarking"] is True
    light = finishing_piece(h, operations=["polishing"])
    weigh(h, light, "1.000")
    body = assert_error(api(h.manager).post(url(light, "assay-step"), {}), 400)
    assert "No assay office trip is needed" in body["message"]


# ---------------------------------------------------------------------------------------------
# exemptions


@pytest.mark.parametrize("who", ["admin", "manager", "sales", "designer", "quality",
                                 "logistics"])
def test_house_staff_read_the_exemptions(h, api, who):
    body = ok(api(getattr(h, who)).get("/finishing/hallmark-exemptions"))
    assert body["count"] == 7
    fr_gold = next(r for r in body["items"] if (r["country"], r["metal"]) == ("FR", "gold"))
    assert fr_gold["under_weight_g"] == "3.000" and fr_gold["in_force"] is True
    assert fr_gold["metal_label"] == "Gold" and "524 bis" in fr_gold["legal_reference"]
    uk = ok(api(getattr(h, who)).get("/finishing/hallmark-exemptions", {"country": "uk"}))
    assert uk["count"] == 4 and not any(r["in_force"] for r in uk["items"])


@pytest.mark.parametrize("who", ["polisher_member", "client_contact"])
def test_workshops_and_clients_do_not(h, api, who):
    assert_error(api(getattr(h, who)).get("/finishing/hallmark-exemptions"), 403)
    row = HallmarkExemption.objects.first()
    assert_error(api(getattr(h, who)).patch(f"/finishing/hallmark-exemptions/{row.pk}",
                                            {"under_weight_g": "9"}), 403)


def test_exemption_list_query_budget(h, api):
    me = api(h.sales)
    ok(me.get("/finishing/hallmark-exemptions"))  # the token's first use is recorded
    with CaptureQueriesContext(connection) as few:
        ok(me.get("/finishing/hallmark-exemptions"))
    budget = len(few)  # read now: the log it reads from moves on
    for metal in ("gold", "silver", "platinum"):
        HallmarkExemption.objects.create(country="CH", metal=metal, under_weight_g=1)
    with CaptureQueriesContext(connection) as more:
        assert ok(me.get("/finishing/hallmark-exemptions"))["count"] == 10
    assert len(more) == budget


def test_exemption_writes(h, api):
    me = api(h.manager)
    created = ok(me.post("/finishing/hallmark-exemptions", {
        "country": "ch", "metal": "gold", "under_weight_g": "1", "legal_reference": "LCMP"}),
        201)
    assert (created["country"], created["under_weight_g"]) == ("CH", "1.000")
    assert_error(me.post("/finishing/hallmark-exemptions", {
        "country": "CH", "metal": "gold", "under_weight_g": "2"}), 409)
    assert_error(me.post("/finishing/hallmark-exemptions", {
        "country": "CH", "metal": "copper", "under_weight_g": "2"}), 400)
    assert error_fields(me.post("/finishing/hallmark-exemptions", {
        "country": "CH", "metal": "silver", "under_weight_g": False})) == {"under_weight_g"}
    assert error_fields(me.post("/finishing/hallmark-exemptions", {"country": "CH"})) == {
        "metal", "under_weight_g"}
    assert_error(api(h.sales).post("/finishing/hallmark-exemptions", {
        "country": "CH", "metal": "silver", "under_weight_g": "2"}), 403)
    patched = ok(me.patch(f"/finishing/hallmark-exemptions/{created['id']}",
                          {"under_weight_g": "1.5"}))
    assert patched["under_weight_g"] == "1.500" and patched["legal_reference"] == "LCMP"
    assert_error(me.patch(f"/finishing/hallmark-exemptions/{created['id']}",
                          {"under_weight_g": "-1"}), 400)
    assert_error(me.patch("/finishing/hallmark-exemptions/999999", {"under_weight_g": "1"}),
                 404)
    assert_error(api(h.sales).delete(f"/finishing/hallmark-exemptions/{created['id']}"), 403)
    assert me.delete(f"/finishing/hallmark-exemptions/{created['id']}").status_code == 204
    assert_error(me.delete(f"/finishing/hallmark-exemptions/{created['id']}"), 404)
