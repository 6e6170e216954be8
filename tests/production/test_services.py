"""Production services: the piece state machine, transfers, idempotency, scoping, route changes."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.orders.models import OrderStatus
from etabli.orders.services import order_launch
from etabli.production.models import (
    EventKind,
    Piece,
    PieceStatus,
    StepRun,
    StepStatus,
    TrackingEvent,
    Transfer,
    TransferStatus,
)
from etabli.production.routing import order_route_step_skip
from etabli.production.services import (
    clean_weight,
    piece_complete,
    piece_hold,
    piece_note,
    piece_receive,
    piece_release,
    piece_rework,
    piece_route_reorder,
    piece_start,
    pieces_send,
    step_run_add,
    step_run_assign,
    step_run_skip,
    transfer_receive,
)
from etabli.production.state import derive_piece_state
from etabli.workshops.models import StepKind
from etabli.workshops.services import workshop_update
from tests.design.support import ready_to_leave, written_acceptance
from tests.factories import CASTER_SKILLS, make_user, make_workshop

pytestmark = pytest.mark.django_db

S = StepStatus


def fresh(piece: Piece) -> Piece:
    return Piece.objects.get(pk=piece.pk)


def run_of(piece: Piece) -> StepRun:
    """The piece's open step run, straight from the database."""
    return fresh(piece).runs.get(status__in=[S.READY, S.IN_TRANSIT, S.RECEIVED, S.IN_PROGRESS,
                                             S.ON_HOLD])


def at(h, step: str, *, status: str = S.READY, **launch) -> Piece:
    """A launched piece whose open step is `step`, with that step in `status`.

    READY: not yet sent (still where the previous step ended); IN_TRANSIT: sent; RECEIVED:
    arrived; IN_PROGRESS: started.
    """
    piece = h.walk(h.launched_piece(**launch), to=step)
    wanted = [S.READY, S.IN_TRANSIT, S.RECEIVED, S.IN_PROGRESS]
    while run_of(piece).status != status:
        current = run_of(piece).status
        if wanted.index(current) > wanted.index(status):
            raise AssertionError(f"cannot stop {step} at {status}")
        h.advance(piece)
    return fresh(piece)


def assert_consistent(piece: Piece) -> None:
    """The cached state equals what the events say (see test_state_properties)."""
    piece = fresh(piece)
    derived = derive_piece_state(piece)
    assert (piece.status, piece.current_run_id, piece.location_id, piece.transit_to_id,
            piece.rework_count) == (derived.status, derived.current_run_id,
                                    derived.location_id, derived.transit_to_id,
                                    derived.rework_count)
    assert dict(piece.runs.values_list("id", "status")) == derived.run_status


# ---------------------------------------------------------------------------------------------
# the state machine: allowed transitions


def test_design_at_the_house_starts_without_a_transfer(house_setup):
    h = house_setup
    piece = h.launched_piece()
    event = piece_start(actor=h.designer, piece_id=piece.pk, comment="CAD round 1")
    assert event.kind == EventKind.STARTED and event.workshop == h.house
    run = run_of(piece)
    assert run.step == StepKind.DESIGN and run.status == S.IN_PROGRESS
    assert run.actual_start == event.occurred_at
    assert fresh(piece).status == PieceStatus.IN_PROGRESS
    ready_to_leave(h, piece)  # the client approves the design (design's gate)
    event = piece_complete(actor=h.designer, piece_id=piece.pk, weight_g="0.5")
    assert event.kind == EventKind.COMPLETED and event.weight_g == Decimal("0.500")
    assert event.data == {"next_run": run_of(piece).pk}
    nxt = run_of(piece)
    assert nxt.step == StepKind.PROTOTYPING and nxt.status == S.READY
    piece = fresh(piece)
    assert piece.status == PieceStatus.READY
    assert piece.current_step == StepKind.PROTOTYPING and piece.current_workshop == h.caster
    assert piece.location == h.house  # still at the house until it is sent
    assert StepRun.objects.get(piece=piece, step=StepKind.DESIGN).actual_finish == \
        event.occurred_at
    assert_consistent(piece)


def test_send_receive_start_complete_at_an_outside_workshop(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING)
    slip = pieces_send(actor=h.designer, piece_ids=[piece.pk], to_workshop_id=h.caster.pk)
    piece = fresh(piece)
    assert piece.status == PieceStatus.IN_TRANSIT
    assert piece.location is None and piece.transit_to == h.caster
    assert (slip.from_workshop, slip.to_workshop, slip.status) == (h.house, h.caster,
                                                                   TransferStatus.SENT)
    assert slip.sent_by == h.designer
    event = piece_receive(actor=h.caster_member, piece_id=piece.pk)
    assert event.transfer == slip and event.workshop == h.caster
    piece = fresh(piece)
    assert piece.status == PieceStatus.RECEIVED
    assert piece.location == h.caster and piece.transit_to is None
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    ready_to_leave(h, piece)  # the prototype is recorded (design's gate)
    piece_complete(actor=h.caster_member, piece_id=piece.pk)
    # manufacturing is at the caster too: no transfer, start right away
    assert run_of(piece).step == StepKind.MANUFACTURING
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    assert run_of(piece).status == S.IN_PROGRESS
    assert_consistent(piece)


# ---------------------------------------------------------------------------------------------
# refused transitions


def _refused(call, fragment: str, status: str | None = None):
    with pytest.raises(TransitionNotAllowed) as exc:
        call()
    assert fragment in exc.value.message, exc.value.message
    assert exc.value.status == 409
    if status is not None:
        assert exc.value.details["step_status"] == status
    return exc.value


def test_receive_when_not_sent(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING)
    err = _refused(lambda: piece_receive(actor=h.manager, piece_id=piece.pk),
                   "The piece has not been sent: there is nothing to receive.", S.READY)
    assert err.details["event"] == EventKind.RECEIVED
    assert run_of(piece).status == S.READY


def test_start_when_in_transit(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_TRANSIT)
    _refused(lambda: piece_start(actor=h.manager, piece_id=piece.pk),
             "The piece is still in transit: receive it first.", S.IN_TRANSIT)


def test_start_when_the_piece_is_not_there_yet(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING)
    _refused(lambda: piece_start(actor=h.manager, piece_id=piece.pk),
             "The piece is not at Fonderie Dupont yet: send it there first.", S.READY)


def test_complete_before_start(house_setup):
    h = house_setup
    piece = h.launched_piece()
    _refused(lambda: piece_complete(actor=h.manager, piece_id=piece.pk),
             "The step has not been started: start it first.", S.READY)
    piece = at(h, StepKind.PROTOTYPING, status=S.RECEIVED)
    _refused(lambda: piece_complete(actor=h.caster_member, piece_id=piece.pk),
             "The step has not been started: start it first.", S.RECEIVED)


