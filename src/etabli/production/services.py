"""Every change to pieces, their steps and transfers. Each service is one transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from etabli.core import audit
from etabli.core.errors import Conflict, NotFound, TransitionNotAllowed, ValidationFailed
from etabli.core.sequences import next_number, yearly_reference
from etabli.reports import summaries
from etabli.workshops.models import StepKind, Workshop

from . import gates, planning
from .access import check_can_plan, check_can_record
from .models import (
    OPEN_STEP_STATUSES,
    EventKind,
    HoldReason,
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
from .state import PIECE_STATUS_OF_STEP, next_status, refusal

MAX_WEIGHT_G = Decimal("5000")
PIECE_AUDIT_FIELDS = ["status", "current_step", "current_workshop", "location", "transit_to",
                      "rework_count"]


# ---------------------------------------------------------------------------------------------
# helpers


def clean_weight(value: Any, field: str = "weight_g") -> Decimal | None:
    """A weight in grams: positive, at most 5 kg, to the milligram."""
    if value is None or value == "":
        return None
    try:
        weight = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a weight in grams.") % {"value": value},
                               details={"field": field}) from exc
    if not weight.is_finite() or weight <= 0:
        raise ValidationFailed(_("A weight must be more than 0 g."), details={"field": field})
    if weight > MAX_WEIGHT_G:
        raise ValidationFailed(
            _("%(weight)s g is not a plausible piece weight (at most 5000 g).")
            % {"weight": weight}, details={"field": field})
    if weight != weight.quantize(Decimal("0.001")):
        raise ValidationFailed(_("Weights are recorded to the milligram (3 decimals)."),
                               details={"field": field})
    return weight.quantize(Decimal("0.001"))


def _clean_text(value: str | None, field: str, limit: int = 4000) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationFailed(
            _("%(field)s is too long (at most %(limit)s characters).")
            % {"field": field, "limit": limit}, details={"field": field})
    return value


def _clean_event_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = str(value).strip()
    if not value or len(value) > 64:
        raise ValidationFailed(_("client_event_id must be 1 to 64 characters."),
                               details={"field": "client_event_id"})
    return value


def _lock_visible_piece(actor, piece_id: int) -> Piece:
    piece = (Piece.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=piece_id).first())
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    return piece


def _lock_piece_and_open_run(actor, piece_id: int) -> tuple[Piece, StepRun | None]:
    """The piece, locked, with its open run (None once delivered) — in one statement when it
    can (a scan is recorded on every bench: one query less for each).

    The piece caches its open run (`current_run`; one open run per piece is a constraint).
    Both rows are locked, so if another event changed them while this one waited, PostgreSQL
    re-reads both; should that event have moved the piece on to another run, the join no
    longer matches and the piece and its open run are read again, one after the other.
    """
    piece = (Piece.objects.visible_to(actor).select_related("current_run__workshop")
             .select_for_update(of=("self", "current_run")).exclude(current_run=None)
             .filter(pk=piece_id).first())
    if piece is not None and piece.current_run.status in OPEN_STEP_STATUSES:
        return piece, piece.current_run
    piece = _lock_visible_piece(actor, piece_id)
    return piece, _open_run(piece)


def _open_run(piece: Piece) -> StepRun | None:
    # With its workshop: the event recorded on it names the workshop (one query less).
    return piece.runs.select_related("workshop").filter(status__in=OPEN_STEP_STATUSES).first()


def _next_run(piece: Piece, after: StepRun) -> StepRun | None:
    return (piece.runs.filter(position__gt=after.position, status=StepStatus.PENDING)
            .order_by("position").first())


def _sync_piece(piece: Piece, run: StepRun | None, at: dt.datetime) -> None:
    """Bring the piece's cached state in line with its open run (or with its delivery)."""
    if run is not None and run.status in PIECE_STATUS_OF_STEP:
        piece.status = PIECE_STATUS_OF_STEP[run.status]
        piece.current_run = run
        piece.current_step = run.step
        piece.current_workshop_id = run.workshop_id
        piece.current_due = run.planned_due
    else:
        piece.status = PieceStatus.DELIVERED
        piece.current_due = None
        piece.location = None
        piece.delivered_at = at
        from etabli.materials.services import piece_materials_deliver

        piece_materials_deliver(piece=piece, at=at)
    piece.last_event_at = at
    piece.save()
    if piece.status == PieceStatus.DELIVERED:
        summaries.piece_delivered(piece)


def _existing_event(piece: Piece, kind: str, client_event_id: str | None) -> TrackingEvent | None:
    """The event already recorded under this caller id, if it is this same action."""
    if client_event_id is None:
        return None
    existing = TrackingEvent.objects.filter(client_event_id=client_event_id).first()
    if existing is None:
        return None
    if existing.piece_id != piece.pk or existing.kind != kind:
        raise Conflict(
            _("This client_event_id was already used for a different event."),
            details={"client_event_id": client_event_id, "event_id": existing.pk})
    existing.replayed = True
    return existing


