"""Printed production documents: launch sheet, job bag, transfer slip, technical sheet.

Each PDF is read back with pypdf: it renders, carries its key fields, prints in the order's
language with the house's name and logo, shows each role only what it may see, and printing
never reaches the network.
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import sys

import pytest
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader

from etabli.orders.models import Order
from etabli.orders.services import (
    launch_item_set,
    order_deadline_check,
    order_launch,
    order_update,
)
from etabli.production.models import Transfer
from etabli.workshops.models import StepKind
from tests.factories import default_line, make_client

pytestmark = pytest.mark.django_db

A4_PT = (595, 842)
JOB_BAG_PT = (283, 425)  # 100 × 150 mm


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def as_user(client, h):
    def login(name: str):
        client.force_login(getattr(h, name))
        return client
    return login


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection while printing fails the test."""
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"network used while printing: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection",
                        lambda address, *a, **k: refuse(None, address))
    yield attempts
    assert attempts == []


def read_pdf(response) -> PdfReader:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/pdf"
    return PdfReader(io.BytesIO(response.content))


def pdf_text(response) -> str:
    return "\n".join(page.extract_text() for page in read_pdf(response).pages)


def flat(text: str) -> str:
    """The text with line breaks as spaces (table cells wrap)."""
    return " ".join(text.split())


def image_count(response) -> int:
    """Distinct images embedded in the document (pages may share one resource dictionary)."""
    return len({image.name for page in read_pdf(response).pages for image in page.images})


def page_size_pt(response) -> tuple[int, int]:
    box = read_pdf(response).pages[0].mediabox
    return round(float(box.width)), round(float(box.height))


@pytest.fixture
def logo(tmp_path, settings):
    path = tmp_path / "logo.png"
    Image.new("RGB", (60, 20), (180, 130, 40)).save(path, "PNG")
    settings.ETABLI_HOUSE_LOGO = str(path)
    return path


def french_client():
    return make_client("bijouterie-fr", name="Bijouterie Lyonnaise", language="fr")


FULL_LINE = default_line(
    description="Signet ring with crest", model_reference="", is_custom_design=True,
    size="54", stones="3 sapphires 2 mm, round", customisations="Engraved ‘A&B 1999’",
    specifications="Flat top 12 mm", references="Sketch no. 7\nPhoto of the crest",
    budget_metal_g="8.500", budget_stone_count=3, budget_stone_ct="0.150",
    target_price="2450.00")


# ---------------------------------------------------------------------------------------------
# launch sheet


def test_launch_sheet_has_every_specification_route_and_checklist(h, as_user):
    order = h.launched_order(lines=[FULL_LINE, default_line(quantity=2)],
                             client_reference="PO-4711")
    response = as_user("sales").get(reverse("orders:launch_sheet", args=[order.pk]))
    assert page_size_pt(response) == A4_PT
    text = flat(pdf_text(response))
    for expected in (
            "LAUNCH SHEET", order.reference, "Bijouterie Roux", "PO-4711",
            f"{order.promised_date:%-d %B %Y}",
            "Signet ring with crest", "Custom design", "54", "18k yellow gold (750)",
            "3 sapphires 2 mm, round", "Engraved ‘A&B 1999’", "Flat top 12 mm",
            "Sketch no. 7", "Photo of the crest", "8.500 g of metal per piece", "3 stones",
            "0.150 ct", "2450.00 EUR", "R-100", "1200.00 EUR",
            # the route, with each step's workshop
            "Design & CAD", "Prototyping (Fonderie Dupont)", "Setting (Sertissage Martin)",
            "Polissage Leroy", "Wax 3D print",
            # the checklist: every item, who checked it
            "Feasibility", "Information", "Commercial", "Technically achievable",
            "Payment terms agreed", "Deadline confirmed with the client", "Checked by"):
        assert expected in text, expected
    for piece in order.pieces.all():
        assert piece.serial in text
    assert text.count("✓") == 12 and "not checked" not in text
    assert "Launched" in text and "DRAFT" not in text