def test_send_refusals(house_setup):
    h = house_setup
    piece = h.launched_piece()
    _refused(lambda: pieces_send(actor=h.manager, piece_ids=[piece.pk]),
             "is already at The house: start the step there.")
    piece_start(actor=h.designer, piece_id=piece.pk)
    _refused(lambda: pieces_send(actor=h.manager, piece_ids=[piece.pk]),
             "The step is in progress: complete it before sending.", S.IN_PROGRESS)
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_TRANSIT)
    _refused(lambda: pieces_send(actor=h.manager, piece_ids=[piece.pk]),
             "The piece is already on its way.", S.IN_TRANSIT)
    h.advance(piece)  # received
    _refused(lambda: pieces_send(actor=h.manager, piece_ids=[piece.pk]),
             "The piece is already at the workshop of its current step.", S.RECEIVED)
    assert Transfer.objects.count() == 1


def test_receive_and_start_twice(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.RECEIVED)
    _refused(lambda: piece_receive(actor=h.manager, piece_id=piece.pk),
             "The piece has already been received.", S.RECEIVED)
    # a workshop member scanning twice hears that it has already arrived
    _refused(lambda: piece_receive(actor=h.caster_member, piece_id=piece.pk),
             "The piece has already been received.", S.RECEIVED)
    piece_start(actor=h.caster_member, piece_id=piece.pk)
    _refused(lambda: piece_start(actor=h.caster_member, piece_id=piece.pk),
             "The step is already in progress.", S.IN_PROGRESS)
    _refused(lambda: piece_receive(actor=h.manager, piece_id=piece.pk),
             "The piece has already been received.", S.IN_PROGRESS)


@pytest.mark.parametrize("status", [S.READY, S.RECEIVED, S.IN_PROGRESS])
def test_hold_and_release_return_to_the_previous_status(house_setup, status):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=status)
    run = run_of(piece)
    held = piece_hold(actor=h.manager, piece_id=piece.pk, reason="material_unavailable",
                      comment="waiting for wax")
    assert held.kind == EventKind.HELD and held.reason == "material_unavailable"
    run.refresh_from_db()
    assert run.status == S.ON_HOLD and run.held_from == status
    assert fresh(piece).status == PieceStatus.ON_HOLD
    assert_consistent(piece)

    _refused(lambda: piece_hold(actor=h.manager, piece_id=piece.pk, reason="capacity"),
             "The piece is already on hold.", S.ON_HOLD)
    for call in (lambda: piece_start(actor=h.manager, piece_id=piece.pk),
                 lambda: piece_complete(actor=h.manager, piece_id=piece.pk),
                 lambda: pieces_send(actor=h.manager, piece_ids=[piece.pk])):
        _refused(call, "The piece is on hold: release it first.", S.ON_HOLD)

    piece_release(actor=h.manager, piece_id=piece.pk, comment="wax arrived")
    run.refresh_from_db()
    assert run.status == status and run.held_from == ""
    assert fresh(piece).status == status  # piece statuses share the step status values
    assert_consistent(piece)


def test_release_when_not_held(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_PROGRESS)
    _refused(lambda: piece_release(actor=h.manager, piece_id=piece.pk),
             "The piece is not on hold.", S.IN_PROGRESS)
    piece = h.launched_piece()
    _refused(lambda: piece_release(actor=h.manager, piece_id=piece.pk),
             "A 'released' event is not allowed while the step is 'Ready'.", S.READY)


def test_hold_in_transit_refused(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_TRANSIT)
    _refused(lambda: piece_hold(actor=h.manager, piece_id=piece.pk, reason="quality_stop"),
             "A piece in transit cannot be held: receive it first.", S.IN_TRANSIT)


def test_hold_reason_validation(house_setup):
    h = house_setup
    piece = h.launched_piece()
    with pytest.raises(ValidationFailed, match="Unknown hold reason 'lunch'") as exc:
        piece_hold(actor=h.manager, piece_id=piece.pk, reason="lunch")
    assert exc.value.details == {"field": "reason"}
    with pytest.raises(ValidationFailed, match="Say why the piece is held") as exc:
        piece_hold(actor=h.manager, piece_id=piece.pk, reason="other", comment=" ")
    assert exc.value.details == {"field": "comment"}
    piece_hold(actor=h.manager, piece_id=piece.pk, reason="other", comment="Client on holiday")
    assert run_of(piece).status == S.ON_HOLD


def test_actions_on_a_delivered_piece_are_refused(house_setup):
    h = house_setup
    piece = h.walk(h.launched_piece())
    for call in (lambda: piece_start(actor=h.manager, piece_id=piece.pk),
                 lambda: piece_complete(actor=h.manager, piece_id=piece.pk),
                 lambda: piece_hold(actor=h.manager, piece_id=piece.pk, reason="capacity"),
                 lambda: piece_receive(actor=h.manager, piece_id=piece.pk),
                 lambda: pieces_send(actor=h.manager, piece_ids=[piece.pk])):
        _refused(call, "The piece has no open step: it has been delivered.")
    # a note can still be attached, to the last step
    note = piece_note(actor=h.manager, piece_id=piece.pk, comment="Client sent a thank-you")
    assert note.step_run.step == StepKind.DELIVERY
    assert_consistent(piece)


def test_note_needs_a_comment_or_a_weight(house_setup):
    h = house_setup
    piece = h.launched_piece()
    with pytest.raises(ValidationFailed, match="A note needs a comment or a weight"):
        piece_note(actor=h.designer, piece_id=piece.pk, comment="  ")
    event = piece_note(actor=h.designer, piece_id=piece.pk, comment="", weight_g="3.2")
    assert event.kind == EventKind.NOTE and event.weight_g == Decimal("3.200")
    assert run_of(piece).status == S.READY  # a note changes no state


# ---------------------------------------------------------------------------------------------
# rework


