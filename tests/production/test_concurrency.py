"""Duplicate submissions racing each other: the database row lock lets exactly one through."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from etabli.core.errors import DomainError
from etabli.production.models import EventKind, TrackingEvent
from etabli.production.services import piece_receive
from etabli.production.state import derive_piece_state
from etabli.workshops.models import StepKind
from tests.factories import HouseSetup

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
THREADS = 6


def _race(fn) -> list:
    """Run `fn` in THREADS threads started together; returns each result or exception."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _piece_in_transit_to_caster(h: HouseSetup):
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.PROTOTYPING)  # ready at the house
    h.advance(piece)  # sent to the caster, not yet received
    piece.refresh_from_db()
    assert piece.transit_to_id == h.caster.pk
    return piece


def test_simultaneous_receive_scans_record_one_receipt():
    h = HouseSetup.build()
    piece = _piece_in_transit_to_caster(h)
    results = _race(lambda i: piece_receive(actor=h.caster_member, piece_id=piece.pk))
    events = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(events) == 1, results
    assert all(isinstance(e, DomainError) and e.status == 409 for e in errors), errors
    assert all("already been received" in e.message for e in errors)
    assert TrackingEvent.objects.filter(piece=piece, kind=EventKind.RECEIVED).count() == 1
    piece.refresh_from_db()
    state = derive_piece_state(piece)
    assert (state.status, state.location_id) == (piece.status, piece.location_id)


def test_simultaneous_retries_with_one_event_id_return_the_same_event():
    h = HouseSetup.build()
    piece = _piece_in_transit_to_caster(h)
    results = _race(lambda i: piece_receive(actor=h.caster_member, piece_id=piece.pk,
                                            weight_g="4.210", client_event_id="scan-42"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.pk for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert TrackingEvent.objects.filter(client_event_id="scan-42").count() == 1


def test_a_scan_waiting_behind_another_event_acts_on_the_step_the_piece_is_at_now():
    """The piece is read with its open run in one statement; when the event it waited for
    moved the piece on to its next step, the hold lands on that next step."""
    import time

    from django.db import transaction

    from etabli.production.models import HoldReason, StepStatus
    from etabli.production.services import piece_complete, piece_hold
    from tests import gate_support

    h = HouseSetup.build()
    piece = _piece_in_transit_to_caster(h)
    h.advance(piece)  # received
    h.advance(piece)  # started
    first = h.open_run(piece)
    gate_support.before_complete(h, piece, first)
    completed, waiting = threading.Event(), threading.Event()
    results: dict = {}

    def complete_and_linger() -> None:
        try:
            with transaction.atomic():
                piece_complete(actor=h.caster_member, piece_id=piece.pk)
                completed.set()
                waiting.wait(timeout=10)
                time.sleep(0.5)  # the hold below is now waiting for the piece's lock
        finally:
            connection.close()

    def hold() -> None:
        try:
            completed.wait(timeout=10)
            waiting.set()
            results["event"] = piece_hold(actor=h.manager, piece_id=piece.pk,
                                          reason=HoldReason.CAPACITY)
        except Exception as exc:  # asserted on below
            results["event"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=complete_and_linger), threading.Thread(target=hold)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    event = results["event"]
    assert not isinstance(event, Exception), event
    first.refresh_from_db()
    assert first.status == StepStatus.DONE
    assert event.step_run_id != first.pk
    assert event.step_run.status == StepStatus.ON_HOLD
    piece.refresh_from_db()
    assert piece.current_run_id == event.step_run_id
    state = derive_piece_state(piece)
    assert (state.status, state.current_run_id, state.location_id) == (
        piece.status, piece.current_run_id, piece.location_id)


def _two_pieces_on_one_slip(h: HouseSetup):
    from etabli.production.services import pieces_send
    from tests import gate_support
    from tests.factories import default_line

    order = h.launched_order(lines=[default_line(quantity=2)])
    pieces = list(order.pieces.order_by("serial"))
    for piece in pieces:
        h.walk(piece, to=StepKind.PROTOTYPING)
        gate_support.before_send(h, piece, h.open_run(piece))
    slip = pieces_send(actor=h.actor_at(pieces[0].location_id, StepKind.PROTOTYPING),
                       piece_ids=[p.pk for p in pieces])
    return pieces, slip


def test_two_pieces_of_one_slip_received_at_once_leave_the_slip_received():
    from etabli.production.models import TransferStatus

    h = HouseSetup.build()
    pieces, slip = _two_pieces_on_one_slip(h)
    assert slip.to_workshop_id == h.caster.pk
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def receive(i: int) -> None:
        try:
            barrier.wait()
            results[i] = piece_receive(actor=h.caster_member, piece_id=pieces[i].pk)
        except Exception as exc:  # asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not [r for r in results if isinstance(r, Exception)], results
    slip.refresh_from_db()
    assert slip.status == TransferStatus.RECEIVED
    assert slip.received_at is not None
    assert not slip.lines.filter(received_at__isnull=True).exists()


def test_a_slip_received_whole_while_one_of_its_pieces_is_scanned_both_succeed():
    """Receiving a whole slip takes its locks in the order a scan does (pieces, then slip):
    the two wait for each other in turn, they never deadlock."""
    import time

    from django.db import transaction

    from etabli.production.models import Piece, TransferStatus
    from etabli.production.services import transfer_receive

    h = HouseSetup.build()
    pieces, slip = _two_pieces_on_one_slip(h)
    scanned = pieces[1]
    locked, waiting = threading.Event(), threading.Event()
    results: dict = {}

    def scan() -> None:  # holds the piece a moment before recording its receipt
        try:
            with transaction.atomic():
                Piece.objects.select_for_update().get(pk=scanned.pk)
                locked.set()
                waiting.wait(timeout=10)
                time.sleep(0.5)  # the whole-slip receipt is now waiting
                results["scan"] = piece_receive(actor=h.caster_member, piece_id=scanned.pk)
        except Exception as exc:  # asserted on below
            results["scan"] = exc
        finally:
            connection.close()

    def whole_slip() -> None:
        try:
            locked.wait(timeout=10)
            waiting.set()
            results["slip"] = transfer_receive(actor=h.caster_member, transfer_id=slip.pk)
        except Exception as exc:  # asserted on below
            results["slip"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=scan), threading.Thread(target=whole_slip)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not isinstance(results["scan"], Exception), results
    assert not isinstance(results["slip"], Exception), results
    slip.refresh_from_db()
    assert slip.status == TransferStatus.RECEIVED
    assert TrackingEvent.objects.filter(transfer=slip, kind=EventKind.RECEIVED).count() == 2
