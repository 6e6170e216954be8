"""Reads of the materials ledgers, scoped to the reader: balances at any date, valuations,
workshop statements, stone lot balances and breakage rates."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from .models import (
    PHYSICAL_LOCATION_KINDS,
    Alloy,
    EntryKind,
    LineKind,
    Location,
    LocationKind,
    MaterialSlip,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    SlipKind,
    StoneBalance,
    StoneEntry,
    StoneLot,
)

ZERO = Decimal("0")
MG = Decimal("0.001")


def q3(value) -> Decimal:
    """A sum from the database, to the milligram (SQLite adds decimals as floats)."""
    return Decimal(str(value or 0)).quantize(MG)


def price_on(metal: str, on_date: dt.date | None = None,
             currency: str | None = None) -> MetalPrice | None:
    """The latest price of a fine gram of `metal` on or before `on_date` (today by default)."""
    from django.conf import settings

    on_date = on_date or timezone.localdate()
    return (MetalPrice.objects.filter(metal=metal, priced_on__lte=on_date,
                                      currency=currency or settings.ETABLI_DEFAULT_CURRENCY)
            .order_by("-priced_on").first())


def prices_on(on_date: dt.date | None = None, currency: str | None = None
              ) -> dict[str, MetalPrice]:
    from .models import Metal

    return {m: p for m in Metal.values if (p := price_on(m, on_date, currency)) is not None}


def value_of(fine_g: Decimal, price: MetalPrice | None) -> Decimal | None:
    if price is None:
        return None
    return (fine_g * price.price_per_fine_g).quantize(Decimal("0.01"))


@dataclass
class BalanceRow:
    location: Location
    alloy: Alloy
    alloy_g: Decimal
    fine_g: Decimal
    price: MetalPrice | None = None

    @property
    def value(self) -> Decimal | None:
        return value_of(self.fine_g, self.price)


def metal_balances(user, *, at: dt.datetime | None = None, location_id: int | None = None,
                   physical_only: bool = True, with_prices: bool = False,
                   price_date: dt.date | None = None) -> list[BalanceRow]:
    """Balances per location and alloy, now (from the balance table) or at any moment (summed
    from the entries up to it). Empty balances are left out."""
    locations = Location.objects.visible_to(user)
    if physical_only:
        locations = locations.filter(kind__in=PHYSICAL_LOCATION_KINDS)
    if location_id is not None:
        locations = locations.filter(pk=location_id)
    locs = {loc.pk: loc for loc in locations}
    alloys = {a.pk: a for a in Alloy.objects.all()}
    totals: dict[tuple[int, int], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    if at is None:
        for b in MetalBalance.objects.filter(location_id__in=locs):
            totals[(b.location_id, b.alloy_id)] = [b.alloy_g, b.fine_g]
    else:
        entries = MetalEntry.objects.filter(occurred_at__lte=at)
        for row in (entries.filter(to_location_id__in=locs)
                    .values("to_location_id", "alloy_id")
                    .annotate(g=Sum("alloy_g"), f=Sum("fine_g"))):
            t = totals[(row["to_location_id"], row["alloy_id"])]
            t[0] += q3(row["g"])
            t[1] += q3(row["f"])
        for row in (entries.filter(from_location_id__in=locs)
                    .values("from_location_id", "alloy_id")
                    .annotate(g=Sum("alloy_g"), f=Sum("fine_g"))):
            t = totals[(row["from_location_id"], row["alloy_id"])]
            t[0] -= q3(row["g"])
            t[1] -= q3(row["f"])
    prices = prices_on(price_date or (at.date() if at else None)) if with_prices else {}
    rows = [BalanceRow(locs[loc_id], alloys[alloy_id], g, f,
                       prices.get(alloys[alloy_id].metal))
            for (loc_id, alloy_id), (g, f) in totals.items() if g or f]
    order = {k: i for i, k in enumerate(LocationKind.values)}
    rows.sort(key=lambda r: (order[r.location.kind], r.location.name, r.alloy.metal,
                             -r.alloy.fineness_permille, r.alloy.code))
    return rows


def fine_totals_by_metal(rows: list[BalanceRow]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        out[r.alloy.metal] += r.fine_g
    return dict(out)


@dataclass
class StatementLine:
    alloy: Alloy
    opening_g: Decimal = ZERO
    issued_g: Decimal = ZERO
    returned_pieces_g: Decimal = ZERO
    returned_scrap_g: Decimal = ZERO
    loss_g: Decimal = ZERO
    other_g: Decimal = ZERO
    closing_g: Decimal = ZERO
    closing_fine_g: Decimal = ZERO


@dataclass
class Statement:
    workshop: object
    start: dt.date
    end: dt.date
    lines: list[StatementLine] = field(default_factory=list)
    jobs: list[MaterialSlip] = field(default_factory=list)
    in_transit: list[MaterialSlip] = field(default_factory=list)

    @property
    def over_allowance(self) -> list[MaterialSlip]:
        return [j for j in self.jobs if j.over_allowance]


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (dt.datetime.combine(start, dt.time.min, tzinfo=tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz))


def workshop_statement(workshop, start: dt.date, end: dt.date) -> Statement:
    """What a workshop received, returned (in pieces, as scrap), lost and still holds over a
    period, per alloy; with its settled jobs against their allowances."""
    from . import ledger

    loc = ledger.workshop_location(workshop)
    since, until = _bounds(start, end)
    lines: dict[int, StatementLine] = {}

    def line(alloy_id: int) -> StatementLine:
        if alloy_id not in lines:
            lines[alloy_id] = StatementLine(alloy=Alloy.objects.get(pk=alloy_id))
        return lines[alloy_id]

    before = MetalEntry.objects.filter(occurred_at__lt=since)
    for row in before.filter(to_location=loc).values("alloy_id").annotate(g=Sum("alloy_g")):
        line(row["alloy_id"]).opening_g += q3(row["g"])
    for row in before.filter(from_location=loc).values("alloy_id").annotate(g=Sum("alloy_g")):
        line(row["alloy_id"]).opening_g -= q3(row["g"])
    period = MetalEntry.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
    for e in (period.filter(Q(to_location=loc) | Q(from_location=loc))
              .values("alloy_id", "kind", "to_location_id", "slip_line__kind")
              .annotate(g=Sum("alloy_g"))):
        e["g"] = q3(e["g"])
        ln = line(e["alloy_id"])
        incoming = e["to_location_id"] == loc.pk
        if e["kind"] == EntryKind.LOSS:
            ln.loss_g += -e["g"] if incoming else e["g"]
        elif incoming and e["kind"] in (EntryKind.RECEIPT, EntryKind.DIFFERENCE):
            ln.issued_g += e["g"]
        elif not incoming and e["kind"] == EntryKind.DISPATCH:
            if e["slip_line__kind"] == LineKind.PIECE:
                ln.returned_pieces_g += e["g"]
            else:
                ln.returned_scrap_g += e["g"]
        else:
            ln.other_g += e["g"] if incoming else -e["g"]
    for ln in lines.values():
        ln.closing_g = (ln.opening_g + ln.issued_g - ln.returned_pieces_g - ln.returned_scrap_g
                        - ln.loss_g + ln.other_g)
    for row in (MetalEntry.objects.filter(occurred_at__lt=until)
                .filter(Q(to_location=loc) | Q(from_location=loc))
                .values("alloy_id", "to_location_id").annotate(f=Sum("fine_g"))):
        line(row["alloy_id"]).closing_fine_g += q3(row["f"]) \
            if row["to_location_id"] == loc.pk else -q3(row["f"])
    jobs = list(MaterialSlip.objects.filter(workshop=workshop, kind=SlipKind.ISSUE,
                                            settled_at__gte=since, settled_at__lt=until)
                .order_by("settled_at"))
    transit = list(MaterialSlip.objects.filter(workshop=workshop, status="sent")
                   .order_by("sent_at"))
    return Statement(workshop=workshop, start=start, end=end,
                     lines=sorted(lines.values(), key=lambda x: x.alloy.code), jobs=jobs,
                     in_transit=transit)


@dataclass
class LossRow:
    workshop_id: int
    workshop_name: str
    operation: str
    jobs: int
    issued_g: Decimal
    loss_g: Decimal
    allowance_g: Decimal
    over: int

    @property
    def loss_percent(self) -> Decimal | None:
        if not self.issued_g:
            return None
        return (self.loss_g * 100 / self.issued_g).quantize(Decimal("0.01"))


def losses_by_workshop(user, start: dt.date, end: dt.date) -> list[LossRow]:
    """Settled jobs per workshop and operation: metal issued, lost, allowed."""
    since, until = _bounds(start, end)
    jobs = list(MaterialSlip.objects.visible_to(user)
                .filter(kind=SlipKind.ISSUE, settled_at__gte=since, settled_at__lt=until)
                .select_related("workshop"))
    # What each job's workshop received on its issue slip (as services.job_figures counts it),
    # in one query for all the jobs.
    issued = {r["slip_id"]: q3(r["g"]) for r in
              MetalEntry.objects.filter(slip__in=jobs, to_location_id=F("slip__to_location_id"))
              .values("slip_id").annotate(g=Sum("alloy_g"))}
    rows: dict[tuple[int, str], LossRow] = {}
    for job in jobs:
        key = (job.workshop_id, job.operation)
        row = rows.setdefault(key, LossRow(job.workshop_id, job.workshop.name, job.operation,
                                           0, ZERO, ZERO, ZERO, 0))
        row.jobs += 1
        row.issued_g += issued.get(job.pk, ZERO)
        row.loss_g += job.loss_g or ZERO
        row.allowance_g += job.allowance_g or ZERO
        row.over += int(job.over_allowance)
    return sorted(rows.values(), key=lambda r: (r.workshop_name, r.operation))


def flags(user, *, days: int = 90) -> dict[str, list[MaterialSlip]]:
    """What the dashboard shows about materials: jobs over their loss allowance and slips
    received with a weight difference beyond tolerance, recently."""
    since = timezone.now() - dt.timedelta(days=days)
    slips = MaterialSlip.objects.visible_to(user).select_related("workshop")
    return {
        "over_allowance": list(slips.filter(over_allowance=True, settled_at__gte=since)
                               .order_by("-settled_at")[:20]),
        "weight_flagged": list(slips.filter(weight_flagged=True, received_at__gte=since)
                               .order_by("-received_at")[:20]),
    }


# ---------------------------------------------------------------------------------------------
# stones


def lot_balances(lot: StoneLot, user=None) -> list[StoneBalance]:
    rows = StoneBalance.objects.filter(lot=lot).select_related("location").exclude(
        count=0, carats=ZERO)
    if user is not None:
        rows = rows.filter(location__in=Location.objects.visible_to(user))
    return list(rows.order_by("location__kind", "location__name"))


def lot_in_vault(lot: StoneLot) -> tuple[int, Decimal]:
    row = StoneBalance.objects.filter(lot=lot, location__kind=LocationKind.VAULT).first()
    return (row.count, row.carats) if row else (0, ZERO)


@dataclass
class BreakageRow:
    workshop_id: int
    workshop_name: str
    stone_type: str
    received: int
    broken: int
    lost: int

    @property
    def rate_percent(self) -> Decimal | None:
        if not self.received:
            return None
        return (Decimal(self.broken + self.lost) * 100 / self.received).quantize(
            Decimal("0.01"))


def breakage_rates(user, start: dt.date | None = None, end: dt.date | None = None
                   ) -> list[BreakageRow]:
    """Stones a workshop received and broke or lost, per workshop and stone type."""
    entries = StoneEntry.objects.visible_to(user).filter(workshop__isnull=False)
    if start and end:
        since, until = _bounds(start, end)
        entries = entries.filter(occurred_at__gte=since, occurred_at__lt=until)
    received = (entries.filter(kind=EntryKind.RECEIPT, to_location__kind=LocationKind.WORKSHOP)
                .values("workshop_id", "workshop__name", "lot__stone_type")
                .annotate(n=Sum("count")))
    broken = (entries.filter(kind__in=[EntryKind.BREAKAGE, EntryKind.LOST])
              .values("workshop_id", "workshop__name", "lot__stone_type", "kind")
              .annotate(n=Sum("count")))
    rows: dict[tuple[int, str], BreakageRow] = {}
    for r in received:
        key = (r["workshop_id"], r["lot__stone_type"])
        rows[key] = BreakageRow(r["workshop_id"], r["workshop__name"], r["lot__stone_type"],
                                r["n"], 0, 0)
    for r in broken:
        key = (r["workshop_id"], r["lot__stone_type"])
        row = rows.setdefault(key, BreakageRow(r["workshop_id"], r["workshop__name"],
                                               r["lot__stone_type"], 0, 0, 0))
        if r["kind"] == EntryKind.BREAKAGE:
            row.broken += r["n"]
        else:
            row.lost += r["n"]
    return sorted(rows.values(), key=lambda r: (r.workshop_name, r.stone_type))


def lots_with_vault(user):
    """Stone lots with what is in the vault and how many stones are reserved."""
    from .models import AllocationStatus

    return (StoneLot.objects.visible_to(user)
            .annotate(reserved_count=Sum("allocations__count",
                                         filter=Q(allocations__status=AllocationStatus.RESERVED)),
                      allocation_count=Count("allocations", distinct=True)))