def test_rework_sends_the_piece_back_and_replans(house_setup):
    h = house_setup
    piece = at(h, StepKind.MANUFACTURING, status=S.IN_PROGRESS)
    runs_before = list(piece.runs.order_by("position"))
    design = runs_before[1]
    manufacturing = run_of(piece)
    event = piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=design.pk,
                         comment="Prongs too thin for the stone")
    assert event.kind == EventKind.REWORK and event.step_run_id == manufacturing.pk
    assert event.data["target_run"] == design.pk
    assert event.data["redo"] == ["design", "prototyping", "manufacturing"]

    piece = fresh(piece)
    assert piece.rework_count == 1 and not piece.right_first_time
    runs = list(piece.runs.order_by("position"))
    assert len(runs) == len(runs_before) + 3
    assert [(r.step, r.status, r.attempt) for r in runs] == [
        ("order_receipt", S.DONE, 1), ("design", S.DONE, 1), ("prototyping", S.DONE, 1),
        ("manufacturing", S.DONE, 1),
        ("design", S.READY, 2), ("prototyping", S.PENDING, 2), ("manufacturing", S.PENDING, 2),
        ("setting", S.PENDING, 1), ("finishing", S.PENDING, 1), ("delivery", S.PENDING, 1)]
    assert [r.position for r in runs] == list(range(1, 11))
    manufacturing.refresh_from_db()
    assert manufacturing.reworked and manufacturing.actual_finish == event.occurred_at
    # the redo is planned from today, one step after the other
    today = timezone.localdate()
    assert runs[4].planned_start == today
    for prev, nxt in zip(runs[4:], runs[5:], strict=False):
        assert nxt.planned_start == prev.planned_due
    # the piece is still at the caster and must go back to the house for design
    assert piece.status == PieceStatus.READY and piece.current_run_id == runs[4].pk
    assert piece.location == h.caster and piece.current_workshop == h.house
    assert_consistent(piece)
    audit = AuditEntry.objects.get(action="piece.rework", piece_id=piece.pk)
    assert audit.before["rework_count"] == 0 and audit.after["rework_count"] == 1
    assert audit.after["back_to"] == "design"

    # the redone steps are walked like any other and the piece is delivered in the end
    h.walk(piece)
    piece = fresh(piece)
    assert piece.status == PieceStatus.DELIVERED and piece.rework_count == 1
    assert_consistent(piece)


def test_rework_of_the_current_step_alone(house_setup):
    h = house_setup
    piece = at(h, StepKind.SETTING, status=S.RECEIVED)
    setting = run_of(piece)
    piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=setting.pk,
                 comment="Wrong stone received, redo with the right one")
    redo = run_of(piece)
    assert (redo.step, redo.attempt, redo.status, redo.workshop) == (
        StepKind.SETTING, 2, S.READY, h.setter)
    # already at the setter: start directly
    piece_start(actor=h.setter_member, piece_id=piece.pk)
    assert_consistent(piece)


def test_rework_rules(house_setup):
    h = house_setup
    piece = at(h, StepKind.MANUFACTURING, status=S.IN_PROGRESS)
    runs = {r.step: r for r in piece.runs.all()}

    with pytest.raises(ValidationFailed, match="Say what must be redone and why") as exc:
        piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=runs["design"].pk,
                     comment="  ")
    assert exc.value.details == {"field": "comment"}
    with pytest.raises(ValidationFailed, match="only be sent back to a step it has already done"):
        piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=runs["setting"].pk,
                     comment="x")
    with pytest.raises(ValidationFailed, match="Order receipt cannot be redone"):
        piece_rework(actor=h.manager, piece_id=piece.pk,
                     target_run_id=runs["order_receipt"].pk, comment="x")
    other = h.launched_piece()
    with pytest.raises(NotFound, match="is not part of this piece's route"):
        piece_rework(actor=h.manager, piece_id=piece.pk,
                     target_run_id=other.runs.get(step="design").pk, comment="x")
    assert fresh(piece).rework_count == 0

    # back to prototyping; then, on the redo, the steps before that rework are out of reach
    piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=runs["prototyping"].pk,
                 comment="Porosity")
    h.walk(piece, to=StepKind.MANUFACTURING)
    h.advance(piece)  # start manufacturing again (same workshop)
    assert run_of(piece).status == S.IN_PROGRESS and run_of(piece).attempt == 2
    for old in ("design", "prototyping", "manufacturing"):
        with pytest.raises(ValidationFailed, match="done since its last rework"):
            piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=runs[old].pk,
                         comment="again")
    redone_proto = piece.runs.get(step="prototyping", attempt=2)
    piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=redone_proto.pk,
                 comment="Porosity again")
    assert fresh(piece).rework_count == 2
    assert_consistent(piece)


def test_rework_refused_before_the_step_is_begun_or_in_transit(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING)
    design = piece.runs.get(step="design")
    _refused(lambda: piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=design.pk,
                                  comment="x"),
             "A 'rework' event is not allowed while the step is 'Ready'.", S.READY)
    h.advance(piece)
    _refused(lambda: piece_rework(actor=h.manager, piece_id=piece.pk, target_run_id=design.pk,
                                  comment="x"),
             "A 'rework' event is not allowed while the step is 'In transit'.", S.IN_TRANSIT)


def test_rework_from_hold(house_setup):
    h = house_setup
    piece = at(h, StepKind.FINISHING, status=S.IN_PROGRESS)
    piece_hold(actor=h.polisher_member, piece_id=piece.pk, reason="quality_stop",
               comment="Scratch on the shank")
    setting = piece.runs.get(step="setting")
    # quality may send back; the polisher may not
    with pytest.raises(PermissionDenied, match="cannot record 'Sent back for rework'"):
        piece_rework(actor=h.polisher_member, piece_id=piece.pk, target_run_id=setting.pk,
                     comment="x")
    piece_rework(actor=h.quality, piece_id=piece.pk, target_run_id=setting.pk,
                 comment="Stone loose after polishing")
    finishing = piece.runs.get(step="finishing", attempt=1)
    assert finishing.status == S.DONE and finishing.held_from == "" and finishing.reworked
    assert run_of(piece).step == StepKind.SETTING
    assert_consistent(piece)


# ---------------------------------------------------------------------------------------------
# transfers


def test_transfer_slips_are_numbered_in_sequence(house_setup):
    h = house_setup
    a = at(h, StepKind.PROTOTYPING)
    b = at(h, StepKind.PROTOTYPING)
    first = pieces_send(actor=h.designer, piece_ids=[a.pk])
    second = pieces_send(actor=h.designer, piece_ids=[b.pk])
    year = timezone.localdate().year
    for slip in (first, second):
        assert re.fullmatch(rf"TS-{year}-\d{{6}}", slip.slip_number)
    n1, n2 = (int(s.slip_number.rsplit("-", 1)[1]) for s in (first, second))
    assert n2 == n1 + 1


