"""The benchmark data generator writes what the services would have written."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection

from etabli.benchmarking.seed import api_pieces, seed
from etabli.orders.models import Order, OrderStatus
from etabli.production.models import (
    EventKind,
    Piece,
    PieceStatus,
    StepRun,
    StepStatus,
    TrackingEvent,
    TransferLine,
    TransferStatus,
)
from etabli.production.state import derive_piece_state

pytestmark = pytest.mark.django_db


def _check_consistent(pieces):
    # Deferred foreign keys and check constraints hold for everything written.
    connection.check_constraints()
    for piece in pieces:
        runs = list(piece.runs.order_by("position"))
        assert runs, piece.serial
        assert [r.position for r in runs] == list(range(1, len(runs) + 1))
        assert piece.events.count() >= 2
        state = derive_piece_state(piece)
        assert piece.status == state.status, piece.serial
        assert piece.location_id == state.location_id, piece.serial
        assert piece.transit_to_id == state.transit_to_id, piece.serial
        assert piece.current_run_id == state.current_run_id, piece.serial
        assert piece.rework_count == state.rework_count, piece.serial
        assert {r.pk: r.status for r in runs} == state.run_status, piece.serial
        if piece.status != PieceStatus.DELIVERED:
            run = piece.current_run
            assert (piece.current_step, piece.current_workshop_id, piece.current_due) == (
                run.step, run.workshop_id, run.planned_due)
        else:
            assert piece.delivered_at is not None and piece.location_id is None
        times = list(piece.events.order_by("id").values_list("occurred_at", flat=True))
        assert times == sorted(times), piece.serial


def test_seed_makes_consistent_data():
    result = seed(pieces=50, seed=1)
    pieces = list(Piece.objects.all())
    assert len(pieces) == result.pieces == 50
    assert Order.objects.count() == result.orders
    assert result.rows["production.Piece"] == 50
    _check_consistent(pieces)
    statuses = Counter(p.status for p in pieces)
    assert statuses[PieceStatus.DELIVERED] > 0
    assert sum(n for s, n in statuses.items() if s != PieceStatus.DELIVERED) > 0
    # Every transfer line's slip agrees with its line; every piece sent was received or is on
    # its way.
    for line in TransferLine.objects.select_related("transfer"):
        if line.received_at is None:
            assert line.transfer.status == TransferStatus.SENT
            assert line.piece.status == PieceStatus.IN_TRANSIT
        else:
            assert line.transfer.status == TransferStatus.RECEIVED
    # Orders are delivered exactly when all their pieces are.
    for order in Order.objects.prefetch_related("pieces"):
        all_done = all(p.status == PieceStatus.DELIVERED for p in order.pieces.all())
        assert all_done == (order.status in (OrderStatus.DELIVERED, OrderStatus.CLOSED))
    kinds = set(TrackingEvent.objects.values_list("kind", flat=True))
    assert {EventKind.SENT, EventKind.RECEIVED, EventKind.STARTED,
            EventKind.COMPLETED} <= kinds


def test_seed_has_rework_holds_and_delays_at_scale():
    seed(pieces=400, seed=5)
    assert Piece.objects.count() == 400
    assert Piece.objects.filter(rework_count__gt=0).exists()
    assert StepRun.objects.filter(attempt__gt=1).exists()
    assert TrackingEvent.objects.filter(kind=EventKind.HELD).exists()
    assert StepRun.objects.filter(status=StepStatus.SKIPPED).exists()
    _check_consistent(Piece.objects.filter(rework_count__gt=0)[:30])
    _check_consistent(Piece.objects.exclude(status=PieceStatus.DELIVERED)[:30])


def test_seed_twice_appends():
    seed(pieces=20, seed=1)
    seed(pieces=15, seed=2)
    assert Piece.objects.count() == 35
    _check_consistent(Piece.objects.all())


def test_api_pieces_are_in_transit_to_manufacturing():
    ids = api_pieces(10)
    assert len(ids) == 10
    for piece in Piece.objects.filter(pk__in=ids):
        assert piece.status == PieceStatus.IN_TRANSIT
        assert piece.current_step == "manufacturing"
    _check_consistent(Piece.objects.filter(pk__in=ids))


def test_seed_command(capsys):
    call_command("bench", "seed", "--pieces", "12", "--seed", "4")
    out = capsys.readouterr().out
    assert "Seeded 12 pieces" in out
    assert Piece.objects.count() == 12
    call_command("bench", "seed", "--pieces", "5", "--fresh")
    assert Piece.objects.count() == 5


def test_seed_command_refuses_nonsense():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least 1"):
        call_command("bench", "seed", "--pieces", "0")
