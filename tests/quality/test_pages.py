"""Quality pages per role: the queue, the inspection form and its live verdict, sign-off,
the sheet (PDF), nonconformities and rework, templates, the panel on the piece page."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from pypdf import PdfReader

from etabli.accounts.models import Role
from etabli.production.models import PieceStatus
from etabli.quality import services
from etabli.quality.models import (
    Inspection,
    InspectionStatus,
    InspectionTemplate,
    Nonconformity,
    NonconformityStatus,
    Verdict,
)
from tests.factories import make_user
from tests.quality.conftest import open_inspection, piece_in_finishing, png
from tests.quality.support import inspect_and_sign

pytestmark = pytest.mark.django_db

READERS = ["admin", "manager", "sales", "designer", "quality", "logistics"]
WRITERS = ["admin", "manager", "quality"]
OUTSIDERS = ["polisher_member", "client_contact"]


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_body(ins, **overrides) -> dict:
    body = {
        "rows": "3", "theoretical_weight_g": "10.000", "measured_weight_g": "10.000",
        "fineness_method": "xrf", "fineness_reading_permille": "750.5", "surface_defects": "0",
        "stones_mechanical_test": "yes", "loose_stones": "0", "function_result": "na",
        "notes": "", "dimensions.0.name": "Band width", "dimensions.0.target_mm": "2.500",
        "dimensions.0.measured_mm": "2.600",
    }
    return body | overrides


def pdf_text(content: bytes) -> str:
    """The PDF's text with line breaks as spaces (table cells wrap)."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# the queue


@pytest.mark.parametrize("who", READERS)
def test_queue_per_house_role(house_setup, who):
    h = house_setup
    piece = piece_in_finishing(h)
    response = browser(getattr(h, who)).get("/quality/")
    assert response.status_code == 200
    html = response.content.decode()
    # The queue lists the pieces the role sees (Piece.visible_to): designers and logistics
    # see none in finishing.
    assert (piece.serial in html) == (who in ("admin", "manager", "sales", "quality"))
    assert (f'action="/quality/pieces/{piece.pk}/inspect/"' in html) == (who in WRITERS)
    nav = 'href="/quality/"' in html
    assert nav == (who in ("admin", "manager", "sales", "quality"))


@pytest.mark.parametrize("who", OUTSIDERS)
def test_quality_pages_are_not_there_for_workshops_and_clients(house_setup, who):
    h = house_setup
    piece = piece_in_finishing(h)
    ins = inspect_and_sign(h, piece)
    me = browser(getattr(h, who))
    template = InspectionTemplate.objects.get(is_default=True)
    for url in ("/quality/", "/quality/inspections/", f"/quality/inspections/{ins.pk}/",
                f"/quality/inspections/{ins.pk}/sheet.pdf", "/quality/nonconformities/",
                "/quality/templates/", f"/quality/templates/{template.pk}/"):
        assert me.get(url).status_code == 404, url
    assert me.post(f"/quality/pieces/{piece.pk}/inspect/").status_code == 404
    assert me.post(f"/quality/inspections/{ins.pk}/sign/", {"confirm": "on"}).status_code == 404


def test_queue_shows_waiting_pieces_and_open_nonconformities(house_setup,
                                                             django_assert_max_num_queries):
    h = house_setup
    waiting = [piece_in_finishing(h) for _ in range(2)]
    draft = open_inspection(h, waiting[1])
    failed = piece_in_finishing(h)
    ins = open_inspection(h, failed, surface_defects=2)
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    nc = Nonconformity.objects.get(inspection=ins)
    me = browser(h.quality)
    me.get("/quality/")
    with django_assert_max_num_queries(20):
        html = me.get("/quality/").content.decode()
    assert waiting[0].serial in html and f"Continue {draft.reference}" in html
    assert nc.reference in html and "Surface" in html


# ---------------------------------------------------------------------------------------------
# the inspection form


