"""Detection: one pass of every alert rule, in set-based queries over what is open now.

Each detector reads only open things through indexed filters (active pieces by status and due
date, unreceived slips by status, open nonconformities, waiting change requests, recent ledger
entries), never the whole history, so a pass costs the same number of queries however many
pieces the house has made. It returns the causes it sees; `run_detection` then opens an alert
for each new cause, updates the ones already open (days late, severity) and resolves the open
alerts whose cause has gone away.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from etabli.core.models import AuditEntry
from etabli.production.planning import safety_buffer_days

from .models import Alert, AlertKind, AlertRule, AlertStatus, ObservedDuration, Severity

# Observed durations count only with enough history behind them.
MIN_SAMPLE = 5
# How many recent runs per step and workshop the observed median is taken over.
SAMPLE_SIZE = 50
_KEY_CHUNK = 500


@dataclass
class Finding:
    cause_key: str
    measure: float
    params: dict
    piece_id: int | None = None
    order_id: int | None = None
    workshop_id: int | None = None
    critical: bool = False
    extra: dict = field(default_factory=dict)


def _days(delta: dt.timedelta) -> int:
    return max(0, delta.days)


def _severity(rule: AlertRule, finding: Finding) -> str:
    if finding.critical:
        return Severity.CRITICAL
    if rule.critical_threshold is not None:
        # Whole days compare with the Decimal threshold exactly as they are (most findings);
        # other measures through their decimal text, as the threshold was entered.
        measure = finding.measure
        if not isinstance(measure, int):
            measure = Decimal(str(measure))
        if measure >= rule.critical_threshold:
            return Severity.CRITICAL
    return rule.severity


# ---------------------------------------------------------------------------------------------
# the rules


_open_runs_memo: tuple[dt.datetime, dict] | None = None


def _forget_open_runs() -> None:
    global _open_runs_memo
    _open_runs_memo = None


def open_runs(now: dt.datetime) -> dict[int, tuple]:
    """Every open step run (one per piece in production): id → (planned days, start). One
    read of a covering partial index on PostgreSQL (`steprun_open_idx`), shared by the rules of
    one pass (`now` identifies the pass)."""
    global _open_runs_memo
    from etabli.production.models import OPEN_STEP_STATUSES, StepRun

    if _open_runs_memo is not None and _open_runs_memo[0] is now:
        return _open_runs_memo[1]
    runs = {r[0]: r[1:] for r in StepRun.objects.filter(status__in=OPEN_STEP_STATUSES)
            .order_by().values_list("id", "planned_days", "actual_start")}
    _open_runs_memo = (now, runs)
    return runs


def detect_step_overdue(rule: AlertRule, now: dt.datetime, today: dt.date) -> list[Finding]:
    """A piece's current step is past its planned due date (by more than `threshold` days), or
    has been in progress longer than its planned days plus `margin_percent`.

    Reads the active pieces (what is open now) and the open runs (their planned days and
    start); the overrun test is made here since it scales a duration by each run's planned
    days, which SQL does not do the same way on every database we run on."""
    from etabli.production.models import ACTIVE_PIECE_STATUSES, Piece, PieceStatus

    grace = int(rule.threshold)
    late_before = today - dt.timedelta(days=grace)
    pieces = [p for p in Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES,
                                              current_run__isnull=False).order_by()
              .values_list("id", "serial", "order_id", "current_run_id", "current_step",
                           "current_workshop_id", "current_workshop__name", "current_due",
                           "status")
              if p[8] == PieceStatus.IN_PROGRESS or (p[7] is not None and p[7] < late_before)]
    runs = open_runs(now)
    factor = 1 + rule.margin_percent / 100
    overrun_since: dict[int, dt.datetime] = {}
    out = []
    for piece_id, serial, order_id, run_id, step, workshop_id, workshop, due, status in pieces:
        planned, started = runs.get(run_id, (None, None))
        if not (due is not None and due < late_before):
            if status != PieceStatus.IN_PROGRESS or planned is None or started is None:
                continue
            since = overrun_since.get(planned)
            if since is None:
                since = overrun_since[planned] = now - dt.timedelta(days=planned * factor)
            if not started < since:
                continue
        late_days = (today - due).days if due else 0
        params = {"serial": serial, "step": step, "workshop": workshop or "",
                  "due": due.isoformat() if due else "", "planned": planned}
        if late_days > grace:
            params |= {"days": late_days, "overrun": False}
            measure = late_days
        else:
            params |= {"days": _days(now - started), "overrun": True}
            measure = _days(now - started) - (planned or 0)
        out.append(Finding(f"step_overdue:run:{run_id}:{params['due']}", measure, params,
                           piece_id=piece_id, order_id=order_id, workshop_id=workshop_id))
    return out


def observed_days() -> dict[tuple[str, int], float]:
    """Observed median days per (step, workshop), where there is enough history."""
    return {(o.step, o.workshop_id): float(o.median_days)
            for o in ObservedDuration.objects.filter(sample_size__gte=MIN_SAMPLE)}


def detect_order_at_risk(rule: AlertRule, now: dt.datetime, today: dt.date) -> list[Finding]:
    """A launched order's projected finish (its slowest piece: the open step, then the pending
    ones, from observed median durations where there is history, planned ones otherwise) plus
    the safety buffer passes its promised date by more than `threshold` days."""
    from etabli.orders.models import OrderStatus
    from etabli.production.models import ACTIVE_PIECE_STATUSES, Piece, StepRun, StepStatus

    pieces = list(Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES,
                                       order__status=OrderStatus.LAUNCHED,
                                       order__promised_date__isnull=False).order_by()
                  .values_list("id", "order_id", "order__reference", "order__promised_date",
                               "current_due", "current_step", "current_workshop_id",
                               "current_run_id"))
    medians = {(o.step, o.workshop_id): o.median_days
               for o in ObservedDuration.objects.filter(sample_size__gte=MIN_SAMPLE)}
    observed = {k: float(v) for k, v in medians.items()}
    # When the open step started (used only where it has an observed median to go by).
    runs = open_runs(now)
    started_at = {run_id: runs[run_id][1] for run_id in (p[7] for p in pieces)
                  if run_id in runs}
    # The pending steps' days per piece: the observed median where there is history, else the
    # planned days — summed by the database in one pass over the pending runs (a covering
    # partial index on PostgreSQL) joined to the few observed medians; the medians' sum stays
    # a Decimal, as stored, so that a sum of whole days stays whole.
    pending: dict[int, int | Decimal] = {}
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT r.piece_id,
                       SUM(CASE WHEN o.id IS NULL THEN r.planned_days ELSE 0 END),
                       SUM(o.median_days)
                FROM {q(StepRun._meta.db_table)} r
                LEFT JOIN {q(ObservedDuration._meta.db_table)} o
                  ON o.step = r.step AND o.workshop_id = r.workshop_id AND o.sample_size >= %s
                WHERE r.status = %s
                GROUP BY r.piece_id""", [MIN_SAMPLE, StepStatus.PENDING])
        for piece_id, planned_days, typical in cursor.fetchall():
            planned_days = int(planned_days or 0)
            # (SQLite sums the stored two-decimal medians as floats: back to two decimals)
            pending[piece_id] = planned_days if typical is None \
                else planned_days + Decimal(str(round(typical, 2)))
    orders: dict[int, dict] = {}
    tz = timezone.get_current_timezone()
    for (piece_id, order_id, reference, promised, due, step, workshop_id,
         run_id) in pieces:
        end = due or today
        typical = observed.get((step, workshop_id))
        started = started_at.get(run_id)
        if typical is not None and started is not None:
            end = started.astimezone(tz).date() + dt.timedelta(days=math.ceil(typical))
        end = max(end, today) + dt.timedelta(days=math.ceil(pending.get(piece_id) or 0))
        o = orders.setdefault(order_id, {"finish": end, "ref": reference,
                                         "promised": promised})
        o["finish"] = max(o["finish"], end)
    out = []
    for order_id, o in orders.items():
        buffer = safety_buffer_days((o["finish"] - today).days)
        over = (o["finish"] + dt.timedelta(days=buffer) - o["promised"]).days
        if over > rule.threshold:
            out.append(Finding(
                f"order_at_risk:{order_id}", over,
                {"order": o["ref"], "finish": o["finish"].isoformat(), "buffer": buffer,
                 "promised": o["promised"].isoformat(), "days": over},
                order_id=order_id, critical=o["finish"] > o["promised"]))
    return out