def test_launch_sheet_names_who_checked_each_item_and_why_the_early_date(h, as_user):
    h.manager.first_name, h.manager.last_name = "Claire", "Fontaine"
    h.manager.save()
    order = h.qualified_order()
    launch_item_set(actor=h.manager, order_id=order.pk, code="materials_available",
                    note="Gold in the vault")
    too_early = order_deadline_check(order).earliest_promise - dt.timedelta(days=3)
    order_update(actor=h.sales, order_id=order.pk, promised_date=too_early)
    order_launch(actor=h.manager, order_id=order.pk,
                 override_reason="The client's wedding is that day")
    text = flat(pdf_text(as_user("manager").get(
        reverse("orders:launch_sheet", args=[order.pk]))))
    assert "Materials available Gold in the vault Claire Fontaine" in text
    assert "Technically achievable sales" in text
    assert "The client's wedding is that day" in text
    assert "Launched" in text and "Claire Fontaine" in text


def test_draft_launch_sheet_says_draft_and_shows_what_is_missing(h, as_user):
    order = h.draft_order(lines=[default_line(stones="1 diamond 0.50 ct")])
    launch_item_set(actor=h.sales, order_id=order.pk, code="quote_accepted")
    text = flat(pdf_text(as_user("sales").get(
        reverse("orders:launch_sheet", args=[order.pk]))))
    assert "DRAFT – not validated" in text
    assert "1 diamond 0.50 ct" in text
    assert text.count("not checked") == 11
    assert "The checklist is not complete" in text
    assert "not launched" in text


def test_no_launch_sheet_before_the_order_has_lines(h, as_user):
    order = h.draft_order(lines=[])
    assert as_user("sales").get(
        reverse("orders:launch_sheet", args=[order.pk])).status_code == 404


LAUNCH_SHEET_ACCESS = {  # role: (status, sees prices)
    "admin": (200, True), "manager": (200, True), "sales": (200, True),
    "designer": (200, False),  # the piece waits for design: the designer may see its order
    "logistics": (200, False),  # the piece is ready at the house: logistics dispatches it
    "quality": (404, None),
    "caster_member": (404, None), "setter_member": (404, None),
    "client_contact": (404, None), "other_client_contact": (404, None),
}


def test_launch_sheet_per_role(h, as_user):
    order = h.launched_order(lines=[default_line(target_price="1234.00")])
    for role, (status, prices) in LAUNCH_SHEET_ACCESS.items():
        c = as_user(role)
        response = c.get(reverse("orders:launch_sheet", args=[order.pk]))
        assert response.status_code == status, role
        if status == 200:
            text = pdf_text(response)
            assert order.reference in text and "Bijouterie Roux" in text
            assert ("1234.00" in text) == prices, role
        assert c.get(reverse("orders:launch_sheet", args=[999999])).status_code == 404


def test_launch_sheet_of_a_french_order_is_in_french(h, as_user):
    order = h.launched_order(client=french_client())
    assert order.language == "fr"
    text = flat(pdf_text(as_user("sales").get(
        reverse("orders:launch_sheet", args=[order.pk]))))
    for expected in ("Commande", "Techniquement réalisable", "Or jaune 18 carats (750)",
                     "Parcours", "Sertissage", "Fabrication"):
        assert expected in text, expected
    assert "Technically achievable" not in text and "Route" not in text


def test_launch_sheet_house_name_and_logo_from_settings(h, as_user, settings, logo):
    settings.ETABLI_HOUSE_NAME = "Joaillerie Vendôme"
    settings.ETABLI_HOUSE_ADDRESS = "3 place Vendôme\n75001 Paris"
    order = h.launched_order()
    response = as_user("sales").get(reverse("orders:launch_sheet", args=[order.pk]))
    text = pdf_text(response)
    assert "Joaillerie Vendôme" in text and "3 place Vendôme" in text
    assert "Maison Établi" not in text
    assert image_count(response) == 1  # the logo, embedded


def test_launch_sheet_without_a_logo_embeds_no_image(h, as_user, settings, tmp_path):
    settings.ETABLI_HOUSE_LOGO = str(tmp_path / "missing.png")
    order = h.launched_order()
    assert image_count(as_user("sales").get(
        reverse("orders:launch_sheet", args=[order.pk]))) == 0