def test_inspect_opens_or_resumes_the_inspection(house_setup):
    h = house_setup
    piece = piece_in_finishing(h)
    me = browser(h.quality)
    response = me.post(f"/quality/pieces/{piece.pk}/inspect/")
    ins = Inspection.objects.get(piece=piece)
    assert response.status_code == 302 and response.url == f"/quality/inspections/{ins.pk}/"
    again = me.post(f"/quality/pieces/{piece.pk}/inspect/")
    assert again.url == f"/quality/inspections/{ins.pk}/"
    assert Inspection.objects.filter(piece=piece).count() == 1
    assert browser(h.sales).post(f"/quality/pieces/{piece.pk}/inspect/").status_code == 403
    early = h.launched_piece()
    refused = browser(h.manager).post(f"/quality/pieces/{early.pk}/inspect/", follow=True)
    assert "not in finishing" in refused.content.decode()


def test_measure_on_the_page_and_see_the_verdict(house_setup):
    h = house_setup
    piece = piece_in_finishing(h)
    ins = services.inspection_create(actor=h.quality, piece_id=piece.pk)
    me = browser(h.quality)
    page = me.get(f"/quality/inspections/{ins.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="measured_weight_g"' in html and 'hx-post="/quality/inspections/' in html
    assert 'name="dimensions.2.measured_mm"' in html
    response = me.post(f"/quality/inspections/{ins.pk}/",
                       form_body(ins, measured_weight_g="10.201"))
    assert response.status_code == 302
    ins.refresh_from_db()
    assert ins.verdict == Verdict.FAIL and ins.measured_weight_g is not None
    html = me.get(f"/quality/inspections/{ins.pk}/").content.decode()
    assert 'data-verdict="fail"' in html and "deviation 2.01 %" in html


def test_bad_values_are_shown_next_to_their_field(house_setup):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=piece_in_finishing(h).pk)
    me = browser(h.quality)
    response = me.post(f"/quality/inspections/{ins.pk}/",
                       form_body(ins, **{"dimensions.0.measured_mm": "2.5001"}))
    assert response.status_code == 400
    html = response.content.decode()
    assert "3 decimals" in html and 'value="2.5001"' in html
    ins.refresh_from_db()
    assert ins.measured_weight_g is None


def test_live_verdict_through_htmx_saves_nothing(house_setup):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=piece_in_finishing(h).pk)
    me = browser(h.quality)
    response = me.post(f"/quality/inspections/{ins.pk}/preview/",
                       form_body(ins, **{"dimensions.0.measured_mm": "2.701"}),
                       headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and 'data-verdict="fail"' in html
    assert "not saved yet" in html
    passing = me.post(f"/quality/inspections/{ins.pk}/preview/",
                      form_body(ins, **{"dimensions.0.measured_mm": "2.700"}))
    assert 'data-verdict="pass"' in passing.content.decode()
    unreadable = me.post(f"/quality/inspections/{ins.pk}/preview/",
                         form_body(ins, measured_weight_g="ten"))
    assert "not a number" in unreadable.content.decode()
    ins.refresh_from_db()
    assert ins.measured_weight_g is None and ins.verdict == Verdict.PENDING
    assert browser(h.sales).post(f"/quality/inspections/{ins.pk}/preview/",
                                 form_body(ins)).status_code == 403


@pytest.mark.parametrize("who", ["sales", "designer", "logistics"])
def test_readers_see_the_inspection_but_cannot_write(house_setup, who):
    h = house_setup
    ins = open_inspection(h, piece_in_finishing(h))
    me = browser(getattr(h, who))
    html = me.get(f"/quality/inspections/{ins.pk}/").content.decode()
    assert ins.reference in html and 'name="measured_weight_g"' not in html
    assert me.post(f"/quality/inspections/{ins.pk}/", form_body(ins)).status_code == 403
    assert me.post(f"/quality/inspections/{ins.pk}/sign/", {"confirm": "on"}).status_code == 403
    ins.refresh_from_db()
    assert ins.status == InspectionStatus.DRAFT


def test_photos_on_the_page(house_setup, media):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=piece_in_finishing(h).pk)
    me = browser(h.quality)
    response = me.post(f"/quality/inspections/{ins.pk}/photos/",
                       {"moment": "before", "file": png(), "client_ref": "abc"})
    assert response.status_code == 302
    me.post(f"/quality/inspections/{ins.pk}/photos/",
            {"moment": "before", "file": png(), "client_ref": "abc"})  # sent twice
    assert ins.photos.count() == 1
    refused = me.post(f"/quality/inspections/{ins.pk}/photos/",
                      {"moment": "before", "file": png("notes.txt")}, follow=True)
    assert ins.photos.count() == 1 and "Photo not added" in refused.content.decode()
    photo = ins.photos.get()
    me.post(f"/quality/inspections/{ins.pk}/photos/{photo.pk}/remove/")
    assert ins.photos.count() == 0


