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
