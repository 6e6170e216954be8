"""Production KPIs over a period: every figure is aggregated in the database.

`kpis(user, filters)` is the one read path (pages, API, exports and the monthly PDF start
here). It runs a fixed number of queries whatever the number of pieces: GROUP BY with
conditional aggregates; medians and 90th percentiles with `percentile_cont` on PostgreSQL and
from one `values_list` on SQLite. The exact definition of each KPI is in docs/reports.md.

Scope: administrators, production managers and sales see the whole house (sales with values);
a workshop member sees only the figures of their own workshop(s) — no lead times or on-time
figures of the house, no other workshop's name, no values; anyone else sees nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    FloatField,
    Func,
    Max,
    OuterRef,
    Q,
    Sum,
    When,
)
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.clients.models import Channel
from etabli.core.errors import NotFound, PermissionDenied, ValidationFailed
from etabli.materials.models import (
    EntryKind,
    LocationKind,
    MaterialSlip,
    MaterialSlipLine,
    MetalEntry,
    SlipKind,
    StoneEntry,
)
from etabli.production.models import (
    ACTIVE_PIECE_STATUSES,
    Piece,
    PieceStatus,
    StepRun,
    StepStatus,
)
from etabli.workshops.models import STEP_ORDER, Operation, StepKind, Workshop

from .summaries import COUNTERS

DAY = 86400.0
MAX_PERIOD_DAYS = 3 * 366
READER_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.SALES, Role.WORKSHOP})


# ---------------------------------------------------------------------------------------------
# filters


@dataclass(frozen=True)
class ReportFilters:
    """What a report is about: a period (required, both days included) and optional filters."""

    start: dt.date
    end: dt.date
    workshop_id: int | None = None
    step: str | None = None
    client_id: int | None = None
    channel: str | None = None
    model: str | None = None
    alloy_id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.start, dt.date) or not isinstance(self.end, dt.date):
            raise ValidationFailed(_("Give the period: a start and an end date."),
                                   code="period_required")
        if self.start.year < 1900 or self.end.year > 2999:
            raise ValidationFailed(_("The period is out of range."), code="bad_period",
                                   details={"field": "start"})
        if self.end < self.start:
            raise ValidationFailed(_("The period ends before it starts."), code="bad_period",
                                   details={"field": "end"})
        if (self.end - self.start).days >= MAX_PERIOD_DAYS:
            raise ValidationFailed(_("A report covers at most three years."), code="bad_period",
                                   details={"field": "end"})
        if self.step and self.step not in StepKind.values:
            raise ValidationFailed(_("Unknown step: %(v)s.") % {"v": self.step},
                                   details={"field": "step"})
        if self.channel and self.channel not in Channel.values:
            raise ValidationFailed(_("Unknown channel: %(v)s.") % {"v": self.channel},
                                   details={"field": "channel"})
        if self.model is not None and (len(self.model) > 60
                                       or any(ord(c) < 32 for c in self.model)):
            raise ValidationFailed(_("A model reference is at most 60 printable characters."),
                                   details={"field": "model"})

    @classmethod
    def parse(cls, data: Mapping) -> ReportFilters:
        """From query parameters (strings; blanks mean "no filter"). Bad input → 400."""
        def text(name: str) -> str:
            value = data.get(name)
            return str(value).strip() if value is not None else ""

        def day(name: str) -> dt.date:
            value = text(name)
            if not value:
                raise ValidationFailed(_("Give the period: a start and an end date."),
                                       code="period_required", details={"field": name})
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValidationFailed(_("Not a date (YYYY-MM-DD): %(v)s.") % {"v": value[:40]},
                                       details={"field": name}) from None

        def number(name: str) -> int | None:
            value = text(name)
            if not value:
                return None
            if not value.isdigit() or len(value) > 12:
                raise ValidationFailed(_("Not a valid id: %(v)s.") % {"v": value[:40]},
                                       details={"field": name})
            return int(value)

        return cls(start=day("start"), end=day("end"), workshop_id=number("workshop_id"),
                   step=text("step") or None, client_id=number("client_id"),
                   channel=text("channel") or None, model=text("model") or None,
                   alloy_id=number("alloy_id"))

    @classmethod
    def month(cls, year: int, month: int, **kwargs) -> ReportFilters:
        start = dt.date(year, month, 1)
        nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
        return cls(start=start, end=nxt - dt.timedelta(days=1), **kwargs)

    def as_query(self) -> dict[str, str]:
        return {k: (v.isoformat() if isinstance(v, dt.date) else str(v))
                for k, v in asdict(self).items() if v not in (None, "")}

    @property
    def piece_filtered(self) -> bool:
        return any(v for v in (self.client_id, self.channel, self.model, self.alloy_id))


def can_read_reports(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and user.role in READER_ROLES)


@dataclass(frozen=True)
class Scope:
    house: bool  # sees house-wide figures (lead times, on-time delivery)
    workshop_ids: frozenset[int] | None  # None: every workshop
    sees_values: bool


def scope_of(user, filters: ReportFilters) -> Scope:
    """Who sees what; a filter outside the user's scope is refused (404: we never say)."""
    if not can_read_reports(user):
        raise NotFound(_("Not found."))
    if user.role == Role.WORKSHOP:
        own = frozenset(user.workshop_ids())
        if filters.workshop_id is not None and filters.workshop_id not in own:
            raise NotFound(_("No such workshop."))
        if filters.client_id is not None or filters.channel:
            raise PermissionDenied(_("Workshop figures are not filtered by client or channel."))
        ids = frozenset({filters.workshop_id}) if filters.workshop_id else own
        return Scope(house=False, workshop_ids=ids, sees_values=False)
    ids = frozenset({filters.workshop_id}) if filters.workshop_id else None
    return Scope(house=True, workshop_ids=ids, sees_values=user.sees_prices)


