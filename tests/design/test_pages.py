"""Design pages per role: the designer's list, a line's design page (brief, rounds, files,
sending, decisions on the client's behalf), the panels on the piece, order and workshop pages,
the prototype form, and the client's round page in the portal."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from etabli.design import services
from etabli.design.models import DesignApproval, DesignRound, Prototype, RoundStatus
from etabli.production.services import piece_start
from etabli.workshops.models import StepKind
from tests.design.conftest import custom_line
from tests.design.support import approve_design, pdf_file, render_file, stl_file

pytestmark = pytest.mark.django_db


def as_user(client, user):
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def field_errors(response, field_id: str) -> list[str]:
    body = response.content.decode()
    out = []
    for block in re.findall(r'<div class="field has-error">(.*?)</div>', body, re.S):
        if f'for="{field_id}"' in block:
            out += [html.unescape(m) for m in re.findall(r'<p class="error" role="alert">(.*?)</p>',
                                                           block, re.S)]
    return out


def line_url(line) -> str:
    return reverse("design:line", args=[line.pk])


def started(h, **line):
    piece = h.launched_piece(lines=[custom_line(**line)])
    piece_start(actor=h.designer, piece_id=piece.pk)
    piece.refresh_from_db()
    return piece


def sent(h, line, note="Round with two renders") -> DesignRound:
    rnd = services.design_round_create(actor=h.designer, line_id=line.pk, designer_note=note,
                                       estimated_metal_g="5.3", estimated_stone_count=3)
    services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                   uploaded_file=render_file("front.png"), kind="render")
    services.design_round_add_file(actor=h.designer, round_id=rnd.pk,
                                   uploaded_file=stl_file("ring.stl"), kind="cad",
                                   visibility="house")
    return services.design_round_send(actor=h.designer, round_id=rnd.pk)


# ---------------------------------------------------------------------------------------------
# the designer's list and the menu


def test_designers_list_and_menu(house_setup, client):
    h = house_setup
    waiting = started(h, description="Waiting ring")
    changes = started(h, description="Changes ring")
    fresh = started(h, description="Fresh ring")
    sent(h, waiting.line)
    rnd = sent(h, changes.line)
    services.design_round_decide(actor=h.client_contact, round_id=rnd.pk, approve=False,
                                 comment="Make the band thinner")
    body = text(as_user(client, h.designer).get(reverse("design:home")))
    assert f'href="{reverse("design:home")}"' in body  # the menu entry
    at_design = body[body.index('id="h-at-design"'):body.index('id="h-waiting"')]
    waiting_part = body[body.index('id="h-waiting"'):]
    changes_part = body[body.index('id="h-changes"'):body.index('id="h-at-design"')]
    assert "Fresh ring" in at_design and line_url(fresh.line) in at_design
    assert "Waiting ring" in waiting_part and "Waiting ring" not in at_design
    assert "Changes ring" in changes_part and "Make the band thinner" in changes_part
    assert "Bijouterie Roux" in body
    assert as_user(client, h.sales).get(reverse("design:home")).status_code == 200
    for user in (h.quality, h.logistics, h.caster_member, h.client_contact):
        response = as_user(client, user).get(reverse("design:home"))
        assert response.status_code == 404
    client.logout()
    assert client.get(reverse("design:home")).status_code == 302
    # the menu shows Design only to those who work on designs
    body = text(as_user(client, h.quality).get(reverse("production:pieces")))
    assert f'href="{reverse("design:home")}"' not in body


def test_designers_list_in_a_fixed_number_of_queries(house_setup, client):
    h = house_setup
    as_user(client, h.designer)
    started(h)
    sent(h, started(h).line)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("design:home")).status_code == 200
    for _ in range(3):
        sent(h, started(h).line)
        started(h)
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("design:home")).status_code == 200
    assert len(many) == len(few)


# ---------------------------------------------------------------------------------------------
# a line's design page


def test_line_page_per_role(house_setup, client):
    h = house_setup
    piece = started(h)
    url = line_url(piece.line)
    body = text(as_user(client, h.sales).get(url))
    assert 'name="target_price"' in body and 'name="client_intent"' in body
    assert "No design round of line 1" in body
    body = text(as_user(client, h.designer).get(url))
    assert 'name="target_price"' not in body and 'name="budget_metal_g"' in body
    assert "1200" not in body  # no price for the designer
    for user in (h.client_contact, h.other_client_contact, h.caster_member, h.quality):
        assert as_user(client, user).get(url).status_code == 404
    assert as_user(client, h.sales).get(reverse("design:line", args=[10**6])).status_code == 404


def test_brief_form_saves_and_shows_errors_next_to_the_field(house_setup, client):
    h = house_setup
    piece = started(h)
    as_user(client, h.sales)
    url = reverse("design:brief", args=[piece.line_id])
    response = client.post(url, {"client_intent": "Twenty years", "budget_metal_g": "99999"})
    assert response.status_code == 400
    assert field_errors(response, "id_budget_metal_g")
    response = client.post(url, {"client_intent": "Twenty years", "budget_metal_g": "6",
                                 "budget_stone_count": "4", "target_price": "4100"})
    assert response.status_code == 302
    piece.line.refresh_from_db()
    assert (str(piece.line.budget_metal_g), piece.line.budget_stone_count,
            str(piece.line.target_price)) == ("6.000", 4, "4100.00")
    # the designer's form has no price: posting one changes nothing
    as_user(client, h.designer)
    assert client.post(url, {"client_intent": "Twenty years", "target_price": "1"}
                       ).status_code == 302
    piece.line.refresh_from_db()
    assert str(piece.line.target_price) == "4100.00"


def test_prepare_and_send_a_round_through_the_page(house_setup, client):
    h = house_setup
    piece = started(h)
    as_user(client, h.designer)
    response = client.post(reverse("design:round_new", args=[piece.line_id]),
                           {"designer_note": "First ideas", "estimated_stone_count": "3"})
    assert response.status_code == 302
    rnd = DesignRound.objects.get()
    # sending without a file is refused, with the reason
    response = client.post(reverse("design:round_send", args=[rnd.pk]), follow=True)
    assert "Add at least one render or CAD file" in text(response)
    response = client.post(reverse("design:round_file", args=[rnd.pk]),
                           {"kind": "render", "file": render_file("front.png")})
    assert response.status_code == 302
    response = client.post(reverse("design:round_file", args=[rnd.pk]),
                           {"kind": "render", "file": pdf_file("notes.pdf", "x")})
    assert response.status_code == 400  # a render is an image, by its content
    response = client.post(reverse("design:round_file", args=[rnd.pk]), {"kind": "render"})
    assert response.status_code == 400 and field_errors(response, "id_file")
    body = text(client.get(line_url(piece.line)))
    doc = rnd.files.get()
    assert reverse("document", args=[doc.token]) in body and "front.png" in body
    assert 'class="thumb"' in body
    response = client.post(reverse("design:round_send", args=[rnd.pk]))
    assert response.status_code == 302
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SENT
    assert any("sent to the client" in m for m in msgs(response))
    # sent again: refused, nothing changes
    response = client.post(reverse("design:round_send", args=[rnd.pk]), follow=True)
    assert "already been sent" in text(response)


def test_round_over_the_limit_warns_on_the_house_page_and_the_portal(house_setup, client,
                                                                      settings):
    h = house_setup
    settings.ETABLI_DESIGN_ROUND_LIMIT = 1
    piece = started(h)
    first = sent(h, piece.line)
    services.design_round_decide(actor=h.client_contact, round_id=first.pk, approve=False,
                                 comment="Again")
    second = sent(h, piece.line)
    warning = "2 design rounds sent, more than the house's limit of 1."
    assert warning in text(as_user(client, h.designer).get(line_url(piece.line)))
    body = text(as_user(client, h.client_contact).get(
        reverse("portal:order", args=[piece.order_id])))
    assert "more than the 1 rounds included" in body
    body = text(client.get(reverse("design:portal_round", args=[second.pk])))
    assert "more than the 1 rounds included" in body


def test_the_house_records_the_clients_approval_with_the_written_proof(house_setup, client):
    h = house_setup
    piece = started(h)
    rnd = sent(h, piece.line)
    as_user(client, h.sales)
    body = text(client.get(line_url(piece.line)))
    assert "Record the client's decision on their behalf" in body
    url = reverse("design:round_decide", args=[rnd.pk])
    response = client.post(url, {"decision": "approve", "comment": "By phone"})
    assert response.status_code == 400
    assert "written approval" in " ".join(field_errors(response, "id_file"))
    assert not DesignApproval.objects.exists()
    response = client.post(url, {"decision": "approve", "comment": "Signed renders by e-mail",
                                 "file": pdf_file("signed.pdf")})
    assert response.status_code == 302
    approval = DesignApproval.objects.get()
    assert approval.on_behalf and approval.document.original_name == "signed.pdf"
    body = text(client.get(line_url(piece.line)))
    assert "Approval record" in body and "signed.pdf" in body and "recorded by the house" in body
    # the designer cannot record a client's decision: no form
    body = text(as_user(client, h.designer).get(line_url(piece.line)))
    assert "on their behalf" not in body


# ---------------------------------------------------------------------------------------------
# panels and the prototype form


def test_piece_and_order_panels(house_setup, client):
    h = house_setup
    piece = started(h)
    sent(h, piece.line)
    as_user(client, h.sales)
    body = text(client.get(reverse("production:piece", args=[piece.pk])))
    assert "Waiting for the client" in body and line_url(piece.line) in body
    body = text(client.get(reverse("orders:detail", args=[piece.order_id])))
    assert "Waiting for the client" in body and line_url(piece.line) in body
    # a catalogue line without design work shows no design panel on the order
    plain = h.launched_order()
    body = text(client.get(reverse("orders:detail", args=[plain.pk])))
    assert 'id="h-design-order"' not in body


def test_prototype_form_on_the_piece_page_sends_the_piece_back(house_setup, client):
    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    as_user(client, h.designer)
    page = reverse("production:piece", args=[piece.pk])
    body = text(client.get(page))
    assert reverse("design:prototype", args=[piece.pk]) in body
    assert "A ring, size 52: record the fit test." in body
    url = reverse("design:prototype", args=[piece.pk])
    response = client.post(url, {"method": "resin_print", "result": "changes_needed",
                                 "fit": "no", "next": page})
    assert response.status_code == 400
    assert field_errors(response, "id_reason")
    response = client.post(url, {"method": "resin_print", "result": "changes_needed",
                                 "fit": "no", "reason": "Shank too thin", "next": page})
    assert response.status_code == 302 and response["Location"] == page
    assert any("goes back to design" in m for m in msgs(response))
    piece.refresh_from_db()
    assert piece.current_step == StepKind.DESIGN and piece.rework_count == 1
    body = text(client.get(page))
    assert "Approval withdrawn: CAD changes needed" in body and "Shank too thin" in body


def test_the_workshop_records_its_prototype_from_its_portal(house_setup, client):
    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    as_user(client, h.caster_member)
    page = reverse("workshop:piece", args=[piece.pk])
    body = text(client.get(page))
    assert 'name="fit"' in body and 'value="changes_needed"' not in body
    url = reverse("design:prototype", args=[piece.pk])
    response = client.post(url, {"method": "wax_print", "result": "approved", "next": page})
    assert response.status_code == 400 and field_errors(response, "id_fit")
    response = client.post(url, {"method": "wax_print", "result": "approved", "fit": "yes",
                                 "fit_notes": "Good on the gauge", "next": page})
    assert response.status_code == 302 and response["Location"] == page
    assert Prototype.objects.get().recorded_by == h.caster_member
    assert "Good on the gauge" in text(client.get(page))
    # another workshop: not found; a client: not found
    assert as_user(client, h.setter_member).post(url, {"method": "cnc", "result": "approved",
                                                       "fit": "yes"}).status_code == 404
    assert as_user(client, h.client_contact).post(url, {"method": "cnc", "result": "approved",
                                                        "fit": "yes"}).status_code == 404


# ---------------------------------------------------------------------------------------------
# the client portal


def test_the_client_sees_and_approves_the_round_in_the_portal(house_setup, client):
    h = house_setup
    piece = started(h)
    rnd = sent(h, piece.line)
    as_user(client, h.client_contact)
    body = text(client.get(reverse("portal:order", args=[piece.order_id])))
    assert "A design is waiting for your decision." in body
    url = reverse("design:portal_round", args=[rnd.pk])
    assert url in body
    response = client.get(url)
    body = text(response)
    assert 'class="portal"' in body  # the phone layout
    render = rnd.files.get(kind="render")
    cad = rnd.files.get(kind="cad")
    assert reverse("document", args=[render.token]) in body
    assert reverse("document", args=[cad.token]) not in body  # house only
    assert "5.300 g" in body and "+0.300 g" in body and "over budget" in body
    decide = reverse("design:portal_decide", args=[rnd.pk])
    response = client.post(decide, {"decision": "request_changes", "comment": ""})
    assert response.status_code == 400
    assert "Say what should change" in " ".join(field_errors(response, "id_comment"))
    response = client.post(decide, {"decision": "approve", "comment": "Perfect"})
    assert response.status_code == 302
    assert any("you approved the design" in m for m in msgs(response))
    approval = DesignApproval.objects.get()
    assert approval.approved_by == h.client_contact and approval.note == "Perfect"
    body = text(client.get(url))
    assert "Approved by roux1" in body and "Approve the design" not in body
    # a second decision (another tab, a double tap) is refused, with the reason
    response = client.post(decide, {"decision": "approve"})
    assert response.status_code == 409
    assert "already approved" in text(response)
    assert DesignApproval.objects.count() == 1


def test_portal_round_scope(house_setup, client):
    h = house_setup
    piece = started(h)
    rnd = sent(h, piece.line)
    draft = started(h)
    draft_round = services.design_round_create(actor=h.designer, line_id=draft.line_id)
    url = reverse("design:portal_round", args=[rnd.pk])
    assert as_user(client, h.other_client_contact).get(url).status_code == 404
    assert client.post(reverse("design:portal_decide", args=[rnd.pk]),
                       {"decision": "approve"}).status_code == 404
    for user in (h.sales, h.designer, h.caster_member):
        assert as_user(client, user).get(url).status_code == 404
    as_user(client, h.client_contact)
    assert client.get(reverse("design:portal_round", args=[draft_round.pk])).status_code == 404
    # nothing to decide once approved by the house: the page shows the approval
    approve_design(h, draft.line)
    assert client.get(url).status_code == 200