def detect_transfer_not_received(rule, now, today) -> list[Finding]:
    """A transfer slip (pieces) or material slip (metal, stones) sent more than `threshold` days
    ago and still not received."""
    from etabli.materials.models import MaterialSlip, SlipStatus
    from etabli.production.models import Transfer, TransferStatus

    cutoff = now - dt.timedelta(days=float(rule.threshold))
    out = []
    for t in Transfer.objects.filter(status__in=[TransferStatus.SENT, TransferStatus.PARTIAL],
                                     sent_at__lt=cutoff).values(
            "id", "slip_number", "sent_at", "to_workshop_id", "from_workshop__name",
            "to_workshop__name"):
        days = _days(now - t["sent_at"])
        out.append(Finding(f"transfer:{t['id']}", days,
                           {"slip": t["slip_number"], "source": t["from_workshop__name"],
                            "destination": t["to_workshop__name"], "days": days,
                            "transfer_id": t["id"]},
                           workshop_id=t["to_workshop_id"]))
    for s in MaterialSlip.objects.filter(status=SlipStatus.SENT, sent_at__lt=cutoff).values(
            "id", "number", "sent_at", "workshop_id", "from_location__name",
            "to_location__name"):
        days = _days(now - s["sent_at"])
        out.append(Finding(f"material_slip:{s['id']}", days,
                           {"slip": s["number"], "source": s["from_location__name"],
                            "destination": s["to_location__name"], "days": days,
                            "material_slip_id": s["id"]},
                           workshop_id=s["workshop_id"]))
    return out


