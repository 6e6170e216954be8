"""The /api/v1/quality/... endpoints, per endpoint and role."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from etabli.quality import selectors, services
from etabli.quality.models import Inspection, InspectionTemplate, Nonconformity
from tests.apiclient import API, assert_error, error_fields, ok
from tests.quality.conftest import open_inspection, piece_in_finishing, png
from tests.quality.support import inspect_and_sign, passing_measurements

pytestmark = pytest.mark.django_db

READERS = ["admin", "manager", "sales", "designer", "quality", "logistics"]
WRITERS = ["admin", "manager", "quality"]
OUTSIDERS = ["polisher_member", "caster_member", "client_contact"]


def measurements_body(ins, **overrides) -> dict:
    body = passing_measurements(ins, **overrides)
    return {k: (str(v) if v is not None and not isinstance(v, bool | int | list) else v)
            for k, v in body.items()}


# ---------------------------------------------------------------------------------------------
# templates


@pytest.mark.parametrize("who", READERS)
def test_templates_are_read_by_house_staff(house_setup, api, who):
    items = ok(api(getattr(house_setup, who)).get("/quality/templates"))["items"]
    default = next(t for t in items if t["is_default"])
    assert default["code"] == "house-standard"
    weight = next(c for c in default["criteria"] if c["kind"] == "weight")
    assert weight == {"kind": "weight", "label": "Weight", "enabled": True,
                      "tolerance": "2.000", "unit": "%"}
    assert ok(api(getattr(house_setup, who)).get(f"/quality/templates/{default['id']}"))[
        "code"] == "house-standard"


@pytest.mark.parametrize("who", OUTSIDERS)
def test_templates_are_hidden_from_workshops_and_clients(house_setup, api, who):
    template = InspectionTemplate.objects.get(is_default=True)
    me = api(getattr(house_setup, who))
    assert_error(me.get("/quality/templates"), 404, "not_found")
    assert_error(me.get(f"/quality/templates/{template.pk}"), 404, "not_found")
    assert_error(me.patch(f"/quality/templates/{template.pk}", {"name": "x"}), 404)


@pytest.mark.parametrize("who", WRITERS)
def test_templates_are_edited_by_quality_and_managers(house_setup, api, who):
    template = InspectionTemplate.objects.get(is_default=True)
    out = ok(api(getattr(house_setup, who)).patch(f"/quality/templates/{template.pk}", {
        "name": "House standard 2", "criteria": [{"kind": "dimensions", "tolerance": "0.15"},
                                                 {"kind": "function", "enabled": False}]}))
    rows = {c["kind"]: c for c in out["criteria"]}
    assert out["name"] == "House standard 2"
    assert rows["dimensions"]["tolerance"] == "0.150" and not rows["function"]["enabled"]
    assert rows["weight"]["tolerance"] == "2.000"  # not sent: unchanged


def test_template_edit_refusals(house_setup, api):
    h = house_setup
    template = InspectionTemplate.objects.get(is_default=True)
    url = f"/quality/templates/{template.pk}"
    assert_error(api(h.sales).patch(url, {"name": "x"}), 403, "forbidden")
    body = assert_error(api(h.quality).patch(url, {"criteria": [
        {"kind": "weight", "tolerance": "50"}]}), 400, "invalid")
    assert body["details"]["field"] == "criteria.weight.tolerance"
    assert error_fields(api(h.quality).patch(url, {"criteria": [
        {"kind": "weight", "tolerance": "lots"}]})) == {"criteria.0.tolerance"}
    assert error_fields(api(h.quality).patch(url, {"criteria": [
        {"kind": "sparkle"}]})) == {"criteria.0.kind"}
    assert error_fields(api(h.quality).patch(url, {"criteria": [
        {"kind": "weight", "tolerance": True}]})) == {"criteria.0.tolerance"}
    assert_error(api(h.quality).patch("/quality/templates/999999", {"name": "x"}), 404)
    assert_error(api(h.quality).patch(url, {"is_active": False}), 400)


def test_template_create(house_setup, api):
    h = house_setup
    out = ok(api(h.quality).post("/quality/templates", {"code": "chains", "name": "Chains"}),
             201)
    assert len(out["criteria"]) == 6 and not out["is_default"]
    assert_error(api(h.quality).post("/quality/templates", {"code": "chains", "name": "x"}),
                 409, "conflict")
    assert_error(api(h.sales).post("/quality/templates", {"code": "c2", "name": "x"}), 403)
    assert_error(api(h.client_contact).post("/quality/templates",
                                            {"code": "c3", "name": "x"}), 404)
    assert error_fields(api(h.quality).post("/quality/templates", {"name": "x"})) == {"code"}


# ---------------------------------------------------------------------------------------------
# inspections


def test_inspection_lifecycle_through_the_api(house_setup, api, media):
    h = house_setup
    piece = piece_in_finishing(h)
    me = api(h.quality)
    created = ok(me.post("/quality/inspections", {"piece_id": piece.pk}), 201)
    iid = created["id"]
    assert created["status"] == "draft" and created["verdict"] == "pending"
    assert created["piece"] == {"id": piece.pk, "serial": piece.serial}
    assert created["run"]["step"] == "finishing"
    assert created["sheet_url"] == f"/quality/inspections/{iid}/sheet.pdf"
    assert [c["kind"] for c in created["criteria"]] == [
        "weight", "dimensions", "fineness", "surface", "stones", "function"]

    dup = assert_error(me.post("/quality/inspections", {"piece_id": piece.pk}), 409, "conflict")
    assert dup["details"]["inspection_id"] == iid

    ins = Inspection.objects.get(pk=iid)
    body = measurements_body(ins, theoretical_weight_g="10.000", measured_weight_g="10.201")
    body["verdict"] = "pass"  # a verdict is computed, never typed: this is ignored
    measured = ok(me.put(f"/quality/inspections/{iid}/measurements", body))
    assert measured["verdict"] == "fail"
    weight = next(c for c in measured["criteria"] if c["kind"] == "weight")
    assert weight["verdict"] == "fail" and "2.01" in weight["detail"]
    body["measured_weight_g"] = "10.200"
    measured = ok(me.put(f"/quality/inspections/{iid}/measurements", body))
    assert measured["verdict"] == "pass"
    dims = next(c for c in measured["criteria"] if c["kind"] == "dimensions")["dimensions"]
    assert dims == [{"name": "Band width", "target_mm": "2.500", "measured_mm": "2.520",
                     "deviation_mm": "0.020", "verdict": "pass"}]

    photo = me.client.post(f"{API}/quality/inspections/{iid}/photos",
                           {"file": png(), "moment": "after", "client_ref": "p1"},
                           headers=me._headers())
    assert photo.status_code == 201, photo.content
    again = me.client.post(f"{API}/quality/inspections/{iid}/photos",
                           {"file": png(), "moment": "after", "client_ref": "p1"},
                           headers=me._headers())
    assert again.status_code == 200 and again.json()["id"] == photo.json()["id"]
    bad = me.client.post(f"{API}/quality/inspections/{iid}/photos",
                         {"file": png(), "moment": "whenever"}, headers=me._headers())
    assert bad.status_code == 422

    assert_error(me.post(f"/quality/inspections/{iid}/sign", {"confirm": False}), 400)
    assert error_fields(me.post(f"/quality/inspections/{iid}/sign", {})) == {"confirm"}
    signed = ok(me.post(f"/quality/inspections/{iid}/sign", {"confirm": True}))
    assert signed["status"] == "signed" and signed["verdict"] == "pass"
    assert signed["signed_by"] == "quality" and signed["signed_at"]
    digest = hashlib.sha256(services.canonical_json(signed["signed_content"])).hexdigest()
    assert signed["signed_sha256"] == digest
    assert [p["moment"] for p in signed["photos"]] == ["after"]

    assert_error(me.post(f"/quality/inspections/{iid}/sign", {"confirm": True}), 409)
    assert_error(me.put(f"/quality/inspections/{iid}/measurements", body), 409)
    assert_error(me.delete(f"/quality/inspections/{iid}"), 409)
    assert_error(me.delete(f"/quality/inspections/{iid}/photos/{photo.json()['id']}"), 409)


def test_measurements_bad_input(house_setup, api):
    h = house_setup
    piece = piece_in_finishing(h)
    me = api(h.quality)
    iid = ok(me.post("/quality/inspections", {"piece_id": piece.pk}), 201)["id"]
    url = f"/quality/inspections/{iid}/measurements"
    assert error_fields(me.put(url, {"measured_weight_g": True})) == {"measured_weight_g"}
    assert error_fields(me.put(url, {"surface_defects": "some"})) == {"surface_defects"}
    assert error_fields(me.put(url, {"dimensions": [{"name": "x"}]})) == {
        "dimensions.0.target_mm"}
    body = assert_error(me.put(url, {"measured_weight_g": "1.0001"}), 400, "invalid")
    assert body["details"]["field"] == "measured_weight_g"
    body = assert_error(me.put(url, {"function_result": "squeaky"}), 400)
    assert body["details"]["field"] == "function_result"
    assert_error(me.put(url, raw="not json"), 400)
    assert_error(me.put("/quality/inspections/999999/measurements", {}), 404)


def test_create_refusals(house_setup, api):
    h = house_setup
    piece = piece_in_finishing(h)
    assert_error(api(h.sales).post("/quality/inspections", {"piece_id": piece.pk}), 403)
    for who in OUTSIDERS:
        assert_error(api(getattr(h, who)).post("/quality/inspections", {"piece_id": piece.pk}),
                     404, "not_found")
    assert_error(api(h.quality).post("/quality/inspections", {"piece_id": 999999}), 404)
    assert error_fields(api(h.quality).post("/quality/inspections",
                                            {"piece_id": "one"})) == {"piece_id"}
    assert error_fields(api(h.quality).post("/quality/inspections", {})) == {"piece_id"}
    assert_error(api(h.quality).post("/quality/inspections",
                                     {"piece_id": piece.pk, "template_id": 999999}), 404)
    early = h.launched_piece()
    assert_error(api(h.manager).post("/quality/inspections", {"piece_id": early.pk}), 409,
                 "transition_not_allowed")


@pytest.mark.parametrize("who", READERS)
def test_house_staff_read_inspections(house_setup, api, who):
    h = house_setup
    piece = piece_in_finishing(h)
    ins = inspect_and_sign(h, piece)
    me = api(getattr(h, who))
    assert ok(me.get(f"/quality/inspections/{ins.pk}"))["reference"] == ins.reference
    assert [i["id"] for i in ok(me.get("/quality/inspections"))["items"]] == [ins.pk]
    if who not in WRITERS:
        assert_error(me.post(f"/quality/inspections/{ins.pk}/sign", {"confirm": True}), 403)


@pytest.mark.parametrize("who", OUTSIDERS)
def test_workshops_and_clients_see_no_inspection(house_setup, api, who):
    h = house_setup
    ins = inspect_and_sign(h, piece_in_finishing(h))
    me = api(getattr(h, who))
    assert_error(me.get("/quality/inspections"), 404)
    assert_error(me.get(f"/quality/inspections/{ins.pk}"), 404)
    assert_error(me.get(f"/quality/inspections/{ins.pk}/sheet.pdf"), 404)
    assert_error(me.put(f"/quality/inspections/{ins.pk}/measurements", {}), 404)
    assert_error(me.post(f"/quality/inspections/{ins.pk}/sign", {"confirm": True}), 404)
    assert_error(me.delete(f"/quality/inspections/{ins.pk}"), 404)


def test_inspection_list_filters_and_query_budget(house_setup, api,
                                                  django_assert_max_num_queries):
    h = house_setup
    passed = inspect_and_sign(h, piece_in_finishing(h))
    draft = open_inspection(h, piece_in_finishing(h))
    failed_piece = piece_in_finishing(h)
    failed = open_inspection(h, failed_piece, surface_defects=1)
    services.inspection_sign(actor=h.quality, inspection_id=failed.pk)
    me = api(h.manager)

    def ids(params):
        return [i["id"] for i in ok(me.get("/quality/inspections", params))["items"]]

    assert set(ids({})) == {passed.pk, draft.pk, failed.pk}
    assert ids({"status": "draft"}) == [draft.pk]
    assert ids({"verdict": "fail"}) == [failed.pk]
    assert ids({"piece_id": failed_piece.pk}) == [failed.pk]
    assert ids({"order_id": failed_piece.order_id}) == [failed.pk]
    assert ids({"q": passed.piece.serial}) == [passed.pk]
    assert error_fields(me.get("/quality/inspections", {"verdict": "great"})) == {"verdict"}
    me.get("/quality/inspections")  # warm the token
    with django_assert_max_num_queries(8):
        assert len(ok(me.get("/quality/inspections"))["items"]) == 3


def test_discard_a_draft(house_setup, api):
    h = house_setup
    ins = open_inspection(h, piece_in_finishing(h))
    assert_error(api(h.sales).delete(f"/quality/inspections/{ins.pk}"), 403)
    assert api(h.quality).delete(f"/quality/inspections/{ins.pk}").status_code == 204
    assert not Inspection.objects.filter(pk=ins.pk).exists()


def test_sheet_pdf_through_the_api(house_setup, api):
    h = house_setup
    ins = inspect_and_sign(h, piece_in_finishing(h))
    response = api(h.sales).get(f"/quality/inspections/{ins.pk}/sheet.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert ins.piece.serial in text and "PASS" in text


# ---------------------------------------------------------------------------------------------
# nonconformities


def _failed(h):
    piece = piece_in_finishing(h)
    ins = open_inspection(h, piece, loose_stones=1)
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    return piece, Nonconformity.objects.get(inspection=ins)


def test_nonconformity_through_the_api(house_setup, api):
    h = house_setup
    piece, nc = _failed(h)
    me = api(h.quality)
    out = ok(me.get(f"/quality/nonconformities/{nc.pk}"))
    assert out["status"] == "open" and out["held"] is True
    assert [c["kind"] for c in out["failed_criteria"]] == ["stones"]
    assert out["failed_criteria"][0]["label"] == "Stone security"
    targets = {t["step"]: t["id"] for t in out["rework_targets"]}
    assert set(targets) >= {"setting", "manufacturing", "finishing"}
    assert "order_receipt" not in targets

    assert_error(me.post(f"/quality/nonconformities/{nc.pk}/rework",
                         {"target_run_id": targets["setting"]}), 409)
    assert error_fields(me.put(f"/quality/nonconformities/{nc.pk}/cause", {
        "root_cause": "bad luck", "corrective_action": "x"})) == {"root_cause"}
    assert error_fields(me.put(f"/quality/nonconformities/{nc.pk}/cause", {
        "root_cause": "setting", "corrective_action": ""})) == {"corrective_action"}
    assert_error(api(h.sales).put(f"/quality/nonconformities/{nc.pk}/cause", {
        "root_cause": "setting", "corrective_action": "x"}), 403)
    out = ok(me.put(f"/quality/nonconformities/{nc.pk}/cause", {
        "root_cause": "setting", "corrective_action": "Tighten the claws."}))
    assert out["root_cause"] == "setting" and out["cause_recorded_by"] == "quality"
    assert error_fields(me.post(f"/quality/nonconformities/{nc.pk}/rework",
                                {"target_run_id": "setting"})) == {"target_run_id"}
    assert_error(me.post(f"/quality/nonconformities/{nc.pk}/rework",
                         {"target_run_id": 999999}), 404)
    out = ok(me.post(f"/quality/nonconformities/{nc.pk}/rework",
                     {"target_run_id": targets["setting"], "comment": "Check all four."}))
    assert out["status"] == "in_rework" and out["rework_run"]["step"] == "setting"
    assert out["rework_targets"] == []
    assert_error(me.post(f"/quality/nonconformities/{nc.pk}/rework",
                         {"target_run_id": targets["setting"]}), 409)
    piece.refresh_from_db()
    assert piece.rework_count == 1


def test_nonconformity_list_and_roles(house_setup, api, django_assert_max_num_queries):
    h = house_setup
    _piece, nc = _failed(h)
    _failed(h)
    for who in READERS:
        items = ok(api(getattr(h, who)).get("/quality/nonconformities", {"open": "true"}))[
            "items"]
        assert len(items) == 2
    for who in OUTSIDERS:
        me = api(getattr(h, who))
        assert_error(me.get("/quality/nonconformities"), 404)
        assert_error(me.get(f"/quality/nonconformities/{nc.pk}"), 404)
        assert_error(me.put(f"/quality/nonconformities/{nc.pk}/cause", {
            "root_cause": "setting", "corrective_action": "x"}), 404)
    me = api(h.manager)
    assert ok(me.get("/quality/nonconformities", {"status": "closed"}))["items"] == []
    assert ok(me.get("/quality/nonconformities", {"piece_id": nc.piece_id}))["count"] == 1
    me.get("/quality/nonconformities")
    with django_assert_max_num_queries(6):
        assert ok(me.get("/quality/nonconformities"))["count"] == 2


def _reworked(h):
    piece, nc = _failed(h)
    services.nonconformity_record_cause(actor=h.quality, nc_id=nc.pk, root_cause="setting",
                                        corrective_action="Tighten the claws.")
    target = next(r for r in selectors.rework_targets(piece, nc.inspection.run)
                  if r.step == "setting")
    return services.nonconformity_send_to_rework(actor=h.quality, nc_id=nc.pk,
                                                 target_run_id=target.pk)


def test_reworked_nonconformities_listed_in_a_fixed_number_of_queries(house_setup, api):
    h = house_setup
    _reworked(h)
    me = api(h.manager)
    me.get("/quality/nonconformities")  # warm the token
    with CaptureQueriesContext(connection) as one:
        items = ok(me.get("/quality/nonconformities"))["items"]
    assert [i["sent_to_rework_by"] for i in items] == ["quality"]
    _reworked(h)
    _reworked(h)
    with CaptureQueriesContext(connection) as three:
        items = ok(me.get("/quality/nonconformities"))["items"]
    assert [(i["status"], i["sent_to_rework_by"]) for i in items] == [("in_rework",
                                                                        "quality")] * 3
    assert len(three) == len(one)


def test_a_client_never_sees_a_nonconformity_anywhere(house_setup, api):
    h = house_setup
    piece, nc = _failed(h)
    me = api(h.client_contact)
    order = ok(me.get(f"/orders/{piece.order_id}"))
    assert nc.reference not in str(order)
    page = Client()
    page.force_login(h.client_contact)
    response = page.get(f"/portal/{piece.order_id}/")
    assert response.status_code == 200
    assert nc.reference.encode() not in response.content
    assert b"Quality control" not in response.content
