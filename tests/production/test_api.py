"""Pieces, tracking events, route changes, transfer slips and route templates through the API,
and above all what each role sees of them."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import reset_queries

from etabli.core.models import AuditEntry
from etabli.production.models import (
    Piece,
    PieceStatus,
    RouteTemplate,
    StepRun,
    StepStatus,
    TrackingEvent,
    Transfer,
    TransferLine,
)
from etabli.workshops.models import StepKind
from tests.apiclient import assert_error, error_fields, ok, qualify_order
from tests.design.support import (
    approve_design_through_api,
    ready_to_leave,
    written_acceptance,
)
from tests.factories import SETTER_SKILLS, default_line, make_user, make_workshop

pytestmark = pytest.mark.django_db

S = StepStatus
PIECE_KEYS = {"id", "serial", "order_id", "order_reference", "client", "client_reference",
              "line", "target_price", "currency", "promised_date", "status", "status_label",
              "current_step", "current_workshop", "location", "transit_to", "current_due",
              "is_late", "rework_count", "right_first_time", "last_event_at", "delivered_at"}
RUN_KEYS = {"id", "position", "step", "step_label", "operations", "workshop", "status",
            "attempt", "reworked", "planned_days", "planned_start", "planned_due",
            "actual_start", "actual_finish", "skip_reason", "skip_comment", "skip_reference",
            "skip_document_id"}
EVENT_KEYS = {"id", "piece_id", "serial", "step_run_id", "step", "kind", "workshop", "actor",
              "occurred_at", "weight_g", "comment", "reason", "slip_number", "client_event_id"}
TRANSFER_KEYS = {"id", "slip_number", "from_workshop", "to_workshop", "status", "sent_by",
                 "sent_at", "received_at", "comment", "lines"}
ACTIONS = {  # a well-formed body for every event endpoint
    "receive": {}, "start": {}, "complete": {}, "send": {}, "release": {},
    "hold": {"reason": "capacity"}, "rework": {"target_run_id": 1, "comment": "again"},
    "notes": {"comment": "looked at it"},
}


def counts() -> tuple[int, ...]:
    """Rows that a refused write must not have touched."""
    return (TrackingEvent.objects.count(), Transfer.objects.count(),
            TransferLine.objects.count(), StepRun.objects.count(), AuditEntry.objects.count(),
            tuple(Piece.objects.order_by("pk").values_list("status", "location_id",
                                                           "transit_to_id")),
            tuple(StepRun.objects.order_by("pk").values_list("status", "workshop_id",
                                                             "position")))


def fresh(piece: Piece) -> Piece:
    return Piece.objects.get(pk=piece.pk)


def open_run(piece: Piece) -> StepRun:
    return fresh(piece).runs.get(status__in=[S.READY, S.IN_TRANSIT, S.RECEIVED,
                                             S.IN_PROGRESS, S.ON_HOLD])


def at(h, step: str, status: str = S.READY, **launch) -> Piece:
    """A launched piece whose open step is `step`, in `status` (READY: not yet sent)."""
    piece = h.walk(h.launched_piece(**launch), to=step)
    wanted = [S.READY, S.IN_TRANSIT, S.RECEIVED, S.IN_PROGRESS]
    while open_run(piece).status != status:
        assert wanted.index(open_run(piece).status) < wanted.index(status)
        h.advance(piece)
    return fresh(piece)


def ids(response) -> set[int]:
    return {item["id"] for item in ok(response)["items"]}


# ---------------------------------------------------------------------------------------------
# pieces: list and detail


def test_piece_list_shape_order_and_pagination(house_setup, api):
    h = house_setup
    order = h.launched_order(quantity=5)
    me = api(h.manager)
    body = ok(me.get("/pieces"))
    assert body["count"] == 5
    item = body["items"][0]
    assert set(item) == PIECE_KEYS
    assert item["order_id"] == order.pk and item["order_reference"] == order.reference
    assert item["status"] == "ready" and item["status_label"] == "Ready for its next step"
    assert item["current_step"] == "design"
    assert item["current_workshop"]["code"] == "house" and item["location"]["code"] == "house"
    assert item["transit_to"] is None and item["is_late"] is False
    assert item["right_first_time"] is True and item["rework_count"] == 0
    assert item["line"] == {"position": 1, "description": "Solitaire ring, 1 ct",
                            "model_reference": "R-100", "is_custom_design": False,
                            "size": "52", "alloy": "750y", "stones": "", "customisations": ""}
    serials = [p["serial"] for p in body["items"]]
    assert serials == sorted(serials)  # same due date: by serial
    page = ok(me.get("/pieces", {"limit": 2, "offset": 3}))
    assert page["count"] == 5 and [p["serial"] for p in page["items"]] == serials[3:5]
    assert ok(me.get("/pieces", {"limit": 2, "offset": 3})) == page
    assert ok(me.get("/pieces", {"offset": 10}))["items"] == []
    assert_error(me.get("/pieces", {"limit": -1}), 422, "invalid_input")


def test_piece_list_filters(house_setup, api):
    h = house_setup
    designing = h.launched_piece()
    setting = at(h, StepKind.SETTING, S.RECEIVED)
    other = h.launched_piece(client=h.other_client)
    StepRun.objects.filter(pk=open_run(setting).pk).update(planned_due="2000-01-01")
    Piece.objects.filter(pk=setting.pk).update(current_due="2000-01-01")
    me = api(h.manager)
    assert ids(me.get("/pieces", {"status": "received"})) == {setting.pk}
    assert ids(me.get("/pieces", {"step": "design"})) == {designing.pk, other.pk}
    assert ids(me.get("/pieces", {"workshop_id": h.setter.pk})) == {setting.pk}
    assert ids(me.get("/pieces", {"order_id": other.order_id})) == {other.pk}
    assert ids(me.get("/pieces", {"client_id": h.other_client.pk})) == {other.pk}
    assert ids(me.get("/pieces", {"late": "true"})) == {setting.pk}
    assert ids(me.get("/pieces", {"late": "false"})) == {designing.pk, other.pk}
    assert ids(me.get("/pieces", {"q": setting.serial.lower()})) == {setting.pk}
    assert ids(me.get("/pieces", {"q": other.order.reference})) == {other.pk}
    late = ok(me.get("/pieces"))["items"][0]
    assert late["id"] == setting.pk and late["is_late"] is True  # late first
    assert_error(me.get("/pieces", {"status": "lost"}), 422, "invalid_input")
    assert_error(me.get("/pieces", {"workshop_id": "setter"}), 422, "invalid_input")
    # Filtering by client would tell a workshop who the client is: it finds nothing.
    assert ok(api(h.setter_member).get("/pieces", {"client_id": h.client.pk}))["count"] == 0


def test_piece_detail_and_by_serial(house_setup, api):
    h = house_setup
    piece = h.launched_piece()
    me = api(h.manager)
    body = ok(me.get(f"/pieces/{piece.pk}"))
    assert set(body) == PIECE_KEYS | {"runs"}
    assert [r["step"] for r in body["runs"]] == list(StepKind.values)
    assert set(body["runs"][0]) == RUN_KEYS
    assert [r["status"] for r in body["runs"]] == ["done", "ready", "pending", "pending",
                                                   "pending", "pending", "pending"]
    assert body["runs"][1]["step_label"] == "Design & CAD"
    assert [r["workshop"]["code"] for r in body["runs"]] == [
        "house", "house", "caster", "caster", "setter", "polisher", "house"]
    assert Decimal(body["target_price"]) == Decimal("1200.00") and body["currency"] == "EUR"
    assert body["client"]["code"] == "bijouterie-roux"
    assert ok(me.get(f"/pieces/by-serial/{piece.serial.lower()}"))["id"] == piece.pk
    assert_error(me.get("/pieces/by-serial/P00-000000"), 404, "not_found")
    assert_error(me.get("/pieces/999999"), 404, "not_found")
    assert_error(me.get("/pieces/999999/events"), 404, "not_found")
    assert_error(me.get("/pieces/abc"), 422, "invalid_input")


def test_piece_events(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, S.RECEIVED)
    body = ok(api(h.manager).get(f"/pieces/{piece.pk}/events"))
    assert body["count"] == TrackingEvent.objects.filter(piece=piece).count() == 6
    events = body["items"]
    assert set(events[0]) == EVENT_KEYS
    assert [e["kind"] for e in events] == ["started", "completed", "started", "completed",
                                           "sent", "received"]
    sent = events[4]
    assert sent["slip_number"].startswith("TS-") and sent["actor"] == "designer"
    assert sent["workshop"]["code"] == "house" and sent["step"] == "prototyping"
    assert events[5]["workshop"]["code"] == "caster" and events[5]["serial"] == piece.serial
    page = ok(api(h.manager).get(f"/pieces/{piece.pk}/events", {"limit": 2, "offset": 4}))
    assert [e["id"] for e in page["items"]] == [e["id"] for e in events[4:]]


# ---------------------------------------------------------------------------------------------
# the workshop member's view


@pytest.fixture
def spread(house_setup):
    """Pieces spread over the workshops: at the caster, at the setter, on its way to the
    polisher, and one still at the house."""
    h = house_setup
    return {
        "caster": at(h, StepKind.MANUFACTURING, S.IN_PROGRESS),
        "setter": at(h, StepKind.SETTING, S.RECEIVED),
        "polisher": at(h, StepKind.FINISHING, S.IN_TRANSIT),
        "house": h.launched_piece(),
    }


def test_workshop_members_list_only_pieces_at_or_coming_to_them(house_setup, api, spread):
    h = house_setup
    for code, member in (("caster", h.caster_member), ("setter", h.setter_member),
                         ("polisher", h.polisher_member)):
        body = ok(api(member).get("/pieces"))
        assert body["count"] == 1 and body["items"][0]["id"] == spread[code].pk
        # Filters cannot widen the scope.
        for other in set(spread) - {code}:
            assert ok(api(member).get("/pieces", {"order_id": spread[other].order_id,
                                                   "q": spread[other].serial}))["count"] == 0
    # A member of two workshops sees the pieces of both.
    both = api(make_user("workshop", workshops=[h.caster, h.setter]))
    assert ids(both.get("/pieces")) == {spread["caster"].pk, spread["setter"].pk}


def test_workshop_member_gets_404_for_another_workshops_piece(house_setup, api, spread):
    h = house_setup
    me = api(h.caster_member)
    for code in ("setter", "polisher", "house"):
        piece = spread[code]
        for path in (f"/pieces/{piece.pk}", f"/pieces/{piece.pk}/events",
                     f"/pieces/{piece.pk}/audit", f"/pieces/by-serial/{piece.serial}"):
            assert_error(me.get(path), 404, "not_found")
    before = counts()
    for code in ("setter", "polisher", "house"):
        piece = spread[code]
        for action, body in ACTIONS.items():
            assert_error(me.post(f"/pieces/{piece.pk}/{action}", body), 404, "not_found")
        assert_error(me.post("/transfers", {"piece_ids": [piece.pk]}), 404, "not_found")
    assert counts() == before


def test_workshop_member_sees_no_prices_client_or_promise(house_setup, api, spread):
    h = house_setup
    piece = spread["caster"]
    for response in (api(h.caster_member).get(f"/pieces/{piece.pk}"),
                     api(h.caster_member).get(f"/pieces/by-serial/{piece.serial}")):
        body = ok(response)
        assert body["target_price"] is None and body["currency"] is None
        assert body["client"] is None and body["client_reference"] is None
        assert body["promised_date"] is None
        assert body["current_workshop"]["code"] == "caster"
        assert body["location"]["code"] == "caster"
        # Its own runs and the house are named; the other workshops of the route are not.
        named = {r["step"]: (r["workshop"] or {}).get("code") for r in body["runs"]}
        assert named == {"order_receipt": "house", "design": "house", "prototyping": "caster",
                         "manufacturing": "caster", "setting": None, "finishing": None,
                         "delivery": "house"}
    item = ok(api(h.caster_member).get("/pieces"))["items"][0]
    assert (item["target_price"], item["currency"], item["client"], item["client_reference"],
            item["promised_date"]) == (None, None, None, None, None)
    # Before it goes, the caster learns where the piece must be sent next.
    h.advance(piece)  # manufacturing done: setting ready, at the caster
    runs = ok(api(h.caster_member).get(f"/pieces/{piece.pk}"))["runs"]
    assert next(r for r in runs if r["step"] == "setting")["workshop"]["code"] == "setter"
    assert next(r for r in runs if r["step"] == "finishing")["workshop"] is None


def test_a_piece_coming_to_a_workshop_is_visible_there(house_setup, api, spread):
    h = house_setup
    piece = spread["polisher"]
    body = ok(api(h.polisher_member).get(f"/pieces/{piece.pk}"))
    assert body["status"] == "in_transit" and body["location"] is None
    assert body["transit_to"]["code"] == "polisher"
    # The sender is not named to the polisher, in the piece or in its events.
    events = ok(api(h.polisher_member).get(f"/pieces/{piece.pk}/events"))["items"]
    assert [e["kind"] for e in events] == ["sent"]
    assert events[0]["workshop"] is None
    # The setter no longer sees the piece it sent.
    assert_error(api(h.setter_member).get(f"/pieces/{piece.pk}"), 404, "not_found")


def test_workshop_member_sees_only_events_at_their_workshop(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.FINISHING, S.RECEIVED)
    everything = ok(api(h.manager).get(f"/pieces/{piece.pk}/events", {"limit": 100}))["items"]
    polisher = ok(api(h.polisher_member).get(f"/pieces/{piece.pk}/events"))
    kinds = [(e["kind"], e["step"]) for e in polisher["items"]]
    assert kinds == [("sent", "finishing"), ("received", "finishing")]
    assert polisher["count"] == 2 < len(everything)
    assert all(e["workshop"] is None or e["workshop"]["code"] == "polisher"
               for e in polisher["items"])
    # Later, back at the caster? No: the caster never sees this piece again.
    assert_error(api(h.caster_member).get(f"/pieces/{piece.pk}/events"), 404, "not_found")


def test_workshop_member_transfers_are_only_theirs(house_setup, api):
    h = house_setup
    to_caster = at(h, StepKind.PROTOTYPING, S.IN_TRANSIT)
    to_setter = at(h, StepKind.SETTING, S.IN_TRANSIT)
    slip_caster = Transfer.objects.get(lines__piece=to_caster)
    slip_setter = Transfer.objects.filter(lines__piece=to_setter).order_by("-id").first()
    assert (slip_setter.from_workshop, slip_setter.to_workshop) == (h.caster, h.setter)
    caster, setter, polisher = (api(h.caster_member), api(h.setter_member),
                                api(h.polisher_member))
    caster_slips = ids(caster.get("/transfers"))
    assert slip_caster.pk in caster_slips and slip_setter.pk in caster_slips
    assert ids(setter.get("/transfers")) == {slip_setter.pk}
    assert ids(polisher.get("/transfers")) == set()
    assert_error(setter.get(f"/transfers/{slip_caster.pk}"), 404, "not_found")
    assert ok(setter.get(f"/transfers/{slip_setter.pk}"))["slip_number"] == \
        slip_setter.slip_number
    assert_error(polisher.post(f"/transfers/{slip_setter.pk}/receive", {}), 404, "not_found")
    assert ok(api(h.client_contact).get("/transfers"))["count"] == 0
    assert ok(api(h.sales).get("/transfers"))["count"] == Transfer.objects.count()


# ---------------------------------------------------------------------------------------------
# clients, house roles


def test_client_contact_follows_own_pieces_without_workshops(house_setup, api):
    h = house_setup
    mine = at(h, StepKind.SETTING, S.IN_TRANSIT)
    theirs = h.launched_piece(client=h.other_client)
    me = api(h.client_contact)
    assert ids(me.get("/pieces")) == {mine.pk}
    for path in (f"/pieces/{theirs.pk}", f"/pieces/{theirs.pk}/events",
                 f"/pieces/by-serial/{theirs.serial}"):
        assert_error(me.get(path), 404, "not_found")
    body = ok(me.get(f"/pieces/{mine.pk}"))
    assert body["current_workshop"] is None and body["location"] is None
    assert body["transit_to"] is None
    assert all(r["workshop"] is None for r in body["runs"])
    assert body["target_price"] is None and body["currency"] is None
    assert body["client"]["code"] == "bijouterie-roux"
    assert body["promised_date"] == mine.order.promised_date.isoformat()
    assert body["current_step"] == "setting" and body["status"] == "in_transit"
    assert ok(me.get(f"/pieces/{mine.pk}/events")) == {"items": [], "count": 0}
    assert_error(me.get(f"/pieces/{mine.pk}/audit"), 404, "not_found")
    before = counts()
    for action, payload in ACTIONS.items():
        assert_error(me.post(f"/pieces/{mine.pk}/{action}", payload), 403, "forbidden")
        assert_error(me.post(f"/pieces/{theirs.pk}/{action}", payload), 404, "not_found")
    assert counts() == before


def test_sales_sees_prices_and_may_only_note_and_hold(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.MANUFACTURING, S.IN_PROGRESS)
    me = api(h.sales)
    body = ok(me.get(f"/pieces/{piece.pk}"))
    assert Decimal(body["target_price"]) == Decimal("1200.00") and body["currency"] == "EUR"
    assert body["client_reference"] == "" and body["client"]["name"] == "Bijouterie Roux"
    coming = at(h, StepKind.SETTING, S.IN_TRANSIT)
    before = counts()
    for action in ("start", "complete", "send", "release", "rework"):
        assert_error(me.post(f"/pieces/{piece.pk}/{action}", ACTIONS[action]), 403,
                     "forbidden")
    assert_error(me.post(f"/pieces/{coming.pk}/receive", {}), 403, "forbidden")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk]}), 403, "forbidden")
    assert counts() == before
    note = ok(me.post(f"/pieces/{piece.pk}/notes", {"comment": "Client called"}), 201)
    assert note["kind"] == "note" and note["actor"] == "sales"
    held = ok(me.post(f"/pieces/{piece.pk}/hold", {"reason": "client_change_request",
                                                   "comment": "Waiting for the client"}), 201)
    assert held["kind"] == "held" and held["reason"] == "client_change_request"
    assert fresh(piece).status == PieceStatus.ON_HOLD


@pytest.mark.parametrize("role,sees", [
    ("designer", {"house-ready", StepKind.DESIGN, StepKind.PROTOTYPING}),
    ("quality", {StepKind.FINISHING}),
    ("logistics", {StepKind.DELIVERY, "house-ready", "to-house"}),
])
def test_house_roles_see_pieces_at_their_step(house_setup, api, role, sees):
    h = house_setup
    pieces = {
        "house-ready": h.launched_piece(),  # waiting for design, at the house
        StepKind.DESIGN: at(h, StepKind.DESIGN, S.IN_PROGRESS),
        StepKind.PROTOTYPING: at(h, StepKind.PROTOTYPING, S.RECEIVED),
        StepKind.MANUFACTURING: at(h, StepKind.MANUFACTURING, S.IN_PROGRESS),
        StepKind.SETTING: at(h, StepKind.SETTING, S.RECEIVED),
        StepKind.FINISHING: at(h, StepKind.FINISHING, S.IN_PROGRESS),
        "to-house": at(h, StepKind.DELIVERY, S.IN_TRANSIT),
        StepKind.DELIVERY: at(h, StepKind.DELIVERY, S.IN_PROGRESS),
    }
    me = api(getattr(h, role))
    visible = ids(me.get("/pieces", {"limit": 100}))
    expected = {pieces[k].pk for k in sees}
    assert visible == expected
    for piece in pieces.values():
        response = me.get(f"/pieces/{piece.pk}")
        if piece.pk in expected:
            body = ok(response)
            assert body["target_price"] is None and body["currency"] is None
            assert body["client"]["code"] == "bijouterie-roux"  # house staff know the client
        else:
            assert_error(response, 404, "not_found")


# ---------------------------------------------------------------------------------------------
# events: happy paths


def test_receive_start_complete_send_with_weights(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, S.IN_TRANSIT)
    me = api(h.caster_member)
    received = ok(me.post(f"/pieces/{piece.pk}/receive", {"weight_g": "4.2",
                                                          "comment": "Wax ok"}), 201)
    assert set(received) == EVENT_KEYS
    assert (received["kind"], received["step"], received["actor"]) == \
        ("received", "prototyping", "caster1")
    assert Decimal(received["weight_g"]) == Decimal("4.200")
    assert received["workshop"]["code"] == "caster" and received["slip_number"]
    started = ok(me.post(f"/pieces/{piece.pk}/start", {}), 201)
    assert started["kind"] == "started"
    ready_to_leave(h, piece)  # the prototype is recorded (design's gate)
    done = ok(me.post(f"/pieces/{piece.pk}/complete", {"weight_g": 4.1}), 201)
    assert done["kind"] == "completed" and Decimal(done["weight_g"]) == Decimal("4.100")
    detail = ok(me.get(f"/pieces/{piece.pk}"))
    assert detail["current_step"] == "manufacturing" and detail["status"] == "ready"
    ok(me.post(f"/pieces/{piece.pk}/start", {}), 201)
    ok(me.post(f"/pieces/{piece.pk}/complete", {}), 201)
    sent = ok(me.post(f"/pieces/{piece.pk}/send", {"to_workshop_id": h.setter.pk,
                                                   "weight_g": "6.5"}), 201)
    assert sent["kind"] == "sent" and sent["step"] == "setting"
    assert sent["slip_number"].startswith("TS-")
    slip = Transfer.objects.get(slip_number=sent["slip_number"])
    assert (slip.from_workshop, slip.to_workshop) == (h.caster, h.setter)
    assert slip.lines.get().weight_sent_g == Decimal("6.500")
    entry = AuditEntry.objects.filter(piece_id=piece.pk, action="piece.send").last()
    assert entry.before["location"] == h.caster.pk and entry.after["transit_to"] == h.setter.pk


def test_hold_release_and_notes(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.SETTING, S.IN_PROGRESS)
    me = api(h.setter_member)
    held = ok(me.post(f"/pieces/{piece.pk}/hold", {"reason": "material_unavailable",
                                                   "comment": "Waiting for the sapphire"}), 201)
    assert held["kind"] == "held" and held["reason"] == "material_unavailable"
    assert ok(me.get(f"/pieces/{piece.pk}"))["status"] == "on_hold"
    # A workshop member does not release: the production manager does.
    assert_error(me.post(f"/pieces/{piece.pk}/release", {}), 403, "forbidden")
    released = ok(api(h.manager).post(f"/pieces/{piece.pk}/release",
                                      {"comment": "Stone arrived"}), 201)
    assert released["kind"] == "released"
    assert ok(me.get(f"/pieces/{piece.pk}"))["status"] == "in_progress"
    note = ok(me.post(f"/pieces/{piece.pk}/notes", {"weight_g": "7.25"}), 201)
    assert note["kind"] == "note" and Decimal(note["weight_g"]) == Decimal("7.250")
    assert ok(me.get(f"/pieces/{piece.pk}"))["status"] == "in_progress"


def test_rework_by_quality(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.FINISHING, S.IN_PROGRESS)
    setting = piece.runs.get(step=StepKind.SETTING)
    me = api(h.quality)
    event = ok(me.post(f"/pieces/{piece.pk}/rework", {
        "target_run_id": setting.pk, "comment": "Loose prong on the centre stone"}), 201)
    assert event["kind"] == "rework" and event["actor"] == "quality"
    body = ok(api(h.manager).get(f"/pieces/{piece.pk}"))
    assert body["rework_count"] == 1 and body["right_first_time"] is False
    assert body["current_step"] == "setting" and body["status"] == "ready"
    steps = [(r["step"], r["attempt"], r["status"]) for r in body["runs"]]
    assert steps[4:] == [("setting", 1, "done"), ("finishing", 1, "done"),
                         ("setting", 2, "ready"), ("finishing", 2, "pending"),
                         ("delivery", 1, "pending")]
    # Workshops may not send a piece back.
    other = at(h, StepKind.SETTING, S.IN_PROGRESS)
    setter = api(h.setter_member)
    before = counts()
    target = other.runs.get(step=StepKind.MANUFACTURING).pk
    assert_error(setter.post(f"/pieces/{other.pk}/rework", {
        "target_run_id": target, "comment": "x"}), 403, "forbidden")
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# refused transitions and bad input on events


@pytest.mark.parametrize("state,action,body", [
    ((StepKind.DESIGN, S.READY), "complete", {}),
    ((StepKind.PROTOTYPING, S.READY), "receive", {}),
    ((StepKind.PROTOTYPING, S.READY), "start", {}),
    ((StepKind.PROTOTYPING, S.IN_TRANSIT), "start", {}),
    ((StepKind.PROTOTYPING, S.IN_TRANSIT), "send", {}),
    ((StepKind.PROTOTYPING, S.IN_TRANSIT), "hold", {"reason": "capacity"}),
    ((StepKind.SETTING, S.IN_PROGRESS), "send", {}),
    ((StepKind.SETTING, S.IN_PROGRESS), "release", {}),
    ((StepKind.SETTING, S.IN_PROGRESS), "start", {}),
    ((StepKind.SETTING, S.RECEIVED), "receive", {}),
    ((StepKind.DESIGN, S.READY), "send", {}),
])
def test_transitions_not_allowed_are_409(house_setup, api, state, action, body):
    h = house_setup
    piece = at(h, *state)
    me = api(h.manager)  # may record anything: only the state machine says no
    before = counts()
    error = assert_error(me.post(f"/pieces/{piece.pk}/{action}", body), 409,
                         "transition_not_allowed")
    assert error["message"]
    assert counts() == before


def test_actions_on_a_delivered_piece_are_409(house_setup, api):
    h = house_setup
    piece = h.walk(h.launched_piece())
    me = api(h.manager)
    before = counts()
    for action in ("receive", "start", "complete", "send", "hold", "release"):
        assert_error(me.post(f"/pieces/{piece.pk}/{action}", ACTIONS[action]), 409,
                     "transition_not_allowed")
    assert counts() == before


def test_event_bad_input(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, S.IN_TRANSIT)
    me, quality, manager = api(h.caster_member), api(h.quality), api(h.manager)
    url = f"/pieces/{piece.pk}"
    before = counts()
    for action in ACTIONS:
        assert_error(me.post(f"{url}/{action}", raw="{bad"), 400, "bad_request")
        assert_error(me.post(f"/pieces/999999/{action}", ACTIONS[action]), 404, "not_found")
        assert "comment" in error_fields(me.post(f"{url}/{action}", ACTIONS[action]
                                                 | {"comment": "x" * 4001}))
        assert "client_event_id" in error_fields(me.post(f"{url}/{action}", ACTIONS[action]
                                                         | {"client_event_id": "x" * 65}))
    for action in ("receive", "complete", "send", "notes"):
        assert "weight_g" in error_fields(me.post(f"{url}/{action}", {"weight_g": "heavy"}))
        assert "weight_g" in error_fields(me.post(f"{url}/{action}", {"weight_g": True}))
        assert "weight_g" in error_fields(me.post(f"{url}/{action}", {"weight_g": [1]}))
    # Well-formed numbers that are no weight.
    for weight in ("-1", "0", "5000.001", "1.0001"):
        body = assert_error(me.post(f"{url}/receive", {"weight_g": weight}), 400, "invalid")
        assert body["details"]["field"] == "weight_g"
    for weight in ("NaN", "Infinity", "-Infinity"):
        assert "weight_g" in error_fields(me.post(f"{url}/receive", {"weight_g": weight}))
    assert "reason" in error_fields(me.post(f"{url}/hold", {}))
    assert "reason" in error_fields(me.post(f"{url}/hold", {"reason": "bored"}))
    assert {"target_run_id", "comment"} <= error_fields(me.post(f"{url}/rework", {}))
    assert "target_run_id" in error_fields(me.post(f"{url}/rework", {"target_run_id": "x",
                                                                     "comment": "c"}))
    assert "to_workshop_id" in error_fields(me.post(f"{url}/send", {"to_workshop_id": "s"}))
    assert_error(quality.post(f"/pieces/{piece.pk}/rework", {
        "target_run_id": 999999, "comment": "x"}), 404, "not_found")
    assert_error(manager.post(f"/pieces/{piece.pk}/notes", {}), 400, "invalid")
    assert counts() == before


def test_send_to_the_wrong_workshop_is_refused(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.SETTING)
    me = api(h.caster_member)
    before = counts()
    body = assert_error(me.post(f"/pieces/{piece.pk}/send", {"to_workshop_id": h.polisher.pk}),
                        400, "invalid")
    assert body["details"] == {"field": "to_workshop_id", "expected": "setter"}
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# idempotency


@pytest.mark.parametrize("action,state,who", [
    ("receive", (StepKind.PROTOTYPING, S.IN_TRANSIT), "caster_member"),
    ("start", (StepKind.PROTOTYPING, S.RECEIVED), "caster_member"),
    ("complete", (StepKind.PROTOTYPING, S.IN_PROGRESS), "caster_member"),
    ("send", (StepKind.SETTING, S.READY), "caster_member"),
    ("notes", (StepKind.SETTING, S.RECEIVED), "setter_member"),
    ("hold", (StepKind.SETTING, S.RECEIVED), "setter_member"),
])
def test_same_client_event_id_twice_records_once(house_setup, api, action, state, who):
    h = house_setup
    piece = at(h, *state)
    if action == "complete":
        ready_to_leave(h, piece)  # the prototype is recorded (design's gate)
    me = api(getattr(h, who))
    cid = str(uuid.uuid4())
    body = ACTIONS[action] | {"client_event_id": cid}
    first = ok(me.post(f"/pieces/{piece.pk}/{action}", body), 201)
    after_first = counts()
    second = ok(me.post(f"/pieces/{piece.pk}/{action}", body), 200)
    assert second == first
    assert counts() == after_first
    if action == "send":
        assert Transfer.objects.filter(client_ref=cid).count() == 1
        assert second["slip_number"] == first["slip_number"]
    else:
        assert TrackingEvent.objects.filter(client_event_id=cid).count() == 1
        assert first["client_event_id"] == cid


def test_client_event_id_reused_elsewhere_is_409(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, S.IN_TRANSIT)
    other = at(h, StepKind.PROTOTYPING, S.IN_TRANSIT)
    me = api(h.caster_member)
    cid = "scan-0001"
    ok(me.post(f"/pieces/{piece.pk}/receive", {"client_event_id": cid}), 201)
    before = counts()
    body = assert_error(me.post(f"/pieces/{other.pk}/receive", {"client_event_id": cid}), 409,
                        "conflict")
    assert body["details"]["client_event_id"] == cid
    assert_error(me.post(f"/pieces/{piece.pk}/start", {"client_event_id": cid}), 409,
                 "conflict")
    assert counts() == before
    assert fresh(other).status == PieceStatus.IN_TRANSIT


def test_transfer_with_the_same_client_ref_twice_makes_one_slip(house_setup, api):
    h = house_setup
    order = h.launched_order(quantity=2)
    a, b = (h.walk(p, to=StepKind.SETTING) for p in order.pieces.order_by("serial"))
    me = api(h.caster_member)
    payload = {"piece_ids": [a.pk, b.pk], "client_ref": "batch-17",
               "weights_g": {str(a.pk): "6.1", str(b.pk): "6.2"}}
    first = ok(me.post("/transfers", payload), 201)
    after_first = counts()
    second = ok(me.post("/transfers", payload), 200)
    assert second == first
    assert counts() == after_first
    assert Transfer.objects.filter(client_ref="batch-17").count() == 1
    assert_error(me.post("/transfers", payload | {"piece_ids": [a.pk]}), 409, "conflict")


# ---------------------------------------------------------------------------------------------
# transfers


def test_transfer_create_get_and_receive(house_setup, api):
    h = house_setup
    order = h.launched_order(quantity=2)
    a, b = (h.walk(p, to=StepKind.SETTING) for p in order.pieces.order_by("serial"))
    caster, setter = api(h.caster_member), api(h.setter_member)
    slip = ok(caster.post("/transfers", {
        "piece_ids": [b.pk, a.pk], "to_workshop_id": h.setter.pk, "comment": "Two rings",
        "weights_g": {str(a.pk): "6.100", str(b.pk): "6.200"}}), 201)
    assert set(slip) == TRANSFER_KEYS
    assert slip["from_workshop"]["code"] == "caster" and slip["to_workshop"]["code"] == "setter"
    assert (slip["status"], slip["sent_by"], slip["comment"]) == ("sent", "caster1",
                                                                  "Two rings")
    assert {ln["piece_id"] for ln in slip["lines"]} == {a.pk, b.pk}
    assert set(slip["lines"][0]) == {"piece_id", "serial", "weight_sent_g",
                                     "weight_received_g", "weight_flagged", "received_at"}
    assert ok(setter.get(f"/transfers/{slip['id']}")) == slip
    listed = ok(setter.get("/transfers", {"status": "sent", "to_workshop_id": h.setter.pk}))
    assert [t["id"] for t in listed["items"]] == [slip["id"]]
    assert ok(setter.get("/transfers", {"from_workshop_id": h.house.pk}))["count"] == 0
    received = ok(setter.post(f"/transfers/{slip['id']}/receive", {
        "weights_g": {str(a.pk): "6.100", str(b.pk): "6.000"}, "comment": "Weighed"}))
    assert received["status"] == "received" and received["received_at"]
    lines = {ln["piece_id"]: ln for ln in received["lines"]}
    assert lines[a.pk]["weight_flagged"] is False
    assert lines[b.pk]["weight_flagged"] is True  # 0.2 g missing
    assert Decimal(lines[b.pk]["weight_received_g"]) == Decimal("6.000")
    for piece in (a, b):
        assert fresh(piece).status == PieceStatus.RECEIVED
        assert fresh(piece).location == h.setter
    before = counts()
    assert_error(setter.post(f"/transfers/{slip['id']}/receive", {}), 409, "conflict")
    assert counts() == before


def test_transfer_bad_input(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.SETTING)
    in_progress = at(h, StepKind.MANUFACTURING, S.IN_PROGRESS)
    elsewhere = at(h, StepKind.FINISHING)  # at the setter, not the caster
    me = api(h.caster_member)
    before = counts()
    assert_error(me.post("/transfers", raw="{bad"), 400, "bad_request")
    assert "piece_ids" in error_fields(me.post("/transfers", {}))
    assert "piece_ids" in error_fields(me.post("/transfers", {"piece_ids": []}))
    assert "piece_ids.0" in error_fields(me.post("/transfers", {"piece_ids": ["one"]}))
    assert "weights_g" in error_fields(me.post("/transfers", {"piece_ids": [piece.pk],
                                                              "weights_g": [1]}))
    assert "weights_g.abc.[key]" in error_fields(me.post("/transfers", {
        "piece_ids": [piece.pk], "weights_g": {"abc": "1"}}))
    assert_error(me.post("/transfers", {"piece_ids": [999999]}), 404, "not_found")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk, elsewhere.pk]}), 404,
                 "not_found")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk, piece.pk]}), 400, "invalid")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk],
                                        "weights_g": {str(in_progress.pk): "1"}}), 400,
                 "invalid")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk, in_progress.pk]}), 409,
                 "transition_not_allowed")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk],
                                        "weights_g": {str(piece.pk): "-2"}}), 400, "invalid")
    assert_error(me.post("/transfers", {"piece_ids": [piece.pk],
                                        "to_workshop_id": h.polisher.pk}), 400, "invalid")
    assert_error(me.get("/transfers/999999"), 404, "not_found")
    assert_error(me.post("/transfers/999999/receive", {}), 404, "not_found")
    assert counts() == before
    slip = ok(me.post("/transfers", {"piece_ids": [piece.pk]}), 201)
    setter = api(h.setter_member)
    before = counts()
    assert_error(setter.post(f"/transfers/{slip['id']}/receive", raw="{bad"), 400, "bad_request")
    assert "weights_g" in error_fields(setter.post(f"/transfers/{slip['id']}/receive",
                                                   {"weights_g": "heavy"}))
    assert_error(setter.post(f"/transfers/{slip['id']}/receive",
                             {"weights_g": {str(in_progress.pk): "1"}}), 400, "invalid")
    assert_error(setter.post(f"/transfers/{slip['id']}/receive",
                             {"weights_g": {str(piece.pk): "0"}}), 400, "invalid")
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# route changes on launched pieces


def test_step_add_reorder_skip_assign(house_setup, api):
    h = house_setup
    setter2 = make_workshop("setter2", name="Sertissage Bis", skills=SETTER_SKILLS)
    piece = h.launched_piece()
    me = api(h.manager)
    runs = {r.step: r for r in piece.runs.all()}
    added = ok(me.post(f"/pieces/{piece.pk}/steps", {
        "step": "finishing", "workshop_id": h.polisher.pk, "planned_days": 2,
        "after_run_id": runs["setting"].pk, "operations": ["engraving_hallmarking"]}), 201)
    assert set(added) == RUN_KEYS
    assert (added["step"], added["status"], added["position"]) == ("finishing", "pending", 6)
    assert added["workshop"]["code"] == "polisher"
    stored = StepRun.objects.get(pk=added["id"])
    assert added["planned_start"] == stored.planned_start.isoformat()
    assert added["planned_due"] == stored.planned_due.isoformat()

    pending = list(piece.runs.filter(status=S.PENDING).order_by("position")
                   .values_list("pk", flat=True))
    new_order = [pending[1], pending[0]] + pending[2:]  # prototyping after manufacturing
    reordered = ok(me.put(f"/pieces/{piece.pk}/steps/order", {"run_ids": new_order}))
    assert [r["id"] for r in reordered] == new_order
    assert [r["step"] for r in reordered][:2] == ["manufacturing", "prototyping"]
    stored = {r.pk: (r.planned_start.isoformat(), r.planned_due.isoformat())
              for r in piece.runs.filter(pk__in=new_order)}
    assert {r["id"]: (r["planned_start"], r["planned_due"]) for r in reordered} == stored
    assert reordered[0]["planned_start"] < reordered[1]["planned_start"]

    # the client's acceptance of the risk must be attached: a reference alone is refused
    body = assert_error(me.post(f"/steps/{runs['prototyping'].pk}/skip", {
        "reason": "client_risk_acceptance", "reference": "Letter 2024-11-02"}), 400)
    assert body["details"] == {"field": "document_id"}
    elsewhere = written_acceptance(h, h.launched_order())
    assert_error(me.post(f"/steps/{runs['prototyping'].pk}/skip", {
        "reason": "client_risk_acceptance", "document_id": elsewhere.pk}), 404, "not_found")
    assert error_fields(me.post(f"/steps/{runs['prototyping'].pk}/skip", {
        "reason": "client_risk_acceptance", "document_id": "a letter"})) == {"document_id"}
    waiver = written_acceptance(h, piece.order)
    skipped = ok(me.post(f"/steps/{runs['prototyping'].pk}/skip", {
        "reason": "client_risk_acceptance", "reference": "Letter 2024-11-02",
        "document_id": waiver.pk}))
    assert skipped["status"] == "skipped"
    assert skipped["skip_reason"] == "client_risk_acceptance"
    assert skipped["skip_reference"] == "Letter 2024-11-02"
    assert skipped["skip_document_id"] == waiver.pk

    moved = ok(me.patch(f"/steps/{runs['setting'].pk}", {"workshop_id": setter2.pk}))
    assert moved["workshop"]["code"] == "setter2"
    actions = set(AuditEntry.objects.filter(piece_id=piece.pk)
                  .values_list("action", flat=True))
    assert {"step.add", "route.reorder", "step.skip", "step.assign"} <= actions


def test_route_changes_refused(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.MANUFACTURING, S.IN_PROGRESS)
    runs = {r.step: r for r in piece.runs.all()}
    me = api(h.manager)
    member, sales, polisher = api(h.caster_member), api(h.sales), api(h.polisher_member)
    before = counts()
    url = f"/pieces/{piece.pk}"
    good_add = {"step": "finishing", "workshop_id": h.polisher.pk, "planned_days": 1,
                "after_run_id": runs["setting"].pk}
    assert_error(me.post(f"{url}/steps", raw="{bad"), 400, "bad_request")
    assert {"step", "workshop_id", "planned_days", "after_run_id"} <= \
        error_fields(me.post(f"{url}/steps", {}))
    assert "step" in error_fields(me.post(f"{url}/steps", good_add | {"step": "juggling"}))
    assert "planned_days" in error_fields(me.post(f"{url}/steps", good_add
                                                  | {"planned_days": 0}))
    assert_error(me.post(f"{url}/steps", good_add | {"workshop_id": 999999}), 404, "not_found")
    assert_error(me.post(f"{url}/steps", good_add | {"after_run_id": 999999}), 404,
                 "not_found")
    assert_error(me.post(f"{url}/steps", good_add | {"workshop_id": h.caster.pk}), 400,
                 "invalid")  # the caster does not polish
    assert_error(me.post(f"{url}/steps", good_add | {"after_run_id": runs["design"].pk}),
                 400, "invalid")  # before the open step
    assert_error(me.post("/pieces/999999/steps", good_add), 404, "not_found")
    assert_error(member.post(f"{url}/steps", good_add), 403, "forbidden")
    assert_error(sales.post(f"{url}/steps", good_add), 403, "forbidden")

    assert_error(me.put(f"{url}/steps/order", {"run_ids": [runs["setting"].pk]}), 400,
                 "invalid")
    assert "run_ids" in error_fields(me.put(f"{url}/steps/order", {"run_ids": "all"}))
    assert_error(me.put("/pieces/999999/steps/order", {"run_ids": []}), 404, "not_found")

    assert "reason" in error_fields(me.post(f"/steps/{runs['setting'].pk}/skip", {}))
    assert "reason" in error_fields(me.post(f"/steps/{runs['setting'].pk}/skip",
                                            {"reason": "bored"}))
    assert_error(me.post("/steps/999999/skip", {"reason": "other", "comment": "x"}), 404,
                 "not_found")
    assert_error(me.post(f"/steps/{runs['manufacturing'].pk}/skip",
                         {"reason": "other", "comment": "x"}), 409, "transition_not_allowed")
    assert_error(me.post(f"/steps/{runs['delivery'].pk}/skip",
                         {"reason": "other", "comment": "x"}), 400, "invalid")
    assert_error(me.post(f"/steps/{runs['setting'].pk}/skip", {"reason": "other"}), 400,
                 "invalid")  # other steps need a comment

    assert "workshop_id" in error_fields(me.patch(f"/steps/{runs['setting'].pk}", {}))
    assert_error(me.patch(f"/steps/{runs['setting'].pk}", {"workshop_id": 999999}), 404,
                 "not_found")
    assert_error(me.patch("/steps/999999", {"workshop_id": h.setter.pk}), 404, "not_found")
    assert_error(me.patch(f"/steps/{runs['manufacturing'].pk}", {"workshop_id": h.caster.pk}),
                 409, "transition_not_allowed")
    assert_error(me.patch(f"/steps/{runs['setting'].pk}", {"workshop_id": h.polisher.pk}),
                 400, "invalid")
    assert_error(member.patch(f"/steps/{runs['setting'].pk}", {"workshop_id": h.setter.pk}),
                 403, "forbidden")
    # A role that may not plan hears so before any look-up: the same answer for a step of
    # another workshop's piece and for no step at all, so nothing is learnt.
    for run_id in (runs["setting"].pk, 999999):
        assert_error(polisher.patch(f"/steps/{run_id}", {"workshop_id": h.setter.pk}), 403,
                     "forbidden")
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# route templates


def test_route_templates(house_setup, api):
    h = house_setup
    body = ok(api(h.manager).get("/route-templates"))
    assert body["count"] == 1
    standard = body["items"][0]
    assert set(standard) == {"id", "code", "name", "description", "is_default", "steps"}
    assert standard["code"] == "standard" and standard["is_default"] is True
    assert [s["step"] for s in standard["steps"]] == list(StepKind.values)
    assert set(standard["steps"][0]) == {"position", "step", "operations", "planned_days",
                                         "workshop"}
    for user in (h.caster_member, h.client_contact):
        assert ok(api(user).get("/route-templates")) == {"items": [], "count": 0}
    created = ok(api(h.manager).post("/route-templates", {
        "code": "Express", "name": "Express, no prototype", "is_default": True,
        "steps": [{"step": "order_receipt", "workshop": "house"},
                  {"step": "manufacturing", "planned_days": 5, "workshop": "caster",
                   "operations": ["casting"]},
                  {"step": "finishing", "planned_days": 2, "workshop": "polisher"},
                  {"step": "delivery", "workshop": "house"}]}), 201)
    assert created["code"] == "express" and created["is_default"] is True
    assert [s["step"] for s in created["steps"]] == ["order_receipt", "manufacturing",
                                                     "finishing", "delivery"]
    assert created["steps"][1]["workshop"]["code"] == "caster"
    assert RouteTemplate.objects.get(code="standard").is_default is False
    order = ok(api(h.sales).post("/orders", {"client_id": h.client.pk,
                                             "lines": [default_line()]}), 201)
    assert order["route_template"] == "express" and len(order["route"]) == 4


def test_route_template_refusals(house_setup, api):
    h = house_setup
    me = api(h.manager)
    sales = api(h.sales)
    before = (RouteTemplate.objects.count(), AuditEntry.objects.count())
    good = {"code": "t1", "name": "T1", "steps": [{"step": "order_receipt"},
                                                  {"step": "delivery"}]}
    assert_error(me.post("/route-templates", raw="{bad"), 400, "bad_request")
    assert {"code", "name", "steps"} <= error_fields(me.post("/route-templates", {}))
    assert "steps" in error_fields(me.post("/route-templates", good | {"steps": [
        {"step": "delivery"}]}))
    assert "steps.0.step" in error_fields(me.post("/route-templates", good | {"steps": [
        {"step": "juggling"}, {"step": "delivery"}]}))
    assert "steps.1.planned_days" in error_fields(me.post("/route-templates", good | {
        "steps": [{"step": "order_receipt"}, {"step": "delivery", "planned_days": 0}]}))
    assert_error(me.post("/route-templates", good | {"steps": [
        {"step": "design"}, {"step": "delivery"}]}), 400, "invalid")
    assert_error(me.post("/route-templates", good | {"steps": [
        {"step": "order_receipt"}, {"step": "setting", "workshop": "nowhere"},
        {"step": "delivery"}]}), 404, "not_found")
    assert_error(me.post("/route-templates", good | {"steps": [
        {"step": "order_receipt"}, {"step": "setting", "operations": ["casting"]},
        {"step": "delivery"}]}), 400, "invalid")
    assert_error(me.post("/route-templates", good | {"code": "standard"}), 409, "conflict")
    assert_error(sales.post("/route-templates", good), 403, "forbidden")
    assert (RouteTemplate.objects.count(), AuditEntry.objects.count()) == before


# ---------------------------------------------------------------------------------------------
# audit


def test_piece_audit_for_house_wide_roles(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, S.RECEIVED)
    for user in (h.admin, h.manager, h.sales):
        body = ok(api(user).get(f"/pieces/{piece.pk}/audit"))
        assert body["count"] == AuditEntry.objects.filter(piece_id=piece.pk).count()
        actions = [e["action"] for e in body["items"]]
        assert actions == ["piece.create", "piece.start", "piece.complete", "piece.send",
                           "piece.receive"]
        receive = body["items"][-1]
        assert receive["actor"] == "caster1" and receive["object_id"] == str(piece.pk)
        assert receive["before"]["status"] == "in_transit"
        assert receive["after"]["status"] == "received"
        assert receive["before"]["location"] is None
        assert receive["after"]["location"] == h.caster.pk


def test_piece_audit_is_404_for_other_roles(house_setup, api):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, S.RECEIVED)
    for user in (h.caster_member, h.designer, h.client_contact):
        assert api(user).get(f"/pieces/{piece.pk}").status_code == 200  # they see the piece
        assert_error(api(user).get(f"/pieces/{piece.pk}/audit"), 404, "not_found")
    assert_error(api(h.manager).get("/pieces/999999/audit"), 404, "not_found")


# ---------------------------------------------------------------------------------------------
# query budgets


def _launch_pieces(h, n: int) -> None:
    """`n` pieces spread over the route, some of them sent on to the caster."""
    order = h.launched_order(quantity=n)
    for i, piece in enumerate(order.pieces.order_by("serial")):
        if i % 2:
            h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)


@pytest.mark.parametrize("role", ["manager", "caster_member", "client_contact", "designer"])
def test_piece_list_query_count_does_not_grow_with_rows(house_setup, api,
                                                        django_assert_max_num_queries, role):
    h = house_setup
    me = api(getattr(h, role))
    ok(me.get("/pieces"))  # warm up (the token's last-used stamp is written once a minute)
    _launch_pieces(h, 3)
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(5) as small:
        first = ok(me.get("/pieces"))
    budget = len(small.captured_queries)
    _launch_pieces(h, 9)
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(budget):
        body = ok(me.get("/pieces", {"limit": 100}))
    assert body["count"] > first["count"] > 0


@pytest.mark.parametrize("role", ["manager", "caster_member", "logistics"])
def test_transfer_list_query_count_does_not_grow_with_rows(house_setup, api,
                                                           django_assert_max_num_queries, role):
    h = house_setup
    me = api(getattr(h, role))
    ok(me.get("/transfers"))
    _launch_pieces(h, 6)
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(5) as small:
        first = ok(me.get("/transfers"))
    budget = len(small.captured_queries)
    _launch_pieces(h, 24)
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(budget):
        body = ok(me.get("/transfers", {"limit": 100}))
    assert body["count"] > first["count"] > 0


def test_piece_detail_query_count_does_not_grow_with_the_route(house_setup, api,
                                                               django_assert_max_num_queries):
    h = house_setup
    me = api(h.caster_member)
    piece = at(h, StepKind.PROTOTYPING, S.RECEIVED)
    ok(me.get(f"/pieces/{piece.pk}"))
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(6) as small:
        ok(me.get(f"/pieces/{piece.pk}"))
    budget = len(small.captured_queries)
    for _ in range(4):
        ok(api(h.manager).post(f"/pieces/{piece.pk}/steps", {
            "step": "finishing", "workshop_id": h.polisher.pk, "planned_days": 1,
            "after_run_id": piece.runs.get(step="setting").pk}), 201)
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(budget):
        assert len(ok(me.get(f"/pieces/{piece.pk}"))["runs"]) == 11


# ---------------------------------------------------------------------------------------------
# the whole journey, through the API only


def test_journey_from_order_to_delivery_through_the_api(house_setup, api):
    """An order taken, qualified and launched; its two pieces made across three outside
    workshops and delivered — every step by the person who really does it, and at every hop
    no other workshop can see the pieces."""
    h = house_setup
    sales, manager, designer = api(h.sales), api(h.manager), api(h.designer)
    quality, logistics = api(h.quality), api(h.logistics)
    members = {"caster": api(h.caster_member), "setter": api(h.setter_member),
               "polisher": api(h.polisher_member)}

    def only(holder: str | None, piece_ids: list[int]) -> None:
        """Exactly `holder` (a workshop code, or None) sees these pieces among the workshops."""
        for code, member in members.items():
            listed = ids(member.get("/pieces"))
            for pid in piece_ids:
                response = member.get(f"/pieces/{pid}")
                if code == holder:
                    assert pid in listed and response.status_code == 200
                else:
                    assert pid not in listed
                    assert_error(response, 404, "not_found")

    # 1. Order receipt and qualification.
    order = ok(sales.post("/orders", {
        "client_id": h.client.pk, "client_reference": "PO-2024-118",
        "lines": [default_line(quantity=2, description="Pair of solitaire rings")]}), 201)
    oid = order["id"]
    route = {s["step"]: s for s in order["route"]}
    for step, ws in (("prototyping", h.caster), ("manufacturing", h.caster),
                     ("setting", h.setter), ("finishing", h.polisher)):
        ok(manager.patch(f"/orders/{oid}/route/{route[step]['id']}", {"workshop_id": ws.pk}))
    order = qualify_order(h, oid)  # the checklist, and the realistic promise
    assert order["launch_blockers"] == [] and order["deadline"]["ok"] is True
    launched = ok(sales.post(f"/orders/{oid}/launch", {}))
    assert launched["status"] == "launched"
    pids = sorted(p["id"] for p in launched["pieces"])
    assert len(pids) == 2
    only(None, pids)

    # 2. Design & CAD at the house.
    assert set(pids) <= ids(designer.get("/pieces"))
    for pid in pids:
        ok(designer.post(f"/pieces/{pid}/start", {"comment": "CAD round 1"}), 201)
    approve_design_through_api(api, h, launched["lines"][0]["id"])
    for pid in pids:
        ok(designer.post(f"/pieces/{pid}/complete", {"comment": "Approved by the client"}), 201)
    only(None, pids)

    # 3. Prototyping at the caster: the designer dispatches both on one slip.
    slip = ok(designer.post("/transfers", {"piece_ids": pids, "to_workshop_id": h.caster.pk}),
              201)
    assert (slip["from_workshop"]["code"], slip["to_workshop"]["code"]) == ("house", "caster")
    only("caster", pids)
    caster = members["caster"]
    assert ok(caster.post(f"/transfers/{slip['id']}/receive", {}))["status"] == "received"
    for pid in pids:
        ok(caster.post(f"/pieces/{pid}/start", {}), 201)
        ok(caster.post(f"/design/pieces/{pid}/prototypes",
                       {"method": "wax_print", "result": "approved", "fit_ok": True}), 201)
        ok(caster.post(f"/pieces/{pid}/complete", {"comment": "Fit test ok"}), 201)
    only("caster", pids)

    # 4. Manufacturing, at the caster too: no transfer.
    for pid in pids:
        ok(caster.post(f"/pieces/{pid}/start", {}), 201)
        ok(caster.post(f"/pieces/{pid}/complete", {"weight_g": "6.420"}), 201)
    slip = ok(caster.post("/transfers", {"piece_ids": pids,
                                         "weights_g": {str(p): "6.420" for p in pids}}), 201)
    assert slip["to_workshop"]["code"] == "setter"
    only("setter", pids)

    # 5. Setting.
    setter = members["setter"]
    for pid in pids:
        ok(setter.post(f"/pieces/{pid}/receive", {"weight_g": "6.420"}), 201)
        ok(setter.post(f"/pieces/{pid}/start", {}), 201)
        ok(setter.post(f"/pieces/{pid}/complete", {"weight_g": "6.630"}), 201)
        ok(setter.post(f"/pieces/{pid}/send", {"weight_g": "6.630"}), 201)
    only("polisher", pids)

    # 6. Finishing & QC at the polisher, followed by the house's inspector.
    polisher = members["polisher"]
    assert set(pids) <= ids(quality.get("/pieces"))
    for pid in pids:
        ok(polisher.post(f"/pieces/{pid}/receive", {"weight_g": "6.630"}), 201)
        ok(polisher.post(f"/pieces/{pid}/start", {}), 201)
        for operation, body in (("polishing", {"finish": "bright"}),
                                ("engraving", {"text": "Toujours", "position": "inside_band"}),
                                ("hallmarking", {"maker_mark": "EB"}),
                                ("cleaning", {"method": "ultrasonic"})):
            ok(polisher.post(f"/finishing/pieces/{pid}/{operation}", body), 201)
        ok(quality.post(f"/pieces/{pid}/notes", {"comment": "Hallmark checked"}), 201)
        inspection = ok(quality.post("/quality/inspections", {"piece_id": pid}), 201)
        ok(quality.put(f"/quality/inspections/{inspection['id']}/measurements", {
            "theoretical_weight_g": "6.600", "measured_weight_g": "6.590",
            "fineness_method": "xrf", "fineness_reading_permille": "751.0",
            "surface_defects": 0, "stones_mechanical_test": True, "loose_stones": 0,
            "function_result": "na",
            "dimensions": [{"name": "Band width", "target_mm": "2.5", "measured_mm": "2.48"}]}))
        ok(quality.post(f"/quality/inspections/{inspection['id']}/sign", {"confirm": True}))
        ok(polisher.post(f"/pieces/{pid}/complete", {"weight_g": "6.590"}), 201)
        ok(polisher.post(f"/pieces/{pid}/send", {}), 201)
    only(None, pids)

    # 7. Delivery from the house, by logistics: each piece leaves on a shipment, and the
    # shipment's delivery ends its delivery step (completing it directly is refused).
    for pid in pids:
        assert pid in ids(logistics.get("/pieces"))
        ok(logistics.post(f"/pieces/{pid}/receive", {}), 201)
        ok(logistics.post(f"/pieces/{pid}/start", {"comment": "Packed and insured"}), 201)
        assert_error(logistics.post(f"/pieces/{pid}/complete", {}), 409)
        sid = ok(logistics.post("/delivery/shipments", {
            "order_id": oid, "piece_ids": [pid], "method": "courier",
            "carrier": "Ferrari Group"}), 201)["id"]
        ok(logistics.post(f"/delivery/shipments/{sid}/packaging", {"pieces": [
            {"piece_id": pid, "case": "ring_box", "protection": "foam_insert"}]}))
        ok(logistics.post(f"/delivery/shipments/{sid}/ship", {"tracking_number": f"FG{pid}X"}))
        ok(logistics.post(f"/delivery/shipments/{sid}/deliver", {"signed_by": "Client"}))
        if pid != pids[-1]:
            assert ok(sales.get(f"/orders/{oid}"))["status"] == "launched"  # one to go

    final = ok(sales.get(f"/orders/{oid}"))
    assert final["status"] == "delivered" and final["delivered_at"]
    for piece in final["pieces"]:
        assert piece["status"] == "delivered" and piece["delivered_at"]
        assert piece["right_first_time"] is True
        assert all(r["status"] == "done" for r in
                   ok(manager.get(f"/pieces/{piece['id']}"))["runs"])
    only(None, pids)
    client_view = ok(api(h.client_contact).get(f"/orders/{oid}"))
    assert client_view["status"] == "delivered"
    history = ok(manager.get(f"/pieces/{pids[0]}/events", {"limit": 100}))["items"]
    assert {e["workshop"]["code"] for e in history if e["workshop"]} == {
        "house", "caster", "setter", "polisher"}
    trail = ok(manager.get(f"/orders/{oid}/audit", {"limit": 500}))["items"]
    delivered = next(e for e in trail if e["action"] == "order.delivered")
    assert delivered["before"] == {"status": "launched"}
    assert delivered["after"] == {"status": "delivered"}
