"""What design requires before a piece may move on (called by production.gates).

- A piece leaves its design step only when its line's latest round sent is approved by the
  client and no prototype has since withdrawn that approval ("CAD changes needed").
- A prototyping step is completed only with an approved prototype recorded for it.

Each function raises TransitionNotAllowed with a message a person can act on, or returns None.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from etabli.core.errors import TransitionNotAllowed
from etabli.workshops.models import StepKind


def check_send(piece, run) -> None:
    """Before `piece` is sent to the workshop of `run` (its open step)."""


def check_start(piece, run) -> None:
    """Before work starts on `run`."""


def check_leave(piece, run) -> None:
    """Before `run` is completed (the piece leaves the step)."""
    if run.step == StepKind.DESIGN:
        _check_design_approved(piece)
    elif run.step == StepKind.PROTOTYPING:
        _check_prototype_approved(piece, run)


def _check_design_approved(piece) -> None:
    from .selectors import line_state

    state = line_state(piece.line)
    if not state.approved:
        raise TransitionNotAllowed(state.missing, code="design_not_approved",
                                   details={"line_id": piece.line_id, "design": state.code})


def _check_prototype_approved(piece, run) -> None:
    from .models import Prototype, PrototypeResult

    prototype = Prototype.objects.filter(run=run).first()
    if prototype is None:
        raise TransitionNotAllowed(
            _("Record the prototype of %(serial)s (method, fit test, result) on the piece's page "
              "before completing the prototyping step.") % {"serial": piece.serial},
            code="prototype_missing", details={"run_id": run.pk})
    if prototype.result != PrototypeResult.APPROVED:  # cannot happen: the piece went back
        raise TransitionNotAllowed(_("The prototype of %(serial)s needs CAD changes: the piece "
                                     "goes back to design.") % {"serial": piece.serial},
                                   code="prototype_not_approved", details={"run_id": run.pk})