def _recent(rule: AlertRule, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=rule.lookback_days)


def detect_metal_loss(rule, now, today) -> list[Finding]:
    """An issue slip settled (within `lookback_days`) with a loss over the workshop's allowance
    for the operation by more than `threshold` grams."""
    from etabli.materials.models import MaterialSlip, SlipKind

    out = []
    for s in MaterialSlip.objects.filter(kind=SlipKind.ISSUE, over_allowance=True,
                                         settled_at__gte=_recent(rule, now)).values(
            "id", "number", "workshop_id", "workshop__name", "operation", "loss_g",
            "allowance_g"):
        excess = (s["loss_g"] or 0) - (s["allowance_g"] or 0)
        if excess <= rule.threshold:
            continue
        out.append(Finding(f"metal_loss:{s['id']}", float(excess),
                           {"slip": s["number"], "workshop": s["workshop__name"] or "",
                            "operation": s["operation"], "loss": str(s["loss_g"]),
                            "allowance": str(s["allowance_g"]), "excess": str(excess),
                            "material_slip_id": s["id"]},
                           workshop_id=s["workshop_id"]))
    return out


def metal_loss_present(rule, keys: set[str]) -> set[str]:
    """A loss alert stays while its slip is still over allowance (whatever its age)."""
    from etabli.materials.models import MaterialSlip

    ids = {int(k.split(":")[1]): k for k in keys}
    still = MaterialSlip.objects.filter(pk__in=list(ids), over_allowance=True)
    return {ids[pk] for pk in still.values_list("pk", flat=True)}


