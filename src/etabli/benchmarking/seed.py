"""`etabli bench seed`: a jewellery house with years of history, for the benchmarks.

Orders arrive over the last two years; each piece is walked along its route as the services would
have done it — sent, received, started, completed, sometimes held and released, sometimes sent
back for rework — with step lengths drawn around the planned days (slower workshops, queues,
transit times), and stops where `now` finds it. The rows are written in batches (COPY on
PostgreSQL). Every piece's cached state is what `derive_piece_state` computes from its events.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from etabli.accounts.models import Role, User
from etabli.clients.models import Channel, Client, ClientKind
from etabli.materials.models import Alloy
from etabli.orders.models import Order, OrderLine, OrderStatus
from etabli.production import planning
from etabli.production.models import (
    EventKind,
    HoldReason,
    OrderRouteStep,
    Piece,
    PieceStatus,
    SkipReason,
    StepRun,
    StepStatus,
    TrackingEvent,
    Transfer,
    TransferLine,
    TransferStatus,
)
from etabli.workshops.models import Operation, StepKind, Workshop
from etabli.workshops.selectors import house as the_house

from .writer import IdAllocator, RowWriter

BENCH_PASSWORD = "bench-password"  # noqa: S105 — a throw-away benchmark database
MANAGER_USERNAME = "bench-manager"
HISTORY_DAYS = 730
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)

# (step, planned days) of the standard route (reference_data.DEFAULT_ROUTE)
ROUTE = [(StepKind.ORDER_RECEIPT, 1), (StepKind.DESIGN, 3), (StepKind.PROTOTYPING, 5),
         (StepKind.MANUFACTURING, 10), (StepKind.SETTING, 4), (StepKind.FINISHING, 3),
         (StepKind.DELIVERY, 2)]

# Workshops of the benchmark house: (code, name, kind, steps done, benches, slowness)
WORKSHOPS = [
    ("bench-proto-1", "Atelier Prototype Nord", "internal", ["prototyping"], 4, 1.0),
    ("bench-proto-2", "Impression 3D Lyon", "external", ["prototyping"], 2, 1.2),
    ("bench-cast-1", "Fonderie Dupont", "external", ["prototyping", "manufacturing"], 8, 1.0),
    ("bench-cast-2", "Fonderie du Marais", "external", ["manufacturing"], 6, 1.15),
    ("bench-cast-3", "Atelier Vendôme", "internal", ["manufacturing"], 5, 0.9),
    ("bench-cast-4", "Fonderie Besançon", "external", ["manufacturing"], 4, 1.4),
    ("bench-set-1", "Sertissage Martin", "external", ["setting"], 4, 1.0),
    ("bench-set-2", "Sertissage Rivoli", "external", ["setting"], 3, 1.25),
    ("bench-set-3", "Atelier Serti Maison", "internal", ["setting"], 3, 0.9),
    ("bench-pol-1", "Polissage Leroy", "external", ["finishing"], 5, 1.0),
    ("bench-pol-2", "Finitions Durand", "external", ["finishing"], 4, 1.2),
    ("bench-pol-3", "Atelier Finition Maison", "internal", ["finishing"], 3, 0.95),
]
REWORK_RATE = {StepKind.MANUFACTURING: 0.02, StepKind.SETTING: 0.03, StepKind.FINISHING: 0.06,
               StepKind.PROTOTYPING: 0.03}
HOLD_RATE = 0.04
MODELS = ["BAG-SOL-01", "BAG-ALL-02", "BAG-TRI-03", "COL-PER-01", "COL-CHA-02", "BO-CRE-01",
          "BO-PUC-02", "BRA-JON-01", "BRA-TEN-02", "PEN-MED-01", "PEN-CRO-02", "CHE-SIG-01"]


@dataclass
class Context:
    rng: random.Random
    now: dt.datetime
    tz: zoneinfo.ZoneInfo
    house: Workshop
    by_step: dict[str, list[Workshop]]
    slowness: dict[int, float]
    members: dict[int, int]  # workshop id -> user id
    manager_id: int
    sales_ids: list[int]
    logistics_id: int
    client_rows: list[tuple[int, str]]  # (client id, channel)
    alloy_ids: list[int]
    operations: dict[str, list[str]]
    ids: IdAllocator = field(default_factory=IdAllocator)


@dataclass
class SeedResult:
    pieces: int = 0
    orders: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"Seeded {self.pieces} pieces in {self.orders} orders "
               f"in {self.seconds:.1f} s"]
        for label, n in sorted(self.rows.items()):
            out.append(f"  {label}: {n}")
        return out


# ---------------------------------------------------------------------------------------------
# the house: workshops, users, clients


def _ensure_house(rng: random.Random) -> Context:
    house = the_house()
    ops = {}
    for op in Operation.objects.order_by("position", "code"):
        ops.setdefault(op.step, []).append(op.code)
    by_step: dict[str, list[Workshop]] = {}
    slowness = {house.pk: 1.0}
    members: dict[int, int] = {}
    password = make_password(BENCH_PASSWORD)
    for code, name, kind, steps, benches, slow in WORKSHOPS:
        ws = Workshop.objects.filter(code=code).first()
        if ws is None:
            ws = Workshop.objects.create(code=code, name=name, kind=kind,
                                         capacity_benches=benches)
            ws.skills.set(Operation.objects.filter(step__in=steps))
        member = User.objects.filter(username=f"{code}-m").first()
        if member is None:
            member = User.objects.create(username=f"{code}-m", password=password,
                                         role=Role.WORKSHOP, first_name=name[:30])
            member.workshops.add(ws)
        members[ws.pk] = member.pk
        slowness[ws.pk] = slow
        for step in steps:
            by_step.setdefault(step, []).append(ws)

    def user(username, role):
        u = User.objects.filter(username=username).first()
        if u is None:
            u = User.objects.create(username=username, password=password, role=role)
        return u

    manager = user(MANAGER_USERNAME, Role.PRODUCTION_MANAGER)
    user("bench-admin", Role.ADMIN)
    sales = [user(f"bench-sales-{i}", Role.SALES) for i in range(1, 4)]
    logistics = user("bench-logistics", Role.LOGISTICS)
    user("bench-designer", Role.DESIGNER)
    user("bench-quality", Role.QUALITY)
    members[house.pk] = manager.pk

    if not Client.objects.filter(code__startswith="bench-").exists():
        channels = [Channel.WHOLESALE, Channel.RETAIL, Channel.DIRECT, Channel.ECOMMERCE]
        Client.objects.bulk_create([
            Client(code=f"bench-{i:04d}", name=f"Client {i:04d}",
                   kind=ClientKind.B2B if i % 5 else ClientKind.B2C,
                   channel=rng.choices(channels, weights=[4, 3, 2, 1])[0],
                   language="fr" if i % 3 else "en")
            for i in range(1, 301)])
    clients = list(Client.objects.filter(code__startswith="bench-")
                   .values_list("pk", "channel"))
    alloys = list(Alloy.objects.values_list("pk", flat=True))
    return Context(rng=rng, now=timezone.now(), tz=zoneinfo.ZoneInfo(settings.TIME_ZONE),
                   house=house, by_step=by_step, slowness=slowness, members=members,
                   manager_id=manager.pk, sales_ids=[s.pk for s in sales],
                   logistics_id=logistics.pk, client_rows=clients, alloy_ids=alloys,
                   operations=ops)


# ---------------------------------------------------------------------------------------------
# one piece's life


@dataclass
class Run:
    id: int
    position: int
    step: str
    workshop_id: int
    planned_days: int
    operations: list
    status: str = StepStatus.PENDING
    skip_reason: str = ""
    skip_comment: str = ""
    attempt: int = 1
    reworked: bool = False
    held_from: str = ""
    planned_start: dt.date | None = None
    planned_due: dt.date | None = None
    actual_start: dt.datetime | None = None
    actual_finish: dt.datetime | None = None


class PieceLife:
    """Walks one piece along its route, collecting the rows the services would have written."""

    def __init__(self, ctx: Context, w: RowWriter, *, piece_id: int, order_created: dt.datetime,
                 launched: dt.datetime, route: list[Run], weight: Decimal) -> None:
        self.ctx, self.w = ctx, w
        self.piece_id = piece_id
        self.runs = route
        self.weight = weight
        self.location: int | None = ctx.house.pk
        self.transit_to: int | None = None
        self.rework_count = 0
        self.last_event_at = launched
        self.delivered_at: dt.datetime | None = None
        self.current: Run | None = None
        self.last_closed: Run | None = None
        self.events: list[dict] = []
        self.transfers: list[tuple[dict, dict]] = []
        self.order_created = order_created
        self.launched = launched
        self.stop_in_transit_to: str | None = None  # stop once sent to this step

    def local_date(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.ctx.tz).date()

    def event(self, run: Run, kind: str, at: dt.datetime, **extra) -> None:
        actor = extra.pop("actor", None) or self.ctx.members.get(run.workshop_id,
                                                                 self.ctx.manager_id)
        self.events.append(dict(id=self.ctx.ids(TrackingEvent), piece_id=self.piece_id,
                                step_run_id=run.id, kind=kind, actor_id=actor, occurred_at=at,
                                **extra))
        self.last_event_at = at

    def next_pending(self, after: Run) -> Run | None:
        for r in self.runs:
            if r.position > after.position and r.status == StepStatus.PENDING:
                return r
        return None

    def live(self) -> None:
        ctx, rng, now = self.ctx, self.ctx.rng, self.ctx.now
        house = ctx.house.pk
        receipt = self.runs[0]
        receipt.planned_start = self.local_date(self.order_created)
        receipt.planned_due = self.local_date(self.launched)
        planning.lay_out([r for r in self.runs[1:] if r.status != StepStatus.SKIPPED],
                         self.local_date(self.launched))
        self.event(receipt, EventKind.STARTED, self.launched, workshop_id=house,
                   comment="Order qualified",
                   data={"ready_run": receipt.id, "initial_location": house},
                   actor=ctx.manager_id)
        receipt.status = StepStatus.DONE
        receipt.actual_start, receipt.actual_finish = self.order_created, self.launched
        nxt = self.next_pending(receipt)
        self.event(receipt, EventKind.COMPLETED, self.launched, workshop_id=house,
                   comment="Launched", data={"next_run": nxt.id if nxt else None},
                   actor=ctx.manager_id)
        self.last_closed = receipt
        t = self.launched
        run = nxt
        if run is not None:
            run.status = StepStatus.READY
        while run is not None:
            self.current = run
            t += dt.timedelta(days=rng.expovariate(1 / 0.4))  # waits to be picked up
            if t > now:
                return
            if run.workshop_id != self.location:
                if not self.send(run, t) or self.stop_in_transit_to == run.step:
                    return
                t += dt.timedelta(hours=rng.uniform(4, 60))  # on the road
                if t > now:
                    return
                self.receive(run, t)
                t += dt.timedelta(days=rng.expovariate(1 / (0.1 + run.planned_days * 0.12)))
                if t > now:
                    return
            run.status = StepStatus.IN_PROGRESS
            run.actual_start = run.actual_start or t
            self.event(run, EventKind.STARTED, t, workshop_id=run.workshop_id)
            work = (run.planned_days * ctx.slowness.get(run.workshop_id, 1.0)
                    * rng.lognormvariate(-0.1, 0.35))
            end = t + dt.timedelta(days=work)
            if rng.random() < HOLD_RATE:
                held_at = t + dt.timedelta(days=work * rng.uniform(0.1, 0.9))
                if held_at > now:
                    return
                reason = rng.choice(HoldReason.values)
                run.held_from, run.status = run.status, StepStatus.ON_HOLD
                self.event(run, EventKind.HELD, held_at, workshop_id=self.location,
                           reason=reason, actor=ctx.manager_id,
                           comment="Waiting" if reason == HoldReason.OTHER else "")
                hold = dt.timedelta(days=rng.expovariate(1 / 3))
                end += hold
                if held_at + hold > now:
                    return
                run.status, run.held_from = run.held_from, ""
                self.event(run, EventKind.RELEASED, held_at + hold, workshop_id=self.location,
                           actor=ctx.manager_id)
            if end > now:
                return
            t = end
            if (self.rework_count < 2 and rng.random() < REWORK_RATE.get(run.step, 0)
                    and run.attempt == 1):
                run = self.rework(run, t)
                continue
            run.status = StepStatus.DONE
            run.actual_finish = t
            nxt = self.next_pending(run)
            weight = None
            if run.step in (StepKind.MANUFACTURING, StepKind.FINISHING):
                weight = (self.weight * Decimal(str(round(rng.uniform(0.97, 1.02), 3)))
                          ).quantize(Decimal("0.001"))
            self.event(run, EventKind.COMPLETED, t, workshop_id=run.workshop_id,
                       weight_g=weight, data={"next_run": nxt.id if nxt else None})
            self.last_closed = run
            if nxt is None:
                self.current = None
                self.delivered_at = t
                self.location = None
                return
            nxt.status = StepStatus.READY
            run = nxt

    def send(self, run: Run, at: dt.datetime) -> bool:
        ctx = self.ctx
        origin = self.location
        sender = ctx.members.get(origin, ctx.manager_id)
        if origin == ctx.house.pk:
            sender = ctx.logistics_id
        transfer_id = ctx.ids(Transfer)
        slip = f"BT{transfer_id:09d}"
        weight = self.weight if run.step != StepKind.PROTOTYPING else None
        transfer = dict(id=transfer_id, slip_number=slip, from_workshop_id=origin,
                        to_workshop_id=run.workshop_id, status=TransferStatus.SENT,
                        sent_by_id=sender, sent_at=at, received_at=None)
        line = dict(id=ctx.ids(TransferLine), transfer_id=transfer_id, piece_id=self.piece_id,
                    step_run_id=run.id, weight_sent_g=weight)
        self.transfers.append((transfer, line))
        run.status = StepStatus.IN_TRANSIT
        self.location, self.transit_to = None, run.workshop_id
        self.event(run, EventKind.SENT, at, workshop_id=origin, weight_g=weight,
                   transfer_id=transfer_id, data={"slip": slip, "to": run.workshop_id},
                   actor=sender)
        return True

    def receive(self, run: Run, at: dt.datetime) -> None:
        rng = self.ctx.rng
        transfer, line = self.transfers[-1]
        weight = None
        flagged = False
        if line["weight_sent_g"] is not None:
            drift = Decimal("0.000") if rng.random() < 0.97 else Decimal("0.350")
            weight = line["weight_sent_g"] + drift
            flagged = drift > Decimal(str(settings.ETABLI_WEIGHT_TOLERANCE_G))
        receiver = self.ctx.members.get(run.workshop_id, self.ctx.manager_id)
        line.update(weight_received_g=weight, weight_flagged=flagged, received_by_id=receiver,
                    received_at=at)
        transfer.update(status=TransferStatus.RECEIVED, received_at=at)
        run.status = StepStatus.RECEIVED
        self.location, self.transit_to = run.workshop_id, None
        self.event(run, EventKind.RECEIVED, at, workshop_id=run.workshop_id, weight_g=weight,
                   transfer_id=transfer["id"],
                   data={"slip": transfer["slip_number"], "weight_flagged": flagged})

    def rework(self, run: Run, at: dt.datetime) -> Run:
        """Send the piece back: to this step (60 %) or to the step done before it."""
        rng = self.ctx.rng
        done = [r for r in self.runs if r.position < run.position and r.status == StepStatus.DONE
                and r.step != StepKind.ORDER_RECEIPT and not r.reworked]
        target = done[-1] if done and rng.random() < 0.4 else run
        to_redo = [r for r in self.runs if target.position <= r.position < run.position
                   and r.status == StepStatus.DONE] + [run]
        for other in self.runs:
            if other.position > run.position:
                other.position += len(to_redo)
        run.status, run.held_from, run.reworked, run.actual_finish = (
            StepStatus.DONE, "", True, at)
        copies = [Run(id=self.ctx.ids(StepRun), position=run.position + i, step=src.step,
                      workshop_id=src.workshop_id, planned_days=src.planned_days,
                      operations=list(src.operations), attempt=src.attempt + 1)
                  for i, src in enumerate(to_redo, start=1)]
        pending_after = [r for r in self.runs if r.position > run.position
                         and r.status == StepStatus.PENDING]
        self.runs = sorted(self.runs + copies, key=lambda r: r.position)
        planning.lay_out(copies + sorted(pending_after, key=lambda r: r.position),
                         self.local_date(at))
        first = copies[0]
        first.status = StepStatus.READY
        self.rework_count += 1
        self.event(run, EventKind.REWORK, at, workshop_id=self.location,
                   comment="Sent back: surface defect under loupe", actor=self.ctx.manager_id,
                   data={"target_run": target.id, "next_run": first.id,
                         "redo": [r.step for r in to_redo]})
        self.last_closed = run
        return first


# ---------------------------------------------------------------------------------------------
# orders


def _route_for(ctx: Context, custom: bool, with_stones: bool) -> list[tuple[str, int, Workshop,
                                                                         str]]:
    rng = ctx.rng
    out = []
    for step, days in ROUTE:
        skip = ""
        if step in (StepKind.ORDER_RECEIPT, StepKind.DESIGN, StepKind.DELIVERY):
            ws = ctx.house
        else:
            ws = rng.choice(ctx.by_step[step])
        if step == StepKind.PROTOTYPING and (not custom or rng.random() < 0.3):
            skip = SkipReason.EXACT_REPRODUCTION if not custom else SkipReason.SIMPLE_DESIGN
        if step == StepKind.DESIGN and not custom:
            skip = SkipReason.EXACT_REPRODUCTION
        if step == StepKind.SETTING and not with_stones:
            skip = SkipReason.OTHER
        if step in (StepKind.MANUFACTURING, StepKind.SETTING) and rng.random() < 0.3:
            days = days + rng.choice([-2, -1, 2, 4, 6])
        out.append((step, max(1, days), ws, skip))
    return out


def seed(*, pieces: int, seed: int = 1, batch_rows: int = 50_000,
         progress: Callable[[str], None] | None = None) -> SeedResult:
    """Add `pieces` pieces (with their orders, routes, events and slips) to the database."""
    started = time.monotonic()
    rng = random.Random(seed)
    with transaction.atomic():
        ctx = _ensure_house(rng)
    w = RowWriter(batch_rows=batch_rows)
    result = SeedResult()
    made = 0
    last_report = [time.monotonic()]

    def report():
        if progress and time.monotonic() - last_report[0] > 10:
            last_report[0] = time.monotonic()
            progress(f"  … {made} pieces ({time.monotonic() - started:.0f} s)")

    w.on_flush = report
    horizon = dt.timedelta(days=HISTORY_DAYS)
    while made < pieces:
        _one_order(ctx, w, pieces - made, horizon, result)
        made = result.pieces
        w.maybe_flush()
    w.finish()
    result.rows = dict(w.written)
    # The rows went in behind the services' back: the reports' summaries are recomputed from
    # the whole history, as `etabli reports rebuild` does.
    if progress:
        progress(f"  … rebuilding the reports' summaries ({time.monotonic() - started:.0f} s)")
    rebuilt = rebuild_summaries()
    result.rows["reports.StepDay"] = rebuilt["step_days"]
    result.rows["reports.StepDayDetail"] = rebuilt["step_day_details"]
    result.seconds = time.monotonic() - started
    return result


def rebuild_summaries(piece_ids: list[int] | None = None) -> dict:
    from django.db import connection

    from etabli.reports import summaries
    from etabli.reports.models import PieceFact, StepDay, StepDayDetail

    with transaction.atomic():
        out = summaries.rebuild(piece_ids)
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            for model in (StepDay, StepDayDetail, PieceFact):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return out


def _one_order(ctx: Context, w: RowWriter, left: int, horizon: dt.timedelta,
               result: SeedResult) -> None:
    rng, now = ctx.rng, ctx.now
    # More recent orders than old ones (a growing house): density rises towards today.
    age = horizon * (1 - math.sqrt(rng.random()))
    created = now - age - dt.timedelta(hours=rng.uniform(6, 30))
    launched = created + dt.timedelta(hours=rng.uniform(2, 72))
    if launched >= now:
        launched = now - dt.timedelta(minutes=rng.uniform(5, 120))
        created = launched - dt.timedelta(hours=2)
    order_id = ctx.ids(Order)
    client_id, channel = rng.choice(ctx.client_rows)
    n_lines = rng.choices([1, 2, 3, 4, 5], weights=[60, 22, 10, 5, 3])[0]
    lines = []
    for position in range(1, n_lines + 1):
        custom = rng.random() < 0.3
        qty = 1 if custom else rng.choices([1, 2, 3, 5, 10, 20], weights=[40, 20, 15, 12, 9, 4])[0]
        qty = max(1, min(qty, left - sum(q for *_x, q in lines)))
        lines.append((position, custom, qty))
        if sum(q for *_x, q in lines) >= left:
            break
    route_days_max = 0
    pieces_out: list[PieceLife] = []
    route_template = None
    for position, custom, qty in lines:
        line_id = ctx.ids(OrderLine)
        with_stones = rng.random() < 0.65
        route = _route_for(ctx, custom, with_stones)
        if route_template is None:
            route_template = route
        route_days_max = max(route_days_max, sum(d for s, d, _ws, skip in route
                                                 if not skip and s != StepKind.ORDER_RECEIPT))
        weight = Decimal(str(round(rng.uniform(2.5, 25.0), 3)))
        model = "" if custom else rng.choice(MODELS)
        w.add(OrderLine, id=line_id, order_id=order_id, position=position,
              model_reference=model, is_custom_design=custom,
              description=("Custom piece" if custom else f"Model {model}"), quantity=qty,
              size=rng.choice(["", "52", "54", "56", "42 cm"]),
              alloy_id=rng.choice(ctx.alloy_ids) if ctx.alloy_ids else None,
              stones="Diamonds 0.05 ct x 12" if with_stones else "",
              target_price=Decimal(rng.randrange(300, 12000)), budget_metal_g=weight)
        for unit in range(1, qty + 1):
            piece_id = ctx.ids(Piece)
            runs = []
            for i, (step, days, ws, skip) in enumerate(route, start=1):
                runs.append(Run(id=ctx.ids(StepRun), position=i, step=step,
                                workshop_id=ws.pk, planned_days=days,
                                operations=list(ctx.operations.get(step, [])),
                                status=StepStatus.SKIPPED if skip else StepStatus.PENDING,
                                skip_reason=skip,
                                skip_comment="No stones" if skip == SkipReason.OTHER else ""))
            life = PieceLife(ctx, w, piece_id=piece_id, order_created=created,
                             launched=launched, route=runs, weight=weight)
            life.live()
            _write_piece(ctx, w, life, order_id, line_id, unit)
            pieces_out.append(life)
    for position, (step, days, ws, skip) in enumerate(route_template, start=1):
        w.add(OrderRouteStep, id=ctx.ids(OrderRouteStep), order_id=order_id,
              position=position, step=step, planned_days=days, workshop_id=ws.pk,
              operations=list(ctx.operations.get(step, [])), skipped=bool(skip),
              skip_reason=skip, skip_comment="No stones" if skip == SkipReason.OTHER else "")
    launch_date = launched.astimezone(ctx.tz).date()
    check = planning.deadline_check([], launch_date, None)
    promised = (launch_date + dt.timedelta(days=route_days_max + check.buffer_days
                                           + rng.choice([0, 2, 5, 10, 20])))
    delivered = [p.delivered_at for p in pieces_out]
    status, delivered_at, closed_at, confirmed_at = OrderStatus.LAUNCHED, None, None, None
    if all(delivered):
        status, delivered_at = OrderStatus.DELIVERED, max(delivered)
        if now - delivered_at > dt.timedelta(days=10) and rng.random() < 0.85:
            status = OrderStatus.CLOSED
            confirmed_at = delivered_at + dt.timedelta(days=rng.uniform(1, 6))
            closed_at = confirmed_at
    sales = rng.choice(ctx.sales_ids)
    w.add(Order, id=order_id, reference=f"BO{order_id:09d}", client_id=client_id,
          client_reference=f"PO-{rng.randrange(10000, 99999)}", channel=channel, status=status,
          promised_date=promised, created_by_id=sales, created_at=created,
          launched_by_id=ctx.manager_id, launched_at=launched, delivered_at=delivered_at,
          closed_at=closed_at, reception_confirmed_at=confirmed_at,
          reception_confirmed_by_id=None)
    result.orders += 1
    result.pieces += len(pieces_out)


def _write_piece(ctx: Context, w: RowWriter, life: PieceLife, order_id: int, line_id: int,
                 unit: int) -> None:
    cur = life.current
    if cur is not None:
        status = {StepStatus.READY: PieceStatus.READY, StepStatus.IN_TRANSIT:
                  PieceStatus.IN_TRANSIT, StepStatus.RECEIVED: PieceStatus.RECEIVED,
                  StepStatus.IN_PROGRESS: PieceStatus.IN_PROGRESS,
                  StepStatus.ON_HOLD: PieceStatus.ON_HOLD}[cur.status]
        current_run, due = cur, cur.planned_due
    else:
        status, current_run, due = PieceStatus.DELIVERED, life.last_closed, None
    for r in life.runs:
        w.add(StepRun, id=r.id, piece_id=life.piece_id, position=r.position, step=r.step,
              operations=r.operations, workshop_id=r.workshop_id, status=r.status,
              held_from=r.held_from, attempt=r.attempt, reworked=r.reworked,
              planned_days=r.planned_days, planned_start=r.planned_start,
              planned_due=r.planned_due, actual_start=r.actual_start,
              actual_finish=r.actual_finish, skip_reason=r.skip_reason,
              skip_comment=r.skip_comment)
    w.add(Piece, id=life.piece_id, serial=f"BN{life.piece_id:09d}", order_id=order_id,
          line_id=line_id, unit_no=unit, status=status, current_run_id=current_run.id,
          current_step=current_run.step, current_workshop_id=current_run.workshop_id,
          current_due=due, location_id=life.location, transit_to_id=life.transit_to,
          rework_count=life.rework_count, theoretical_weight_g=life.weight,
          created_at=life.launched, last_event_at=life.last_event_at,
          delivered_at=life.delivered_at)
    for transfer, line in life.transfers:
        w.add(Transfer, **transfer)
        w.add(TransferLine, **line)
    for ev in life.events:
        w.add(TrackingEvent, **ev)


def reset(progress: Callable[[str], None] | None = None) -> None:
    """Empty the database of domain data (as `etabli demo --reset` does), fast on PostgreSQL."""
    from django.db import connection

    from etabli.core.demo import reset_domain_data

    # TRUNCATE is for a real run; inside a transaction (tests) the ORM deletes are enough.
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        from etabli.reports.models import PieceFact, StepDay, StepDayDetail

        tables = [m._meta.db_table for m in (
            StepDay, StepDayDetail, PieceFact, TrackingEvent, TransferLine, Transfer, StepRun,
            Piece, OrderRouteStep, OrderLine)]
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE {} CASCADE".format(", ".join(tables)))
    with transaction.atomic():
        reset_domain_data()
    if progress:
        progress("Emptied the database of domain data")



def api_pieces(n: int, *, seed: int = 7) -> list[int]:
    """`n` fresh pieces on their way to manufacturing (in transit to a caster), for the event
    API figure: each can then be received, started and completed through the API."""
    rng = random.Random(seed)
    with transaction.atomic():
        ctx = _ensure_house(rng)
    w = RowWriter()
    ids: list[int] = []
    created: list[int] = []
    client_id, channel = ctx.client_rows[0]
    while len(ids) < n:
        order_id, line_id = ctx.ids(Order), ctx.ids(OrderLine)
        qty = min(50, n - len(ids))
        launched = ctx.now - dt.timedelta(days=8)
        w.add(OrderLine, id=line_id, order_id=order_id, position=1,
              model_reference=MODELS[0], description="Benchmark batch", quantity=qty,
              budget_metal_g=Decimal("5.000"))
        for unit in range(1, qty + 1):
            route = []
            for i, (step, days) in enumerate(ROUTE, start=1):
                skip = "" if step in (StepKind.ORDER_RECEIPT, StepKind.MANUFACTURING,
                                      StepKind.DELIVERY) else SkipReason.EXACT_REPRODUCTION
                ws = ctx.by_step[StepKind.MANUFACTURING][0] \
                    if step == StepKind.MANUFACTURING else ctx.house
                route.append(Run(id=ctx.ids(StepRun), position=i, step=step, workshop_id=ws.pk,
                                 planned_days=days, operations=[],
                                 status=StepStatus.SKIPPED if skip else StepStatus.PENDING,
                                 skip_reason=skip))
            life = PieceLife(ctx, w, piece_id=ctx.ids(Piece), order_created=launched - HOUR,
                             launched=launched, route=route, weight=Decimal("5.000"))
            life.stop_in_transit_to = StepKind.MANUFACTURING
            life.live()
            _write_piece(ctx, w, life, order_id, line_id, unit)
            created.append(life.piece_id)
            if life.current is not None and life.current.status == StepStatus.IN_TRANSIT:
                ids.append(life.piece_id)
        w.add(Order, id=order_id, reference=f"BO{order_id:09d}", client_id=client_id,
              channel=channel, status=OrderStatus.LAUNCHED,
              promised_date=ctx.now.date() + dt.timedelta(days=60), created_at=launched - HOUR,
              launched_by_id=ctx.manager_id, launched_at=launched)
    w.finish()
    rebuild_summaries(created)
    return ids