# ---------------------------------------------------------------------------------------------
# signing and the sheet


def test_sign_needs_the_confirmation_box(house_setup):
    h = house_setup
    ins = open_inspection(h, piece_in_finishing(h))
    me = browser(h.quality)
    page = me.get(f"/quality/inspections/{ins.pk}/").content.decode()
    assert "data-confirm=" in page and 'name="confirm"' in page
    refused = me.post(f"/quality/inspections/{ins.pk}/sign/", {}, follow=True)
    assert "tick the box" in refused.content.decode()
    ins.refresh_from_db()
    assert ins.status == InspectionStatus.DRAFT
    response = me.post(f"/quality/inspections/{ins.pk}/sign/", {"confirm": "on"})
    assert response.url == f"/quality/inspections/{ins.pk}/"
    ins.refresh_from_db()
    assert ins.status == InspectionStatus.SIGNED
    html = me.get(f"/quality/inspections/{ins.pk}/").content.decode()
    assert ins.signed_sha256 in html and 'name="measured_weight_g"' not in html
    again = me.post(f"/quality/inspections/{ins.pk}/sign/", {"confirm": "on"}, follow=True)
    assert "cannot change" in again.content.decode()
    assert me.post(f"/quality/inspections/{ins.pk}/", form_body(ins)).status_code == 409


def test_a_failed_signature_leads_to_the_nonconformity(house_setup):
    h = house_setup
    piece = piece_in_finishing(h)
    ins = open_inspection(h, piece, stones_mechanical_test=False)
    response = browser(h.quality).post(f"/quality/inspections/{ins.pk}/sign/",
                                       {"confirm": "on"})
    nc = Nonconformity.objects.get(inspection=ins)
    assert response.url == f"/quality/nonconformities/{nc.pk}/"
    piece.refresh_from_db()
    assert piece.status == PieceStatus.ON_HOLD


def test_the_sheet_pdf(house_setup, media):
    h = house_setup
    inspector = make_user(Role.QUALITY, username="ines", first_name="Inès",
                          last_name="Garnier")
    piece = piece_in_finishing(h)
    ins = open_inspection(h, piece, actor=inspector, dimensions=[
        {"name": "Band width", "target_mm": "2.500", "measured_mm": "2.700"},
        {"name": "Shank height", "target_mm": "1.800", "measured_mm": "1.795"}])
    services.inspection_photo_add(actor=inspector, inspection_id=ins.pk, uploaded_file=png(),
                                  moment="after")
    draft = browser(h.manager).get(f"/quality/inspections/{ins.pk}/sheet.pdf")
    assert "draft — not signed" in pdf_text(draft.content).lower()
    signed = services.inspection_sign(actor=inspector, inspection_id=ins.pk)
    response = browser(h.sales).get(f"/quality/inspections/{ins.pk}/sheet.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    for words in (piece.serial, ins.reference, piece.order.reference, "Weight", "Dimensions",
                  "Band width", "Shank height", "Metal fineness", "Surface", "Stone security",
                  "Function", "PASS", "Inès Garnier", "10.000 g", "2.700", "± 2.00 %"):
        assert words in text, words
    assert signed.signed_sha256 in text
    assert "FAIL" not in text and "draft" not in text.lower()

    failed_piece = piece_in_finishing(h)
    bad = open_inspection(h, failed_piece, surface_defects=1)
    services.inspection_sign(actor=h.quality, inspection_id=bad.pk)
    text = pdf_text(browser(h.quality).get(f"/quality/inspections/{bad.pk}/sheet.pdf").content)
    assert "FAIL" in text and failed_piece.serial in text


