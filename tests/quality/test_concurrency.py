"""Inspectors racing each other: the piece's row lock lets exactly one through."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from etabli.core.errors import DomainError
from etabli.production.models import EventKind
from etabli.quality import services
from etabli.quality.models import Inspection, InspectionStatus, Nonconformity
from tests.factories import HouseSetup
from tests.quality.conftest import open_inspection, piece_in_finishing

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
THREADS = 4


def _race(fn) -> list:
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


def _split(results):
    done = [r for r in results if not isinstance(r, Exception)]
    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, DomainError) and e.status == 409 for e in errors), errors
    return done, errors


def test_one_inspection_opened_when_two_inspectors_open_it_at_once():
    h = HouseSetup.build()
    piece = piece_in_finishing(h)
    actors = [h.quality, h.manager, h.admin, h.quality]
    done, errors = _split(_race(lambda i: services.inspection_create(actor=actors[i],
                                                                    piece_id=piece.pk)))
    assert len(done) == 1 and len(errors) == THREADS - 1
    assert Inspection.objects.filter(piece=piece).count() == 1


def test_a_failed_inspection_signed_twice_at_once_stops_the_piece_once():
    h = HouseSetup.build()
    piece = piece_in_finishing(h)
    ins = open_inspection(h, piece, surface_defects=2)
    done, errors = _split(_race(lambda i: services.inspection_sign(actor=h.quality,
                                                                  inspection_id=ins.pk)))
    assert len(done) == 1 and all("cannot change" in e.message for e in errors)
    assert Inspection.objects.get(pk=ins.pk).status == InspectionStatus.SIGNED
    assert Nonconformity.objects.filter(piece=piece).count() == 1
    assert piece.events.filter(kind=EventKind.HELD).count() == 1


def test_a_nonconformity_sent_to_rework_twice_at_once_reworks_once():
    h = HouseSetup.build()
    piece = piece_in_finishing(h)
    ins = open_inspection(h, piece, loose_stones=1)
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    nc = Nonconformity.objects.get(inspection=ins)
    services.nonconformity_record_cause(actor=h.quality, nc_id=nc.pk, root_cause="setting",
                                        corrective_action="Re-set.")
    setting = piece.runs.get(step="setting")
    done, errors = _split(_race(lambda i: services.nonconformity_send_to_rework(
        actor=h.quality, nc_id=nc.pk, target_run_id=setting.pk)))
    assert len(done) == 1
    piece.refresh_from_db()
    assert piece.rework_count == 1
    assert piece.events.filter(kind=EventKind.REWORK).count() == 1