def test_multi_piece_slip_and_weight_check(house_setup):
    h = house_setup
    order = h.launched_order(quantity=3)
    pieces = list(order.pieces.order_by("serial"))
    for p in pieces:
        h.walk(p, to=StepKind.PROTOTYPING)
    ids = [p.pk for p in pieces]
    slip = pieces_send(actor=h.designer, piece_ids=ids, comment="Three rings",
                       weights_g={ids[0]: "10.000", ids[1]: "10.000", ids[2]: Decimal("10")})
    assert slip.lines.count() == 3
    assert set(slip.lines.values_list("weight_sent_g", flat=True)) == {Decimal("10.000")}
    assert TrackingEvent.objects.filter(transfer=slip, kind=EventKind.SENT).count() == 3
    assert all(fresh(p).transit_to == h.caster for p in pieces)

    # within tolerance (0.050 g) is fine; beyond it is flagged
    ev = piece_receive(actor=h.caster_member, piece_id=ids[0], weight_g="10.050")
    assert ev.data["weight_flagged"] is False
    slip.refresh_from_db()
    assert slip.status == TransferStatus.PARTIAL and slip.received_at is None
    piece_receive(actor=h.caster_member, piece_id=ids[1], weight_g="9.949")
    slip = transfer_receive(actor=h.caster_member, transfer_id=slip.pk)  # the last one, unweighed
    assert slip.status == TransferStatus.RECEIVED and slip.received_at is not None
    lines = {ln.piece_id: ln for ln in slip.lines.all()}
    assert [lines[i].weight_flagged for i in ids] == [False, True, False]
    assert lines[ids[1]].weight_received_g == Decimal("9.949")
    assert lines[ids[2]].weight_received_g is None
    assert all(ln.received_by == h.caster_member for ln in lines.values())
    assert all(fresh(p).location == h.caster for p in pieces)

    with pytest.raises(Conflict, match=f"Slip {slip.slip_number} has already been received"):
        transfer_receive(actor=h.caster_member, transfer_id=slip.pk)


def test_transfer_receive_with_weights(house_setup):
    h = house_setup
    order = h.launched_order(quantity=2)
    a, b = order.pieces.order_by("serial")
    for p in (a, b):
        h.walk(p, to=StepKind.PROTOTYPING)
    slip = pieces_send(actor=h.manager, piece_ids=[a.pk, b.pk],
                       weights_g={a.pk: "5.000", b.pk: "5.000"})
    with pytest.raises(ValidationFailed, match="not waiting on this slip"):
        transfer_receive(actor=h.caster_member, transfer_id=slip.pk, weights_g={10**9: "1"})
    with pytest.raises(NotFound, match="No transfer slip"):
        transfer_receive(actor=h.setter_member, transfer_id=slip.pk)
    slip = transfer_receive(actor=h.caster_member, transfer_id=slip.pk,
                            weights_g={a.pk: "5.040", b.pk: "5.060"})
    flagged = dict(slip.lines.values_list("piece_id", "weight_flagged"))
    assert flagged == {a.pk: False, b.pk: True}


def test_send_guards(house_setup):
    h = house_setup
    a = at(h, StepKind.PROTOTYPING)
    with pytest.raises(ValidationFailed, match="Choose at least one piece"):
        pieces_send(actor=h.manager, piece_ids=[])
    with pytest.raises(ValidationFailed, match="A piece is listed twice"):
        pieces_send(actor=h.manager, piece_ids=[a.pk, a.pk])
    with pytest.raises(ValidationFailed, match="At most 200 pieces per slip"):
        pieces_send(actor=h.manager, piece_ids=list(range(1, 202)))
    with pytest.raises(ValidationFailed, match="Weights are given for pieces not on the slip"):
        pieces_send(actor=h.manager, piece_ids=[a.pk], weights_g={a.pk + 1: "1"})
    with pytest.raises(ValidationFailed, match="done at Fonderie Dupont") as exc:
        pieces_send(actor=h.manager, piece_ids=[a.pk], to_workshop_id=h.setter.pk)
    assert exc.value.details == {"field": "to_workshop_id", "expected": "caster"}
    with pytest.raises(NotFound, match="No piece with id"):
        pieces_send(actor=h.manager, piece_ids=[10**9])

    # two pieces whose next steps are at two different places cannot share a slip
    caster2 = make_workshop("caster2", skills=CASTER_SKILLS)
    b = at(h, StepKind.PROTOTYPING)
    step_run_assign(actor=h.manager, run_id=run_of(b).pk, workshop_id=caster2.pk)
    with pytest.raises(ValidationFailed, match="One slip goes from one place to one place"):
        pieces_send(actor=h.manager, piece_ids=[a.pk, b.pk])
    assert not Transfer.objects.exists()
    assert run_of(a).status == S.READY and run_of(b).status == S.READY


def test_send_by_client_ref_is_idempotent(house_setup):
    h = house_setup
    a = at(h, StepKind.PROTOTYPING)
    b = at(h, StepKind.PROTOTYPING)
    slip = pieces_send(actor=h.designer, piece_ids=[a.pk], client_ref="scan-42")
    assert slip.replayed is False
    again = pieces_send(actor=h.designer, piece_ids=[a.pk], client_ref="scan-42")
    assert again.pk == slip.pk and again.replayed is True
    assert Transfer.objects.count() == 1
    with pytest.raises(Conflict, match="already used for another slip"):
        pieces_send(actor=h.designer, piece_ids=[b.pk], client_ref="scan-42")
    assert run_of(b).status == S.READY


# ---------------------------------------------------------------------------------------------
# idempotency of tracking events


def test_same_client_event_id_twice_records_one_event(house_setup):
    h = house_setup
    piece = h.launched_piece()
    first = piece_start(actor=h.designer, piece_id=piece.pk, client_event_id="tap-1")
    second = piece_start(actor=h.designer, piece_id=piece.pk, client_event_id="tap-1")
    assert second.pk == first.pk
    assert first.replayed is False and second.replayed is True
    assert TrackingEvent.objects.filter(client_event_id="tap-1").count() == 1
    assert piece.events.filter(kind=EventKind.STARTED, step_run__step="design").count() == 1
    # without the id, the same action is refused as a real second start
    _refused(lambda: piece_start(actor=h.designer, piece_id=piece.pk),
             "The step is already in progress.")


def test_client_event_id_reused_for_another_event_is_a_conflict(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_TRANSIT)
    event = piece_receive(actor=h.caster_member, piece_id=piece.pk, client_event_id="e-1")
    with pytest.raises(Conflict, match="already used for a different event") as exc:
        piece_start(actor=h.caster_member, piece_id=piece.pk, client_event_id="e-1")
    assert exc.value.details == {"client_event_id": "e-1", "event_id": event.pk}
    other = h.launched_piece()
    with pytest.raises(Conflict, match="already used for a different event"):
        piece_start(actor=h.designer, piece_id=other.pk, client_event_id="e-1")
    assert run_of(piece).status == S.RECEIVED and run_of(other).status == S.READY
    with pytest.raises(ValidationFailed, match="1 to 64 characters"):
        piece_start(actor=h.caster_member, piece_id=piece.pk, client_event_id="x" * 65)


