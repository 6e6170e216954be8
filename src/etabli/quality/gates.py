"""What quality control requires before a piece may move on (called by production.gates).

Each function raises a domain error (TransitionNotAllowed, usually) with a message a person can
act on, or returns None when the piece may go ahead.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from etabli.core.errors import TransitionNotAllowed
from etabli.workshops.models import StepKind


def check_send(piece, run) -> None:
    """Before `piece` is sent to the workshop of `run` (its open step)."""


def check_start(piece, run) -> None:
    """Before work starts on `run`."""


def needs_inspection(run) -> bool:
    return run.step == StepKind.FINISHING and "inspection" in (run.operations or [])


def check_leave(piece, run) -> None:
    """A finishing step that includes the inspection ends only after a signed passing
    inspection of this very step (a rework makes a new step: it is inspected again)."""
    if not needs_inspection(run):
        return
    from .models import Inspection, InspectionStatus, Verdict

    latest = (Inspection.objects.filter(run=run, status=InspectionStatus.SIGNED)
              .order_by("-signed_at", "-id").first())
    if latest is None:
        raise TransitionNotAllowed(
            _("%(serial)s needs a signed passing inspection before it leaves finishing: "
              "inspect it and sign the sheet on the Quality page.") % {"serial": piece.serial},
            details={"gate": "quality_inspection"})
    if latest.verdict != Verdict.PASS:
        raise TransitionNotAllowed(
            _("%(serial)s failed inspection %(ref)s: send it to rework from its "
              "nonconformity on the Quality page, or inspect it again.")
            % {"serial": piece.serial, "ref": latest.reference},
            details={"gate": "quality_inspection", "inspection": latest.reference})