# ---------------------------------------------------------------------------------------------
# database helpers


class Seconds(Func):
    """end − start in seconds, as a float (PostgreSQL: EXTRACT EPOCH; SQLite: julianday)."""

    arg_joiner = " - "
    template = "EXTRACT(EPOCH FROM (%(expressions)s))"
    output_field = FloatField()

    def __init__(self, end, start, **extra):
        super().__init__(end, start, **extra)

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(compiler, conn, template="((julianday(%(expressions)s)) * 86400.0)",
                           arg_joiner=") - julianday(", **extra)


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate (linear interpolation between the closest values)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _is_pg() -> bool:
    return connection.vendor == "postgresql"


def percentile(values: list[float], fraction: float) -> float | None:
    """Same as percentile_cont: linear interpolation on the sorted values."""
    if not values:
        return None
    values = sorted(values)
    pos = fraction * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _days(seconds) -> float | None:
    return None if seconds is None else round(float(seconds) / DAY, 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 1) if whole else None


def _q3(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.001"))


def _bounds(f: ReportFilters) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(f.start, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return since, until


def _week(value) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.date()
    return value


def _step_label(step: str) -> str:
    return str(StepKind(step).label) if step in StepKind.values else step


PIECE_DIMENSIONS = ("order__client_id", "order__channel", "line__model_reference",
                    "line__alloy_id")


def _dimensions(f: ReportFilters, fields: tuple[str, ...] = PIECE_DIMENSIONS) -> dict:
    """The filters on what a piece is (client, channel, model, alloy), as lookups on `fields`
    (a piece's by default)."""
    return {field: value for field, value in zip(
        fields, (f.client_id, f.channel, f.model, f.alloy_id), strict=True) if value}


def _pieces(f: ReportFilters, scope: Scope):
    """The pieces the figures are about (order/line filters; a workshop filter keeps the
    pieces that had a step at the workshop)."""
    qs = Piece.objects.filter(**_dimensions(f))
    if scope.workshop_ids is not None:
        qs = qs.filter(Exists(StepRun.objects.filter(piece=OuterRef("pk"),
                                                     workshop_id__in=scope.workshop_ids)))
    return qs


def _runs(f: ReportFilters, scope: Scope):
    """Step runs the step-level figures are about (skipped runs never count)."""
    qs = StepRun.objects.exclude(status=StepStatus.SKIPPED)
    if f.piece_filtered:
        qs = qs.filter(piece__in=Piece.objects.filter(**_dimensions(f)).values("pk"))
    if scope.workshop_ids is not None:
        qs = qs.filter(workshop_id__in=scope.workshop_ids)
    if f.step:
        qs = qs.filter(step=f.step)
    return qs


# ---------------------------------------------------------------------------------------------
# the KPIs


def _distribution(qs, seconds_expr, *, week_field: str | None = None) -> tuple[dict, list]:
    """count / median / p90 (days) of `seconds_expr` over `qs`, and per week of `week_field`."""
    qs = qs.annotate(_secs=seconds_expr).filter(_secs__isnull=False)
    weekly: list[dict] = []
    if _is_pg():
        agg = qs.aggregate(n=Count("pk"), median=PercentileCont("_secs", 0.5),
                           p90=PercentileCont("_secs", 0.9), mean=Avg("_secs"))
        if week_field:
            for row in (qs.annotate(_week=TruncWeek(week_field)).values("_week")
                        .annotate(n=Count("pk"), median=PercentileCont("_secs", 0.5))
                        .order_by("_week")):
                weekly.append({"week": _week(row["_week"]), "count": row["n"],
                               "median_days": _days(row["median"])})
        return ({"count": agg["n"], "median_days": _days(agg["median"]),
                 "p90_days": _days(agg["p90"]), "mean_days": _days(agg["mean"])}, weekly)
    fields = ["_secs"] + (["_week"] if week_field else [])
    if week_field:
        qs = qs.annotate(_week=TruncWeek(week_field))
    rows = list(qs.values_list(*fields))
    values = [r[0] for r in rows]
    if week_field:
        per: dict[dt.date, list[float]] = {}
        for secs, week in rows:
            per.setdefault(_week(week), []).append(secs)
        weekly = [{"week": w, "count": len(v), "median_days": _days(percentile(v, 0.5))}
                  for w, v in sorted(per.items())]
    return ({"count": len(values), "median_days": _days(percentile(values, 0.5)),
             "p90_days": _days(percentile(values, 0.9)),
             "mean_days": _days(sum(values) / len(values)) if values else None}, weekly)


def lead_times(f: ReportFilters, scope: Scope, since, until) -> dict:
    pieces = _pieces(f, scope)
    # Launch → manufacturing complete: each piece's last manufacturing run that ended done
    # (a piece sent back to manufacturing is made again), when that end is in the period.
    later = StepRun.objects.filter(piece=OuterRef("piece"), step=StepKind.MANUFACTURING,
                                   status=StepStatus.DONE, reworked=False,
                                   actual_finish__gt=OuterRef("actual_finish"))
    manu = (StepRun.objects.filter(piece__in=pieces.values("pk"), step=StepKind.MANUFACTURING,
                                   status=StepStatus.DONE, reworked=False,
                                   actual_finish__gte=since,
                                   actual_finish__lt=until)
            .exclude(Exists(later)))
    manufacturing, _weekly = _distribution(
        manu, Seconds(F("actual_finish"), F("piece__order__launched_at")))
    delivered = pieces.filter(delivered_at__gte=since, delivered_at__lt=until)
    delivery, weekly = _distribution(delivered, Seconds(F("delivered_at"), F("order__created_at")),
                                     week_field="delivered_at")
    return {"manufacturing": manufacturing, "delivery": delivery, "weekly": weekly}


def step_times(f: ReportFilters, scope: Scope, since, until) -> tuple[list, list]:
    done = _runs(f, scope).filter(status=StepStatus.DONE, reworked=False,
                                  actual_finish__gte=since,
                                  actual_finish__lt=until, actual_start__isnull=False)
    done = done.annotate(_secs=Seconds(F("actual_finish"), F("actual_start")))
    per_step = {r["step"]: r for r in done.values("step").annotate(
        n=Count("pk"), actual=Avg("_secs"), planned=Avg("planned_days"),
        late=Count("pk", filter=Q(_secs__gt=F("planned_days") * DAY)))}
    steps = [{"step": s, "label": _step_label(s), "runs": r["n"],
              "actual_days": _days(r["actual"]),
              "planned_days": round(float(r["planned"] or 0), 2),
              "over_plan": r["late"]}
             for s in STEP_ORDER if (r := per_step.get(s))]
    workshops = [{"workshop_id": r["workshop_id"], "workshop": r["workshop__name"],
                  "runs": r["n"], "actual_days": _days(r["actual"]),
                  "planned_days": round(float(r["planned"] or 0), 2)}
                 for r in done.values("workshop_id", "workshop__name").annotate(
                     n=Count("pk"), actual=Avg("_secs"), planned=Avg("planned_days"))
                 .order_by("workshop__name")]
    return steps, workshops


def _pieces_right_first_time(f: ReportFilters, scope: Scope, since, until) -> dict:
    agg = (_pieces(f, scope).filter(delivered_at__gte=since, delivered_at__lt=until)
           .aggregate(n=Count("pk"), rft=Count("pk", filter=Q(rework_count=0))))
    return {"finished": agg["n"], "right_first_time": agg["rft"],
            "rate": _rate(agg["rft"], agg["n"])}


def _runs_right_first_time(f: ReportFilters, scope: Scope, since, until) -> dict:
    agg = (_runs(f, scope).filter(status=StepStatus.DONE, reworked=False,
                                  actual_finish__gte=since,
                                  actual_finish__lt=until)
           .aggregate(n=Count("pk"), first=Count("pk", filter=Q(attempt=1))))
    return {"finished": agg["n"], "first_attempt": agg["first"],
            "rate": _rate(agg["first"], agg["n"])}


def on_time(f: ReportFilters, scope: Scope, since, until) -> dict | None:
    if not scope.house:
        return None
    agg = (_pieces(f, scope).filter(delivered_at__gte=since, delivered_at__lt=until,
                                    order__promised_date__isnull=False)
           .annotate(_day=TruncDate("delivered_at"))
           .aggregate(n=Count("pk"), ok=Count("pk", filter=Q(_day__lte=F("order__promised_date")))))
    return {"delivered": agg["n"], "on_time": agg["ok"], "rate": _rate(agg["ok"], agg["n"])}


def metal_loss(f: ReportFilters, scope: Scope, since, until) -> dict:
    jobs = MaterialSlip.objects.filter(kind=SlipKind.ISSUE, settled_at__gte=since,
                                       settled_at__lt=until)
    if scope.workshop_ids is not None:
        jobs = jobs.filter(workshop_id__in=scope.workshop_ids)
    if f.step:
        jobs = jobs.filter(operation__in=Operation.objects.filter(step=f.step).values("code"))
    if f.alloy_id:
        jobs = jobs.filter(Exists(MaterialSlipLine.objects.filter(slip=OuterRef("pk"),
                                                                 alloy_id=f.alloy_id)))
    if f.piece_filtered:
        pieces = _pieces(ReportFilters(start=f.start, end=f.end, client_id=f.client_id,
                                       channel=f.channel, model=f.model, alloy_id=f.alloy_id),
                         Scope(True, None, False))
        jobs = jobs.filter(Exists(MaterialSlip.pieces.through.objects.filter(
            materialslip_id=OuterRef("pk"), piece__in=pieces.values("pk"))))
    key = ("workshop_id", "workshop__name", "operation")
    rows: dict[tuple, dict] = {}
    for r in jobs.values(*key).annotate(n=Count("pk"), loss=Sum("loss_g"),
                                        allowance=Sum("allowance_g"),
                                        over=Count("pk", filter=Q(over_allowance=True))):
        rows[(r["workshop_id"], r["operation"])] = {
            "workshop_id": r["workshop_id"], "workshop": r["workshop__name"],
            "operation": r["operation"], "jobs": r["n"], "issued_g": Decimal("0"),
            "loss_g": _q3(r["loss"]), "allowance_g": _q3(r["allowance"]),
            "over_allowance": r["over"], "loss_fine_g": Decimal("0"), "value": None}
    issued = (MetalEntry.objects.filter(slip__in=jobs, to_location_id=F("slip__to_location_id"))
              .values("slip__workshop_id", "slip__operation").annotate(g=Sum("alloy_g")))
    for r in issued:
        if (row := rows.get((r["slip__workshop_id"], r["slip__operation"]))) is not None:
            row["issued_g"] = _q3(r["g"])
    if scope.sees_values:
        from etabli.materials.selectors import prices_on

        prices = prices_on(f.end)
        signed = Case(When(to_location__kind=LocationKind.LOSS, then=F("fine_g")),
                      default=-F("fine_g"), output_field=DecimalField(max_digits=14,
                                                                      decimal_places=3))
        for r in (MetalEntry.objects.filter(kind=EntryKind.LOSS, slip__in=jobs)
                  .values("slip__workshop_id", "slip__operation", "alloy__metal")
                  .annotate(fine=Sum(signed))):
            row = rows.get((r["slip__workshop_id"], r["slip__operation"]))
            if row is None:
                continue
            fine = _q3(r["fine"])
            row["loss_fine_g"] += fine
            price = prices.get(r["alloy__metal"])
            if price is not None:
                row["value"] = (row["value"] or Decimal("0")) + (
                    fine * price.price_per_fine_g).quantize(Decimal("0.01"))
    out = sorted(rows.values(), key=lambda r: (r["workshop"], r["operation"]))
    for row in out:
        row["loss_percent"] = (float((row["loss_g"] * 100 / row["issued_g"]).quantize(
            Decimal("0.01"))) if row["issued_g"] else None)
        if not scope.sees_values:
            row.pop("value")
            row.pop("loss_fine_g")
    issued_total = sum((r["issued_g"] for r in out), Decimal("0"))
    loss_total = sum((r["loss_g"] for r in out), Decimal("0"))
    total = {"jobs": sum(r["jobs"] for r in out), "issued_g": issued_total,
             "loss_g": loss_total,
             "loss_percent": (float((loss_total * 100 / issued_total).quantize(Decimal("0.01")))
                              if issued_total else None)}
    if scope.sees_values:
        values = [r["value"] for r in out if r["value"] is not None]
        total["value"] = sum(values, Decimal("0")) if values else None
    return {"rows": out, "total": total}


def stone_breakage(f: ReportFilters, scope: Scope, since, until) -> dict:
    entries = StoneEntry.objects.filter(workshop__isnull=False, occurred_at__gte=since,
                                        occurred_at__lt=until)
    if scope.workshop_ids is not None:
        entries = entries.filter(workshop_id__in=scope.workshop_ids)
    rows = [{"workshop_id": r["workshop_id"], "workshop": r["workshop__name"],
             "received": r["received"] or 0, "broken": r["broken"] or 0, "lost": r["lost"] or 0,
             "rate": _rate((r["broken"] or 0) + (r["lost"] or 0), r["received"] or 0)}
            for r in entries.values("workshop_id", "workshop__name").annotate(
                received=Sum("count", filter=Q(kind=EntryKind.RECEIPT,
                                               to_location__kind=LocationKind.WORKSHOP)),
                broken=Sum("count", filter=Q(kind=EntryKind.BREAKAGE)),
                lost=Sum("count", filter=Q(kind=EntryKind.LOST))).order_by("workshop__name")]
    received = sum(r["received"] for r in rows)
    bad = sum(r["broken"] + r["lost"] for r in rows)
    return {"rows": rows, "total": {"received": received,
                                    "broken": sum(r["broken"] for r in rows),
                                    "lost": sum(r["lost"] for r in rows),
                                    "rate": _rate(bad, received)}}


def work_in_progress(f: ReportFilters, scope: Scope) -> list[dict]:
    """Now (not over the period): pieces in production per current step, by status. A piece's
    cached status and step are those of its open step run, so this reads the pieces in
    production only (index on status and step), not the history of runs."""
    pieces = Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES, **_dimensions(f))
    if scope.workshop_ids is not None:
        pieces = pieces.filter(current_workshop_id__in=scope.workshop_ids)
    if f.step:
        pieces = pieces.filter(current_step=f.step)
    per = {r["current_step"]: r for r in pieces.order_by().values("current_step").annotate(
        waiting=Count("pk", filter=Q(status__in=[PieceStatus.READY, PieceStatus.RECEIVED])),
        in_transit=Count("pk", filter=Q(status=PieceStatus.IN_TRANSIT)),
        in_progress=Count("pk", filter=Q(status=PieceStatus.IN_PROGRESS)),
        on_hold=Count("pk", filter=Q(status=PieceStatus.ON_HOLD)), total=Count("pk"))}
    return [{"step": s, "label": _step_label(s), "waiting": r["waiting"],
             "in_transit": r["in_transit"], "in_progress": r["in_progress"],
             "on_hold": r["on_hold"], "total": r["total"]}
            for s in STEP_ORDER if (r := per.get(s))]


def _sql_seconds(end: str, start: str) -> str:
    if _is_pg():
        return f"EXTRACT(EPOCH FROM ({end} - {start}))"
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


def queue_times(f: ReportFilters, scope: Scope, since, until) -> tuple[list, list]:
    """Where pieces wait: for each run started in the period, start − ready, where ready is
    the later of the previous step's finish and the piece's arrival at the workshop."""
    runs = _runs(f, scope).filter(actual_start__gte=since, actual_start__lt=until,
                                  position__gt=1)
    run_sql, run_params = runs.values("pk").query.sql_with_params()
    greatest = "GREATEST" if _is_pg() else "MAX"
    sql = f"""
        WITH prev AS (
            SELECT r.id, r.step, r.workshop_id, r.actual_start, r.piece_id,
                   LAG(r.actual_finish) OVER (PARTITION BY r.piece_id ORDER BY r.position)
                       AS prev_finish
            FROM production_steprun r
            WHERE r.status <> 'skipped' AND r.piece_id IN (
                SELECT s.piece_id FROM production_steprun s WHERE s.id IN ({run_sql}))
        ), waits AS (
            SELECT p.step, p.workshop_id, {_sql_seconds("p.actual_start", f'''{greatest}(
                    COALESCE(p.prev_finish, rcv.at), COALESCE(rcv.at, p.prev_finish))''')}
                   AS secs
            FROM prev p
            LEFT JOIN (SELECT e.step_run_id, MAX(e.occurred_at) AS at
                       FROM production_trackingevent e
                       WHERE e.kind = 'received' AND e.step_run_id IN ({run_sql})
                       GROUP BY e.step_run_id) rcv ON rcv.step_run_id = p.id
            WHERE p.id IN ({run_sql})
        )
        SELECT w.step, w.workshop_id, ws.name, COUNT(*), AVG(w.secs), MAX(w.secs)
        FROM waits w JOIN workshops_workshop ws ON ws.id = w.workshop_id
        WHERE w.secs IS NOT NULL
        GROUP BY w.step, w.workshop_id, ws.name
    """
    with connection.cursor() as cur:
        cur.execute(sql, [*run_params, *run_params, *run_params])
        rows = cur.fetchall()
    per_step: dict[str, list] = {}
    per_ws: dict[int, list] = {}
    for step, ws_id, ws_name, n, avg, mx in rows:
        for bucket, key, extra in ((per_step, step, None), (per_ws, ws_id, ws_name)):
            acc = bucket.setdefault(key, [0, 0.0, 0.0, extra])
            acc[0] += n
            acc[1] += float(avg or 0) * n
            acc[2] = max(acc[2], float(mx or 0))
    steps = [{"step": s, "label": _step_label(s), "runs": v[0], "avg_days": _days(v[1] / v[0]),
              "max_days": _days(v[2])} for s in STEP_ORDER if (v := per_step.get(s))]
    workshops = sorted(({"workshop_id": k, "workshop": v[3], "runs": v[0],
                         "avg_days": _days(v[1] / v[0]), "max_days": _days(v[2])}
                        for k, v in per_ws.items()), key=lambda r: r["workshop"])
    return steps, workshops


def _weekly_delivered(f: ReportFilters, scope: Scope, since, until) -> dict:
    return {_week(r["_week"]): r["n"] for r in (
        _pieces(f, scope).filter(delivered_at__gte=since, delivered_at__lt=until)
        .annotate(_week=TruncWeek("delivered_at")).values("_week").annotate(n=Count("pk")))}


def _weekly_done_runs(f: ReportFilters, scope: Scope, since, until) -> dict:
    return {_week(r["_week"]): r["n"] for r in (
        _runs(f, scope).filter(status=StepStatus.DONE, reworked=False,
                               actual_finish__gte=since,
                               actual_finish__lt=until)
        .annotate(_week=TruncWeek("actual_finish")).values("_week").annotate(n=Count("pk")))}


def _throughput(delivered: dict | None, done: dict) -> list[dict]:
    """Per week: pieces delivered (None when the reader does not see them) and steps done."""
    weeks = sorted(set(done) | set(delivered or {}))
    return [{"week": w,
             "pieces_delivered": None if delivered is None else delivered.get(w, 0),
             "steps_completed": done.get(w, 0)} for w in weeks]


# ---------------------------------------------------------------------------------------------
# the same figures from the summary tables


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


class _StepSummary:
    """Step-level figures from `StepDay` (one row per day × step × workshop) or, when the
    pieces are filtered (client, channel, model, alloy), from `StepDayDetail`."""

    def __init__(self, f: ReportFilters, scope: Scope) -> None:
        from .models import StepDay, StepDayDetail

        if f.piece_filtered:
            qs = StepDayDetail.objects.filter(**_dimensions(f, (
                "client_id", "channel", "model_reference", "alloy_key")))
        else:
            qs = StepDay.objects.all()
        qs = qs.filter(day__gte=f.start, day__lte=f.end)
        if scope.workshop_ids is not None:
            qs = qs.filter(workshop_id__in=scope.workshop_ids)
        if f.step:
            qs = qs.filter(step=f.step)
        self.qs = qs.order_by()
        self.pairs = list(self.qs.values("step", "workshop_id", "workshop__name").annotate(
            **{c: Sum(c) for c in COUNTERS}, queue_max=Max("queue_max_seconds")))
        self.names = {r["workshop_id"]: r["workshop__name"] for r in self.pairs}

    @cached_property
    def per_step(self) -> dict:
        return self._group("step")

    @cached_property
    def per_workshop(self) -> dict:
        return self._group("workshop_id")

    def _group(self, key: str) -> dict:
        out: dict = {}
        for r in self.pairs:
            acc = out.setdefault(r[key], {"timed": 0, "work": 0.0, "planned": 0.0, "over": 0,
                                          "queued": 0, "queue": 0.0, "queue_max": None})
            acc["timed"] += r["timed_runs"] or 0
            acc["work"] += r["work_seconds"] or 0.0
            acc["planned"] += r["planned_days"] or 0.0
            acc["over"] += r["over_plan_runs"] or 0
            acc["queued"] += r["queued_runs"] or 0
            acc["queue"] += r["queue_seconds"] or 0.0
            if r["queue_max"] is not None:
                acc["queue_max"] = max(acc["queue_max"] or r["queue_max"], r["queue_max"])
        return out

    def step_times(self) -> tuple[list, list]:
        per_step, per_ws = self.per_step, self.per_workshop
        steps = [{"step": s, "label": _step_label(s), "runs": v["timed"],
                  "actual_days": _days(v["work"] / v["timed"]),
                  "planned_days": round(v["planned"] / v["timed"], 2),
                  "over_plan": v["over"]}
                 for s in STEP_ORDER if (v := per_step.get(s)) and v["timed"]]
        workshops = sorted(({"workshop_id": k, "workshop": self.names.get(k, ""),
                             "runs": v["timed"], "actual_days": _days(v["work"] / v["timed"]),
                             "planned_days": round(v["planned"] / v["timed"], 2)}
                            for k, v in per_ws.items() if v["timed"]),
                           key=lambda r: r["workshop"])
        return steps, workshops

    def queue_times(self) -> tuple[list, list]:
        per_step, per_ws = self.per_step, self.per_workshop
        steps = [{"step": s, "label": _step_label(s), "runs": v["queued"],
                  "avg_days": _days(v["queue"] / v["queued"]),
                  "max_days": _days(v["queue_max"] or 0.0)}
                 for s in STEP_ORDER if (v := per_step.get(s)) and v["queued"]]
        workshops = sorted(({"workshop_id": k, "workshop": self.names.get(k, ""),
                             "runs": v["queued"], "avg_days": _days(v["queue"] / v["queued"]),
                             "max_days": _days(v["queue_max"] or 0.0)}
                            for k, v in per_ws.items() if v["queued"]),
                           key=lambda r: r["workshop"])
        return steps, workshops

    def right_first_time(self) -> dict:
        n = sum(r["done_runs"] or 0 for r in self.pairs)
        first = sum(r["first_attempt_runs"] or 0 for r in self.pairs)
        return {"finished": n, "first_attempt": first, "rate": _rate(first, n)}

    def weekly_done(self) -> dict:
        weeks: dict[dt.date, int] = {}
        for day, n in self.qs.filter(done_runs__gt=0).values("day").annotate(
                n=Sum("done_runs")).values_list("day", "n"):
            weeks[_monday(day)] = weeks.get(_monday(day), 0) + n
        return weeks


class _PieceSummary:
    """Piece-level figures from `PieceFact` (one narrow row per piece made or delivered); a
    workshop filter keeps the pieces that had a step at the workshop, as `_pieces` does."""

    def __init__(self, f: ReportFilters, scope: Scope) -> None:
        from .models import PieceFact

        qs = PieceFact.objects.filter(**_dimensions(f, (
            "client_id", "channel", "model_reference", "alloy_id")))
        if scope.workshop_ids is not None:
            qs = qs.filter(piece_id__in=StepRun.objects.filter(
                workshop_id__in=scope.workshop_ids).values("piece_id"))
        self.qs = qs.order_by()
        self.delivered = self.qs.filter(delivered_on__gte=f.start, delivered_on__lte=f.end)
        self.made = self.qs.filter(manufactured_on__gte=f.start, manufactured_on__lte=f.end)

    @cached_property
    def _delivered_figures(self) -> dict:
        """Lead time, right first time, on time and weekly counts of the pieces delivered in
        the period: two queries on PostgreSQL (one over the period, one per week), one on
        SQLite (the values, reduced here)."""
        if _is_pg():
            agg = self.delivered.aggregate(
                n=Count("pk"), median=PercentileCont("lead_seconds", 0.5),
                p90=PercentileCont("lead_seconds", 0.9), mean=Avg("lead_seconds"),
                rft=Count("pk", filter=Q(right_first_time=True)),
                promised=Count("pk", filter=Q(on_time__isnull=False)),
                ok=Count("pk", filter=Q(on_time=True)))
            weeks = [(_week(r["_week"]), r["n"], r["median"]) for r in (
                self.delivered.annotate(_week=TruncWeek("delivered_on")).values("_week")
                .annotate(n=Count("pk"), median=PercentileCont("lead_seconds", 0.5))
                .order_by("_week"))]
        else:
            rows = list(self.delivered.values_list("lead_seconds", "right_first_time",
                                                   "on_time", "delivered_on"))
            values = [r[0] for r in rows]
            per: dict[dt.date, list[float]] = {}
            for secs, _rft, _ok, day in rows:
                per.setdefault(_monday(day), []).append(secs)
            agg = {"n": len(rows), "median": percentile(values, 0.5),
                   "p90": percentile(values, 0.9),
                   "mean": sum(values) / len(values) if values else None,
                   "rft": sum(1 for r in rows if r[1]),
                   "promised": sum(1 for r in rows if r[2] is not None),
                   "ok": sum(1 for r in rows if r[2])}
            weeks = [(w, len(v), percentile(v, 0.5)) for w, v in sorted(per.items())]
        return {"agg": agg, "weeks": weeks}

    def lead_times(self) -> dict:
        manufacturing, _weekly = _distribution(self.made, F("manufacturing_seconds"))
        fig = self._delivered_figures
        agg = fig["agg"]
        delivery = {"count": agg["n"], "median_days": _days(agg["median"]),
                    "p90_days": _days(agg["p90"]), "mean_days": _days(agg["mean"])}
        weekly = [{"week": w, "count": n, "median_days": _days(median)}
                  for w, n, median in fig["weeks"]]
        return {"manufacturing": manufacturing, "delivery": delivery, "weekly": weekly}

    def right_first_time(self) -> dict:
        agg = self._delivered_figures["agg"]
        return {"finished": agg["n"], "right_first_time": agg["rft"],
                "rate": _rate(agg["rft"], agg["n"])}

    def on_time(self) -> dict:
        agg = self._delivered_figures["agg"]
        return {"delivered": agg["promised"], "on_time": agg["ok"],
                "rate": _rate(agg["ok"], agg["promised"])}

    def weekly_delivered(self) -> dict:
        return {w: n for w, n, _median in self._delivered_figures["weeks"]}


def kpis(user, filters: ReportFilters, *, summaries: bool = True) -> dict:
    """Every KPI of the period for `user` (scoped); see docs/reports.md for the definitions.

    The step and piece figures come from the summary tables (`reports.models`); metal,
    stones and work in progress from their own tables. `summaries=False` computes the step
    and piece figures from the history instead (the tests compare both)."""
    scope = scope_of(user, filters)
    since, until = _bounds(filters)
    if summaries:
        steps_from = _StepSummary(filters, scope)
        steps, workshops = steps_from.step_times()
        queue_steps, queue_workshops = steps_from.queue_times()
        runs_rft = steps_from.right_first_time()
        weekly_steps = steps_from.weekly_done()
    else:
        steps, workshops = step_times(filters, scope, since, until)
        queue_steps, queue_workshops = queue_times(filters, scope, since, until)
        runs_rft = _runs_right_first_time(filters, scope, since, until)
        weekly_steps = _weekly_done_runs(filters, scope, since, until)
    pieces_from = _PieceSummary(filters, scope) if summaries else None
    if not scope.house:
        lead, pieces_rft, punctual, weekly_pieces = None, None, None, None
    elif pieces_from is not None:
        lead = pieces_from.lead_times()
        pieces_rft, punctual = pieces_from.right_first_time(), pieces_from.on_time()
        weekly_pieces = pieces_from.weekly_delivered()
    else:
        lead = lead_times(filters, scope, since, until)
        pieces_rft = _pieces_right_first_time(filters, scope, since, until)
        punctual = on_time(filters, scope, since, until)
        weekly_pieces = _weekly_delivered(filters, scope, since, until)
    return {
        "filters": filters.as_query(),
        "scope": "house" if scope.house else "workshop",
        "sees_values": scope.sees_values,
        "lead_time": lead,
        "steps": steps,
        "workshops": workshops,
        "right_first_time": {"pieces": pieces_rft, "runs": runs_rft},
        "metal_loss": metal_loss(filters, scope, since, until),
        "stone_breakage": stone_breakage(filters, scope, since, until),
        "on_time": punctual,
        "wip": work_in_progress(filters, scope),
        "queue": queue_steps,
        "queue_workshops": queue_workshops,
        "throughput": _throughput(weekly_pieces, weekly_steps),
    }


def filter_choices(user) -> dict:
    """What the filter form offers (scoped: a workshop member sees only their workshops)."""
    from etabli.clients.models import Client
    from etabli.materials.models import Alloy

    workshops = list(Workshop.objects.visible_to(user).order_by("name").values_list("pk", "name"))
    house = user.role != Role.WORKSHOP
    return {
        "workshops": workshops,
        "steps": list(StepKind.choices),
        "clients": (list(Client.objects.visible_to(user).order_by("name")
                         .values_list("pk", "name")) if house else []),
        "channels": list(Channel.choices) if house else [],
        "alloys": list(Alloy.objects.order_by("code").values_list("pk", "name")),
    }