def _record(*, piece: Piece, run: StepRun, kind: str, actor, at: dt.datetime,
            workshop_id: int | None, weight_g: Decimal | None = None, comment: str = "",
            reason: str = "", transfer: Transfer | None = None,
            client_event_id: str | None = None, data: dict | None = None) -> TrackingEvent:
    event = TrackingEvent.objects.create(
        piece=piece, step_run=run, kind=kind, actor=actor, occurred_at=at,
        workshop_id=workshop_id, weight_g=weight_g, comment=comment, reason=reason,
        transfer=transfer, client_event_id=client_event_id, data=data or {},
    )
    if workshop_id is not None and workshop_id == run.workshop_id \
            and StepRun.workshop.is_cached(run):
        event.workshop = run.workshop
    event.replayed = False
    return event


def _transition(run: StepRun, kind: str) -> str:
    new = next_status(kind, run.status, run.held_from)
    if new is None:
        raise TransitionNotAllowed(refusal(kind, run.status),
                                   details={"step_status": run.status, "event": kind})
    return new


def _audit_piece(actor, piece: Piece, action: str, before: dict, extra: dict | None = None):
    after = audit.snapshot(piece, PIECE_AUDIT_FIELDS) | (extra or {})
    audit.record(actor=actor, action=action, obj=piece, before=before, after=after,
                 order_id=piece.order_id, piece_id=piece.pk)


def _require_open_run(piece: Piece) -> StepRun:
    return _open_or_refused(_open_run(piece))


def _open_or_refused(run: StepRun | None) -> StepRun:
    """The open run of a piece, or a refusal when it has none."""
    if run is None:
        raise TransitionNotAllowed(_("The piece has no open step: it has been delivered."))
    return run


# ---------------------------------------------------------------------------------------------
# launch


def pieces_create_for_order(*, actor, order, route_steps, house: Workshop,
                            at: dt.datetime) -> list[Piece]:
    """Create one piece per unit of every line, with its route; order receipt is done at launch.

    Called by `order_launch` inside its transaction.
    """
    pieces = []
    start_date = timezone.localtime(at).date()
    for line in order.lines.order_by("position"):
        for unit in range(1, line.quantity + 1):
            serial = f"P{timezone.localdate().strftime('%y')}-{next_number('piece-serial'):06d}"
            piece = Piece.objects.create(serial=serial, order=order, line=line, unit_no=unit,
                                         location=house)
            runs = []
            for position, rs in enumerate(route_steps, start=1):
                runs.append(StepRun(
                    piece=piece, position=position, step=rs.step, operations=list(rs.operations),
                    # A step skipped before launch may have no workshop; it is never worked,
                    # so it is parked at the house (a run always names a workshop).
                    workshop=rs.workshop or house, planned_days=rs.planned_days,
                    status=StepStatus.SKIPPED if rs.skipped else StepStatus.PENDING,
                    skip_reason=rs.skip_reason, skip_comment=rs.skip_comment,
                    skip_reference=rs.skip_reference, skip_document_id=rs.skip_document_id,
                ))
            receipt, rest = runs[0], [r for r in runs[1:] if r.status != StepStatus.SKIPPED]
            receipt.planned_start = timezone.localtime(order.created_at).date()
            receipt.planned_due = start_date
            planning.lay_out(rest, start_date)
            StepRun.objects.bulk_create(runs)
            runs = list(piece.runs.order_by("position"))
            receipt = runs[0]
            # The order receipt step is what the launch sheet was: it ends with the launch.
            receipt.status = StepStatus.READY
            receipt.save(update_fields=["status"])
            # These comments are stored in English; the pages translate them when shown.
            _record(piece=piece, run=receipt, kind=EventKind.STARTED, actor=actor, at=at,
                    workshop_id=house.pk, comment=gettext_noop("Order qualified"),
                    data={"ready_run": receipt.pk, "initial_location": house.pk})
            receipt.status = StepStatus.DONE
            receipt.actual_start = order.created_at
            receipt.actual_finish = at
            receipt.save(update_fields=["status", "actual_start", "actual_finish"])
            summaries.run_done(receipt)
            nxt = _next_run(piece, receipt)
            if nxt is not None:
                nxt.status = StepStatus.READY
                nxt.save(update_fields=["status"])
            _record(piece=piece, run=receipt, kind=EventKind.COMPLETED, actor=actor, at=at,
                    workshop_id=house.pk, comment=gettext_noop("Launched"),
                    data={"next_run": nxt.pk if nxt else None})
            _sync_piece(piece, nxt, at)
            audit.record(actor=actor, action="piece.create", obj=piece,
                         after=audit.snapshot(piece, ["serial"] + PIECE_AUDIT_FIELDS),
                         order_id=order.pk, piece_id=piece.pk)
            pieces.append(piece)
    return pieces


# ---------------------------------------------------------------------------------------------
# tracking events on one piece