def test_the_sheet_is_printed_in_the_orders_language(house_setup):
    from etabli.orders.models import Order

    h = house_setup
    piece = piece_in_finishing(h)
    Order.objects.filter(pk=piece.order_id).update(language="fr")
    ins = inspect_and_sign(h, piece)
    english_reader = browser(h.sales)
    response = english_reader.get(f"/quality/inspections/{ins.pk}/sheet.pdf")
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert piece.serial in text
    assert "Alliage" in text and "Commande" in text and "Alloy" not in text


# ---------------------------------------------------------------------------------------------
# nonconformities


def test_nonconformity_page_cause_and_rework(house_setup):
    h = house_setup
    piece = piece_in_finishing(h)
    ins = open_inspection(h, piece, loose_stones=2)
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    nc = Nonconformity.objects.get(inspection=ins)
    me = browser(h.quality)
    html = me.get(f"/quality/nonconformities/{nc.pk}/").content.decode()
    assert "Stone security" in html and "Record the root cause and the corrective action first" \
        in html
    bad = me.post(f"/quality/nonconformities/{nc.pk}/", {"root_cause": "setting",
                                                         "corrective_action": ""})
    assert bad.status_code == 400
    me.post(f"/quality/nonconformities/{nc.pk}/", {"root_cause": "setting",
                                                   "corrective_action": "Re-set the stones."})
    nc.refresh_from_db()
    assert nc.root_cause == "setting"
    html = me.get(f"/quality/nonconformities/{nc.pk}/").content.decode()
    setting = piece.runs.get(step="setting")
    assert f'value="{setting.pk}"' in html and "(this step again)" in html
    refused = me.post(f"/quality/nonconformities/{nc.pk}/rework/",
                      {"target_run_id": piece.runs.get(step="order_receipt").pk})
    assert refused.status_code == 400
    assert browser(h.sales).post(f"/quality/nonconformities/{nc.pk}/rework/",
                                 {"target_run_id": setting.pk}).status_code == 403
    response = me.post(f"/quality/nonconformities/{nc.pk}/rework/",
                       {"target_run_id": setting.pk, "comment": "All four claws."})
    assert response.status_code == 302
    nc.refresh_from_db()
    piece.refresh_from_db()
    assert nc.status == NonconformityStatus.IN_REWORK and piece.rework_count == 1
    twice = me.post(f"/quality/nonconformities/{nc.pk}/rework/",
                    {"target_run_id": setting.pk}, follow=True)
    assert "no longer open" in twice.content.decode()
    assert piece.runs.filter(step="setting").count() == 2  # reworked once, not twice
    # Back at setting, the piece is no longer the inspector's to open; the manager's still.
    piece_link = f'href="/pieces/{piece.pk}/"'
    assert piece_link not in me.get(f"/quality/nonconformities/{nc.pk}/").content.decode()
    assert piece_link in browser(h.manager).get(
        f"/quality/nonconformities/{nc.pk}/").content.decode()


@pytest.mark.parametrize("who", READERS)
def test_nonconformity_pages_per_house_role(house_setup, who):
    h = house_setup
    ins = open_inspection(h, piece_in_finishing(h), surface_defects=4)
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    nc = Nonconformity.objects.get(inspection=ins)
    me = browser(getattr(h, who))
    assert nc.reference in me.get("/quality/nonconformities/").content.decode()
    html = me.get(f"/quality/nonconformities/{nc.pk}/").content.decode()
    assert ('name="corrective_action"' in html) == (who in WRITERS)