@pytest.mark.parametrize("service,kwargs", [
    (piece_complete, {}),
    (piece_hold, {"reason": "capacity"}),
    (piece_note, {"comment": "polished"}),
])
def test_replays_of_other_events(house_setup, service, kwargs):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_PROGRESS)
    ready_to_leave(h, piece)  # the prototype is recorded (design's gate)
    first = service(actor=h.caster_member, piece_id=piece.pk, client_event_id="k", **kwargs)
    second = service(actor=h.caster_member, piece_id=piece.pk, client_event_id="k", **kwargs)
    assert first.pk == second.pk and second.replayed
    assert TrackingEvent.objects.filter(client_event_id="k").count() == 1
    assert_consistent(piece)


# ---------------------------------------------------------------------------------------------
# workshop scoping and who may record what


def test_a_workshop_member_never_reaches_another_workshops_piece(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.RECEIVED)  # at the caster
    for call in (lambda: piece_start(actor=h.setter_member, piece_id=piece.pk),
                 lambda: piece_complete(actor=h.setter_member, piece_id=piece.pk),
                 lambda: piece_note(actor=h.setter_member, piece_id=piece.pk, comment="x"),
                 lambda: piece_hold(actor=h.setter_member, piece_id=piece.pk,
                                    reason="capacity"),
                 lambda: piece_receive(actor=h.setter_member, piece_id=piece.pk),
                 lambda: pieces_send(actor=h.setter_member, piece_ids=[piece.pk])):
        with pytest.raises(NotFound, match=f"No piece with id {piece.pk}") as exc:
            call()
        assert exc.value.status == 404
    assert run_of(piece).status == S.RECEIVED


def test_a_piece_on_its_way_is_visible_but_not_workable_before_receipt(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_TRANSIT)
    assert Piece.objects.visible_to(h.caster_member).filter(pk=piece.pk).exists()
    for call in (lambda: piece_start(actor=h.caster_member, piece_id=piece.pk),
                 lambda: piece_hold(actor=h.caster_member, piece_id=piece.pk,
                                    reason="capacity")):
        with pytest.raises(PermissionDenied, match="not at your workshop yet"):
            call()
    piece_note(actor=h.caster_member, piece_id=piece.pk, comment="Expected tomorrow")


def test_only_the_destination_receives(house_setup):
    h = house_setup
    piece = at(h, StepKind.SETTING, status=S.IN_TRANSIT)  # from the caster to the setter
    with pytest.raises(NotFound):  # it left the caster: the caster no longer sees it
        piece_receive(actor=h.caster_member, piece_id=piece.pk)
    two_shops = make_user("workshop", workshops=[h.caster, h.polisher])
    with pytest.raises(NotFound):
        piece_receive(actor=two_shops, piece_id=piece.pk)
    piece_receive(actor=h.setter_member, piece_id=piece.pk)


def test_workshop_member_cannot_send_a_piece_that_is_not_at_their_workshop(house_setup):
    h = house_setup
    piece = at(h, StepKind.SETTING, status=S.IN_TRANSIT)
    with pytest.raises(PermissionDenied, match="not at your workshop yet"):
        pieces_send(actor=h.setter_member, piece_ids=[piece.pk])


@pytest.mark.parametrize("role_attr", ["caster_member", "designer"])
def test_roles_without_release_or_rework(house_setup, role_attr):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.RECEIVED)
    piece_hold(actor=h.manager, piece_id=piece.pk, reason="capacity")
    actor = getattr(h, role_attr)
    with pytest.raises(PermissionDenied, match="cannot record 'Released'"):
        piece_release(actor=actor, piece_id=piece.pk)
    design = piece.runs.get(step="design")
    if role_attr != "designer":  # a designer sends a prototype back to design (tests/design)
        with pytest.raises(PermissionDenied, match="cannot record 'Sent back for rework'"):
            piece_rework(actor=actor, piece_id=piece.pk, target_run_id=design.pk, comment="x")
    # logistics does not even see a piece at an outside workshop
    with pytest.raises(NotFound):
        piece_release(actor=h.logistics, piece_id=piece.pk)
    assert run_of(piece).status == S.ON_HOLD


def test_sales_may_only_hold_and_note(house_setup):
    h = house_setup
    piece = h.launched_piece()
    with pytest.raises(PermissionDenied,
                       match=re.escape("Your role (Sales / order admin) cannot record 'Started'")):
        piece_start(actor=h.sales, piece_id=piece.pk)
    with pytest.raises(PermissionDenied, match="cannot record 'Sent'"):
        pieces_send(actor=h.sales, piece_ids=[piece.pk])
    piece_note(actor=h.sales, piece_id=piece.pk, comment="Client called")
    piece_hold(actor=h.sales, piece_id=piece.pk, reason="client_change_request")
    with pytest.raises(PermissionDenied, match="cannot record 'Released'"):
        piece_release(actor=h.sales, piece_id=piece.pk)


def test_client_contact_may_record_nothing(house_setup):
    h = house_setup
    piece = h.launched_piece()
    with pytest.raises(PermissionDenied, match="Client contact"):
        piece_note(actor=h.client_contact, piece_id=piece.pk, comment="hello")
    with pytest.raises(NotFound):
        piece_note(actor=h.other_client_contact, piece_id=piece.pk, comment="hello")


# ---------------------------------------------------------------------------------------------
# who sees which piece


def _seers(h, piece: Piece) -> set[str]:
    names = ["admin", "manager", "sales", "designer", "quality", "logistics", "caster_member",
             "setter_member", "polisher_member", "client_contact", "other_client_contact"]
    return {n for n in names
            if Piece.objects.visible_to(getattr(h, n)).filter(pk=piece.pk).exists()}


HOUSE_WIDE = {"admin", "manager", "sales"}


def test_piece_visibility_along_the_route(house_setup):
    h = house_setup
    piece = h.launched_piece()
    seen = HOUSE_WIDE | {"client_contact"}
    # logistics sees what waits at the house (to dispatch) and what comes back to it
    assert _seers(h, piece) == seen | {"designer", "logistics"}            # design, house
    h.advance(piece)
    assert _seers(h, piece) == seen | {"designer"}                         # design at work
    h.walk(piece, to=StepKind.PROTOTYPING)
    assert _seers(h, piece) == seen | {"designer", "logistics"}            # to dispatch
    h.advance(piece)
    assert _seers(h, piece) == seen | {"designer", "caster_member"}        # on its way
    h.walk(piece, to=StepKind.MANUFACTURING)
    assert _seers(h, piece) == seen | {"caster_member"}
    h.walk(piece, to=StepKind.SETTING)
    assert _seers(h, piece) == seen | {"caster_member"}                    # ready to leave
    h.advance(piece)
    assert _seers(h, piece) == seen | {"setter_member"}                    # left the caster
    h.walk(piece, to=StepKind.FINISHING, arrive=True)
    assert _seers(h, piece) == seen | {"quality", "polisher_member"}
    h.walk(piece, to=StepKind.DELIVERY)
    h.advance(piece)
    assert _seers(h, piece) == seen | {"logistics"}                        # coming home
    h.walk(piece)
    assert _seers(h, piece) == seen | {"logistics"}                        # delivered