@transaction.atomic
def piece_receive(*, actor, piece_id: int, weight_g: Any = None, comment: str = "",
                  client_event_id: str | None = None) -> TrackingEvent:
    """The workshop a piece was sent to confirms it arrived (and may weigh it)."""
    client_event_id = _clean_event_id(client_event_id)
    piece, open_run = _lock_piece_and_open_run(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.RECEIVED, client_event_id)) is not None:
        return dup
    weight = clean_weight(weight_g)
    comment = _clean_text(comment, "comment")
    run = _open_or_refused(open_run)
    # State first: a second scan of an arrived piece hears "already received", not "not yours".
    new_status = _transition(run, EventKind.RECEIVED)
    check_can_record(actor, piece, EventKind.RECEIVED)
    # The slip is locked with the line: two pieces of one slip received at once take turns,
    # so the second sees the first received and the slip ends "received", not "partial".
    line = (TransferLine.objects.select_related("transfer")
            .select_for_update(of=("self", "transfer"))
            .filter(piece=piece, step_run=run, received_at__isnull=True).first())
    if line is None:  # the state machine says in transit, so a slip must exist
        raise Conflict(_("No open transfer slip carries this piece."))
    before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
    at = timezone.now()
    _receive_line(line, actor=actor, weight=weight, at=at)
    run.status = new_status
    run.save(update_fields=["status"])
    piece.location_id = run.workshop_id
    piece.transit_to = None
    event = _record(piece=piece, run=run, kind=EventKind.RECEIVED, actor=actor, at=at,
                    workshop_id=run.workshop_id, weight_g=weight, comment=comment,
                    transfer=line.transfer, client_event_id=client_event_id,
                    data={"slip": line.transfer.slip_number,
                          "weight_flagged": line.weight_flagged})
    _sync_piece(piece, run, at)
    _audit_piece(actor, piece, "piece.receive", before, {"slip": line.transfer.slip_number})
    return event


def _receive_line(line: TransferLine, *, actor, weight: Decimal | None, at: dt.datetime) -> None:
    tolerance = Decimal(settings.ETABLI_WEIGHT_TOLERANCE_G)
    line.weight_received_g = weight
    line.received_by = actor
    line.received_at = at
    line.weight_flagged = bool(
        weight is not None and line.weight_sent_g is not None
        and abs(weight - line.weight_sent_g) > tolerance)
    line.save(update_fields=["weight_received_g", "received_by", "received_at",
                             "weight_flagged"])
    # One statement: the slip is received once no line of it is still waiting.
    waiting = Exists(TransferLine.objects.filter(transfer_id=OuterRef("pk"),
                                                 received_at__isnull=True))
    Transfer.objects.filter(pk=line.transfer_id).update(
        status=Case(When(waiting, then=Value(TransferStatus.PARTIAL)),
                    default=Value(TransferStatus.RECEIVED)),
        received_at=Case(When(waiting, then=F("received_at")), default=Value(at)))
    # The slip in hand no longer knows these two: read again when asked for.
    del line.transfer.status, line.transfer.received_at


@transaction.atomic
def piece_start(*, actor, piece_id: int, comment: str = "",
                client_event_id: str | None = None) -> TrackingEvent:
    client_event_id = _clean_event_id(client_event_id)
    piece, open_run = _lock_piece_and_open_run(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.STARTED, client_event_id)) is not None:
        return dup
    comment = _clean_text(comment, "comment")
    check_can_record(actor, piece, EventKind.STARTED)
    run = _open_or_refused(open_run)
    new_status = _transition(run, EventKind.STARTED)
    if run.status == StepStatus.READY and piece.location_id != run.workshop_id:
        raise TransitionNotAllowed(
            _("The piece is not at %(workshop)s yet: send it there first.")
            % {"workshop": run.workshop.name},
            details={"step_status": run.status, "workshop": run.workshop.code})
    gates.check_start(piece, run)
    before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
    at = timezone.now()
    run.status = new_status
    first_start = run.actual_start is None
    run.actual_start = run.actual_start or at
    run.save(update_fields=["status", "actual_start"])
    if first_start:
        summaries.run_started(run, at)
    event = _record(piece=piece, run=run, kind=EventKind.STARTED, actor=actor, at=at,
                    workshop_id=run.workshop_id, comment=comment,
                    client_event_id=client_event_id)
    _sync_piece(piece, run, at)
    _audit_piece(actor, piece, "piece.start", before)
    return event


@transaction.atomic
def piece_complete(*, actor, piece_id: int, weight_g: Any = None, comment: str = "",
                   client_event_id: str | None = None) -> TrackingEvent:
    """Finish the current step; the next step of the route becomes ready."""
    client_event_id = _clean_event_id(client_event_id)
    piece, open_run = _lock_piece_and_open_run(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.COMPLETED, client_event_id)) is not None:
        return dup
    weight = clean_weight(weight_g)
    comment = _clean_text(comment, "comment")
    check_can_record(actor, piece, EventKind.COMPLETED)
    run = _open_or_refused(open_run)
    new_status = _transition(run, EventKind.COMPLETED)
    gates.check_leave(piece, run)
    before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
    at = timezone.now()
    run.status = new_status
    run.actual_finish = at
    run.save(update_fields=["status", "actual_finish"])
    summaries.run_done(run)
    nxt = _next_run(piece, run)
    if nxt is not None:
        nxt.status = StepStatus.READY
        nxt.save(update_fields=["status"])
    event = _record(piece=piece, run=run, kind=EventKind.COMPLETED, actor=actor, at=at,
                    workshop_id=run.workshop_id, weight_g=weight, comment=comment,
                    client_event_id=client_event_id,
                    data={"next_run": nxt.pk if nxt else None})
    _sync_piece(piece, nxt, at)
    if nxt is None:
        from etabli.orders.services import order_mark_delivered_if_complete

        order_mark_delivered_if_complete(order_id=piece.order_id, at=at)
    _audit_piece(actor, piece, "piece.complete", before,
                 {"step": run.step, "next_step": nxt.step if nxt else None})
    return event