def test_order_page_links_the_launch_sheet(h, as_user):
    draft = h.draft_order()
    empty = h.draft_order(lines=[])
    c = as_user("sales")
    body = c.get(reverse("orders:detail", args=[draft.pk])).content.decode()
    assert reverse("orders:launch_sheet", args=[draft.pk]) in body
    body = c.get(reverse("orders:detail", args=[empty.pk])).content.decode()
    assert reverse("orders:launch_sheet", args=[empty.pk]) not in body


# ---------------------------------------------------------------------------------------------
# job bag


def test_job_bag_in_the_orders_language_with_the_house(h, as_user, settings, logo):
    settings.ETABLI_HOUSE_NAME = "Joaillerie Vendôme"
    order = h.launched_order(client=french_client(), client_reference="BC-12")
    piece = order.pieces.get()
    response = as_user("sales").get(reverse("production:job_bag", args=[piece.pk]))
    assert page_size_pt(response) == JOB_BAG_PT  # still the 100 × 150 mm label
    assert len(read_pdf(response).pages) == 1
    text = flat(pdf_text(response))
    for expected in ("SACHET DE FABRICATION", "JOAILLERIE VENDÔME", piece.serial,
                     order.reference, "BC-12", "Commande", "PARCOURS", "Or jaune 18 carats",
                     "Échéance"):
        assert expected in text, expected
    assert "Job bag" not in text
    assert image_count(response) == 1  # the logo (the QR code is vector graphics)


def test_job_bag_of_an_english_order_is_in_english_whatever_the_readers_language(h, as_user):
    piece = h.launched_piece()
    c = as_user("sales")
    c.post(reverse("set_language"), {"language": "fr", "next": "/"})
    text = flat(pdf_text(c.get(reverse("production:job_bag", args=[piece.pk]))))
    assert "JOB BAG" in text and "ROUTE" in text and "SACHET" not in text


# ---------------------------------------------------------------------------------------------
# transfer slips


def sent_to_setter(h, *, client=None, weight_sent="6.000", weight_received="5.500"):
    """A piece sent by the caster to the setter and received there, weighed both times."""
    piece = h.launched_piece(client=client, client_reference="PO-77")
    h.walk(piece, to=StepKind.SETTING)
    h.advance(piece, weight_g=weight_sent)  # sent
    h.advance(piece, weight_g=weight_received)  # received
    piece.refresh_from_db()
    slip = Transfer.objects.filter(lines__piece=piece, to_workshop=h.setter).get()
    return piece, slip


def test_transfer_slip_has_its_pieces_weights_and_signatures(h, as_user):
    piece, slip = sent_to_setter(h)
    response = as_user("manager").get(reverse("production:transfer_slip", args=[slip.pk]))
    assert page_size_pt(response) == A4_PT
    text = flat(pdf_text(response))
    for expected in ("TRANSFER SLIP", slip.slip_number, "From: Fonderie Dupont",
                     "To: Sertissage Martin", "caster1", piece.serial, piece.order.reference,
                     "Setting", "Stone setting", "6.000 g", "5.500 g", "-0.500 g",
                     "weight differs from the slip", "setter1", "Sent by (signature)",
                     "Received and weighed by (signature)", "PO-77", "Bijouterie Roux",
                     reverse("production:transfer_slip", args=[slip.pk])):
        assert expected in text, expected


def test_a_workshops_transfer_slip_names_no_client(h, as_user):
    piece, slip = sent_to_setter(h)
    for role in ("caster_member", "setter_member"):
        text = flat(pdf_text(as_user(role).get(reverse("production:transfer_slip",
                                                       args=[slip.pk]))))
        assert slip.slip_number in text and piece.serial in text
        assert "Bijouterie Roux" not in text and "PO-77" not in text


SLIP_ACCESS = {
    "admin": 200, "manager": 200, "sales": 200, "logistics": 200,
    "designer": 404, "quality": 404,  # between two outside workshops: not theirs
    "caster_member": 200, "setter_member": 200, "polisher_member": 404,
    "client_contact": 404, "other_client_contact": 404,
}


