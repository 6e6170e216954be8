"""What finishing adds to shared pages (see core.panels): a list of dicts, each with a
`template` to include and whatever that template needs.

The workshop's piece page gets the operations of the finishing step being done there, one small
form each; the house's piece page gets the piece's finishing records, whether it must be
hallmarked, and (for the production manager) waivers and the assay office's step.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.production.models import OPEN_STEP_STATUSES, PieceStatus, StepStatus
from etabli.workshops.models import StepKind

from . import selectors, services
from .forms import AssayStepForm, blank_form
from .models import FinishingRecord, RecordOperation, RecordStatus


def _operations(user, piece, run, records: list[FinishingRecord], requirement) -> list[dict]:
    """One entry per operation `run` needs: its record if counted, its refusals, and a form
    when `user` may record it now."""
    may = run.status == StepStatus.IN_PROGRESS and services.can_record(user, piece, run)
    out = []
    for op in selectors.required_records(run):
        mine = [r for r in records if r.step_run_id == run.pk and r.operation == op]
        counted = next((r for r in mine if r.status != RecordStatus.REFUSED), None)
        out.append({
            "code": op, "label": RecordOperation(op).label, "record": counted,
            "refusals": [r for r in mine if r.status == RecordStatus.REFUSED],
            "form": blank_form(op, piece, requirement) if may and counted is None else None,
            "url": reverse("finishing:record", args=[piece.pk, op]),
        })
    first = next((o for o in out if o["form"] is not None), None)
    for o in out:  # on a phone, the next thing to record is open; the others fold away
        o["open"] = o is first
    return out


def _reached_finishing(piece) -> bool:
    """Finishing has something to say once the piece is in (or past) its finishing, or has
    been sent back from it; before that the panel would cost queries for nothing."""
    return (piece.status == PieceStatus.DELIVERED or piece.rework_count > 0
            or piece.current_step in (StepKind.FINISHING, StepKind.DELIVERY))


def piece_panels(request, piece) -> list[dict]:
    user = request.user
    if user.role == Role.CLIENT or not _reached_finishing(piece):
        return []
    runs = list(piece.runs.filter(step=StepKind.FINISHING).exclude(status=StepStatus.SKIPPED)
                .select_related("workshop").order_by("position"))
    if not runs:
        return []
    records = list(selectors.records_for(user, piece))
    run = next((r for r in runs if r.status in OPEN_STEP_STATUSES), None)
    requirement = selectors.hallmark_requirement(piece)
    operations = _operations(user, piece, run, records, requirement) if run else []
    missing = [o["code"] for o in operations if o["record"] is None]
    manages = user.runs_production
    has_hallmarking = any(code in selectors.HALLMARK_OPERATIONS
                          for r in runs if not r.reworked for code in r.operations or [])
    assay_form = None
    if manages and requirement.required and not has_hallmarking \
            and piece.status != PieceStatus.DELIVERED:
        assay_form = AssayStepForm(offices=services.assay_offices())
    return [{
        "template": "finishing/_piece_panel.html",
        "run": run, "operations": operations, "records": records,
        "requirement": requirement, "has_hallmarking": has_hallmarking,
        "waive_url": reverse("finishing:waive", args=[piece.pk])
        if manages and missing else None,
        "assay_form": assay_form,
        "assay_url": reverse("finishing:assay_step", args=[piece.pk]),
        "next": request.get_full_path(),
    }]


def order_panels(request, order) -> list[dict]:
    return []


def portal_order_panels(request, order) -> list[dict]:
    return []


def workshop_piece_panels(request, piece) -> list[dict]:
    user = request.user
    run = selectors.open_finishing_run(piece)
    if run is None or run.workshop_id not in user.workshop_ids() \
            or piece.location_id != run.workshop_id:
        return []
    needed = selectors.required_records(run)
    if not needed:
        return []
    records = list(FinishingRecord.objects.filter(step_run=run).select_related("actor")
                   .order_by("recorded_at", "id"))
    requirement = (selectors.hallmark_requirement(piece)
                   if RecordOperation.HALLMARKING in needed else None)
    operations = _operations(user, piece, run, records, requirement)
    return [{
        "template": "finishing/_workshop_panel.html",
        "run": run, "operations": operations, "requirement": requirement,
        "started": run.status == StepStatus.IN_PROGRESS,
        "left": sum(1 for o in operations if o["record"] is None),
        "next": request.get_full_path(),
    }]


def nav_items(user) -> list[tuple[str, str]]:
    if user.sees_clients:  # house staff
        return [(_("Hallmarks"), reverse("finishing:hallmarks"))]
    return []