@transaction.atomic
def piece_hold(*, actor, piece_id: int, reason: str, comment: str = "",
               client_event_id: str | None = None) -> TrackingEvent:
    client_event_id = _clean_event_id(client_event_id)
    piece, open_run = _lock_piece_and_open_run(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.HELD, client_event_id)) is not None:
        return dup
    if reason not in HoldReason.values:
        raise ValidationFailed(
            _("Unknown hold reason '%(reason)s'. Choose one of: %(choices)s.")
            % {"reason": reason, "choices": ", ".join(HoldReason.values)},
            details={"field": "reason"})
    comment = _clean_text(comment, "comment")
    if reason == HoldReason.OTHER and not comment:
        raise ValidationFailed(_("Say why the piece is held."), details={"field": "comment"})
    check_can_record(actor, piece, EventKind.HELD)
    run = _open_or_refused(open_run)
    new_status = _transition(run, EventKind.HELD)
    before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
    at = timezone.now()
    run.held_from = run.status
    run.status = new_status
    run.save(update_fields=["status", "held_from"])
    event = _record(piece=piece, run=run, kind=EventKind.HELD, actor=actor, at=at,
                    workshop_id=piece.location_id, comment=comment, reason=reason,
                    client_event_id=client_event_id)
    _sync_piece(piece, run, at)
    _audit_piece(actor, piece, "piece.hold", before, {"reason": reason})
    return event


@transaction.atomic
def piece_release(*, actor, piece_id: int, comment: str = "",
                  client_event_id: str | None = None) -> TrackingEvent:
    client_event_id = _clean_event_id(client_event_id)
    piece, open_run = _lock_piece_and_open_run(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.RELEASED, client_event_id)) is not None:
        return dup
    comment = _clean_text(comment, "comment")
    check_can_record(actor, piece, EventKind.RELEASED)
    run = _open_or_refused(open_run)
    new_status = _transition(run, EventKind.RELEASED)
    before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
    at = timezone.now()
    run.status = new_status
    run.held_from = ""
    run.save(update_fields=["status", "held_from"])
    event = _record(piece=piece, run=run, kind=EventKind.RELEASED, actor=actor, at=at,
                    workshop_id=piece.location_id, comment=comment,
                    client_event_id=client_event_id)
    _sync_piece(piece, run, at)
    _audit_piece(actor, piece, "piece.release", before)
    return event


@transaction.atomic
def piece_note(*, actor, piece_id: int, comment: str, weight_g: Any = None,
               client_event_id: str | None = None) -> TrackingEvent:
    client_event_id = _clean_event_id(client_event_id)
    piece = _lock_visible_piece(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.NOTE, client_event_id)) is not None:
        return dup
    comment = _clean_text(comment, "comment")
    weight = clean_weight(weight_g)
    if not comment and weight is None:
        raise ValidationFailed(_("A note needs a comment or a weight."),
                               details={"field": "comment"})
    check_can_record(actor, piece, EventKind.NOTE)
    run = _open_run(piece) or piece.current_run
    if run is None:
        raise TransitionNotAllowed(_("This piece has no step to attach a note to."))
    at = timezone.now()
    event = _record(piece=piece, run=run, kind=EventKind.NOTE, actor=actor, at=at,
                    workshop_id=piece.location_id, weight_g=weight, comment=comment,
                    client_event_id=client_event_id)
    Piece.objects.filter(pk=piece.pk).update(last_event_at=at)
    return event