def test_transfer_slip_per_role(h, as_user):
    _piece, slip = sent_to_setter(h)
    for role, status in SLIP_ACCESS.items():
        c = as_user(role)
        assert c.get(reverse("production:transfer_slip", args=[slip.pk])).status_code == status, \
            role
        assert c.get(reverse("production:transfer_slip", args=[999999])).status_code == 404


def test_slip_needs_a_log_in(client, h):
    _piece, slip = sent_to_setter(h)
    response = client.get(reverse("production:transfer_slip", args=[slip.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_slip_from_the_house_is_the_designers_too(h, as_user):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.PROTOTYPING)
    h.advance(piece)  # the house sends it to the caster
    slip = Transfer.objects.get(lines__piece=piece, from_workshop=h.house)
    text = pdf_text(as_user("designer").get(reverse("production:transfer_slip",
                                                    args=[slip.pk])))
    assert slip.slip_number in text and "Fonderie Dupont" in text


def test_transfer_slip_of_a_french_order_is_in_french(h, as_user):
    _piece, slip = sent_to_setter(h, client=french_client())
    text = flat(pdf_text(as_user("setter_member").get(
        reverse("production:transfer_slip", args=[slip.pk]))))
    assert "De: Fonderie Dupont" in text and "À: Sertissage Martin" in text
    assert "Envoyé par (signature)" in text and "5,500 g" in text
    assert "Sent by (signature)" not in text


def test_slip_links_where_slips_appear(h, as_user):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.SETTING)
    h.advance(piece)  # on its way to the setter
    slip = Transfer.objects.get(lines__piece=piece, to_workshop=h.setter)
    url = reverse("production:transfer_slip", args=[slip.pk])
    c = as_user("setter_member")
    assert url in c.get(reverse("workshop:queue")).content.decode()
    assert url in c.get(reverse("workshop:piece", args=[piece.pk])).content.decode()
    assert url in as_user("manager").get(
        reverse("production:piece", args=[piece.pk])).content.decode()


def test_piece_page_links_only_slips_the_reader_may_open(h, as_user):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.SETTING)
    h.advance(piece)
    h.advance(piece)  # received by the setter
    house_slip = Transfer.objects.get(lines__piece=piece, from_workshop=h.house)
    outside_slip = Transfer.objects.get(lines__piece=piece, to_workshop=h.setter)
    # The manager sees every slip of the piece.
    body = as_user("manager").get(reverse("production:piece", args=[piece.pk])).content.decode()
    assert reverse("production:transfer_slip", args=[house_slip.pk]) in body
    assert reverse("production:transfer_slip", args=[outside_slip.pk]) in body
    # The setter sees only the history at its own workshop: the slip it received.
    body = as_user("setter_member").get(
        reverse("production:piece", args=[piece.pk])).content.decode()
    assert reverse("production:transfer_slip", args=[outside_slip.pk]) in body
    assert reverse("production:transfer_slip", args=[house_slip.pk]) not in body


# ---------------------------------------------------------------------------------------------
# the network is never reached


def test_user_text_cannot_make_the_printer_fetch_anything(h, as_user, no_network):
    html = '<img src="http://example.com/x.png">'
    order = h.launched_order(lines=[default_line(stones=html, customisations=html)])
    piece = order.pieces.get()
    for url in (reverse("orders:launch_sheet", args=[order.pk]),
                reverse("production:job_bag", args=[piece.pk]),
                reverse("production:piece_technical_sheet", args=[piece.pk]),
                reverse("orders:line_technical_sheet", args=[order.pk, piece.line_id])):
        response = as_user("sales").get(url)
        assert image_count(response) == 0
        assert html in flat(pdf_text(response))  # printed as text, not as an image
    assert no_network == []


def test_the_fetcher_refuses_any_url_but_data_and_static(no_network):
    from weasyprint import HTML

    from etabli.production.pdf import FetchRefused, _fetcher_for

    fetcher = _fetcher_for("http://testserver/")
    with pytest.raises(FetchRefused):
        fetcher.fetch("http://example.com/x.png")
    with pytest.raises(FetchRefused):
        fetcher.fetch("file:///etc/passwd")
    # A document with a remote image still prints, without the image and without a connection.
    pdf = HTML(string='<p>x</p><img src="http://example.com/x.png">'
               '<img src="https://testserver/media/secret.png">',
               base_url="http://testserver/", url_fetcher=fetcher).write_pdf()
    assert sum(len(p.images) for p in PdfReader(io.BytesIO(pdf)).pages) == 0
    assert no_network == []


