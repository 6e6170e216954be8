"""What delivery requires before a piece may move on (called by production.gates).

Each function raises a domain error (TransitionNotAllowed, usually) with a message a person can
act on, or returns None when the piece may go ahead.
"""

from __future__ import annotations

from etabli.core.errors import TransitionNotAllowed
from etabli.workshops.models import StepKind


def check_send(piece, run) -> None:
    """Before `piece` is sent to the workshop of `run` (its open step)."""


def check_start(piece, run) -> None:
    """Before work starts on `run`."""


def check_leave(piece, run) -> None:
    """Before `run` is completed: a piece leaves its delivery step only with its shipment
    delivered (`shipment_deliver` records that, then completes the step)."""
    if run.step != StepKind.DELIVERY:
        return
    from .services import leave_refusal

    refusal = leave_refusal(piece, run)
    if refusal is not None:
        raise TransitionNotAllowed(refusal, details={"piece": piece.serial})
