"""Properties of the metal and stone ledgers, whatever people do.

A Hypothesis state machine buys metal, issues it to two workshops (loose and in pieces), receives
slips with random weighing differences, returns pieces and scrap, cancels, settles, counts stock,
sends scrap to the refiner, receives stone lots, allocates, issues, breaks and returns stones —
as the person who would do each — and ignores the refusals (DomainError). After every step:

- the sum over all locations of each alloy is 0 g alloy and 0 g fine, and of each stone lot
  0 stones and 0 ct (nothing appears or vanishes);
- every balance row equals the sum of its entries;
- no physical place holds less than nothing;
- every entry moves a positive weight whose fine part is at most the alloy weight.

Each example runs inside its own `transaction.atomic()` rolled back in `teardown`; the house and
a few pieces are built once per test. Unit conversions are checked with plain `@given`.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from etabli.core.errors import DomainError
from etabli.materials import ledger, services, stone_services, units
from etabli.materials.models import (
    LocationKind,
    MaterialSlip,
    MetalBalance,
    MetalEntry,
    SlipStatus,
    StoneBalance,
    StoneEntry,
)
from tests.factories import HouseSetup

D = Decimal
ZERO = D("0")


# ---------------------------------------------------------------------------------------------
# the invariants, shared with the service and concurrency tests


def assert_ledgers_consistent() -> None:
    """Conservation, balances = entries, nothing negative where material physically is."""
    metal: dict[tuple[int, int], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for alloy_id, src, dst, g, f in MetalEntry.objects.values_list(
            "alloy_id", "from_location_id", "to_location_id", "alloy_g", "fine_g"):
        assert g > 0 and ZERO <= f <= g, (g, f)
        metal[(src, alloy_id)][0] -= g
        metal[(src, alloy_id)][1] -= f
        metal[(dst, alloy_id)][0] += g
        metal[(dst, alloy_id)][1] += f
    totals: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    rows = {(b.location_id, b.alloy_id): b for b in MetalBalance.objects.all()}
    for key, b in rows.items():
        assert [b.alloy_g, b.fine_g] == metal.get(key, [ZERO, ZERO]), (key, b.alloy_g, b.fine_g)
        if b.physical:
            assert b.alloy_g >= 0 and b.fine_g >= 0, (key, b.alloy_g, b.fine_g)
        totals[b.alloy_id][0] += b.alloy_g
        totals[b.alloy_id][1] += b.fine_g
    assert all(key in rows for key, v in metal.items() if v != [ZERO, ZERO])
    assert all(v == [ZERO, ZERO] for v in totals.values()), dict(totals)

    stones: dict[tuple[int, int], list] = defaultdict(lambda: [0, ZERO])
    for lot_id, src, dst, n, ct in StoneEntry.objects.values_list(
            "lot_id", "from_location_id", "to_location_id", "count", "carats"):
        assert n >= 0 and ct >= 0 and (n or ct)
        stones[(src, lot_id)][0] -= n
        stones[(src, lot_id)][1] -= ct
        stones[(dst, lot_id)][0] += n
        stones[(dst, lot_id)][1] += ct
    lot_totals: dict[int, list] = defaultdict(lambda: [0, ZERO])
    stone_rows = {(b.location_id, b.lot_id): b for b in StoneBalance.objects.all()}
    for key, b in stone_rows.items():
        assert [b.count, b.carats] == stones.get(key, [0, ZERO]), (key, b.count, b.carats)
        if b.physical:
            assert b.count >= 0 and b.carats >= 0, (key, b.count, b.carats)
        lot_totals[b.lot_id][0] += b.count
        lot_totals[b.lot_id][1] += b.carats
    assert all(key in stone_rows for key, v in stones.items() if v != [0, ZERO])
    assert all(v == [0, ZERO] for v in lot_totals.values()), dict(lot_totals)


# ---------------------------------------------------------------------------------------------
# the state machine

ALLOYS = st.sampled_from(["750y", "750y", "999au", "585y"])
# Mostly everyday weights, often the last milligrams where fine-gram rounding bites.
GRAMS = st.one_of(st.decimals(D("0.001"), D("0.020"), places=3),
                  st.decimals(D("0.001"), D("80"), places=3))
DELTAS = st.sampled_from([D("0"), D("0"), D("0"), D("-0.001"), D("0.001"), D("-0.050"),
                          D("0.051"), D("-0.3"), D("0.2"), None])  # None: nothing arrived


class Ledgers(RuleBasedStateMachine):
    setup: HouseSetup  # set on a subclass by the test
    pieces: list  # pieces in 750y, built once by the test

    lots = Bundle("lots")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @staticmethod
    def _do(fn, *args, **kwargs):
        try:
            # A savepoint per call: a refusal rolls back whatever the service had begun, as the
            # service's own transaction would outside this example's transaction.
            with transaction.atomic():
                result = fn(*args, **kwargs)
        except DomainError as exc:
            event(f"{fn.__name__}: refused ({exc.code})")
            return None
        event(f"{fn.__name__}: done")
        return result

    def _workshop(self, which: int):
        return (self.setup.caster, self.setup.setter)[which]

    def _member(self, slip: MaterialSlip):
        return self.setup.members[slip.workshop_id]

    # -----------------------------------------------------------------------------------------

    @initialize(weight=st.decimals(D("100"), D("1000"), places=3))
    def open_vault(self, weight: Decimal) -> None:
        for alloy in ("750y", "999au", "585y"):
            services.metal_purchase(actor=self.setup.manager, alloy=alloy, weight_g=weight)

    @rule(alloy=ALLOYS, weight=GRAMS)
    def purchase(self, alloy: str, weight: Decimal) -> None:
        self._do(services.metal_purchase, actor=self.setup.manager, alloy=alloy, weight_g=weight)

    @rule(which=st.integers(0, 1), alloy=ALLOYS, weight=GRAMS,
          with_piece=st.booleans())
    def issue(self, which: int, alloy: str, weight: Decimal, with_piece: bool):
        piece_ids = [self.pieces[which].pk] if with_piece and alloy == "750y" else []
        self._do(services.material_issue, actor=self.setup.manager,
                        workshop_id=self._workshop(which).pk, operation="assembly",
                        metal=[{"alloy": alloy, "weight_g": weight}], piece_ids=piece_ids)

    @rule(which=st.integers(0, 1), weight=GRAMS)
    def issue_piece(self, which: int, weight: Decimal):
        """A piece already made goes out by weight: its metal leaves "in pieces"."""
        self._do(services.material_issue, actor=self.setup.manager,
                        workshop_id=self._workshop(which).pk, operation="polishing",
                        pieces=[{"piece_id": self.pieces[which].pk, "weight_g": weight}])

    @rule(lot=lots, which=st.integers(0, 1), count=st.integers(1, 12),
          ct=st.decimals(D("0.001"), D("2"), places=3), reserve=st.booleans())
    def issue_stones(self, lot: int, which: int, count: int, ct: Decimal, reserve: bool):
        h = self.setup
        kwargs: dict = {"stones": [{"lot_id": lot, "count": count, "carats": ct}]}
        if reserve:
            alloc = self._do(stone_services.stone_allocate, actor=h.manager,
                             piece_id=self.pieces[which].pk, lot_id=lot, count=count, carats=ct)
            if alloc is None:
                return
            kwargs = {"allocation_ids": [alloc.pk]}
        self._do(services.material_issue, actor=h.manager,
                        workshop_id=self._workshop(which).pk, operation="setting", **kwargs)

    @staticmethod
    def _pick(queryset, pick: int):
        rows = list(queryset.order_by("pk"))
        return rows[pick % len(rows)] if rows else None

    @precondition(lambda self: self._in_transit().exists())
    @rule(pick=st.integers(0, 50), delta=DELTAS, short_count=st.integers(0, 2))
    def receive(self, pick: int, delta, short_count: int) -> None:
        slip = self._pick(self._in_transit(), pick)
        if slip is None:
            return
        lines = []
        for ln in slip.lines.all():
            if ln.lot_id:
                count = max(ln.stone_count - short_count, 0)
                carats = ln.carats_sent if count == ln.stone_count else \
                    (ln.carats_sent * count / ln.stone_count).quantize(D("0.001"))
                lines.append({"line_id": ln.pk, "count": count,
                              "carats": carats if count else "0"})
            else:
                received = ZERO if delta is None else max(ln.weight_sent_g + delta, ZERO)
                if ln.kind == "piece" and received:
                    received += ln.stones_weight_g
                lines.append({"line_id": ln.pk, "weight_g": received})
        actor = self._member(slip) if slip.kind == "issue" else self.setup.manager
        self._do(services.material_slip_receive, actor=actor, slip_id=slip.pk, lines=lines)

    @staticmethod
    def _in_transit():
        return MaterialSlip.objects.filter(status=SlipStatus.SENT).exclude(kind="refiner")

    @staticmethod
    def _open_jobs():
        return (MaterialSlip.objects.filter(kind="issue", status=SlipStatus.RECEIVED,
                                            settled_at__isnull=True))

    @precondition(lambda self: self._open_jobs().exists())
    @rule(pick=st.integers(0, 50),
          share=st.sampled_from([D("0"), D("0.3"), D("0.9"), D("1"), D("1.02"), None]),
          as_piece=st.booleans(), closes=st.booleans())
    def give_back(self, pick: int, share: Decimal, as_piece: bool, closes: bool) -> None:
        slip = self._pick(self._open_jobs(), pick)
        if slip is None:
            return
        if share is None:  # everything the workshop holds of the job's alloy
            alloy = slip.lines.filter(alloy__isnull=False).values_list("alloy", flat=True)
            held = MetalBalance.objects.filter(location=slip.to_location, alloy__in=alloy)
            weight = sum((b.alloy_g for b in held), ZERO)
        else:
            weight = (services.job_figures(slip)["remaining_g"] * share).quantize(D("0.001"))
        kwargs: dict = {}
        piece = slip.pieces.first()
        if weight > 0 and as_piece and piece is not None:
            kwargs["pieces"] = [{"piece_id": piece.pk, "weight_g": weight}]
        elif weight > 0:
            kwargs["scrap"] = [{"kind": "filings", "weight_g": weight}]
        stones = slip.lines.filter(lot__isnull=False).first()
        if stones is not None:
            held, held_ct = ledger.stone_balance(stones.lot, slip.to_location)
            if held and held_ct:
                set_in = {"piece_id": piece.pk} if as_piece and piece is not None else {}
                kwargs["stones"] = [{"lot_id": stones.lot_id, "count": held,
                                     "carats": held_ct} | set_in]
        self._do(services.material_return, actor=self._member(slip), issue_id=slip.pk,
                 closes_issue=closes or not kwargs, **kwargs)

    @precondition(lambda self: self._open_jobs().exists())
    @rule(pick=st.integers(0, 50))
    def settle(self, pick: int) -> None:
        slip = self._pick(self._open_jobs(), pick)
        if slip is not None:
            self._do(services.material_issue_settle, actor=self.setup.manager,
                     issue_id=slip.pk)

    @precondition(lambda self: self._in_transit().exists())
    @rule(pick=st.integers(0, 50))
    def cancel(self, pick: int) -> None:
        slip = self._pick(self._in_transit(), pick)
        if slip is None:
            return
        actor = self.setup.manager if slip.kind == "issue" else self._member(slip)
        self._do(services.material_slip_cancel, actor=actor, slip_id=slip.pk,
                 reason="sent by mistake")

    @rule(where=st.sampled_from(["vault", "caster", "setter"]), alloy=ALLOYS,
          delta=st.sampled_from([D("0"), D("-0.001"), D("0.002"), D("-1.5"), D("3")]),
          everything=st.sampled_from([False] * 6 + [True]))
    def stock_take(self, where: str, alloy: str, delta: Decimal, everything: bool) -> None:
        h = self.setup
        loc = ledger.location(LocationKind.VAULT) if where == "vault" \
            else ledger.workshop_location(getattr(h, where))
        book = MetalBalance.objects.filter(location=loc, alloy__code=alloy).first()
        counted = ZERO if everything else max((book.alloy_g if book else ZERO) + delta, ZERO)
        take = self._do(services.stock_take_create, actor=h.manager, location_id=loc.pk,
                        counts={alloy: counted})
        if take is not None:
            self._do(services.stock_take_post, actor=h.manager, stock_take_id=take.pk,
                     reason="annual count")

    @rule(alloy=ALLOYS, weight=GRAMS, back=st.sampled_from([D("0"), D("0.5"), D("0.74")]))
    def refine(self, alloy: str, weight: Decimal, back: Decimal) -> None:
        h = self.setup
        slip = self._do(services.refiner_send, actor=h.manager,
                        lines=[{"alloy": alloy, "weight_g": weight}])
        if slip is not None:
            returned = (weight * back).quantize(D("0.001"))
            self._do(services.refiner_settle, actor=h.manager, slip_id=slip.pk,
                     returned=[{"alloy": "999au", "weight_g": returned}] if returned else [])

    @rule(target=lots, count=st.integers(1, 40), ct=st.decimals(D("0.01"), D("8"), places=3))
    def stone_lot(self, count: int, ct: Decimal):
        lot = stone_services.stone_lot_receive(
            actor=self.setup.manager, stone_type="ruby", shape="oval", count=count, carats=ct,
            size_mm="2.5")
        return lot.pk

    @rule(lot=lots, which=st.integers(0, 1), count=st.integers(1, 3),
          ct=st.decimals(D("0.001"), D("0.5"), places=3), lost=st.booleans(),
          by_member=st.booleans())
    def breakage(self, lot: int, which: int, count: int, ct: Decimal, lost: bool,
                 by_member: bool) -> None:
        ws = self._workshop(which)
        actor = self.setup.members[ws.pk] if by_member else self.setup.manager
        self._do(stone_services.stone_breakage_record, actor=actor,
                 workshop_id=ws.pk, lot_id=lot, count=count, carats=ct, reason="chipped",
                 lost=lost)

    @rule(lot=consumes(lots))
    def forget_lot(self, lot: int) -> None:
        """Lots are consumed now and then so that rules also pick among fewer of them."""

    # -----------------------------------------------------------------------------------------

    @invariant()
    def ledgers_consistent(self) -> None:
        assert_ledgers_consistent()


@pytest.mark.django_db
def test_ledgers_balance_whatever_happens(house_setup):
    h = house_setup
    order = h.launched_order(lines=[{"description": "Band", "model_reference": "B-1",
                                     "quantity": 2, "alloy": "750y", "size": "52"}])

    class Machine(Ledgers):
        setup = h
        pieces = list(order.pieces.order_by("serial"))

    run_state_machine_as_test(
        Machine,
        settings=settings(max_examples=20, stateful_step_count=25, deadline=None,
                          database=None, suppress_health_check=[HealthCheck.too_slow],
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]),
    )


# ---------------------------------------------------------------------------------------------
# conversions

UNITS = st.sampled_from(["ozt", "dwt", "gr", "ct", "g"])


@settings(max_examples=200, deadline=None)
@given(grams=st.decimals(D("0"), D("100000"), places=3), unit=UNITS)
def test_a_weight_survives_a_round_trip_through_any_unit(grams: Decimal, unit: str):
    # Shown with 6 decimals, any unit gives back the milligram it came from: an ounce is
    # 31.1 g, so 1e-6 ozt is 31 µg, well inside half a milligram.
    assert units.from_unit(units.to_unit(grams, unit, 6), unit) == grams


@settings(max_examples=200, deadline=None)
@given(value=st.decimals(D("0"), D("1000"), places=3), unit=UNITS)
def test_a_value_in_a_unit_survives_a_round_trip_within_its_rounding(value: Decimal, unit: str):
    # Grams are kept to the milligram, so going back is exact to half a milligram of the unit.
    back = units.to_unit(units.from_unit(value, unit), unit, 6)
    assert abs(back - value) <= D("0.0005") / units.UNITS_G[unit]


@settings(max_examples=200, deadline=None)
@given(alloy_g=st.decimals(D("0.001"), D("50000"), places=3),
       fineness=st.sampled_from([999, 950, 925, 916, 750, 585, 500, 375, 1000]))
def test_fine_weight_is_within_half_a_milligram_and_never_more_than_the_alloy(alloy_g, fineness):
    fine = units.fine_g(alloy_g, fineness)
    assert ZERO <= fine <= alloy_g
    assert abs(fine - alloy_g * fineness / 1000) <= D("0.0005")
    assert units.carats_to_g(units.to_unit(alloy_g, "ct", 3)) == alloy_g