@transaction.atomic
def piece_rework(*, actor, piece_id: int, target_run_id: int, comment: str,
                 client_event_id: str | None = None) -> TrackingEvent:
    """Send a piece back to an earlier step: the steps from there to here are done again.

    The current step ends as reworked, copies of the steps to redo are added after it, and the
    piece no longer counts as right first time.
    """
    client_event_id = _clean_event_id(client_event_id)
    piece = _lock_visible_piece(actor, piece_id)
    if (dup := _existing_event(piece, EventKind.REWORK, client_event_id)) is not None:
        return dup
    comment = _clean_text(comment, "comment")
    if not comment:
        raise ValidationFailed(_("Say what must be redone and why."),
                               details={"field": "comment"})
    check_can_record(actor, piece, EventKind.REWORK)
    run = _require_open_run(piece)
    new_status = _transition(run, EventKind.REWORK)
    target = piece.runs.filter(pk=target_run_id).first()
    if target is None:
        raise NotFound(_("Step %(id)s is not part of this piece's route.")
                       % {"id": target_run_id},
                       details={"field": "target_run_id"})
    if target.position > run.position or target.status not in (StepStatus.DONE,) \
            and target.pk != run.pk:
        raise ValidationFailed(
            _("A piece can only be sent back to a step it has already done."),
                               details={"field": "target_run_id"})
    if target.step == StepKind.ORDER_RECEIPT:
        raise ValidationFailed(
            _("Order receipt cannot be redone; raise a change request instead."),
                               details={"field": "target_run_id"})
    last_rework = (piece.runs.filter(reworked=True, position__lt=run.position)
                   .order_by("-position").first())
    if target.reworked or (last_rework and target.position <= last_rework.position):
        raise ValidationFailed(_("A piece can only be sent back to a step done since its "
                                 "last rework."), details={"field": "target_run_id"})
    before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
    at = timezone.now()
    to_redo = list(piece.runs.filter(position__gte=target.position, position__lt=run.position,
                                     status=StepStatus.DONE).order_by("position")) + [run]
    later = list(piece.runs.filter(position__gt=run.position).order_by("-position"))
    for other in later:  # make room, highest first so positions never collide
        other.position += len(to_redo)
        other.save(update_fields=["position"])
    run.status = new_status
    run.held_from = ""
    run.reworked = True
    run.actual_finish = at
    run.save(update_fields=["status", "held_from", "reworked", "actual_finish"])
    copies = [StepRun(piece=piece, position=run.position + i, step=src.step,
                      operations=list(src.operations), workshop_id=src.workshop_id,
                      planned_days=src.planned_days, attempt=src.attempt + 1,
                      status=StepStatus.PENDING)
              for i, src in enumerate(to_redo, start=1)]
    pending_after = [r for r in sorted(later, key=lambda r: r.position)
                     if r.status == StepStatus.PENDING]
    planning.lay_out(copies + pending_after, timezone.localtime(at).date())
    StepRun.objects.bulk_create(copies)
    for r in pending_after:
        r.save(update_fields=["planned_start", "planned_due"])
    first = piece.runs.get(position=run.position + 1)
    first.status = StepStatus.READY
    first.save(update_fields=["status"])
    piece.rework_count += 1
    event = _record(piece=piece, run=run, kind=EventKind.REWORK, actor=actor, at=at,
                    workshop_id=piece.location_id, comment=comment,
                    client_event_id=client_event_id,
                    data={"target_run": target.pk, "next_run": first.pk,
                          "redo": [r.step for r in to_redo]})
    _sync_piece(piece, first, at)
    _audit_piece(actor, piece, "piece.rework", before,
                 {"back_to": target.step, "redo": [r.step for r in to_redo]})
    return event


# ---------------------------------------------------------------------------------------------
# transfers


@transaction.atomic
def pieces_send(*, actor, piece_ids: list[int], to_workshop_id: int | None = None,
                weights_g: dict[int, Any] | None = None, comment: str = "",
                client_ref: str | None = None) -> Transfer:
    """Send pieces ready for their next step to the workshop that does it, on one slip."""
    client_ref = _clean_event_id(client_ref)
    if client_ref is not None:
        existing = Transfer.objects.visible_to(actor).filter(client_ref=client_ref).first()
        if existing is not None:
            sent = set(existing.lines.values_list("piece_id", flat=True))
            if sent != set(piece_ids):
                raise Conflict(_("This client reference was already used for another slip."),
                               details={"slip": existing.slip_number})
            existing.replayed = True
            return existing
        if Transfer.objects.filter(client_ref=client_ref).exists():
            raise Conflict(_("This client reference was already used for another slip."))
    if not piece_ids:
        raise ValidationFailed(_("Choose at least one piece to send."),
                               details={"field": "pieces"})
    if len(set(piece_ids)) != len(piece_ids):
        raise ValidationFailed(_("A piece is listed twice."), details={"field": "pieces"})
    if len(piece_ids) > 200:
        raise ValidationFailed(_("At most 200 pieces per slip."), details={"field": "pieces"})
    weights_g = weights_g or {}
    unknown = set(weights_g) - set(piece_ids)
    if unknown:
        raise ValidationFailed(_("Weights are given for pieces not on the slip."),
                               details={"field": "weights_g"})
    comment = _clean_text(comment, "comment")
    pieces, runs, weights = [], [], {}
    for pid in sorted(piece_ids):  # a fixed locking order avoids deadlocks between senders
        piece = _lock_visible_piece(actor, pid)
        check_can_record(actor, piece, EventKind.SENT)
        run = _require_open_run(piece)
        if run.status == StepStatus.READY and piece.location_id == run.workshop_id:
            raise TransitionNotAllowed(
                _("%(serial)s is already at %(workshop)s: start the step there.")
                % {"serial": piece.serial, "workshop": run.workshop.name},
                details={"piece": piece.serial})
        _transition(run, EventKind.SENT)
        gates.check_send(piece, run)
        weights[pid] = clean_weight(weights_g.get(pid), field=f"weights_g.{pid}")
        pieces.append(piece)
        runs.append(run)
    origins = {p.location_id for p in pieces}
    targets = {r.workshop_id for r in runs}
    if len(origins) != 1 or len(targets) != 1:
        raise ValidationFailed(
            _("One slip goes from one place to one place: these pieces start or end in "
              "different places."), details={"field": "pieces"})
    target_id = targets.pop()
    if to_workshop_id is not None and to_workshop_id != target_id:
        target = Workshop.objects.get(pk=target_id)
        raise ValidationFailed(
            _("The next step of these pieces is done at %(workshop)s; change the route to "
              "send them elsewhere.") % {"workshop": target.name},
            details={"field": "to_workshop_id", "expected": target.code})
    at = timezone.now()
    transfer = Transfer.objects.create(
        slip_number=yearly_reference("TS", 6), from_workshop_id=origins.pop(),
        to_workshop_id=target_id, sent_by=actor, sent_at=at, comment=comment,
        client_ref=client_ref)
    for piece, run in zip(pieces, runs, strict=True):
        before = audit.snapshot(piece, PIECE_AUDIT_FIELDS)
        TransferLine.objects.create(transfer=transfer, piece=piece, step_run=run,
                                    weight_sent_g=weights[piece.pk])
        from_id = piece.location_id
        run.status = StepStatus.IN_TRANSIT
        run.save(update_fields=["status"])
        piece.location = None
        piece.transit_to_id = target_id
        _record(piece=piece, run=run, kind=EventKind.SENT, actor=actor, at=at,
                workshop_id=from_id, weight_g=weights[piece.pk], comment=comment,
                transfer=transfer, data={"slip": transfer.slip_number, "to": target_id})
        _sync_piece(piece, run, at)
        _audit_piece(actor, piece, "piece.send", before, {"slip": transfer.slip_number})
    audit.record(actor=actor, action="transfer.send", obj=transfer,
                 after={"slip": transfer.slip_number, "from": transfer.from_workshop_id,
                        "to": target_id, "pieces": [p.serial for p in pieces]})
    from etabli.notifications import services as notify  # here: notifications reads production

    notify.pieces_sent(transfer=transfer)
    transfer.replayed = False
    return transfer


