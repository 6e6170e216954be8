"""Reads of pieces, events and transfers, always starting from what the user may see."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from ninja import Schema

from etabli.accounts.models import Role

from .models import (
    ACTIVE_PIECE_STATUSES,
    EventKind,
    Piece,
    PieceStatus,
    StepRun,
    TrackingEvent,
    Transfer,
    TransferLine,
)


class PieceFilters(Schema):
    """The one definition of the piece list's filters, shared by the API and the pages."""

    status: PieceStatus | None = None
    step: str | None = None
    workshop_id: int | None = None
    order_id: int | None = None
    client_id: int | None = None
    late: bool | None = None
    q: str | None = None


def pieces_for(user) -> QuerySet[Piece]:
    return Piece.objects.visible_to(user)


def piece_list(user, filters: PieceFilters | None = None, today: dt.date | None = None):
    f = filters or PieceFilters()
    today = today or timezone.localdate()
    qs = pieces_for(user).select_related(
        "order__client", "line__alloy", "current_workshop", "location", "transit_to")
    if f.status:
        qs = qs.filter(status=f.status)
    if f.step:
        qs = qs.filter(current_step=f.step)
    if f.workshop_id is not None:
        qs = qs.filter(current_workshop_id=f.workshop_id)
    if f.order_id is not None:
        qs = qs.filter(order_id=f.order_id)
    if f.client_id is not None:
        if not user.sees_clients and user.role != Role.CLIENT:
            return qs.none()  # filtering by client would reveal who the client is
        qs = qs.filter(order__client_id=f.client_id)
    if f.late is True:
        qs = qs.filter(current_due__lt=today, status__in=ACTIVE_PIECE_STATUSES)
    elif f.late is False:
        qs = qs.exclude(current_due__lt=today, status__in=ACTIVE_PIECE_STATUSES)
    if f.q:
        term = f.q.strip()
        qs = qs.filter(Q(serial__icontains=term) | Q(order__reference__icontains=term))
    return qs.order_by("current_due", "serial", "id")


def active_pieces(user, filters: PieceFilters | None = None, today: dt.date | None = None):
    """The pieces in production among `piece_list(user, filters)`, unordered and without its
    joins: the dashboard picks the few columns it shows (and the board index serves it)."""
    return (piece_list(user, filters, today=today).select_related(None)
            .filter(status__in=ACTIVE_PIECE_STATUSES).order_by())


def workshops_by_id(ids) -> dict:
    from etabli.workshops.models import Workshop

    return {w.pk: w for w in Workshop.objects.filter(pk__in=ids).only("pk", "name", "code")} \
        if ids else {}


def piece_get(user, piece_id: int) -> Piece | None:
    return (pieces_for(user).select_related("order__client", "line__alloy", "current_workshop",
                                            "location", "transit_to", "current_run")
            .filter(pk=piece_id).first())


def piece_by_serial(user, serial: str) -> Piece | None:
    return pieces_for(user).filter(serial__iexact=(serial or "").strip()).first()


def piece_runs(user, piece: Piece) -> list[StepRun]:
    return list(piece.runs.select_related("workshop").order_by("position"))


def piece_events(user, piece: Piece) -> QuerySet[TrackingEvent]:
    """A piece's events; a workshop member sees only what happened at their own workshop."""
    qs = piece.events.select_related("actor", "workshop", "step_run", "transfer")
    if user.role == Role.WORKSHOP:
        ids = user.workshop_ids()
        qs = qs.filter(Q(workshop_id__in=ids) | Q(kind=EventKind.SENT,
                                                    transfer__to_workshop_id__in=ids))
    elif user.role == Role.CLIENT:
        qs = qs.none()
    return qs.order_by("occurred_at", "id")


class TransferFilters(Schema):
    status: str | None = None
    from_workshop_id: int | None = None
    to_workshop_id: int | None = None


def _with_lines(qs: QuerySet[Transfer]) -> QuerySet[Transfer]:
    # One query for the lines of every slip on the page, not one per slip.
    return qs.prefetch_related(Prefetch("lines", queryset=TransferLine.objects
                                        .select_related("piece").order_by("id")))


def transfer_list(user, filters: TransferFilters | None = None):
    f = filters or TransferFilters()
    qs = _with_lines(Transfer.objects.visible_to(user).select_related(
        "from_workshop", "to_workshop", "sent_by"))
    if f.status:
        qs = qs.filter(status=f.status)
    if f.from_workshop_id is not None:
        qs = qs.filter(from_workshop_id=f.from_workshop_id)
    if f.to_workshop_id is not None:
        qs = qs.filter(to_workshop_id=f.to_workshop_id)
    return qs.order_by("-sent_at", "-id")


def transfer_get(user, transfer_id: int) -> Transfer | None:
    return (_with_lines(Transfer.objects.visible_to(user).select_related(
        "from_workshop", "to_workshop", "sent_by")).filter(pk=transfer_id).first())
