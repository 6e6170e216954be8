"""Reads for quality control, always starting from what the user may see."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from ninja import Schema

from etabli.production.models import OPEN_STEP_STATUSES, Piece, StepStatus
from etabli.workshops.models import StepKind

from .models import (
    OPEN_NONCONFORMITY_STATUSES,
    Inspection,
    InspectionStatus,
    InspectionTemplate,
    Nonconformity,
    NonconformityStatus,
    RootCause,
    Verdict,
)


class InspectionFilters(Schema):
    """The one definition of the inspection list's filters, shared by the API and the pages."""

    status: InspectionStatus | None = None
    verdict: Verdict | None = None
    piece_id: int | None = None
    order_id: int | None = None
    q: str | None = None


class NonconformityFilters(Schema):
    status: NonconformityStatus | None = None
    open: bool | None = None
    root_cause: RootCause | None = None
    piece_id: int | None = None
    order_id: int | None = None


def templates_for(user) -> QuerySet[InspectionTemplate]:
    return (InspectionTemplate.objects.visible_to(user)
            .prefetch_related("criteria").order_by("-is_default", "name", "id"))


def template_get(user, template_id: int) -> InspectionTemplate | None:
    return templates_for(user).filter(pk=template_id).first()


def _inspections(user) -> QuerySet[Inspection]:
    return (Inspection.objects.visible_to(user)
            .select_related("piece__order", "run__workshop", "template", "signed_by",
                            "created_by", "nonconformity"))


def inspection_list(user, filters: InspectionFilters | None = None) -> QuerySet[Inspection]:
    f = filters or InspectionFilters()
    qs = _inspections(user).prefetch_related("dimensions")
    if f.status:
        qs = qs.filter(status=f.status)
    if f.verdict:
        qs = qs.filter(verdict=f.verdict)
    if f.piece_id is not None:
        qs = qs.filter(piece_id=f.piece_id)
    if f.order_id is not None:
        qs = qs.filter(piece__order_id=f.order_id)
    if f.q:
        term = f.q.strip()
        qs = qs.filter(Q(reference__icontains=term) | Q(piece__serial__icontains=term)
                       | Q(piece__order__reference__icontains=term))
    return qs.order_by("-created_at", "-id")


def inspection_get(user, inspection_id: int) -> Inspection | None:
    return (_inspections(user).prefetch_related("dimensions", "photos__document")
            .filter(pk=inspection_id).first())


def _nonconformities(user) -> QuerySet[Nonconformity]:
    return (Nonconformity.objects.visible_to(user)
            .select_related("piece__order", "inspection__run__workshop", "rework_run__workshop",
                            "closed_by_inspection", "cause_recorded_by", "sent_to_rework_by",
                            "created_by"))


def nonconformity_list(user, filters: NonconformityFilters | None = None):
    f = filters or NonconformityFilters()
    qs = _nonconformities(user)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.open is True:
        qs = qs.filter(status__in=OPEN_NONCONFORMITY_STATUSES)
    elif f.open is False:
        qs = qs.exclude(status__in=OPEN_NONCONFORMITY_STATUSES)
    if f.root_cause:
        qs = qs.filter(root_cause=f.root_cause)
    if f.piece_id is not None:
        qs = qs.filter(piece_id=f.piece_id)
    if f.order_id is not None:
        qs = qs.filter(piece__order_id=f.order_id)
    return qs.order_by("-created_at", "-id")


def nonconformity_get(user, nc_id: int) -> Nonconformity | None:
    return _nonconformities(user).filter(pk=nc_id).first()


def rework_targets(piece: Piece, run) -> list:
    """The steps a piece may be sent back to from `run` (production's rework rules)."""
    runs = list(piece.runs.select_related("workshop").order_by("position"))
    last_rework = max((r.position for r in runs if r.reworked and r.position < run.position),
                      default=0)
    return [r for r in runs
            if r.position <= run.position and (r.status == StepStatus.DONE or r.pk == run.pk)
            and r.step != StepKind.ORDER_RECEIPT and not r.reworked
            and r.position > last_rework]


def waiting_for_inspection(user, limit: int = 100) -> list[Piece]:
    """Pieces at a finishing step that includes the inspection, arrived, not on hold, without
    a signed pass at that step; each with `.draft` (the inspection being measured, if any)."""
    passed = Inspection.objects.filter(run_id=OuterRef("current_run_id"),
                                       status=InspectionStatus.SIGNED, verdict=Verdict.PASS)
    pieces = (Piece.objects.visible_to(user)
              .filter(current_step=StepKind.FINISHING,
                      current_run__status__in=[StepStatus.READY, StepStatus.RECEIVED,
                                               StepStatus.IN_PROGRESS])
              .exclude(Exists(passed))
              .select_related("order", "line", "current_run__workshop", "location")
              .order_by("current_due", "serial")[:limit * 3])
    # JSON "contains" is not available on SQLite: the operations are checked here.
    rows = [p for p in pieces if "inspection" in (p.current_run.operations or [])
            and p.location_id == p.current_run.workshop_id][:limit]
    drafts = {i.run_id: i for i in Inspection.objects.filter(
        run_id__in=[p.current_run_id for p in rows], status=InspectionStatus.DRAFT)}
    for p in rows:
        p.draft = drafts.get(p.current_run_id)
    return rows


def held_by_quality(user, limit: int = 100) -> list[Nonconformity]:
    """Open nonconformities (failed, waiting for their cause or rework) with their piece."""
    return list(nonconformity_list(user, NonconformityFilters(open=True))[:limit])


def piece_panel(user, piece: Piece) -> dict:
    """The latest inspections of a piece and its open nonconformity: three queries."""
    latest = list(Inspection.objects.visible_to(user).filter(piece=piece)
                  .select_related("signed_by", "run").order_by("-created_at", "-id")[:3])
    open_nc = (Nonconformity.objects.visible_to(user)
               .filter(piece=piece, status__in=OPEN_NONCONFORMITY_STATUSES)
               .order_by("-created_at").first())
    run = piece.current_run
    return {"inspections": latest, "open_nc": open_nc, "run": run,
            "run_is_open": run is not None and run.status in OPEN_STEP_STATUSES}