def test_order_language_falls_back_to_english():
    from etabli.core.printing import order_language

    assert order_language(Order(language="fr")) == "fr"
    assert order_language(Order(language="de")) == "en"
    assert order_language(None) == "en"


# ---------------------------------------------------------------------------------------------
# technical sheet

def test_technical_sheet_access_per_role(h, as_user):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.MANUFACTURING, arrive=True)  # at the caster
    url = reverse("production:piece_technical_sheet", args=[piece.pk])
    expected = {"admin": 200, "manager": 200, "sales": 200, "caster_member": 200,
                "setter_member": 404, "polisher_member": 404, "designer": 404,
                "client_contact": 404, "other_client_contact": 404}
    for role, status in expected.items():
        c = as_user(role)
        assert c.get(url).status_code == status, role
        assert c.get(reverse("production:piece_technical_sheet",
                             args=[999999])).status_code == 404


def test_line_technical_sheet_works_before_any_piece_or_design(h, as_user):
    order = h.draft_order(lines=[FULL_LINE])
    line = order.lines.get()
    url = reverse("orders:line_technical_sheet", args=[order.pk, line.pk])
    text = flat(pdf_text(as_user("sales").get(url)))
    for expected in ("TECHNICAL SHEET", order.reference, "line 1", "Signet ring with crest",
                     "Custom design", "3 sapphires 2 mm, round", "Engraved ‘A&B 1999’",
                     "8.500 g of metal per piece", "6.375 g fine", "No approved design round",
                     "Polishing", "2450.00"):
        assert expected in text, expected
    # Only for the house's staff who see the order, and only the order's own lines.
    other = h.draft_order()
    assert as_user("sales").get(reverse("orders:line_technical_sheet",
                                        args=[order.pk, other.lines.get().pk])).status_code == 404
    for role in ("caster_member", "client_contact", "quality"):
        assert as_user(role).get(url).status_code == 404, role


def test_technical_sheet_of_a_french_order_is_in_french(h, as_user, settings, logo):
    settings.ETABLI_HOUSE_NAME = "Joaillerie Vendôme"
    order = h.launched_order(client=french_client())
    line = order.lines.get()
    response = as_user("sales").get(reverse("orders:line_technical_sheet",
                                            args=[order.pk, line.pk]))
    text = flat(pdf_text(response))
    assert "Joaillerie Vendôme" in text and "Or jaune 18 carats (750)" in text
    assert "Commande" in text and "Polissage" in text
    assert "Order " not in text
    assert image_count(response) == 1  # the logo


def test_pages_link_the_technical_sheets(h, as_user):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.MANUFACTURING, arrive=True)
    line = piece.line
    body = as_user("sales").get(reverse("orders:detail", args=[piece.order_id])).content.decode()
    assert reverse("orders:line_technical_sheet", args=[piece.order_id, line.pk]) in body
    sheet = reverse("production:piece_technical_sheet", args=[piece.pk])
    body = as_user("manager").get(reverse("production:piece", args=[piece.pk])).content.decode()
    assert sheet in body and reverse("production:job_bag", args=[piece.pk]) in body
    body = as_user("caster_member").get(reverse("workshop:piece",
                                                args=[piece.pk])).content.decode()
    assert sheet in body and reverse("production:job_bag", args=[piece.pk]) in body


def test_technical_sheet_works_without_the_design_and_setting_models(h, monkeypatch):
    from etabli.production.technical_sheet import technical_sheet_context

    piece = h.launched_piece()
    # As if those apps had no models yet: importing them fails.
    monkeypatch.setitem(sys.modules, "etabli.design.models", None)
    monkeypatch.setitem(sys.modules, "etabli.stonesetting.models", None)
    context = technical_sheet_context(h.manager, line=piece.line, piece=piece)
    assert context["design"] is None and context["setting"] is None
    assert [s["step"] for s in context["route"]][-1] == "Delivery"