def detect_stone_breakage(rule, now, today) -> list[Finding]:
    """A breakage entry in the stone ledger (within `lookback_days`) of at least `threshold`
    stones."""
    from etabli.materials.models import EntryKind, StoneEntry

    out = []
    for e in StoneEntry.objects.filter(kind=EntryKind.BREAKAGE,
                                       occurred_at__gte=_recent(rule, now),
                                       count__gte=max(1, int(rule.threshold))).values(
            "id", "count", "carats", "lot__number", "piece_id", "piece__serial",
            "piece__order_id", "workshop_id", "workshop__name", "occurred_at"):
        out.append(Finding(f"stone_breakage:{e['id']}", e["count"],
                           {"count": e["count"], "carats": str(e["carats"]),
                            "lot": e["lot__number"], "serial": e["piece__serial"] or "",
                            "workshop": e["workshop__name"] or "",
                            "at": e["occurred_at"].isoformat()},
                           piece_id=e["piece_id"], order_id=e["piece__order_id"],
                           workshop_id=e["workshop_id"]))
    return out


def breakage_present(rule, keys: set[str]) -> set[str]:
    # The ledger is append-only: a breakage never goes away; a person resolves the alert.
    return set(keys)


def _criterion(c) -> str:
    return str(c.get("kind", "")) if isinstance(c, dict) else str(c)


def detect_qc_failure(rule, now, today) -> list[Finding]:
    """A nonconformity (a signed inspection that failed) still open or in rework for more than
    `threshold` days."""
    from etabli.quality.models import OPEN_NONCONFORMITY_STATUSES, Nonconformity

    out = []
    for nc in Nonconformity.objects.filter(
            status__in=OPEN_NONCONFORMITY_STATUSES,
            created_at__lte=now - dt.timedelta(days=float(rule.threshold))).values(
            "id", "reference", "piece_id", "piece__serial", "piece__order_id", "failed_criteria",
            "created_at"):
        days = _days(now - nc["created_at"])
        out.append(Finding(f"qc_failure:{nc['id']}", days,
                           {"serial": nc["piece__serial"], "nc": nc["reference"],
                            "failed": ", ".join(_criterion(c) for c in nc["failed_criteria"] or []),
                            "days": days, "nonconformity_id": nc["id"]},
                           piece_id=nc["piece_id"], order_id=nc["piece__order_id"]))
    return out


def detect_piece_on_hold(rule, now, today) -> list[Finding]:
    """A piece on hold for more than `threshold` days (since its latest hold)."""
    from etabli.production.models import EventKind, Piece, PieceStatus, TrackingEvent

    holds = {r["piece_id"]: r for r in TrackingEvent.objects.filter(
        kind=EventKind.HELD, piece__status=PieceStatus.ON_HOLD).values("piece_id").annotate(
        since=Max("occurred_at"), event=Max("id"))}
    cutoff = now - dt.timedelta(days=float(rule.threshold))
    ids = [pid for pid, h in holds.items() if h["since"] < cutoff]
    out = []
    for p in Piece.objects.filter(pk__in=ids).values("id", "serial", "order_id",
                                                     "current_workshop_id",
                                                     "current_workshop__name", "current_step"):
        h = holds[p["id"]]
        days = _days(now - h["since"])
        out.append(Finding(f"piece_on_hold:{p['id']}:{h['event']}", days,
                           {"serial": p["serial"], "workshop": p["current_workshop__name"] or "",
                            "step": p["current_step"], "days": days,
                            "since": h["since"].isoformat()},
                           piece_id=p["id"], order_id=p["order_id"],
                           workshop_id=p["current_workshop_id"]))
    return out


