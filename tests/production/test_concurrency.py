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


def _race(fn, threads: int = THREADS) -> list:
    """Run `fn` in `threads` threads started together; returns each result or exception."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    _run_threads([threading.Thread(target=worker, args=(i,)) for i in range(threads)])
    return results


def _run_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def _while_held(hold, then, *, finish=None) -> dict:
    """`hold()` runs in a transaction that stays open (with its locks) until `then()` has
    started in another thread and waited half a second for them; `finish()`, if given, runs
    in that same transaction before it commits. Returns what each returned or raised, under
    "hold" (finish's result when given) and "then"."""
    import time

    from django.db import transaction

    held, started = threading.Event(), threading.Event()
    results: dict = {}

    def holder() -> None:
        try:
            with transaction.atomic():
                results["hold"] = hold()
                held.set()
                started.wait(timeout=10)
                time.sleep(0.5)  # `then` is now waiting for the locks held here
                if finish is not None:
                    results["hold"] = finish()
        except Exception as exc:  # asserted on by the test
            results["hold"] = exc
        finally:
            held.set()
            connection.close()

    def waiter() -> None:
        try:
            held.wait(timeout=10)
            started.set()
            results["then"] = then()
        except Exception as exc:  # asserted on by the test
            results["then"] = exc
        finally:
            connection.close()

    _run_threads([threading.Thread(target=holder), threading.Thread(target=waiter)])
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
    from etabli.production.models import HoldReason, StepStatus
    from etabli.production.services import piece_complete, piece_hold
    from tests import gate_support

    h = HouseSetup.build()
    piece = _piece_in_transit_to_caster(h)
    h.advance(piece)  # received
    h.advance(piece)  # started
    first = h.open_run(piece)
    gate_support.before_complete(h, piece, first)
    results = _while_held(
        lambda: piece_complete(actor=h.caster_member, piece_id=piece.pk),
        lambda: piece_hold(actor=h.manager, piece_id=piece.pk, reason=HoldReason.CAPACITY))
    assert not isinstance(results["hold"], Exception), results
    event = results["then"]
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
    results = _race(lambda i: piece_receive(actor=h.caster_member, piece_id=pieces[i].pk),
                    threads=2)
    assert not [r for r in results if isinstance(r, Exception)], results
    slip.refresh_from_db()
    assert slip.status == TransferStatus.RECEIVED
    assert slip.received_at is not None
    assert not slip.lines.filter(received_at__isnull=True).exists()


def test_a_slip_received_whole_while_one_of_its_pieces_is_scanned_both_succeed():
    """Receiving a whole slip takes its locks in the order a scan does (pieces, then slip):
    the two wait for each other in turn, they never deadlock."""
    from etabli.production.models import Piece, TransferStatus
    from etabli.production.services import transfer_receive

    h = HouseSetup.build()
    pieces, slip = _two_pieces_on_one_slip(h)
    scanned = pieces[1]
    # The scan holds its piece a moment before recording the receipt.
    results = _while_held(
        lambda: Piece.objects.select_for_update().get(pk=scanned.pk),
        lambda: transfer_receive(actor=h.caster_member, transfer_id=slip.pk),
        finish=lambda: piece_receive(actor=h.caster_member, piece_id=scanned.pk))
    results = {"scan": results["hold"], "slip": results["then"]}
    assert not isinstance(results["scan"], Exception), results
    assert not isinstance(results["slip"], Exception), results
    slip.refresh_from_db()
    assert slip.status == TransferStatus.RECEIVED
    assert TrackingEvent.objects.filter(transfer=slip, kind=EventKind.RECEIVED).count() == 2