@transaction.atomic
def transfer_receive(*, actor, transfer_id: int, weights_g: dict[int, Any] | None = None,
                     comment: str = "") -> Transfer:
    """Receive every piece of a slip still on its way."""
    transfer = Transfer.objects.visible_to(actor).filter(pk=transfer_id).first()
    if transfer is None:
        raise NotFound(_("No transfer slip with id %(id)s.") % {"id": transfer_id})
    # Locks in the order a scan of one piece takes them — its piece, then the slip — so that a
    # scan at the same moment waits for this (or this for it) instead of a deadlock.
    waiting = transfer.lines.filter(received_at__isnull=True).values("piece_id")
    list(Piece.objects.select_for_update().filter(pk__in=waiting).order_by("pk")
         .values_list("pk", flat=True))
    transfer = Transfer.objects.select_for_update().get(pk=transfer.pk)
    if transfer.status == TransferStatus.RECEIVED:
        raise Conflict(_("Slip %(slip)s has already been received.")
                       % {"slip": transfer.slip_number})
    weights_g = weights_g or {}
    open_ids = list(transfer.lines.filter(received_at__isnull=True)
                    .values_list("piece_id", flat=True))
    unknown = set(weights_g) - set(open_ids)
    if unknown:
        raise ValidationFailed(_("Weights are given for pieces not waiting on this slip."),
                               details={"field": "weights_g"})
    for pid in sorted(open_ids):
        piece_receive(actor=actor, piece_id=pid, weight_g=weights_g.get(pid), comment=comment)
    transfer.refresh_from_db()
    return transfer


# ---------------------------------------------------------------------------------------------
# route changes on launched pieces


def skip_document_of(order_id: int, document_id: int | None):
    """The document of order `order_id` named as the reason to skip a step (or None)."""
    from etabli.documents.models import Document

    if document_id is None:
        return None
    document = Document.objects.filter(pk=document_id, order_id=order_id).first()
    if document is None:
        raise NotFound(_("No document with id %(id)s on this order.") % {"id": document_id},
                       details={"field": "document_id"})
    return document


def _validate_skip(step: str, reason: str, comment: str, reference: str,
                   document=None) -> None:
    if step in (StepKind.ORDER_RECEIPT, StepKind.DELIVERY):
        raise ValidationFailed(_("The %(step)s step cannot be skipped.")
                               % {"step": StepKind(step).label},
                               details={"field": "step"})
    if reason not in SkipReason.values:
        raise ValidationFailed(
            _("Unknown skip reason '%(reason)s'. Choose one of: %(choices)s.")
            % {"reason": reason, "choices": ", ".join(SkipReason.values)},
            details={"field": "reason"})
    if step == StepKind.PROTOTYPING:
        if reason == SkipReason.OTHER:
            raise ValidationFailed(
                _("Prototyping may be skipped only for an exact reproduction of an existing "
                  "model, a simple design, or with the client's written acceptance of the "
                  "risk."),
                details={"field": "reason"})
        if reason == SkipReason.CLIENT_RISK_ACCEPTANCE and document is None:
            # A reference alone is not the acceptance: the signed document must be attached.
            raise ValidationFailed(
                _("Attach the client's written acceptance of the risk: upload it to the "
                  "order's documents, then choose it."),
                details={"field": "document_id"})
    elif not comment:
        raise ValidationFailed(_("Say why this step is skipped."),
                               details={"field": "comment"})


