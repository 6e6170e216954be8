"""Concurrent movements on PostgreSQL: many threads issuing, receiving and returning against one
workshop and one vault never corrupt a balance, and a race for the last grams or the last stones
lets exactly as many through as there is material.

Why these would fail without the row locks (`select_for_update` in `ledger._lock_metal_balances`
/ `_lock_stone_balances`, and on the stone lot in `stone_allocate` / `_check_unreserved`):
`post_metal` reads a balance, checks it, and writes `balance - weight` computed in Python. With
no lock, two transactions read the same 100 g, both see enough for 60 g, and both write 40 g:
one movement vanishes from the balance while both entries exist (balance ≠ sum of entries,
120 g issued out of 100 g, fine metal no longer summing to zero). Allocations likewise read the
free stones, then insert: both would see 10 free and reserve 6 each. Under READ COMMITTED the
lock makes the second transaction wait and re-read the committed row, so it sees 40 g and is
refused. (Checked by hand by replacing `ledger._lock_metal_balances` with an unlocked read:
the many-threads test then fails with lost updates, transit "holding 0 g" of slips in it.)
Issues and returns also queue on their slip number's sequence row, so the over-issue and vault
races would pass on that lock alone; the receipts in the many-threads test, the breakages and
the stock-takes take no number and rely on the balance locks only.

SQLite takes the database write lock at the start of every transaction (IMMEDIATE), so there is
no interleaving to test there: these tests run on PostgreSQL only.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from etabli.core.errors import Conflict, DomainError
from etabli.materials import ledger, services, stone_services
from etabli.materials.models import (
    LocationKind,
    MaterialSlip,
    MetalBalance,
    SlipStatus,
    StoneAllocation,
)
from tests.factories import HouseSetup
from tests.materials.test_properties import assert_ledgers_consistent

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="row-lock races need PostgreSQL (SQLite serialises writers)"),
]
D = Decimal
THREADS = 12


def _race(fn, threads: int = THREADS) -> list:
    """Run `fn(i)` in `threads` threads started together; each result or exception."""
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

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    return results


def _vault_g(alloy: str = "750y") -> Decimal:
    row = MetalBalance.objects.get(location=ledger.location(LocationKind.VAULT),
                                   alloy__code=alloy)
    return row.alloy_g


def test_many_simultaneous_issues_receipts_and_returns_on_one_workshop():
    h = HouseSetup.build()
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="1000")
    # Jobs already at the caster, to return against while other slips go out.
    open_jobs = []
    for _ in range(THREADS):
        slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                       operation="assembly",
                                       metal=[{"alloy": "750y", "weight_g": "10.001"}])
        services.material_slip_receive(actor=h.caster_member, slip_id=slip.pk,
                                       lines=[{"line_id": slip.lines.get().pk,
                                               "weight_g": "10.001"}])
        open_jobs.append(slip)

    def work(i: int):
        # Every thread issues a new slip and receives it, and returns on an older job (which
        # the house receives, settling it): vault, transit and workshop rows all contended.
        slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                       operation="assembly",
                                       metal=[{"alloy": "750y", "weight_g": f"{5 + i}.003"}])
        services.material_slip_receive(
            actor=h.caster_member, slip_id=slip.pk,
            lines=[{"line_id": slip.lines.get().pk, "weight_g": f"{5 + i}.00{i % 7}"}])
        ret = services.material_return(actor=h.caster_member, issue_id=open_jobs[i].pk,
                                       closes_issue=True,
                                       scrap=[{"kind": "filings", "weight_g": "9.877"}])
        services.material_slip_receive(
            actor=h.manager, slip_id=ret.pk,
            lines=[{"line_id": ret.lines.get().pk, "weight_g": "9.876"}])
        return slip.pk

    results = _race(work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert MaterialSlip.objects.filter(status=SlipStatus.SENT).count() == 0
    assert MaterialSlip.objects.filter(settled_at__isnull=False).count() == THREADS
    issued = sum(D(f"{5 + i}.003") for i in range(THREADS))
    returned = D("9.876") * THREADS
    assert _vault_g() == D("1000") - D("10.001") * THREADS - issued + returned
    assert_ledgers_consistent()


def test_an_over_issue_race_lets_exactly_one_through():
    h = HouseSetup.build()
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="100")
    results = _race(lambda i: services.material_issue(
        actor=h.manager, workshop_id=(h.caster if i % 2 else h.setter).pk,
        metal=[{"alloy": "750y", "weight_g": "60"}]), threads=2)
    slips = [r for r in results if isinstance(r, MaterialSlip)]
    errors = [r for r in results if not isinstance(r, MaterialSlip)]
    assert len(slips) == 1, results
    assert len(errors) == 1 and isinstance(errors[0], Conflict), errors
    assert errors[0].code == "insufficient_metal"
    assert _vault_g() == D("40.000")
    assert_ledgers_consistent()


def test_many_threads_racing_for_the_vault_never_overdraw_it():
    h = HouseSetup.build()
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="100")
    results = _race(lambda i: services.material_issue(
        actor=h.manager, workshop_id=h.caster.pk,
        metal=[{"alloy": "750y", "weight_g": "15"}]))
    slips = [r for r in results if isinstance(r, MaterialSlip)]
    assert len(slips) == 6, results  # 6 × 15 g out of 100 g
    assert all(isinstance(r, DomainError) for r in results if r not in slips)
    assert _vault_g() == D("10.000")
    assert_ledgers_consistent()


def test_concurrent_allocations_never_reserve_more_than_the_lot_holds():
    h = HouseSetup.build()
    order = h.launched_order(lines=[{"description": "Eternity band", "model_reference": "E-1",
                                     "quantity": THREADS, "alloy": "750y", "size": "52"}])
    pieces = list(order.pieces.order_by("serial"))
    lot = stone_services.stone_lot_receive(actor=h.manager, stone_type="sapphire",
                                           shape="round", count=20, carats="2.000",
                                           size_mm="1.5")
    results = _race(lambda i: stone_services.stone_allocate(
        actor=h.manager, piece_id=pieces[i].pk, lot_id=lot.pk, count=3, carats="0.300"))
    made = [r for r in results if isinstance(r, StoneAllocation)]
    assert len(made) == 6, results  # 6 × 3 stones out of 20
    assert all(isinstance(r, Conflict) for r in results if r not in made)
    assert stone_services.lot_free_in_vault(lot) == (2, D("0.200"))
    # Loose stones issued against the same lot at the same time never dip into the reserve.
    results = _race(lambda i: services.material_issue(
        actor=h.manager, workshop_id=h.setter.pk,
        stones=[{"lot_id": lot.pk, "count": 1, "carats": "0.100"}]), threads=6)
    assert sum(isinstance(r, MaterialSlip) for r in results) == 2, results
    assert stone_services.lot_free_in_vault(lot) == (0, D("0.000"))
    assert_ledgers_consistent()


def test_two_counts_of_one_place_posted_at_once_adjust_it_once():
    """Two people count the vault at 70 g (book 100 g) and post at the same moment: the second
    must hear that the book moved, not take another 30 g off."""
    h = HouseSetup.build()
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="100")
    vault = ledger.location(LocationKind.VAULT)
    takes = [services.stock_take_create(actor=h.manager, location_id=vault.pk,
                                        counts={"750y": "70"}) for _ in range(2)]
    results = _race(lambda i: services.stock_take_post(actor=h.manager,
                                                       stock_take_id=takes[i].pk,
                                                       reason="count"), threads=2)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and getattr(errors[0], "code", "") == "book_moved", results
    assert _vault_g() == D("70.000")
    assert_ledgers_consistent()


def test_breakages_racing_for_the_stones_a_setter_holds_never_overdraw_it():
    """No slip number here to queue on: only the stone balance lock keeps the count right."""
    h = HouseSetup.build()
    lot = stone_services.stone_lot_receive(actor=h.manager, stone_type="ruby", shape="oval",
                                           count=10, carats="5.000", size_mm="3")
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   stones=[{"lot_id": lot.pk, "count": 10, "carats": "5.000"}])
    services.material_slip_receive(actor=h.setter_member, slip_id=slip.pk,
                                   lines=[{"line_id": slip.lines.get().pk, "count": 10,
                                           "carats": "5.000"}])
    results = _race(lambda i: stone_services.stone_breakage_record(
        actor=h.setter_member, workshop_id=h.setter.pk, lot_id=lot.pk, count=3,
        carats="1.500", reason="cracked in the setting"), threads=6)
    assert sum(not isinstance(r, Exception) for r in results) == 3, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert_ledgers_consistent()


def test_the_same_submission_sent_twice_at_once_records_one_slip():
    h = HouseSetup.build()
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="100")
    results = _race(lambda i: services.material_issue(
        actor=h.manager, workshop_id=h.caster.pk, client_ref="bench-ipad-42",
        metal=[{"alloy": "750y", "weight_g": "10"}]), threads=4)
    for r in results:
        # Either the slip (recorded, or found already recorded) or a clear 409: never a crash.
        assert isinstance(r, MaterialSlip) or (isinstance(r, Conflict)
                                               and r.code == "duplicate_submission"), results
    assert MaterialSlip.objects.filter(client_ref="bench-ipad-42").count() == 1
    assert _vault_g() == D("90.000")
    assert_ledgers_consistent()