def test_clients_see_only_their_own_pieces(house_setup):
    h = house_setup
    mine = h.launched_piece()
    theirs = h.launched_order(client=h.other_client).pieces.get()
    assert set(Piece.objects.visible_to(h.client_contact)) == {mine}
    assert set(Piece.objects.visible_to(h.other_client_contact)) == {theirs}
    assert set(Piece.objects.visible_to(h.manager)) == {mine, theirs}


def test_inactive_and_anonymous_users_see_nothing(house_setup):
    h = house_setup
    piece = h.launched_piece()
    h.designer.is_active = False
    h.designer.save()
    assert not Piece.objects.visible_to(h.designer).exists()
    assert not Piece.objects.visible_to(AnonymousUser()).exists()
    with pytest.raises(NotFound):
        piece_start(actor=h.designer, piece_id=piece.pk)


def test_events_and_slips_follow_piece_and_workshop_scoping(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.RECEIVED)
    slip = Transfer.objects.get()
    assert TrackingEvent.objects.visible_to(h.caster_member).filter(piece=piece).count() == \
        piece.events.count()
    assert not TrackingEvent.objects.visible_to(h.setter_member).exists()
    assert list(Transfer.objects.visible_to(h.caster_member)) == [slip]
    assert not Transfer.objects.visible_to(h.setter_member).exists()
    assert list(Transfer.objects.visible_to(h.logistics)) == [slip]
    assert list(Transfer.objects.visible_to(h.designer)) == [slip]  # it left the house
    assert not Transfer.objects.visible_to(h.client_contact).exists()


# ---------------------------------------------------------------------------------------------
# skipping steps


def _run(piece: Piece, step: str) -> StepRun:
    return piece.runs.get(step=step)


def test_prototyping_skip_reasons(house_setup):
    h = house_setup
    piece = h.launched_piece()
    proto = _run(piece, StepKind.PROTOTYPING)
    with pytest.raises(ValidationFailed, match="Prototyping may be skipped only for") as exc:
        step_run_skip(actor=h.manager, run_id=proto.pk, reason="other", comment="No time")
    assert exc.value.details == {"field": "reason"}
    # the client's acceptance of the risk is a document attached to the order, not a reference
    with pytest.raises(ValidationFailed, match="Attach the client's written acceptance") as exc:
        step_run_skip(actor=h.manager, run_id=proto.pk, reason="client_risk_acceptance",
                      reference="Waiver W-2024-17 signed 3 May")
    assert exc.value.details == {"field": "document_id"}
    # a document of another order is not this order's acceptance
    elsewhere = written_acceptance(h, h.launched_order())
    with pytest.raises(NotFound, match="No document with id") as exc:
        step_run_skip(actor=h.manager, run_id=proto.pk, reason="client_risk_acceptance",
                      document_id=elsewhere.pk)
    assert exc.value.details == {"field": "document_id"}
    with pytest.raises(ValidationFailed, match="Unknown skip reason 'bored'"):
        step_run_skip(actor=h.manager, run_id=proto.pk, reason="bored", comment="x")
    waiver = written_acceptance(h, piece.order)
    run = step_run_skip(actor=h.manager, run_id=proto.pk, reason="client_risk_acceptance",
                        reference="Waiver W-2024-17 signed 3 May", document_id=waiver.pk)
    assert run.status == S.SKIPPED and run.skip_reference == "Waiver W-2024-17 signed 3 May"
    assert run.skip_document == waiver
    entry = AuditEntry.objects.get(action="step.skip", piece_id=piece.pk)
    assert entry.before["status"] == "pending" and entry.after["status"] == "skipped"
    assert entry.after["skip_document"] == waiver.pk


@pytest.mark.parametrize("reason", ["exact_reproduction", "simple_design"])
def test_prototyping_may_be_skipped_for_the_two_other_reasons_without_comment(house_setup,
                                                                              reason):
    h = house_setup
    piece = h.launched_piece()
    run = step_run_skip(actor=h.manager, run_id=_run(piece, StepKind.PROTOTYPING).pk,
                        reason=reason)
    assert run.status == S.SKIPPED and run.skip_reason == reason
    h.walk(piece, to=StepKind.MANUFACTURING)  # design is followed by manufacturing
    assert run_of(piece).step == StepKind.MANUFACTURING
    assert_consistent(piece)


def test_delivery_and_order_receipt_are_never_skipped(house_setup):
    h = house_setup
    piece = h.launched_piece()
    with pytest.raises(ValidationFailed, match="The Delivery step cannot be skipped"):
        step_run_skip(actor=h.manager, run_id=_run(piece, StepKind.DELIVERY).pk,
                      reason="other", comment="Client collects")
    with pytest.raises(TransitionNotAllowed, match="Only a step not yet begun can be skipped"):
        step_run_skip(actor=h.manager, run_id=_run(piece, StepKind.ORDER_RECEIPT).pk,
                      reason="other", comment="x")
    order = h.draft_order()
    for step in (StepKind.ORDER_RECEIPT, StepKind.DELIVERY):
        rs = order.route.get(step=step)
        with pytest.raises(ValidationFailed, match="step cannot be skipped") as exc:
            order_route_step_skip(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                                  reason="other", comment="x")
        assert exc.value.details == {"field": "step"}


def test_other_steps_need_a_comment_to_be_skipped(house_setup):
    h = house_setup
    piece = h.launched_piece()
    setting = _run(piece, StepKind.SETTING)
    with pytest.raises(ValidationFailed, match="Say why this step is skipped") as exc:
        step_run_skip(actor=h.manager, run_id=setting.pk, reason="simple_design")
    assert exc.value.details == {"field": "comment"}
    run = step_run_skip(actor=h.manager, run_id=setting.pk, reason="other",
                        comment="No stones on this model")
    assert run.status == S.SKIPPED and run.skip_comment == "No stones on this model"
    order = h.draft_order()
    rs = order.route.get(step=StepKind.SETTING)
    with pytest.raises(ValidationFailed, match="Say why this step is skipped"):
        order_route_step_skip(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                              reason="other")


def test_skipping_the_ready_step_makes_the_next_one_ready(house_setup):
    h = house_setup
    piece = h.launched_piece()
    design = _run(piece, StepKind.DESIGN)
    step_run_skip(actor=h.manager, run_id=design.pk, reason="exact_reproduction",
                  comment="Same CAD as R-100")
    piece = fresh(piece)
    assert piece.current_step == StepKind.PROTOTYPING and piece.status == PieceStatus.READY
    # the steps still pending are laid out again after the one now ready
    ready = run_of(piece)
    pending = list(piece.runs.filter(status=S.PENDING).order_by("position"))
    assert pending[0].planned_start == ready.planned_due
    for prev, nxt in zip(pending, pending[1:], strict=False):
        assert nxt.planned_start == prev.planned_due
    note = piece.events.order_by("-id").first()
    assert note.kind == EventKind.NOTE and note.data["skipped_run"] == design.pk
    assert_consistent(piece)


