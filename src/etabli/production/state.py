"""The piece state machine: which event moves a step run from which status to which.

The services use this table to refuse what is not allowed; `derive_piece_state` replays a piece's
events through the same table to recompute the cached state, which tests compare with the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import EventKind, PieceStatus, StepStatus

S = StepStatus

TRANSITIONS: dict[str, dict[str, str]] = {
    EventKind.SENT: {S.READY: S.IN_TRANSIT},
    EventKind.RECEIVED: {S.IN_TRANSIT: S.RECEIVED},
    # READY → IN_PROGRESS only when the piece is already where the step is done.
    EventKind.STARTED: {S.RECEIVED: S.IN_PROGRESS, S.READY: S.IN_PROGRESS},
    EventKind.COMPLETED: {S.IN_PROGRESS: S.DONE},
    EventKind.HELD: {S.READY: S.ON_HOLD, S.RECEIVED: S.ON_HOLD, S.IN_PROGRESS: S.ON_HOLD},
    # RELEASED returns to the status the run had when it was held.
    EventKind.RELEASED: {S.ON_HOLD: ""},
    EventKind.REWORK: {S.RECEIVED: S.DONE, S.IN_PROGRESS: S.DONE, S.ON_HOLD: S.DONE},
}

# What to tell a person whose action does not fit the piece's state.
REFUSALS: dict[tuple[str, str], str] = {
    (EventKind.STARTED, S.IN_TRANSIT):
        gettext_lazy("The piece is still in transit: receive it first."),
    (EventKind.COMPLETED, S.RECEIVED):
        gettext_lazy("The step has not been started: start it first."),
    (EventKind.COMPLETED, S.READY): gettext_lazy("The step has not been started: start it first."),
    (EventKind.RECEIVED, S.READY):
        gettext_lazy("The piece has not been sent: there is nothing to receive."),
    (EventKind.RECEIVED, S.RECEIVED): gettext_lazy("The piece has already been received."),
    (EventKind.RECEIVED, S.IN_PROGRESS): gettext_lazy("The piece has already been received."),
    (EventKind.SENT, S.IN_TRANSIT): gettext_lazy("The piece is already on its way."),
    (EventKind.SENT, S.IN_PROGRESS):
        gettext_lazy("The step is in progress: complete it before sending."),
    (EventKind.SENT, S.RECEIVED):
        gettext_lazy("The piece is already at the workshop of its current step."),
    (EventKind.HELD, S.ON_HOLD): gettext_lazy("The piece is already on hold."),
    (EventKind.HELD, S.IN_TRANSIT):
        gettext_lazy("A piece in transit cannot be held: receive it first."),
    (EventKind.RELEASED, S.IN_PROGRESS): gettext_lazy("The piece is not on hold."),
    (EventKind.STARTED, S.IN_PROGRESS): gettext_lazy("The step is already in progress."),
    (EventKind.STARTED, S.ON_HOLD): gettext_lazy("The piece is on hold: release it first."),
    (EventKind.COMPLETED, S.ON_HOLD): gettext_lazy("The piece is on hold: release it first."),
    (EventKind.SENT, S.ON_HOLD): gettext_lazy("The piece is on hold: release it first."),
}


def refusal(kind: str, status: str) -> str:
    if status in (S.DONE, S.SKIPPED, S.PENDING):
        return _("The piece has no open step: it has been delivered.")
    known = REFUSALS.get((kind, status))
    if known is not None:
        return str(known)
    return _("A '%(kind)s' event is not allowed while the step is '%(status)s'.") % {
        "kind": kind, "status": S(status).label}


def next_status(kind: str, status: str, held_from: str = "") -> str | None:
    """The status after `kind`, or None when the transition is not allowed."""
    table = TRANSITIONS.get(kind)
    if table is None or status not in table:
        return None
    target = table[status]
    if kind == EventKind.RELEASED:
        return held_from or S.READY
    return target


PIECE_STATUS_OF_STEP = {
    S.READY: PieceStatus.READY,
    S.IN_TRANSIT: PieceStatus.IN_TRANSIT,
    S.RECEIVED: PieceStatus.RECEIVED,
    S.IN_PROGRESS: PieceStatus.IN_PROGRESS,
    S.ON_HOLD: PieceStatus.ON_HOLD,
}


@dataclass
class DerivedState:
    run_status: dict[int, str] = field(default_factory=dict)
    held_from: dict[int, str] = field(default_factory=dict)
    location_id: int | None = None
    transit_to_id: int | None = None
    status: str = PieceStatus.READY
    current_run_id: int | None = None
    rework_count: int = 0


def derive_piece_state(piece) -> DerivedState:
    """Recompute a piece's state from its step runs' route and its events alone."""
    runs = list(piece.runs.all())
    workshop_of = {r.id: r.workshop_id for r in runs}
    state = DerivedState()
    # Skipping is a route decision, not an event: a run skipped is skipped from the start.
    for r in runs:
        state.run_status[r.id] = S.SKIPPED if r.status == S.SKIPPED else S.PENDING
    last_run_id = None
    for ev in piece.events.order_by("id"):
        data = ev.data or {}
        if "initial_location" in data:
            state.location_id = data["initial_location"]
        if data.get("ready_run"):
            state.run_status[data["ready_run"]] = S.READY
        if data.get("skipped_run"):
            state.run_status[data["skipped_run"]] = S.SKIPPED
        run_id = ev.step_run_id
        if ev.kind != EventKind.NOTE:
            current = state.run_status[run_id]
            new = next_status(ev.kind, current, state.held_from.get(run_id, ""))
            if new is None:
                raise AssertionError(f"event {ev.pk} {ev.kind} not allowed from {current}")
            if ev.kind == EventKind.HELD:
                state.held_from[run_id] = current
            state.run_status[run_id] = new
            if ev.kind == EventKind.SENT:
                state.location_id, state.transit_to_id = None, workshop_of[run_id]
            elif ev.kind == EventKind.RECEIVED:
                state.location_id, state.transit_to_id = workshop_of[run_id], None
            elif ev.kind == EventKind.REWORK:
                state.rework_count += 1
            if ev.kind in (EventKind.COMPLETED, EventKind.REWORK):
                last_run_id = run_id
        if data.get("next_run"):
            state.run_status[data["next_run"]] = S.READY
        elif ev.kind == EventKind.COMPLETED and "next_run" in data:
            # The last step is done: the piece has left for the client.
            state.location_id = None
    open_runs = [rid for rid, st in state.run_status.items() if st in PIECE_STATUS_OF_STEP]
    if open_runs:
        state.current_run_id = open_runs[0]
        state.status = PIECE_STATUS_OF_STEP[state.run_status[open_runs[0]]]
    else:
        state.current_run_id = last_run_id
        state.status = PieceStatus.DELIVERED
    return state