def detect_change_request_waiting(rule, now, today) -> list[Finding]:
    """A client change request not yet decided (waiting for assessment or for a decision) for
    more than `threshold` days."""
    from etabli.orders.models import ChangeRequest, ChangeRequestStatus

    out = []
    for cr in ChangeRequest.objects.filter(
            status__in=[ChangeRequestStatus.OPEN, ChangeRequestStatus.ASSESSED],
            requested_at__lt=now - dt.timedelta(days=float(rule.threshold))).values(
            "id", "order_id", "order__reference", "requested_at", "status"):
        days = _days(now - cr["requested_at"])
        out.append(Finding(f"change_request:{cr['id']}", days,
                           {"request": cr["id"], "order": cr["order__reference"], "days": days,
                            "state": cr["status"]},
                           order_id=cr["order_id"]))
    return out


Detector = Callable[[AlertRule, dt.datetime, dt.date], list[Finding]]

DETECTORS: dict[str, tuple[Detector, Callable | None]] = {
    AlertKind.STEP_OVERDUE: (detect_step_overdue, None),
    AlertKind.ORDER_AT_RISK: (detect_order_at_risk, None),
    AlertKind.TRANSFER_NOT_RECEIVED: (detect_transfer_not_received, None),
    AlertKind.METAL_LOSS: (detect_metal_loss, metal_loss_present),
    AlertKind.STONE_BREAKAGE: (detect_stone_breakage, breakage_present),
    AlertKind.QC_FAILURE: (detect_qc_failure, None),
    AlertKind.PIECE_ON_HOLD: (detect_piece_on_hold, None),
    AlertKind.CHANGE_REQUEST_WAITING: (detect_change_request_waiting, None),
}


# ---------------------------------------------------------------------------------------------
# the pass