def test_skip_guards(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING, status=S.IN_TRANSIT)
    with pytest.raises(PermissionDenied, match="Only a production manager or administrator"):
        step_run_skip(actor=h.sales, run_id=_run(piece, StepKind.SETTING).pk, reason="other",
                      comment="x")
    with pytest.raises(TransitionNotAllowed, match="Only a step not yet begun can be skipped"):
        step_run_skip(actor=h.manager, run_id=run_of(piece).pk, reason="simple_design")
    with pytest.raises(NotFound, match="No step with id"):
        step_run_skip(actor=h.manager, run_id=10**9, reason="other", comment="x")
    # a workshop member's scope is not widened by knowing a run id
    other = h.launched_piece()
    with pytest.raises(PermissionDenied):
        step_run_skip(actor=h.caster_member, run_id=_run(other, StepKind.SETTING).pk,
                      reason="other", comment="x")


def test_route_skip_before_launch_flows_to_the_pieces(house_setup):
    h = house_setup
    order = h.qualified_order(quantity=2)
    waiver = written_acceptance(h, order)
    order_route_step_skip(actor=h.manager, order_id=order.pk,
                          step_id=order.route.get(step=StepKind.PROTOTYPING).pk,
                          reason="client_risk_acceptance", reference="Mail 12/03",
                          document_id=waiver.pk)
    h.promise_realistic(order)
    order = order_launch(actor=h.sales, order_id=order.pk)
    for piece in order.pieces.all():
        proto = _run(piece, StepKind.PROTOTYPING)
        assert proto.status == S.SKIPPED and proto.skip_reference == "Mail 12/03"
        assert proto.skip_document == waiver
        assert proto.planned_start is None
        manufacturing = _run(piece, StepKind.MANUFACTURING)
        assert manufacturing.planned_start == _run(piece, StepKind.DESIGN).planned_due
        h.walk(piece)
        assert fresh(piece).status == PieceStatus.DELIVERED
        assert_consistent(piece)


# ---------------------------------------------------------------------------------------------
# changing a launched piece's route


def test_step_run_add(house_setup):
    h = house_setup
    piece = h.launched_piece()
    manufacturing = _run(piece, StepKind.MANUFACTURING)
    run = step_run_add(actor=h.manager, piece_id=piece.pk, step=StepKind.FINISHING,
                       workshop_id=h.polisher.pk, planned_days=2,
                       after_run_id=manufacturing.pk, operations=["polishing"])
    steps = list(piece.runs.order_by("position").values_list("step", "position"))
    assert steps == [("order_receipt", 1), ("design", 2), ("prototyping", 3),
                     ("manufacturing", 4), ("finishing", 5), ("setting", 6),
                     ("finishing", 7), ("delivery", 8)]
    run.refresh_from_db()
    assert run.status == S.PENDING and run.operations == ["polishing"]
    assert run.planned_start == manufacturing.planned_due
    assert AuditEntry.objects.filter(action="step.add", piece_id=piece.pk).exists()
    h.walk(piece)
    assert piece.runs.filter(status=S.DONE).count() == 8
    assert_consistent(piece)


def test_step_run_add_guards(house_setup):
    h = house_setup
    piece = at(h, StepKind.MANUFACTURING)
    runs = {r.step: r for r in piece.runs.all()}
    current = runs["manufacturing"]
    ok = {"piece_id": piece.pk, "step": StepKind.FINISHING, "workshop_id": h.polisher.pk,
          "planned_days": 2, "after_run_id": current.pk}

    def add(actor=None, **changes):
        return step_run_add(actor=actor or h.manager, **(ok | changes))

    with pytest.raises(PermissionDenied, match="can change routes"):
        add(actor=h.sales)
    for step in ("order_receipt", "delivery", "lunch"):
        with pytest.raises(ValidationFailed, match=f"'{step}' is not a step that can be added"):
            add(step=step)
    for days in (0, 121):
        with pytest.raises(ValidationFailed, match="Planned days are between 1 and 120"):
            add(planned_days=days)
    with pytest.raises(NotFound, match="No workshop with id"):
        add(workshop_id=10**9)
    with pytest.raises(ValidationFailed, match="Sertissage Martin does not do finishing"):
        add(workshop_id=h.setter.pk)
    with pytest.raises(ValidationFailed, match="Not operations of the Finishing & QC step: "
                                               "casting"):
        add(operations=["casting"])
    with pytest.raises(NotFound, match="is not part of this piece's route"):
        add(after_run_id=_run(h.launched_piece(), "design").pk)
    for before in (runs["design"], runs["delivery"]):
        with pytest.raises(ValidationFailed, match="only after the open step and before "
                                                   "delivery"):
            add(after_run_id=before.pk)
    assert piece.runs.count() == 7


def test_piece_route_reorder(house_setup):
    h = house_setup
    piece = h.launched_piece()
    runs = {r.step: r for r in piece.runs.all()}
    later = ["prototyping", "manufacturing", "setting", "finishing", "delivery"]
    ids = [runs[s].pk for s in later]

    with pytest.raises(PermissionDenied):
        piece_route_reorder(actor=h.sales, piece_id=piece.pk, run_ids=ids)
    with pytest.raises(ValidationFailed, match="List every step not yet reached") as exc:
        piece_route_reorder(actor=h.manager, piece_id=piece.pk, run_ids=ids[:-1])
    assert exc.value.details["expected"] == ids
    with pytest.raises(ValidationFailed, match="List every step not yet reached"):
        piece_route_reorder(actor=h.manager, piece_id=piece.pk, run_ids=ids + [runs["design"].pk])
    with pytest.raises(ValidationFailed, match="Delivery stays the last step"):
        piece_route_reorder(actor=h.manager, piece_id=piece.pk,
                            run_ids=[ids[-1]] + ids[:-1])

    new = [runs[s].pk for s in ["prototyping", "manufacturing", "finishing", "setting",
                                "delivery"]]
    piece_route_reorder(actor=h.manager, piece_id=piece.pk, run_ids=new)
    order = list(piece.runs.order_by("position").values_list("step", flat=True))
    assert order == ["order_receipt", "design", "prototyping", "manufacturing", "finishing",
                     "setting", "delivery"]
    ordered = list(piece.runs.filter(status=S.PENDING).order_by("position"))
    for prev, nxt in zip(ordered, ordered[1:], strict=False):
        assert nxt.planned_start == prev.planned_due
    h.walk(piece)
    done = list(piece.runs.order_by("actual_finish").values_list("step", flat=True))
    assert done == order
    assert_consistent(piece)