validate_skip = _validate_skip


def validate_workshop_for_step(workshop: Workshop, step: str) -> None:
    if not workshop.is_active:
        raise ValidationFailed(_("%(workshop)s is not active.") % {"workshop": workshop.name},
                               details={"field": "workshop"})
    if not workshop.skills.filter(step=step).exists():
        raise ValidationFailed(
            _("%(workshop)s does not do %(step)s work.")
            % {"workshop": workshop.name, "step": StepKind(step).label.lower()},
            details={"field": "workshop", "step": step})


def _lock_visible_run(actor, run_id: int) -> tuple[Piece, StepRun]:
    run = StepRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFound(_("No step with id %(id)s.") % {"id": run_id})
    piece = _lock_visible_piece(actor, run.piece_id)
    run = StepRun.objects.select_for_update().get(pk=run_id)
    return piece, run


@transaction.atomic
def step_run_skip(*, actor, run_id: int, reason: str, comment: str = "",
                  reference: str = "", document_id: int | None = None) -> StepRun:
    check_can_plan(actor)
    piece, run = _lock_visible_run(actor, run_id)
    comment = _clean_text(comment, "comment")
    reference = _clean_text(reference, "reference", 200)
    if run.status not in (StepStatus.PENDING, StepStatus.READY):
        raise TransitionNotAllowed(_("Only a step not yet begun can be skipped."),
                                   details={"step_status": run.status})
    if run.status == StepStatus.READY and piece.location_id is None:
        raise TransitionNotAllowed(_("The piece is travelling; receive it first."))
    document = skip_document_of(piece.order_id, document_id)
    _validate_skip(run.step, reason, comment, reference, document)
    fields = ["status", "skip_reason", "skip_comment", "skip_reference", "skip_document"]
    before = audit.snapshot(run, fields)
    was_ready = run.status == StepStatus.READY
    run.status = StepStatus.SKIPPED
    run.skip_reason, run.skip_comment, run.skip_reference = reason, comment, reference
    run.skip_document = document
    run.save(update_fields=fields)
    at = timezone.now()
    if was_ready:
        nxt = _next_run(piece, run)
        if nxt is None:  # cannot happen: delivery is last and never skipped
            raise TransitionNotAllowed(_("There is no step after this one."))
        nxt.status = StepStatus.READY
        nxt.save(update_fields=["status"])
        _record(piece=piece, run=nxt, kind=EventKind.NOTE, actor=actor, at=at,
                workshop_id=piece.location_id,
                comment=f"{StepKind(run.step).label} skipped: {reason} {comment}".strip(),
                data={"skipped_run": run.pk, "next_run": nxt.pk})
        _sync_piece(piece, nxt, at)
    _replan_pending(piece, at)
    audit.record(actor=actor, action="step.skip", obj=run, before=before,
                 after=audit.snapshot(run, fields),
                 order_id=piece.order_id, piece_id=piece.pk)
    return run


def _replan_pending(piece: Piece, at: dt.datetime) -> None:
    """Lay out pending steps after the open one, from its due date (or today)."""
    current = _open_run(piece)
    start = timezone.localtime(at).date()
    if current is not None and current.planned_due and current.planned_due > start:
        start = current.planned_due
    pending = list(piece.runs.filter(status=StepStatus.PENDING).order_by("position"))
    planning.lay_out(pending, start)
    StepRun.objects.bulk_update(pending, ["planned_start", "planned_due"])


@transaction.atomic
def step_run_add(*, actor, piece_id: int, step: str, workshop_id: int, planned_days: int,
                 after_run_id: int, operations: list[str] | None = None) -> StepRun:
    """Add a step to one piece's route, after its open step or any later one."""
    check_can_plan(actor)
    piece = _lock_visible_piece(actor, piece_id)
    if step not in StepKind.values or step in (StepKind.ORDER_RECEIPT, StepKind.DELIVERY):
        raise ValidationFailed(_("'%(step)s' is not a step that can be added.") % {"step": step},
                               details={"field": "step"})
    if not 1 <= planned_days <= 120:
        raise ValidationFailed(_("Planned days are between 1 and 120."),
                               details={"field": "planned_days"})
    workshop = Workshop.objects.filter(pk=workshop_id).first()
    if workshop is None:
        raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id},
                       details={"field": "workshop_id"})
    validate_workshop_for_step(workshop, step)
    ops = _clean_operations(step, operations)
    current = _require_open_run(piece)
    after = piece.runs.filter(pk=after_run_id).first()
    if after is None:
        raise NotFound(_("Step %(id)s is not part of this piece's route.")
                       % {"id": after_run_id},
                       details={"field": "after_run_id"})
    last = piece.runs.order_by("-position").first()
    if after.position < current.position or after.pk == last.pk:
        raise ValidationFailed(_("A step can be added only after the open step and before "
                                 "delivery."), details={"field": "after_run_id"})
    for other in piece.runs.filter(position__gt=after.position).order_by("-position"):
        other.position += 1
        other.save(update_fields=["position"])
    run = StepRun.objects.create(piece=piece, position=after.position + 1, step=step,
                                 operations=ops, workshop=workshop, planned_days=planned_days)
    at = timezone.now()
    _replan_pending(piece, at)
    audit.record(actor=actor, action="step.add", obj=run,
                 after={"step": step, "workshop": workshop.code, "position": run.position},
                 order_id=piece.order_id, piece_id=piece.pk)
    run.refresh_from_db()  # _replan_pending gave it its planned dates
    return run


