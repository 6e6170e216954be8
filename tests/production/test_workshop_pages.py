"""The workshop portal's pages: my queue, scan/find, one piece and its actions."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from etabli.documents.models import Document
from etabli.production.models import (
    EventKind,
    HoldReason,
    PieceStatus,
    StepStatus,
    TrackingEvent,
    TransferLine,
)
from etabli.production.services import piece_hold
from etabli.workshops.models import StepKind
from tests.design.support import ready_to_leave
from tests.documents import files as sample_files

pytestmark = pytest.mark.django_db

PNG = sample_files.png(size=(4, 4))  # uploads are decoded: a real image
HTML = b"<!doctype html><html><script>alert(1)</script></html>"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


# ---------------------------------------------------------------------------------------------
# helpers


def incoming_to_caster(h):
    """A piece sent from the house to the caster for prototyping (in transit)."""
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.PROTOTYPING)
    h.advance(piece, weight_g="10.000")  # the house sends it
    piece.refresh_from_db()
    assert piece.status == PieceStatus.IN_TRANSIT
    return piece


def received_at_caster(h):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    piece.refresh_from_db()
    assert piece.status == PieceStatus.RECEIVED and piece.location_id == h.caster.pk
    return piece


def ready_at_caster_for_setter(h):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.SETTING)
    piece.refresh_from_db()
    assert piece.status == PieceStatus.READY and piece.location_id == h.caster.pk
    assert piece.current_workshop_id == h.setter.pk
    return piece


def at_setter(h):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.SETTING, arrive=True)
    piece.refresh_from_db()
    assert piece.location_id == h.setter.pk
    return piece


def as_user(client, user):
    client.force_login(user)
    return client


def act_url(piece, action):
    return reverse("workshop:act", args=[piece.pk, action])


def post_action(client, piece, action, data=None, files=None, event_id=None):
    payload = {f"{action}-client_event_id": event_id or uuid.uuid4().hex}
    payload.update({f"{action}-{k}": v for k, v in (data or {}).items()})
    payload.update({f"{action}-{k}": v for k, v in (files or {}).items()})
    return client.post(act_url(piece, action), payload)


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def png(name="bench.png"):
    return SimpleUploadedFile(name, PNG, content_type="image/png")


# ---------------------------------------------------------------------------------------------
# access


def test_other_roles_get_404_everywhere(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    urls = [reverse("workshop:queue"), reverse("workshop:scan"),
            reverse("workshop:find") + f"?serial={piece.serial}",
            reverse("workshop:piece", args=[piece.pk])]
    events = TrackingEvent.objects.filter(piece=piece).count()
    for user in (h.admin, h.manager, h.sales, h.designer, h.quality, h.logistics,
                 h.client_contact):
        as_user(client, user)
        for url in urls:
            assert client.get(url).status_code == 404, (user.role, url)
        assert post_action(client, piece, "start").status_code == 404
    assert TrackingEvent.objects.filter(piece=piece).count() == events


def test_anonymous_is_sent_to_log_in(house_setup, client):
    response = client.get(reverse("workshop:queue"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_another_workshops_piece_is_404(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    as_user(client, h.setter_member)
    assert client.get(reverse("workshop:piece", args=[piece.pk])).status_code == 404
    for action in ("receive", "start", "complete", "send", "hold", "note"):
        assert post_action(client, piece, action, {"comment": "x", "reason": "other"}) \
            .status_code == 404
    assert client.get(reverse("workshop:piece", args=[999999])).status_code == 404
    assert client.post(act_url(piece, "explode")).status_code == 404
    assert not TrackingEvent.objects.filter(piece=piece, actor=h.setter_member).exists()


# ---------------------------------------------------------------------------------------------
# my queue


def test_queue_sections_show_only_my_pieces(house_setup, client):
    h = house_setup
    incoming = incoming_to_caster(h)
    working = received_at_caster(h)
    ready = ready_at_caster_for_setter(h)
    elsewhere = at_setter(h)

    response = as_user(client, h.caster_member).get(reverse("workshop:queue"))
    assert response.status_code == 200
    ctx = response.context
    assert [p.serial for p in ctx["incoming"]] == [incoming.serial]
    assert [p.serial for p in ctx["in_progress"]] == [working.serial]
    assert [p.serial for p in ctx["ready"]] == [ready.serial]
    html = response.content.decode()
    assert elsewhere.serial not in html
    slip = TransferLine.objects.get(piece=incoming, received_at__isnull=True).transfer
    assert slip.slip_number in html
    assert "Sertissage Martin" in html  # where the ready piece goes next
    # Never the client, prices, or the other workshops' own work.
    for secret in ("Bijouterie Roux", "1200", "Polissage Leroy"):
        assert secret not in html
    assert "Solitaire ring" in html and "Fonderie Dupont" in html

    response = as_user(client, h.setter_member).get(reverse("workshop:queue"))
    ctx = response.context
    assert ctx["incoming"] == [] and ctx["ready"] == []
    assert [p.serial for p in ctx["in_progress"]] == [elsewhere.serial]
    html = response.content.decode()
    for other in (incoming, working, ready):
        assert other.serial not in html
    assert "Fonderie Dupont" not in html

    response = as_user(client, h.polisher_member).get(reverse("workshop:queue"))
    html = response.content.decode()
    assert "Nothing on its way to you." in html
    assert "No piece being worked on at your bench." in html
    assert "Nothing waiting to be sent." in html


def test_ready_to_start_here_is_listed_as_such(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.MANUFACTURING)  # prototyping done at the caster: stays there
    piece.refresh_from_db()
    assert piece.status == PieceStatus.READY and piece.location_id == h.caster.pk
    response = as_user(client, h.caster_member).get(reverse("workshop:queue"))
    assert [p.serial for p in response.context["ready"]] == [piece.serial]
    assert "Ready to start here" in response.content.decode()


def test_late_badge_on_the_queue(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    piece.__class__.objects.filter(pk=piece.pk).update(current_due="2000-01-01")
    html = as_user(client, h.caster_member).get(reverse("workshop:queue")).content.decode()
    assert 'class="badge late"' in html


def test_queue_query_budget(house_setup, client, django_assert_max_num_queries):
    h = house_setup
    for _ in range(2):
        incoming_to_caster(h)
        received_at_caster(h)
        ready_at_caster_for_setter(h)
    as_user(client, h.caster_member)
    client.get(reverse("workshop:queue"))  # warm the session
    with django_assert_max_num_queries(8):
        response = client.get(reverse("workshop:queue"))
    assert len(response.context["incoming"]) == 2
    assert len(response.context["in_progress"]) == 2
    assert len(response.context["ready"]) == 2


# ---------------------------------------------------------------------------------------------
# scan and find


def test_scan_page_has_the_camera_scanner_and_a_form(house_setup, client):
    html = as_user(client, house_setup.caster_member).get(reverse("workshop:scan")) \
        .content.decode()
    assert "data-start-scan" in html
    assert 'data-scan-target="/workshop/find/?serial=__SERIAL__"' in html
    assert "vendor/jsQR.js" in html
    assert 'name="serial"' in html and '<label for="id_serial"' in html


def test_find_by_typed_serial_or_pasted_url(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    as_user(client, h.caster_member)
    target = reverse("workshop:piece", args=[piece.pk])
    find = reverse("workshop:find")
    for typed in (piece.serial, f"  {piece.serial.lower()} ",
                  f"http://localhost:8000/p/{piece.serial}/",
                  f"https://etabli.example/p/{piece.serial}?from=qr"):
        response = client.get(find, {"serial": typed})
        assert response.status_code == 302 and response["Location"] == target, typed


def test_find_unknown_or_someone_elses_serial_says_so(house_setup, client):
    h = house_setup
    theirs = at_setter(h)
    as_user(client, h.caster_member)
    for typed in ("P99-999999", theirs.serial, f"http://x/p/{theirs.serial}/"):
        response = client.get(reverse("workshop:find"), {"serial": typed})
        assert response.status_code == 200
        html = response.content.decode()
        assert "is at your workshop or on its way to it" in html, typed
        assert 'class="error"' in html
    response = client.get(reverse("workshop:find"), {"serial": ""})
    assert response.status_code == 200 and "This field is required." in response.content.decode()


def test_incoming_piece_is_found_and_can_be_received(house_setup, client):
    h = house_setup
    piece = incoming_to_caster(h)
    as_user(client, h.caster_member)
    response = client.get(reverse("workshop:find"), {"serial": piece.serial}, follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["main_actions"][0][0] == "receive"
    assert [a for a, _f in response.context["main_actions"]] == ["receive"]
    assert "Weighed 10.000 g when sent" in html
    assert 'capture="environment"' in html and 'accept="image/*"' in html


# ---------------------------------------------------------------------------------------------
# actions


def test_receive_start_complete_send_from_the_portal(house_setup, client):
    h = house_setup
    piece = incoming_to_caster(h)
    as_user(client, h.caster_member)

    response = post_action(client, piece, "receive", {"weight_g": "10,010", "comment": "ok"})
    assert response.status_code == 302
    assert response["Location"] == reverse("workshop:piece", args=[piece.pk])
    assert f"{piece.serial} received." in msgs(response)
    event = TrackingEvent.objects.get(piece=piece, kind=EventKind.RECEIVED)
    assert event.weight_g == Decimal("10.010") and event.actor == h.caster_member
    assert event.client_event_id

    page = client.get(reverse("workshop:piece", args=[piece.pk]))
    assert "Start: Prototyping" in page.content.decode()
    assert [a for a, _f in page.context["main_actions"]] == ["start"]

    assert post_action(client, piece, "start").status_code == 302
    ready_to_leave(h, piece)  # the prototype is recorded (design's gate)
    response = post_action(client, piece, "complete", {"weight_g": "9.5"},
                           files={"photo": png()})
    assert response.status_code == 302
    done = TrackingEvent.objects.get(piece=piece, kind=EventKind.COMPLETED,
                                     actor=h.caster_member)
    assert done.weight_g == Decimal("9.500")
    photo = Document.objects.get(piece=piece)
    assert photo.event == done and photo.kind == "photo" and photo.content_type == "image/png"
    assert photo.uploaded_by == h.caster_member

    # Manufacturing is done at the caster too: it starts here, no send.
    page = client.get(reverse("workshop:piece", args=[piece.pk]))
    assert [a for a, _f in page.context["main_actions"]] == ["start"]
    assert f'src="/documents/{photo.token}/thumb/"' in page.content.decode()  # a thumbnail
    post_action(client, piece, "start")
    post_action(client, piece, "complete")
    page = client.get(reverse("workshop:piece", args=[piece.pk]))
    assert [a for a, _f in page.context["main_actions"]] == ["send"]
    assert "Send to Sertissage Martin" in page.content.decode()

    response = post_action(client, piece, "send", {"weight_g": "9.400"})
    assert response.status_code == 302 and response["Location"] == reverse("workshop:queue")
    line = TransferLine.objects.get(piece=piece, transfer__to_workshop=h.setter)
    assert line.weight_sent_g == Decimal("9.400")
    assert any("sent to Sertissage Martin on slip" in m for m in msgs(response))
    piece.refresh_from_db()
    assert piece.status == PieceStatus.IN_TRANSIT and piece.transit_to_id == h.setter.pk
    # It has left: no longer the caster's.
    assert client.get(reverse("workshop:piece", args=[piece.pk])).status_code == 404
    as_user(client, h.setter_member)
    assert client.get(reverse("workshop:piece", args=[piece.pk])).status_code == 200


def test_hold_with_reason_and_note_with_photo(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    as_user(client, h.caster_member)
    response = post_action(client, piece, "note", files={"photo": png()})
    assert response.status_code == 302
    note = TrackingEvent.objects.get(piece=piece, kind=EventKind.NOTE)
    assert note.comment == "Photo"
    assert Document.objects.get(piece=piece).event == note

    response = post_action(client, piece, "hold", {"reason": HoldReason.MATERIAL_UNAVAILABLE,
                                                   "comment": "Waiting for wax"})
    assert response.status_code == 302
    piece.refresh_from_db()
    assert piece.status == PieceStatus.ON_HOLD
    page = client.get(reverse("workshop:piece", args=[piece.pk]))
    html = page.content.decode()
    assert "Material unavailable" in html and "Waiting for wax" in html
    # Workshops cannot release: only notes remain.
    assert page.context["main_actions"] == [] and list(page.context["forms"]) == ["note"]


def test_bad_input_is_refused_next_to_the_field_and_nothing_is_written(house_setup, client):
    h = house_setup
    piece = incoming_to_caster(h)
    as_user(client, h.caster_member)
    before = TrackingEvent.objects.filter(piece=piece).count()

    for weight, words in (("-3", "more than 0 g"), ("abc", "is not a weight"),
                          ("9000", "not a plausible")):
        response = post_action(client, piece, "receive", {"weight_g": weight})
        assert response.status_code == 200
        form = response.context["forms"]["receive"]
        assert words in " ".join(form.errors["weight_g"]), weight
        assert 'class="error"' in response.content.decode()

    response = post_action(client, piece, "receive", {"weight_g": "10"},
                           files={"photo": SimpleUploadedFile("x.png", HTML,
                                                              content_type="image/png")})
    assert response.status_code == 200
    assert "cannot be uploaded" in " ".join(response.context["forms"]["receive"].errors["photo"])
    assert TrackingEvent.objects.filter(piece=piece).count() == before
    assert not Document.objects.filter(piece=piece).exists()
    piece.refresh_from_db()
    assert piece.status == PieceStatus.IN_TRANSIT

    # A state the services refuse: starting before receiving (posted by hand).
    response = post_action(client, piece, "start")
    assert response.status_code == 200
    assert "receive it before working on it" in response.content.decode()
    assert TrackingEvent.objects.filter(piece=piece).count() == before


def test_hold_needs_a_reason(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    as_user(client, h.caster_member)
    response = post_action(client, piece, "hold", {"reason": ""})
    assert response.status_code == 200
    assert response.context["forms"]["hold"].errors["reason"]
    response = post_action(client, piece, "hold", {"reason": HoldReason.OTHER, "comment": ""})
    assert "Say why the piece is held." in response.context["forms"]["hold"].errors["comment"]
    response = post_action(client, piece, "note", {"comment": ""})
    assert response.context["forms"]["note"].errors
    assert not TrackingEvent.objects.filter(piece=piece, kind__in=["held", "note"]).exists()


def test_double_submit_records_once(house_setup, client):
    h = house_setup
    piece = incoming_to_caster(h)
    as_user(client, h.caster_member)
    event_id = uuid.uuid4().hex
    first = post_action(client, piece, "receive", {"weight_g": "10"},
                        files={"photo": png()}, event_id=event_id)
    second = post_action(client, piece, "receive", {"weight_g": "10"},
                         files={"photo": png()}, event_id=event_id)
    assert first.status_code == second.status_code == 302
    assert TrackingEvent.objects.filter(piece=piece, kind=EventKind.RECEIVED).count() == 1
    assert Document.objects.filter(piece=piece).count() == 1
    assert "Already recorded: nothing was done twice." in msgs(second)

    post_action(client, piece, "start")
    ready_to_leave(h, piece)  # the prototype is recorded (design's gate)
    post_action(client, piece, "complete")
    post_action(client, piece, "start")
    post_action(client, piece, "complete")
    send_id = uuid.uuid4().hex
    post_action(client, piece, "send", {"weight_g": "9"}, event_id=send_id)
    again = post_action(client, piece, "send", {"weight_g": "9"}, event_id=send_id)
    # The piece has left the caster's sight; the second tap still lands on the queue.
    assert again.status_code == 302 and again["Location"] == reverse("workshop:queue")
    assert "Already recorded: nothing was done twice." in msgs(again)
    assert TransferLine.objects.filter(piece=piece, transfer__to_workshop=h.setter).count() == 1


def test_each_form_gets_its_own_event_id(house_setup, client):
    h = house_setup
    piece = received_at_caster(h)
    forms = as_user(client, h.caster_member).get(
        reverse("workshop:piece", args=[piece.pk])).context["forms"]
    ids = [f.initial["client_event_id"] for f in forms.values()]
    assert set(forms) == {"start", "hold", "note"}
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)


def test_events_of_other_workshops_stay_hidden(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.SETTING, arrive=True, weight_g="8.000")
    piece_hold(actor=h.setter_member, piece_id=piece.pk, reason=HoldReason.CAPACITY)
    as_user(client, h.setter_member)
    page = client.get(reverse("workshop:piece", args=[piece.pk]))
    html = page.content.decode()
    kinds = [e.kind for e in page.context["events"]]
    assert EventKind.STARTED not in kinds  # the caster's work is not shown
    assert EventKind.SENT in kinds and EventKind.RECEIVED in kinds
    assert "Fonderie Dupont" not in html and "caster1" not in html
    assert "Bijouterie Roux" not in html and "1200" not in html
    run = piece.runs.get(step=StepKind.SETTING)
    assert run.status == StepStatus.ON_HOLD
