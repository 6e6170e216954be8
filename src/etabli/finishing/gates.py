"""What finishing requires before a piece may move on (called by production.gates).

Each function raises a domain error (TransitionNotAllowed, usually) with a message a person can
act on, or returns None when the piece may go ahead.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from etabli.core.errors import TransitionNotAllowed

from .models import RecordOperation
from .selectors import missing_records


def check_send(piece, run) -> None:
    """Before `piece` is sent to the workshop of `run` (its open step)."""


def check_start(piece, run) -> None:
    """Before work starts on `run`."""


def check_leave(piece, run) -> None:
    """Before `run` is completed: every finishing operation of the step (but the inspection,
    which is quality's) is recorded — done, waived, or for the hallmark, exempt."""
    missing = missing_records(run)
    if missing:
        names = ", ".join(str(RecordOperation(op).label) for op in missing)
        raise TransitionNotAllowed(
            _("Finishing work not recorded yet: %(missing)s. Record each operation in the "
              "Finishing panel of the piece's page before completing the step.")
            % {"missing": names},
            details={"missing": missing, "step": run.step})