# ---------------------------------------------------------------------------------------------
# templates


def test_template_page_edit(house_setup):
    h = house_setup
    template = InspectionTemplate.objects.get(is_default=True)
    me = browser(h.quality)
    html = me.get(f"/quality/templates/{template.pk}/").content.decode()
    assert 'name="criteria.weight.tolerance"' in html and 'value="2.00"' in html
    body = {"name": "House standard", "description": "", "is_active": "on"}
    for kind in ("weight", "dimensions", "fineness", "surface", "stones", "function"):
        body[f"criteria.{kind}.enabled"] = "on"
    body |= {"criteria.weight.tolerance": "1.5", "criteria.dimensions.tolerance": "0.2",
             "criteria.surface.tolerance": "0"}
    assert me.post(f"/quality/templates/{template.pk}/", body).status_code == 302
    assert template.criteria.get(kind="weight").tolerance == 1.5
    bad = me.post(f"/quality/templates/{template.pk}/",
                  body | {"criteria.dimensions.tolerance": "9"})
    assert bad.status_code == 400 and "between" in bad.content.decode()
    sales = browser(h.sales)
    html = sales.get(f"/quality/templates/{template.pk}/").content.decode()
    assert "Save the template" not in html and "disabled" in html
    assert sales.post(f"/quality/templates/{template.pk}/", body).status_code == 403
    created = me.post("/quality/templates/", {"code": "chains", "name": "Chains",
                                              "copy_from_id": template.pk})
    assert created.status_code == 302
    assert InspectionTemplate.objects.filter(code="chains").exists()
    dup = me.post("/quality/templates/", {"code": "chains", "name": "Chains",
                                          "copy_from_id": template.pk})
    assert dup.status_code == 400 and "already exists" in dup.content.decode()


# ---------------------------------------------------------------------------------------------
# the panel on the house piece page


def test_piece_page_panel(house_setup, django_assert_max_num_queries):
    h = house_setup
    piece = piece_in_finishing(h)
    me = browser(h.quality)
    html = me.get(f"/pieces/{piece.pk}/").content.decode()
    assert "Inspect this piece" in html
    ins = open_inspection(h, piece, surface_defects=1)
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    nc = Nonconformity.objects.get(inspection=ins)
    for who in ("manager", "sales", "quality"):
        html = browser(getattr(h, who)).get(f"/pieces/{piece.pk}/").content.decode()
        assert ins.reference in html and nc.reference in html
        assert "Inspect this piece" not in html  # on hold: nothing to open
    assert nc.reference not in browser(h.polisher_member).get(
        f"/workshop/pieces/{piece.pk}/").content.decode()


def test_no_panel_before_finishing(house_setup):
    h = house_setup
    piece = h.launched_piece()
    html = browser(h.manager).get(f"/pieces/{piece.pk}/").content.decode()
    assert "quality-panel" not in html


def test_inspection_and_nonconformity_lists(house_setup, django_assert_max_num_queries):
    h = house_setup
    passed = inspect_and_sign(h, piece_in_finishing(h))
    failed = open_inspection(h, piece_in_finishing(h), surface_defects=1)
    services.inspection_sign(actor=h.quality, inspection_id=failed.pk)
    draft = open_inspection(h, piece_in_finishing(h))
    me = browser(h.designer)
    me.get("/quality/inspections/")
    with django_assert_max_num_queries(12):
        html = me.get("/quality/inspections/").content.decode()
    assert all(i.reference in html for i in (passed, failed, draft))
    html = me.get("/quality/inspections/?verdict=fail&status=signed").content.decode()
    assert failed.reference in html and passed.reference not in html
    html = me.get("/quality/inspections/?verdict=nonsense").content.decode()
    assert passed.reference in html  # a filter not understood is ignored
    with django_assert_max_num_queries(12):
        html = me.get("/quality/nonconformities/?status=open").content.decode()
    assert failed.nonconformity.reference in html
    assert "No nonconformity" in me.get("/quality/nonconformities/?status=closed").content.decode()