def test_step_run_assign(house_setup):
    h = house_setup
    caster2 = make_workshop("caster2", name="Fonte Rapide", skills=CASTER_SKILLS)
    piece = at(h, StepKind.PROTOTYPING)
    proto, manufacturing = _run(piece, "prototyping"), _run(piece, "manufacturing")

    with pytest.raises(PermissionDenied, match="can change routes"):
        step_run_assign(actor=h.sales, run_id=proto.pk, workshop_id=caster2.pk)
    with pytest.raises(NotFound, match="No workshop with id"):
        step_run_assign(actor=h.manager, run_id=proto.pk, workshop_id=10**9)
    with pytest.raises(ValidationFailed, match="Sertissage Martin does not do prototyping"):
        step_run_assign(actor=h.manager, run_id=proto.pk, workshop_id=h.setter.pk)
    workshop_update(actor=h.admin, workshop=caster2, is_active=False)
    with pytest.raises(ValidationFailed, match="Fonte Rapide is not active"):
        step_run_assign(actor=h.manager, run_id=proto.pk, workshop_id=caster2.pk)
    workshop_update(actor=h.admin, workshop=caster2, is_active=True)

    step_run_assign(actor=h.manager, run_id=manufacturing.pk, workshop_id=caster2.pk)
    step_run_assign(actor=h.manager, run_id=proto.pk, workshop_id=caster2.pk)
    piece = fresh(piece)
    assert piece.current_workshop == caster2  # the ready step moved: so did the piece's target
    slip = pieces_send(actor=h.designer, piece_ids=[piece.pk])
    assert slip.to_workshop == caster2
    with pytest.raises(TransitionNotAllowed, match="Only a step not yet begun can change"):
        step_run_assign(actor=h.manager, run_id=proto.pk, workshop_id=h.caster.pk)
    entry = AuditEntry.objects.filter(action="step.assign", piece_id=piece.pk).last()
    assert entry.before == {"workshop": h.caster.pk} and entry.after == {"workshop": caster2.pk}


# ---------------------------------------------------------------------------------------------
# weights


@pytest.mark.parametrize(("weight", "fragment"), [
    ("-1", "more than 0 g"),
    ("0", "more than 0 g"),
    (0, "more than 0 g"),
    ("0.000", "more than 0 g"),
    ("NaN", "more than 0 g"),
    ("Infinity", "more than 0 g"),
    ("5000.001", "not a plausible piece weight"),
    ("5001", "not a plausible piece weight"),
    ("1.2345", "to the milligram (3 decimals)"),
    ("twelve", "is not a weight in grams"),
    ("1,5", "is not a weight in grams"),
    (True, "is not a weight in grams"),
])
def test_bad_weights_are_refused_everywhere(house_setup, weight, fragment):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING)
    calls = [
        lambda: pieces_send(actor=h.designer, piece_ids=[piece.pk], weights_g={piece.pk: weight}),
        lambda: piece_note(actor=h.designer, piece_id=piece.pk, comment="w", weight_g=weight),
    ]
    for call in calls:
        with pytest.raises(ValidationFailed, match=re.escape(fragment)):
            call()
    h.advance(piece)  # sent, without a weight
    with pytest.raises(ValidationFailed, match=re.escape(fragment)) as exc:
        piece_receive(actor=h.caster_member, piece_id=piece.pk, weight_g=weight)
    assert exc.value.details == {"field": "weight_g"}
    h.advance(piece)
    h.advance(piece)  # received, started
    with pytest.raises(ValidationFailed, match=re.escape(fragment)):
        piece_complete(actor=h.caster_member, piece_id=piece.pk, weight_g=weight)
    assert run_of(piece).status == S.IN_PROGRESS
    assert not piece.events.filter(weight_g__isnull=False).exists()


@pytest.mark.parametrize(("weight", "expected"), [
    ("5000", Decimal("5000.000")), ("0.001", Decimal("0.001")), (12, Decimal("12.000")),
    (Decimal("3.10"), Decimal("3.100")), (2.5, Decimal("2.500")), (None, None), ("", None),
])
def test_good_weights(weight, expected):
    assert clean_weight(weight) == expected


def test_weight_field_names_the_piece_on_a_slip(house_setup):
    h = house_setup
    piece = at(h, StepKind.PROTOTYPING)
    with pytest.raises(ValidationFailed) as exc:
        pieces_send(actor=h.designer, piece_ids=[piece.pk], weights_g={piece.pk: "-2"})
    assert exc.value.details == {"field": f"weights_g.{piece.pk}"}
    assert not Transfer.objects.exists()


# ---------------------------------------------------------------------------------------------
# the whole route


def test_full_walk_across_three_workshops_to_delivery(house_setup):
    h = house_setup
    order = h.launched_order(quantity=2)
    first, second = order.pieces.order_by("serial")

    h.walk(first, weight_g="8.125")
    first = fresh(first)
    assert first.status == PieceStatus.DELIVERED
    assert first.location is None and first.transit_to is None
    assert first.current_due is None and first.delivered_at is not None
    assert first.current_run.step == StepKind.DELIVERY
    runs = list(first.runs.order_by("position"))
    assert all(r.status == S.DONE for r in runs)
    assert all(r.actual_start and r.actual_finish for r in runs)
    slips = list(Transfer.objects.filter(lines__piece=first).order_by("sent_at", "id")
                 .values_list("from_workshop__code", "to_workshop__code", "status"))
    assert slips == [("house", "caster", "received"), ("caster", "setter", "received"),
                     ("setter", "polisher", "received"), ("polisher", "house", "received")]
    # who did what: each step by the people of the place where it was done
    actors = {(e.step_run.step, e.kind): e.actor.username
              for e in first.events.select_related("step_run", "actor")}
    assert actors[("design", "completed")] == "designer"
    assert actors[("prototyping", "received")] == "caster1"
    assert actors[("manufacturing", "completed")] == "caster1"
    assert actors[("setting", "received")] == "setter1"
    assert actors[("finishing", "completed")] == "polisher1"
    assert actors[("delivery", "sent")] == "polisher1"
    assert actors[("delivery", "received")] == "logistics"
    assert actors[("delivery", "completed")] == "logistics"
    assert not first.transfer_lines.filter(weight_flagged=True).exists()
    assert_consistent(first)

    order.refresh_from_db()
    assert order.status == OrderStatus.LAUNCHED  # one piece still in the workshops
    h.walk(second)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED and order.delivered_at is not None
    entry = AuditEntry.objects.get(action="order.delivered", order_id=order.pk)
    assert entry.before == {"status": "launched"} and entry.after == {"status": "delivered"}

