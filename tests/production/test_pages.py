"""The house pages of pieces: dashboard, piece list, piece page and its actions, job bags, QR
links — what every role can see and do there, and that bad input writes nothing."""

from __future__ import annotations

import io
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from etabli.core.models import AuditEntry
from etabli.documents.models import Document
from etabli.production.models import (
    EventKind,
    Piece,
    PieceStatus,
    StepRun,
    StepStatus,
    TrackingEvent,
    Transfer,
)
from etabli.production.services import order_plan_shift, piece_hold
from etabli.workshops.models import StepKind
from tests.documents import files as sample_files
from tests.factories import default_line

pytestmark = pytest.mark.django_db

S = StepStatus
PNG = sample_files.png(size=(4, 4))  # uploads are decoded: a real image

HOUSE_WIDE = ["admin", "manager", "sales"]
STAFF = HOUSE_WIDE + ["designer", "quality", "logistics"]
WORKSHOP_MEMBERS = ["caster_member", "setter_member", "polisher_member"]
CLIENTS = ["client_contact", "other_client_contact"]
EVERYONE = STAFF + WORKSHOP_MEMBERS + CLIENTS


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def fresh(piece: Piece) -> Piece:
    return Piece.objects.get(pk=piece.pk)


def open_run(piece: Piece) -> StepRun:
    return fresh(piece).runs.get(status__in=[S.READY, S.IN_TRANSIT, S.RECEIVED,
                                             S.IN_PROGRESS, S.ON_HOLD])


def at(h, step: str, status: str = S.READY, piece: Piece | None = None, **launch) -> Piece:
    """A launched piece whose open step is `step`, in `status` (READY: not yet sent)."""
    piece = h.walk(piece or h.launched_piece(**launch), to=step)
    wanted = [S.READY, S.IN_TRANSIT, S.RECEIVED, S.IN_PROGRESS]
    while open_run(piece).status != status:
        assert wanted.index(open_run(piece).status) < wanted.index(status)
        h.advance(piece)
    return fresh(piece)


def written() -> tuple:
    """Rows a refused action must not touch."""
    return (TrackingEvent.objects.count(), Transfer.objects.count(), Document.objects.count(),
            AuditEntry.objects.count(),
            tuple(Piece.objects.order_by("pk").values_list("status", "location_id",
                                                           "transit_to_id", "current_step")),
            tuple(StepRun.objects.order_by("pk").values_list("status", "position")))


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def act_url(piece: Piece, action: str) -> str:
    return reverse("production:piece_action", args=[piece.pk, action])


def post_action(client, piece, action, data=None, **extra):
    body = {"client_event_id": uuid.uuid4().hex} | (data or {})
    return client.post(act_url(piece, action), body, **extra)


def pdf_text(response) -> tuple[int, str]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def as_user(client, h):
    def login(name: str):
        client.force_login(getattr(h, name))
        return client
    return login


# ---------------------------------------------------------------------------------------------
# who may open which page


@pytest.mark.parametrize("role", EVERYONE)
def test_dashboard_only_for_house_wide_roles(h, as_user, role):
    h.launched_piece()
    c = as_user(role)
    for name in ("production:dashboard", "production:dashboard_board"):
        response = c.get(reverse(name))
        assert response.status_code == (200 if role in HOUSE_WIDE else 404), (name, role)