def _chunks(items: list, size: int = _KEY_CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _audit(action: str, alert: Alert | _Open, before: dict, after: dict) -> AuditEntry:
    return AuditEntry(actor=None, action=action, object_type="alerts.alert",
                      object_id=str(alert.pk), object_repr=str(alert)[:200],
                      order_id=alert.order_id, piece_id=alert.piece_id, before=before,
                      after=after)


@dataclass(slots=True)
class _Open:
    """An open alert that a pass changes or resolves: what its audit entry needs."""

    pk: int
    kind: str
    cause_key: str
    severity: str
    params: dict
    piece_id: int | None
    order_id: int | None

    def __str__(self) -> str:
        return f"{self.kind}:{self.cause_key}"


def run_detection(now: dt.datetime | None = None) -> dict:
    """One full pass of every rule. Returns counts: opened, updated, resolved, open."""
    _forget_open_runs()  # each pass reads the open runs once, afresh
    try:
        return _run_detection(now)
    finally:
        _forget_open_runs()


def _run_detection(now: dt.datetime | None) -> dict:
    from etabli.notifications import services as notify

    now = now or timezone.now()
    today = timezone.localdate(now)
    summary = {"opened": 0, "updated": 0, "resolved": 0}
    with transaction.atomic():
        # Locking the rules serialises concurrent passes (several workers on PostgreSQL).
        rules = {r.kind: r for r in AlertRule.objects.select_for_update().order_by("id")}
        # Plain rows: most open alerts are only compared with what detection finds.
        existing: dict[str, dict[str, tuple]] = {}
        for row in Alert.objects.not_resolved().order_by().values_list(
                "id", "kind", "cause_key", "severity", "params", "piece_id", "order_id"):
            existing.setdefault(row[1], {})[row[2]] = row
        new_alerts: list[Alert] = []
        changed: list[Alert] = []
        gone: dict[str, list[_Open]] = {}
        audits: list[AuditEntry] = []
        for kind, (detect, present) in DETECTORS.items():
            rule = rules.get(kind)
            open_now = existing.get(kind, {})
            if rule is None or not rule.enabled:
                gone.setdefault("rule_disabled", []).extend(
                    _Open(*row) for row in open_now.values())
                continue
            found = {f.cause_key: f for f in detect(rule, now, today)}
            missing = set(open_now) - set(found)
            if missing and present is not None:
                missing -= present(rule, missing)
            gone.setdefault("cause_gone", []).extend(_Open(*open_now[k]) for k in missing)
            for key, finding in found.items():
                severity = _severity(rule, finding)
                row = open_now.get(key)
                if row is not None:
                    if row[3] != severity or row[4] != finding.params:
                        alert = _Open(*row)
                        if alert.severity != severity:
                            audits.append(_audit("alert.escalated", alert,
                                                 {"severity": alert.severity},
                                                 {"severity": severity}))
                        changed.append(Alert(pk=alert.pk, severity=severity,
                                             params=finding.params, updated_at=now))
                    continue
                new_alerts.append(Alert(
                    kind=kind, severity=severity, status=AlertStatus.OPEN, cause_key=key,
                    piece_id=finding.piece_id, order_id=finding.order_id,
                    workshop_id=finding.workshop_id, assignee_id=rule.assignee_id,
                    assigned_role=rule.assigned_role, params=finding.params, opened_at=now,
                    updated_at=now))
        # A cause a person resolved stays resolved (it is the same fact, seen again).
        new_keys = [a.cause_key for a in new_alerts]
        silenced: set[str] = set()
        for chunk in _chunks(new_keys):
            silenced.update(Alert.objects.filter(
                cause_key__in=chunk, status=AlertStatus.RESOLVED, auto_resolved=False)
                .order_by().values_list("cause_key", flat=True))
        new_alerts = [a for a in new_alerts if a.cause_key not in silenced]

        if changed:
            Alert.objects.bulk_update(changed, ["severity", "params", "updated_at"],
                                      batch_size=500)
        resolved = 0
        for reason, alerts in gone.items():
            for alert in alerts:
                audits.append(_audit("alert.auto_resolved", alert, {"status": "open"},
                                     {"status": "resolved", "reason": reason}))
            # One UPDATE per reason and chunk, not a CASE per row.
            for chunk in _chunks([a.pk for a in alerts]):
                Alert.objects.filter(pk__in=chunk).update(
                    status=AlertStatus.RESOLVED, resolved_at=now, updated_at=now,
                    auto_resolved=True, resolution=reason)
            resolved += len(alerts)
        created = Alert.objects.bulk_create(new_alerts, batch_size=500)
        audits += [_audit("alert.opened", a, {}, {"kind": a.kind, "severity": a.severity,
                                                   "cause": a.cause_key}) for a in created]
        AuditEntry.objects.bulk_create(audits, batch_size=500)
        notify.alerts_opened(alerts=created)
        summary.update(opened=len(created), updated=len(changed), resolved=resolved)
    summary["open"] = Alert.objects.not_resolved().count()
    return summary


# ---------------------------------------------------------------------------------------------
# observed durations


@transaction.atomic
def refresh_observed_durations(now: dt.datetime | None = None) -> dict:
    """Recompute the median days per (step, workshop) over the latest finished runs. One
    small query per pair that has been worked (the pairs are few: steps × workshops)."""
    from etabli.production.models import StepRun, StepStatus

    now = now or timezone.now()
    done = StepRun.objects.filter(status=StepStatus.DONE, actual_start__isnull=False,
                                  actual_finish__isnull=False)
    pairs = list(done.order_by().values_list("step", "workshop_id").distinct())
    rows = []
    for step, workshop_id in pairs:
        spans = done.filter(step=step, workshop_id=workshop_id).order_by("-actual_finish")\
            .values_list("actual_start", "actual_finish")[:SAMPLE_SIZE]
        days = [(b - a).total_seconds() / 86400 for a, b in spans]
        if days:
            rows.append(ObservedDuration(step=step, workshop_id=workshop_id,
                                         median_days=Decimal(str(round(statistics.median(days),
                                                                       2))),
                                         sample_size=len(days), computed_at=now))
    ObservedDuration.objects.all().delete()
    ObservedDuration.objects.bulk_create(rows)
    return {"pairs": len(rows)}
