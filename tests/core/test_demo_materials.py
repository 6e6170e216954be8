"""The demo's metal and stone ledgers: balanced, believable, and seen by each role as it should."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Q, Sum
from django.utils import timezone

from etabli.accounts.models import User
from etabli.core.demo import build_demo, reset_domain_data
from etabli.materials import selectors
from etabli.materials.models import (
    CastingStatus,
    CastingTree,
    EntryKind,
    Location,
    LocationKind,
    MaterialSlip,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    SlipKind,
    SlipStatus,
    StockTake,
    StockTakeStatus,
    StoneAllocation,
    StoneBalance,
    StoneEntry,
    StoneLot,
)

pytestmark = pytest.mark.django_db


def _d(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.001"))


def test_demo_materials():
    """One build (it takes a while), every check; then a reset takes it all away."""
    build_demo(7)
    _ledgers_balance_and_tell_the_story()
    _logins_see_their_own_materials()
    reset_domain_data()
    assert not MetalEntry.objects.exists() and not StoneLot.objects.exists()
    assert not MaterialSlip.objects.exists() and not MetalPrice.objects.exists()
    assert not Location.objects.filter(kind=LocationKind.WORKSHOP).exists()


def _ledgers_balance_and_tell_the_story():
    # Fine metal is conserved: every alloy sums to zero over all locations, in alloy and fine
    # grams, and every balance is the sum of its entries.
    for alloy_id in MetalBalance.objects.values_list("alloy_id", flat=True).distinct():
        total = MetalBalance.objects.filter(alloy_id=alloy_id).aggregate(g=Sum("alloy_g"),
                                                                         f=Sum("fine_g"))
        assert _d(total["g"]) == 0 and _d(total["f"]) == 0
    for b in MetalBalance.objects.all():
        into = MetalEntry.objects.filter(to_location=b.location_id, alloy=b.alloy_id)
        out = MetalEntry.objects.filter(from_location=b.location_id, alloy=b.alloy_id)
        assert b.alloy_g == _d(into.aggregate(g=Sum("alloy_g"))["g"]) \
            - _d(out.aggregate(g=Sum("alloy_g"))["g"])
        assert b.fine_g == _d(into.aggregate(f=Sum("fine_g"))["f"]) \
            - _d(out.aggregate(f=Sum("fine_g"))["f"])
        if b.physical:
            assert b.alloy_g >= 0
    for b in StoneBalance.objects.all():
        into = StoneEntry.objects.filter(to_location=b.location_id, lot=b.lot_id)
        out = StoneEntry.objects.filter(from_location=b.location_id, lot=b.lot_id)
        assert b.count == (into.aggregate(n=Sum("count"))["n"] or 0) \
            - (out.aggregate(n=Sum("count"))["n"] or 0)
    for lot in StoneLot.objects.all():
        total = StoneBalance.objects.filter(lot=lot).aggregate(n=Sum("count"), ct=Sum("carats"))
        assert total["n"] == 0 and _d(total["ct"]) == 0

    # A price history for the four metals over the last three months.
    today = timezone.localdate()
    for metal in ("gold", "silver", "platinum", "palladium"):
        prices = MetalPrice.objects.filter(metal=metal)
        assert prices.count() >= 50
        assert (today - prices.order_by("priced_on").first().priced_on).days >= 85
    gold = selectors.price_on("gold", today)
    assert 80 < gold.price_per_fine_g < 160

    # Settled jobs at the caster, the benches and the polisher; one over its allowance; a
    # slip received with a flagged difference; one still in transit; a posted stock-take.
    settled = MaterialSlip.objects.filter(kind=SlipKind.ISSUE, settled_at__isnull=False)
    assert {"casting", "assembly", "setting", "polishing"} <= set(
        settled.values_list("operation", flat=True))
    assert settled.filter(over_allowance=True, operation="casting").exists()
    assert settled.filter(over_allowance=False).count() > 5
    assert MaterialSlip.objects.filter(weight_flagged=True, status=SlipStatus.RECEIVED).exists()
    assert MaterialSlip.objects.filter(status=SlipStatus.SENT).exists()
    assert CastingTree.objects.filter(status=CastingStatus.RETURNED).count() >= 3
    take = StockTake.objects.get()
    assert take.status == StockTakeStatus.POSTED and take.metal_entries.exists()

    # Stones: a certified diamond, lots with their compliance statement, stones set in pieces,
    # one broken and one lost.
    assert StoneLot.objects.filter(certificate_lab="GIA").exclude(certificate_number="").exists()
    assert not StoneLot.objects.filter(stone_type="diamond", compliance_statement="").exists()
    assert {"diamond", "sapphire", "ruby"} <= set(
        StoneLot.objects.values_list("stone_type", flat=True))
    assert StoneAllocation.objects.filter(status="set").exists()
    assert StoneEntry.objects.filter(kind=EntryKind.BREAKAGE).count() == 1
    assert StoneEntry.objects.filter(kind=EntryKind.LOST).count() == 1
    assert any(row.broken for row in selectors.breakage_rates(User.objects.get(username="manager")))

    # Nothing dated in the future.
    now = timezone.now()
    assert not MetalEntry.objects.filter(occurred_at__gt=now).exists()
    assert not StoneEntry.objects.filter(occurred_at__gt=now).exists()


def _logins_see_their_own_materials():
    manager = User.objects.get(username="manager")
    caster = User.objects.get(username="caster")
    setter = User.objects.get(username="setter2")
    assert MaterialSlip.objects.visible_to(manager).count() == MaterialSlip.objects.count()

    caster_ws = caster.workshop_ids()
    assert MaterialSlip.objects.visible_to(caster).exists()
    assert not MaterialSlip.objects.visible_to(caster).exclude(workshop_id__in=caster_ws).exists()
    rows = selectors.metal_balances(caster)
    assert rows and {r.location.workshop_id for r in rows} <= set(caster_ws)

    setter_loc = Location.objects.get(kind=LocationKind.WORKSHOP,
                                      workshop_id__in=setter.workshop_ids())
    assert StoneLot.objects.visible_to(setter).exists()
    assert StoneEntry.objects.visible_to(setter).filter(
        Q(from_location=setter_loc) | Q(to_location=setter_loc)).exists()
    assert not StoneEntry.objects.visible_to(setter).filter(kind=EntryKind.PURCHASE).exists()