def test_pages_need_a_log_in(client, h):
    piece = h.launched_piece()
    for url in (reverse("production:dashboard"), reverse("production:pieces"),
                reverse("production:piece", args=[piece.pk]),
                reverse("production:job_bag", args=[piece.pk]),
                reverse("production:scan_serial", args=[piece.serial])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    polled = client.get(reverse("production:dashboard_board"), headers={"HX-Request": "true"})
    assert polled.status_code == 204 and "/accounts/login/" in polled["HX-Redirect"]


@pytest.mark.parametrize("role", EVERYONE)
def test_piece_list_per_role(h, as_user, role):
    design = h.launched_piece()  # waits for design at the house
    setting = at(h, StepKind.SETTING, S.RECEIVED)
    response = as_user(role).get(reverse("production:pieces"))
    if role in WORKSHOP_MEMBERS:
        assert response.status_code == 302 and response["Location"] == reverse("workshop:queue")
        return
    if role in CLIENTS:
        assert response.status_code == 302 and response["Location"] == reverse("portal:orders")
        return
    assert response.status_code == 200
    body = response.content.decode()
    # The selector scopes the list: designers see design work only, quality finishing only.
    # (logistics: a piece waiting at the house is one they may have to dispatch)
    assert (design.serial in body) == (role in HOUSE_WIDE + ["designer", "logistics"])
    assert (setting.serial in body) == (role in HOUSE_WIDE)
    assert (">Bijouterie Roux</td>" in body) == (role in HOUSE_WIDE + ["designer", "logistics"])


def test_piece_list_search_filters_and_pages(h, as_user):
    first = h.launched_piece()
    order = h.launched_order(quantity=3)
    others = list(order.pieces.order_by("serial"))
    c = as_user("manager")
    body = c.get(reverse("production:pieces"), {"q": first.serial}).content.decode()
    assert first.serial in body and others[0].serial not in body
    body = c.get(reverse("production:pieces"), {"q": order.reference}).content.decode()
    assert all(p.serial in body for p in others) and first.serial not in body
    body = c.get(reverse("production:pieces"), {"order_id": order.pk}).content.decode()
    assert first.serial not in body and order.reference in body
    body = c.get(reverse("production:pieces"), {"step": "setting"}).content.decode()
    assert "No piece matches these filters." in body
    response = c.get(reverse("production:pieces"), {"workshop_id": "x", "late": "maybe",
                                                    "step": "nope", "page": "999"})
    assert response.status_code == 200
    assert any("ignored" in m for m in msgs(response))
    assert first.serial in response.content.decode()  # the bad filters were dropped


def test_piece_list_paginates(h, as_user, settings):
    h.launched_order(quantity=55)
    c = as_user("manager")
    body = c.get(reverse("production:pieces")).content.decode()
    assert "Page 1 of 2" in body and 'rel="next"' in body
    body = c.get(reverse("production:pieces"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in body


EXPECTED_PIECE_PAGE = {  # a piece received at the setter's, waiting to be set
    "admin": 200, "manager": 200, "sales": 200, "designer": 404, "quality": 404,
    "logistics": 404, "caster_member": 404, "setter_member": 200, "polisher_member": 404,
    "client_contact": 200, "other_client_contact": 404,
}


@pytest.mark.parametrize("role", EVERYONE)
def test_piece_page_per_role(h, as_user, role):
    piece = at(h, StepKind.SETTING, S.RECEIVED,
               lines=[default_line(stones="1 diamond 1.00 ct", customisations="Engraved ‘A&B’")])
    c = as_user(role)
    response = c.get(reverse("production:piece", args=[piece.pk]))
    assert response.status_code == EXPECTED_PIECE_PAGE[role]
    for url in (reverse("production:job_bag", args=[piece.pk]),
                reverse("production:order_job_bags", args=[piece.order_id]),
                reverse("production:scan_serial", args=[piece.serial])):
        got = c.get(url).status_code
        assert (got == 404) == (EXPECTED_PIECE_PAGE[role] == 404), (url, got)
    if response.status_code != 200:
        return
    body = response.content.decode()
    assert piece.serial in body and piece.order.reference in body
    assert "18k yellow gold" in body and "1 diamond 1.00 ct" in body
    assert "Engraved ‘A&amp;B’" in body
    assert ("Bijouterie Roux" in body) == (role in HOUSE_WIDE)
    assert ("1200.00" in body or "1200,00" in body) == (role in HOUSE_WIDE)
    if role in CLIENTS:
        for name in ("Fonderie Dupont", "Sertissage Martin", "Polissage Leroy"):
            assert name not in body
    if role == "setter_member":
        assert "Sertissage Martin" in body
        assert "Fonderie Dupont" not in body and "Polissage Leroy" not in body
        assert "caster1" not in body  # who worked at another workshop is not shown either
    if role in HOUSE_WIDE:
        assert "Fonderie Dupont" in body and "Polissage Leroy" in body


def test_piece_page_shows_route_gantt_timeline_and_photos(h, as_user):
    piece = at(h, StepKind.SETTING, S.IN_PROGRESS)
    c = as_user("setter_member")
    response = post_action(c, piece, "note", {"comment": "Claws checked", "weight_g": "7.250",
                                              "photo": SimpleUploadedFile("bench.png", PNG)})
    assert response.status_code == 302
    body = c.get(reverse("production:piece", args=[piece.pk])).content.decode()
    assert 'class="gantt' in body and re.search(r'class="bar planned" style="left:[\d.]+%', body)
    assert 'class="today"' in body
    assert "Claws checked" in body and "7.250 g" in body
    doc = Document.objects.get(event__kind=EventKind.NOTE)
    assert reverse("document", args=[doc.token]) in body
    # The manager sees the whole history, with every workshop's name.
    body = as_user("manager").get(reverse("production:piece", args=[piece.pk])).content.decode()
    assert "Fonderie Dupont" in body and "Claws checked" in body


def test_workshop_member_cannot_reach_another_workshops_piece(h, as_user):
    piece = at(h, StepKind.SETTING, S.RECEIVED)
    c = as_user("polisher_member")
    before = written()
    assert c.get(reverse("production:piece", args=[piece.pk])).status_code == 404
    assert post_action(c, piece, "start").status_code == 404
    assert post_action(c, piece, "note", {"comment": "x"}).status_code == 404
    assert c.get(reverse("production:job_bag", args=[piece.pk])).status_code == 404
    assert c.get(reverse("production:order_job_bags", args=[piece.order_id])).status_code == 404
    assert c.get(reverse("production:scan_serial", args=[piece.serial])).status_code == 404
    assert written() == before


# ---------------------------------------------------------------------------------------------
# which actions are offered


def offered(client, piece) -> set[str]:
    body = client.get(reverse("production:piece", args=[piece.pk])).content.decode()
    return set(re.findall(rf"/pieces/{piece.pk}/act/(\w+)/", body))


def test_actions_offered_follow_state_and_role(h, as_user):
    piece = at(h, StepKind.SETTING, S.IN_TRANSIT)
    assert offered(as_user("setter_member"), piece) == {"receive", "note"}
    assert offered(as_user("manager"), piece) == {"receive", "note"}
    assert offered(as_user("sales"), piece) == {"note"}
    assert offered(as_user("client_contact"), piece) == set()
    h.advance(piece)  # received
    assert offered(as_user("setter_member"), piece) == {"start", "hold", "note"}
    assert offered(as_user("manager"), piece) == {"start", "hold", "rework", "note"}
    assert offered(as_user("sales"), piece) == {"hold", "note"}
    h.advance(piece)  # started
    assert offered(as_user("setter_member"), piece) == {"complete", "hold", "note"}
    h.advance(piece)  # completed: ready for finishing, still at the setter's
    assert offered(as_user("setter_member"), piece) == {"send", "hold", "note"}
    body = as_user("setter_member").get(reverse("production:piece", args=[piece.pk])).content
    assert "Send to Polissage Leroy" in body.decode()  # the next workshop is named
    piece_hold(actor=h.manager, piece_id=piece.pk, reason="capacity")
    assert offered(as_user("manager"), piece) == {"release", "rework", "note"}
    assert offered(as_user("setter_member"), piece) == {"note"}


def test_confirmations_on_important_actions(h, as_user):
    piece = at(h, StepKind.SETTING, S.IN_PROGRESS)
    body = as_user("manager").get(reverse("production:piece", args=[piece.pk])).content.decode()
    for action in ("complete", "hold", "rework"):
        form = re.search(rf'<form[^>]*act/{action}/"[^>]*>', body).group(0)
        assert "data-confirm=" in form, action
    assert 'name="client_event_id"' in body


# ---------------------------------------------------------------------------------------------
# actions through the forms


def test_receive_start_complete_send_through_the_page(h, as_user):
    piece = at(h, StepKind.SETTING, S.IN_TRANSIT)
    c = as_user("setter_member")
    response = post_action(c, piece, "receive", {"weight_g": "12.345", "comment": "Arrived"})
    assert response.status_code == 302
    assert response["Location"] == reverse("production:piece", args=[piece.pk])
    event = TrackingEvent.objects.filter(piece=piece).latest("id")
    assert (event.kind, event.weight_g, event.actor) == ("received", Decimal("12.345"),
                                                         h.setter_member)
    assert any("received" in m for m in msgs(response))
    assert post_action(c, piece, "start").status_code == 302
    assert fresh(piece).status == PieceStatus.IN_PROGRESS
    assert post_action(c, piece, "complete", {"weight_g": "12.100"}).status_code == 302
    assert TrackingEvent.objects.filter(piece=piece).latest("id").weight_g == Decimal("12.100")
    assert fresh(piece).current_step == StepKind.FINISHING
    response = post_action(c, piece, "send", {"weight_g": "12.100",
                                              "photo": SimpleUploadedFile("out.jpg",
                                                                          sample_files.jpeg())})
    assert response.status_code == 302, response.content.decode()[:3000]
    piece = fresh(piece)
    assert piece.status == PieceStatus.IN_TRANSIT, msgs(response) and piece.transit_to == h.polisher
    sent = TrackingEvent.objects.get(piece=piece, kind=EventKind.SENT,
                                     transfer__to_workshop=h.polisher)
    assert Document.objects.get(event=sent).kind == "photo"
    # The piece has left the setter's: back to their queue, not to a page they cannot see.
    assert response["Location"] == reverse("workshop:queue")
    assert any("sent to Polissage Leroy" in m for m in msgs(response))


def test_hold_release_and_rework_through_the_page(h, as_user):
    piece = at(h, StepKind.FINISHING, S.IN_PROGRESS)
    c = as_user("manager")
    response = post_action(c, piece, "hold", {"reason": "quality_stop",
                                              "comment": "Porosity on the shank"})
    assert response.status_code == 302 and fresh(piece).status == PieceStatus.ON_HOLD
    held = TrackingEvent.objects.filter(piece=piece).latest("id")
    assert (held.kind, held.reason) == ("held", "quality_stop")
    assert post_action(c, piece, "release").status_code == 302
    assert fresh(piece).status == PieceStatus.IN_PROGRESS
    setting = piece.runs.get(step=StepKind.SETTING)
    c = as_user("quality")
    response = post_action(c, piece, "rework", {"target_run_id": setting.pk,
                                                "comment": "A stone is loose"})
    assert response.status_code == 302
    piece = fresh(piece)
    assert piece.rework_count == 1 and piece.current_step == StepKind.SETTING


def test_note_with_weight_and_photo(h, as_user):
    piece = h.launched_piece()
    c = as_user("designer")
    response = post_action(c, piece, "note", {"comment": "CAD sent for approval",
                                              "weight_g": "3.5",
                                              "photo": SimpleUploadedFile("r.png", PNG)})
    assert response.status_code == 302
    note = TrackingEvent.objects.get(piece=piece, kind=EventKind.NOTE)
    assert note.weight_g == Decimal("3.500") and note.comment == "CAD sent for approval"
    assert Document.objects.get(event=note).piece_id == piece.pk


@pytest.mark.parametrize("action,data,status,message", [
    ("complete", {"weight_g": "-2"}, S.IN_PROGRESS, "more than 0 g"),
    ("complete", {"weight_g": "abc"}, S.IN_PROGRESS, "Enter a number"),
    ("complete", {"weight_g": "1.23456"}, S.IN_PROGRESS, "3 decimal"),
    ("complete", {"weight_g": "9999"}, S.IN_PROGRESS, "plausible"),
    ("hold", {}, S.IN_PROGRESS, "This field is required"),
    ("hold", {"reason": "bored"}, S.IN_PROGRESS, "Select a valid choice"),
    ("hold", {"reason": "other"}, S.IN_PROGRESS, "Say why the piece is held"),
    ("rework", {"comment": ""}, S.IN_PROGRESS, "This field is required"),
    ("note", {}, S.IN_PROGRESS, "A note needs a comment or a weight"),
    ("note", {"comment": "x", "photo": "text"}, S.IN_PROGRESS, "This file type is not accepted"),
    ("receive", {"weight_g": "0"}, S.IN_TRANSIT, "more than 0 g"),
])
def test_bad_input_writes_nothing(h, as_user, action, data, status, message):
    piece = at(h, StepKind.SETTING, status)
    if action == "rework":
        data = data | {"target_run_id": piece.runs.get(step=StepKind.MANUFACTURING).pk}
    if data.get("photo") == "text":
        data["photo"] = SimpleUploadedFile("notes.txt", b"just some text")
    c = as_user("manager")
    before = written()
    response = post_action(c, piece, action, data)
    assert written() == before
    # The form comes back with the error next to the field (and a message at the top).
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body, body[:3000]
    assert 'class="error"' in body or 'class="error-box"' in body


@pytest.mark.parametrize("role,action,status,message", [
    ("setter_member", "start", S.IN_TRANSIT, "receive it"),
    ("setter_member", "complete", S.RECEIVED, "start it first"),
    ("setter_member", "release", S.RECEIVED, "cannot record"),
    ("setter_member", "send", S.RECEIVED, "already at the workshop"),
    ("sales", "start", S.RECEIVED, "cannot record"),
    ("client_contact", "note", S.RECEIVED, "cannot record"),
    ("manager", "receive", S.RECEIVED, "already been received"),
])
def test_action_not_allowed_writes_nothing(h, as_user, role, action, status, message):
    piece = at(h, StepKind.SETTING, status)
    c = as_user(role)
    before = written()
    response = post_action(c, piece, action, {"comment": "x"})
    assert written() == before
    assert response.status_code == 302
    assert response["Location"] == reverse("production:piece", args=[piece.pk])
    assert any(message in m for m in msgs(response)), msgs(response)


def test_rework_to_a_step_not_done_is_refused(h, as_user):
    piece = at(h, StepKind.SETTING, S.IN_PROGRESS)
    later = piece.runs.get(step=StepKind.FINISHING)
    before = written()
    response = post_action(as_user("manager"), piece, "rework",
                           {"target_run_id": later.pk, "comment": "why not"})
    assert written() == before
    assert "Select a valid choice" in response.content.decode()


def test_unknown_action_and_get_are_refused(h, as_user):
    piece = at(h, StepKind.SETTING, S.RECEIVED)
    c = as_user("manager")
    assert post_action(c, piece, "explode").status_code == 404
    assert c.get(act_url(piece, "start")).status_code == 405


@pytest.mark.parametrize("action,status", [("start", S.RECEIVED), ("send", S.READY),
                                           ("note", S.RECEIVED)])
def test_same_form_sent_twice_records_once(h, as_user, action, status):
    piece = at(h, StepKind.SETTING, status)
    c = as_user("manager")
    data = {"client_event_id": uuid.uuid4().hex, "comment": "once"}
    first = c.post(act_url(piece, action), data)
    assert first.status_code == 302
    count = TrackingEvent.objects.count(), Transfer.objects.count()
    again = c.post(act_url(piece, action), data)
    assert again.status_code == 302
    assert (TrackingEvent.objects.count(), Transfer.objects.count()) == count
    assert any("Already recorded" in m for m in msgs(again))


def test_next_brings_back_to_a_safe_page_only(h, as_user):
    piece = at(h, StepKind.SETTING, S.IN_TRANSIT)
    c = as_user("setter_member")
    portal = f"/workshop/pieces/{piece.pk}/"
    response = post_action(c, piece, "receive", {"next": portal})
    assert response["Location"] == portal
    response = post_action(c, piece, "start", {"next": "https://evil.example/x"})
    assert response["Location"] == reverse("production:piece", args=[piece.pk])
    # An error goes back to the portal too, with the message.
    before = written()
    response = post_action(c, piece, "complete", {"weight_g": "-1", "next": portal})
    assert response["Location"] == portal and written() == before
    assert any("more than 0 g" in m for m in msgs(response))


# ---------------------------------------------------------------------------------------------
# job bags and QR codes


def test_job_bag_pdf_for_the_house(h, as_user):
    piece = at(h, StepKind.SETTING, S.RECEIVED, client_reference="PO-4711",
               lines=[default_line(stones="3 sapphires 2 mm")])
    pages, text = pdf_text(as_user("sales").get(reverse("production:job_bag",
                                                        args=[piece.pk])))
    assert pages == 1
    for expected in (piece.serial, piece.order.reference, "PO-4711", "R-100", "52",
                     "3 sapphires 2 mm", "Setting", "setter"):
        assert expected in text, expected


def test_job_bag_of_a_workshop_member_has_no_client_data(h, as_user):
    piece = at(h, StepKind.SETTING, S.RECEIVED, client_reference="PO-4711")
    _pages, text = pdf_text(as_user("setter_member").get(
        reverse("production:job_bag", args=[piece.pk])))
    assert piece.serial in text and piece.order.reference in text
    assert "PO-4711" not in text and "Bijouterie Roux" not in text
    assert "caster" not in text  # no workshop codes on a workshop's print


def test_order_job_bags_one_label_per_page(h, as_user):
    order = h.launched_order(quantity=3, client_reference="PO-9")
    pages, text = pdf_text(as_user("manager").get(reverse("production:order_job_bags",
                                                          args=[order.pk])))
    assert pages == 3
    assert all(p.serial in text for p in order.pieces.all())
    assert as_user("other_client_contact").get(
        reverse("production:order_job_bags", args=[order.pk])).status_code == 404
    assert as_user("manager").get(
        reverse("production:order_job_bags", args=[999999])).status_code == 404


def test_qr_code_opens_the_right_page(h, as_user):
    piece = at(h, StepKind.SETTING, S.RECEIVED)
    url = reverse("production:scan_serial", args=[piece.serial])
    response = as_user("manager").get(url)
    assert response["Location"] == reverse("production:piece", args=[piece.pk])
    response = as_user("setter_member").get(url.lower())  # typed in lower case
    assert response["Location"] == reverse("workshop:piece", kwargs={"piece_id": piece.pk})
    assert as_user("manager").get(reverse("production:scan_serial",
                                          args=["P00-NOPE"])).status_code == 404


# ---------------------------------------------------------------------------------------------
# dashboard


def test_dashboard_board_holds_events_and_late_first(h, as_user):
    on_time = h.launched_piece()
    late = h.launched_piece()
    order_plan_shift(order=late.order, days=-30)
    held = at(h, StepKind.SETTING, S.RECEIVED)
    piece_hold(actor=h.manager, piece_id=held.pk, reason="material_unavailable",
               comment="Waiting for the sapphire")
    body = as_user("manager").get(reverse("production:dashboard")).content.decode()
    design_col = body[body.index('id="col-design"'):body.index('id="col-prototyping"')]
    assert design_col.index(late.serial) < design_col.index(on_time.serial)
    assert "badge late" in design_col
    assert "Material unavailable" in body and "Waiting for the sapphire" in body
    assert "Sertissage Martin" in body  # the cell of the setter's in the setting column
    assert "Latest events" in body and "caster1" in body
    assert 'id="col-order_receipt"' not in body  # empty receipt column is left out
    assert 'hx-trigger="every 5s"' in body


def test_dashboard_filters(h, as_user):
    design = h.launched_piece()
    setting = at(h, StepKind.SETTING, S.RECEIVED)
    other = h.launched_piece(client=h.other_client)
    late = h.launched_piece()
    order_plan_shift(order=late.order, days=-30)
    piece_hold(actor=h.manager, piece_id=setting.pk, reason="capacity")
    c = as_user("manager")

    def board(**params):
        response = c.get(reverse("production:dashboard"), params)
        assert response.status_code == 200
        return response.content.decode()

    body = board(step="setting")
    assert setting.serial in body and design.serial not in body
    body = board(workshop_id=h.setter.pk)
    assert setting.serial in body and design.serial not in body
    body = board(client_id=h.other_client.pk)
    assert other.serial in body and design.serial not in body
    body = board(late="true")
    assert late.serial in body and design.serial not in body
    body = board(late="false")  # as in the API: everything but the late pieces
    assert late.serial not in body and design.serial in body
    body = board(status="on_hold")
    assert setting.serial in body and design.serial not in body
    response = c.get(reverse("production:dashboard"), {"workshop_id": "abc", "step": "x",
                                                       "client_id": "9" * 30})
    assert response.status_code == 200 and any("ignored" in m for m in msgs(response))
    assert design.serial in response.content.decode()


def test_dashboard_partial_keeps_the_filters(h, as_user):
    piece = at(h, StepKind.SETTING, S.RECEIVED)
    design = h.launched_piece()
    c = as_user("sales")
    response = c.get(reverse("production:dashboard_board"), {"step": "setting"},
                     headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'id="dashboard-live"' in body
    assert 'hx-get="/dashboard/board/?step=setting"' in body
    assert piece.serial in body and design.serial not in body
    # It shows what happened since the page was loaded.
    h.advance(piece)
    body = c.get(reverse("production:dashboard_board"), {"step": "setting"}).content.decode()
    assert "Started" in body


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_dashboard_and_list_query_counts_do_not_grow(h, as_user, django_assert_max_num_queries):
    h.launched_piece()
    c = as_user("manager")
    urls = [reverse("production:dashboard"), reverse("production:dashboard_board"),
            reverse("production:pieces")]
    small = [_queries(c, url) for url in urls]
    h.launched_order(quantity=12)
    setting = at(h, StepKind.SETTING, S.RECEIVED)
    piece_hold(actor=h.manager, piece_id=setting.pk, reason="capacity")
    at(h, StepKind.FINISHING, S.IN_PROGRESS)
    large = [_queries(c, url) for url in urls]
    assert large == small
    # The dashboard: 11 for the page (session, user, the counts, the cells' workshops, the
    # ids of the cells' first pieces on PostgreSQL (a subquery elsewhere) and those pieces,
    # holds, due this week, events, the filter form's clients and workshops), the inbox's
    # unread count in the header, the materials flag and the open alerts (the newest few and
    # how many); the board: the same without the form, the header and the flag; the list:
    # session, user, count, page, the page's workshops, the form's clients and workshops,
    # the inbox. (See also test_dashboard_scale.py, with filters.)
    for url, budget in zip(urls, (15, 11, 8), strict=True):
        with django_assert_max_num_queries(budget):
            c.get(url)
    piece_url = reverse("production:piece", args=[setting.pk])
    # 16 for the page itself and a fixed few for the step panels (design, setting, finishing,
    # quality, delivery), which never grow with the piece's history.
    with django_assert_max_num_queries(26):
        c.get(piece_url)