def _clean_operations(step: str, operations: list[str] | None) -> list[str]:
    from etabli.workshops.models import Operation

    ops = list(operations or [])
    known = set(Operation.objects.filter(step=step, code__in=ops).values_list("code", flat=True))
    wrong = [op for op in ops if op not in known]
    if wrong:
        raise ValidationFailed(
            _("Not operations of the %(step)s step: %(operations)s.")
            % {"step": StepKind(step).label, "operations": ", ".join(wrong)},
            details={"field": "operations"})
    return ops


@transaction.atomic
def piece_route_reorder(*, actor, piece_id: int, run_ids: list[int]) -> list[StepRun]:
    """Reorder the steps a piece has not reached yet; delivery stays last."""
    check_can_plan(actor)
    piece = _lock_visible_piece(actor, piece_id)
    pending = list(piece.runs.filter(status__in=[StepStatus.PENDING, StepStatus.SKIPPED],
                                     position__gt=_require_open_run(piece).position)
                   .order_by("position"))
    if sorted(run_ids) != sorted(r.pk for r in pending) or len(set(run_ids)) != len(run_ids):
        raise ValidationFailed(
            _("List every step not yet reached, each once, in the new order."),
                               details={"field": "run_ids",
                                        "expected": [r.pk for r in pending]})
    by_id = {r.pk: r for r in pending}
    if pending and by_id[run_ids[-1]].step != StepKind.DELIVERY \
            and any(r.step == StepKind.DELIVERY for r in pending):
        raise ValidationFailed(_("Delivery stays the last step."), details={"field": "run_ids"})
    before = [r.step for r in pending]
    slots = [r.position for r in pending]
    offset = max(slots, default=0) + 1000  # park first: positions are unique only in spirit
    for r in pending:
        r.position += offset
        r.save(update_fields=["position"])
    for slot, rid in zip(slots, run_ids, strict=True):
        by_id[rid].position = slot
        by_id[rid].save(update_fields=["position"])
    _replan_pending(piece, timezone.now())
    audit.record(actor=actor, action="route.reorder", obj=piece, before={"steps": before},
                 after={"steps": [by_id[i].step for i in run_ids]},
                 order_id=piece.order_id, piece_id=piece.pk)
    for r in pending:
        r.refresh_from_db()  # _replan_pending moved their planned dates
    return [by_id[i] for i in run_ids]


@transaction.atomic
def step_run_assign(*, actor, run_id: int, workshop_id: int) -> StepRun:
    """Move a step not yet begun to another workshop."""
    check_can_plan(actor)
    piece, run = _lock_visible_run(actor, run_id)
    if run.status not in (StepStatus.PENDING, StepStatus.READY):
        raise TransitionNotAllowed(_("Only a step not yet begun can change workshop."),
                                   details={"step_status": run.status})
    workshop = Workshop.objects.filter(pk=workshop_id).first()
    if workshop is None:
        raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id},
                       details={"field": "workshop_id"})
    validate_workshop_for_step(workshop, run.step)
    before = {"workshop": run.workshop_id}
    run.workshop = workshop
    run.save(update_fields=["workshop"])
    if run.status == StepStatus.READY:
        _sync_piece(piece, run, timezone.now())
    audit.record(actor=actor, action="step.assign", obj=run, before=before,
                 after={"workshop": workshop.pk}, order_id=piece.order_id, piece_id=piece.pk)
    return run


def order_plan_shift(*, order, days: int) -> int:
    """Move every step not yet finished of an order's pieces by `days`; returns runs moved."""
    if days == 0:
        return 0
    delta = dt.timedelta(days=days)
    runs = list(StepRun.objects.filter(piece__order=order)
                .exclude(status__in=[StepStatus.DONE, StepStatus.SKIPPED]))
    for r in runs:
        if r.planned_start:
            r.planned_start += delta
        if r.planned_due:
            r.planned_due += delta
    StepRun.objects.bulk_update(runs, ["planned_start", "planned_due"])
    for piece in Piece.objects.filter(order=order, current_due__isnull=False):
        piece.current_due = piece.current_due + delta
        piece.save(update_fields=["current_due"])
    return len(runs)
