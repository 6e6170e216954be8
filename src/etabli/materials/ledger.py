"""Posting to the metal and stone ledgers. Called only by the materials services, inside their
transaction.

Every posting moves a positive quantity from one location to another and updates both balances
in the same transaction. Balance rows are locked in a fixed order (by id) so that concurrent
movements touching the same locations queue up instead of deadlocking, and a physical location
can never be left holding less than nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core.errors import Conflict

from . import units
from .models import (
    PHYSICAL_LOCATION_KINDS,
    Alloy,
    Location,
    LocationKind,
    MetalBalance,
    MetalEntry,
    StoneBalance,
    StoneEntry,
    StoneLot,
)

MG = Decimal("0.001")


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Ledger postings must run inside the service's transaction.")


def location(kind: str) -> Location:
    """The one location of a kind (vault, refiner, in pieces, transit and the accounts)."""
    if kind == LocationKind.WORKSHOP:
        raise ValueError("Use workshop_location() for a workshop.")
    loc = Location.objects.filter(kind=kind).first()
    if loc is None:
        loc, _created = Location.objects.get_or_create(kind=kind,
                                                       defaults={"name": LocationKind(kind).label})
    return loc


def workshop_location(workshop) -> Location:
    """Where a workshop's material is booked; the house's own is its vault."""
    if workshop.is_house:
        return location(LocationKind.VAULT)
    loc = Location.objects.filter(workshop=workshop).first()
    if loc is None:
        loc, _created = Location.objects.get_or_create(
            workshop=workshop, defaults={"kind": LocationKind.WORKSHOP, "name": workshop.name})
    return loc


def _lock_metal_balances(alloy: Alloy, locations: list[Location]) -> dict[int, MetalBalance]:
    MetalBalance.objects.bulk_create(
        [MetalBalance(location=loc, alloy=alloy, physical=loc.kind in PHYSICAL_LOCATION_KINDS)
         for loc in locations], ignore_conflicts=True)
    rows = (MetalBalance.objects.select_for_update()
            .filter(alloy=alloy, location__in=[loc.pk for loc in locations]).order_by("id"))
    return {row.location_id: row for row in rows}


def post_metal(*, kind: str, alloy: Alloy, alloy_g: Decimal, source: Location,
               destination: Location, actor=None, at: dt.datetime | None = None,
               fine_g: Decimal | None = None, **links) -> MetalEntry:
    """Move `alloy_g` grams of `alloy` from `source` to `destination`.

    The fine weight is computed from the alloy's fineness unless given (only a movement that
    splits an earlier one, such as a weighing difference, passes it to keep the fine grams
    of the two parts equal to the whole).
    """
    _require_transaction()
    alloy_g = Decimal(alloy_g).quantize(MG)
    if alloy_g <= 0:
        raise ValueError("A movement moves a positive weight.")
    balances = _lock_metal_balances(alloy, [source, destination])
    out, into = balances[source.pk], balances[destination.pk]
    if fine_g is None:
        fine_g = units.fine_g(alloy_g, alloy.fineness_permille)
        if out.physical and (alloy_g == out.alloy_g or fine_g > out.fine_g):
            # Fine grams are rounded to the milligram on each movement; what leaves with the
            # last grams of a place is whatever fine metal the place still holds, so rounding
            # never strands or overdraws a milligram.
            fine_g = min(out.fine_g, alloy_g) if alloy_g == out.alloy_g else out.fine_g
    if out.physical and (out.alloy_g < alloy_g or out.fine_g < fine_g):
        raise Conflict(
            _("%(place)s holds %(held)s g of %(alloy)s: %(asked)s g cannot leave it.")
            % {"place": display_name(source), "held": out.alloy_g, "alloy": alloy.name,
               "asked": alloy_g},
            code="insufficient_metal",
            details={"location": source.pk, "alloy": alloy.code, "held_g": str(out.alloy_g),
                     "asked_g": str(alloy_g)})
    out.alloy_g -= alloy_g
    out.fine_g -= fine_g
    into.alloy_g += alloy_g
    into.fine_g += fine_g
    MetalBalance.objects.bulk_update([out, into], ["alloy_g", "fine_g"])
    return MetalEntry.objects.create(
        occurred_at=at or timezone.now(), kind=kind, alloy=alloy, alloy_g=alloy_g, fine_g=fine_g,
        from_location=source, to_location=destination,
        actor=actor if getattr(actor, "pk", None) else None, **links)


def _lock_stone_balances(lot: StoneLot, locations: list[Location]) -> dict[int, StoneBalance]:
    StoneBalance.objects.bulk_create(
        [StoneBalance(location=loc, lot=lot, physical=loc.kind in PHYSICAL_LOCATION_KINDS)
         for loc in locations], ignore_conflicts=True)
    rows = (StoneBalance.objects.select_for_update()
            .filter(lot=lot, location__in=[loc.pk for loc in locations]).order_by("id"))
    return {row.location_id: row for row in rows}


def stone_balance(lot: StoneLot, loc: Location) -> tuple[int, Decimal]:
    row = StoneBalance.objects.filter(lot=lot, location=loc).first()
    return (row.count, row.carats) if row else (0, Decimal("0"))


def post_stones(*, kind: str, lot: StoneLot, count: int, carats: Decimal, source: Location,
                destination: Location, actor=None, at: dt.datetime | None = None,
                **links) -> StoneEntry:
    """Move `count` stones weighing `carats` of `lot` from `source` to `destination`."""
    _require_transaction()
    carats = Decimal(carats).quantize(MG)
    if count < 0 or carats < 0 or (count == 0 and carats == 0):
        raise ValueError("A movement moves stones or carats.")
    balances = _lock_stone_balances(lot, [source, destination])
    out, into = balances[source.pk], balances[destination.pk]
    if out.physical and (out.count < count or out.carats < carats):
        raise Conflict(
            _("%(place)s holds %(count)s stones (%(carats)s ct) of lot %(lot)s: "
              "%(asked)s stones (%(asked_ct)s ct) cannot leave it.")
            % {"place": display_name(source), "count": out.count, "carats": out.carats,
               "lot": lot.number, "asked": count, "asked_ct": carats},
            code="insufficient_stones",
            details={"location": source.pk, "lot": lot.pk, "held_count": out.count,
                     "held_ct": str(out.carats)})
    out.count -= count
    out.carats -= carats
    into.count += count
    into.carats += carats
    StoneBalance.objects.bulk_update([out, into], ["count", "carats"])
    return StoneEntry.objects.create(
        occurred_at=at or timezone.now(), kind=kind, lot=lot, count=count, carats=carats,
        from_location=source, to_location=destination,
        actor=actor if getattr(actor, "pk", None) else None, **links)


def display_name(loc: Location) -> str:
    """A location's name in the reader's language (workshops keep their own names)."""
    if loc.kind == LocationKind.WORKSHOP:
        return loc.name
    return str(LocationKind(loc.kind).label)
