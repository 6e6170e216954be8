"""Reads for finishing: which records a run needs, what is recorded, and whether a piece must
carry the guarantee mark. Everything a user is shown starts from a `visible_to(user)`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from etabli.production.models import OPEN_STEP_STATUSES, Piece, StepRun, StepStatus, TrackingEvent
from etabli.workshops.models import StepKind

from .models import FinishingRecord, HallmarkExemption, RecordOperation, RecordStatus

# What each route operation of a finishing step is recorded as. Inspection belongs to quality.
RECORDS_OF_OPERATION: dict[str, tuple[str, ...]] = {
    "polishing": (RecordOperation.POLISHING,),
    "plating": (RecordOperation.PLATING,),
    "engraving": (RecordOperation.ENGRAVING,),
    "engraving_hallmarking": (RecordOperation.ENGRAVING, RecordOperation.HALLMARKING),
    "hallmarking": (RecordOperation.HALLMARKING,),
    "serial_engraving": (RecordOperation.SERIAL_ENGRAVING,),
    "cleaning": (RecordOperation.CLEANING,),
}
# Route operations that take the piece through hallmarking.
HALLMARK_OPERATIONS = ("hallmarking", "engraving_hallmarking")
ASSAY_OPERATION = "hallmarking"
# The ISO code is GB; houses naturally write UK.
COUNTRY_ALIASES = {"UK": "GB"}


def required_records(run: StepRun) -> list[str]:
    """The record operations `run` needs, in route order, each once (none unless finishing)."""
    if run.step != StepKind.FINISHING:
        return []
    out: list[str] = []
    for code in run.operations or []:
        for op in RECORDS_OF_OPERATION.get(code, ()):
            if op not in out:
                out.append(op)
    return out


def counted_records(run: StepRun) -> dict[str, FinishingRecord]:
    """The records that stand for `run` (a refusal does not), by operation."""
    return {r.operation: r for r in
            FinishingRecord.objects.filter(step_run=run).exclude(status=RecordStatus.REFUSED)
            .select_related("actor", "workshop")}


def missing_records(run: StepRun) -> list[str]:
    needed = required_records(run)
    if not needed:
        return []
    done = set(FinishingRecord.objects.filter(step_run=run, operation__in=needed)
               .exclude(status=RecordStatus.REFUSED).values_list("operation", flat=True))
    return [op for op in needed if op not in done]


def records_for(user, piece: Piece) -> QuerySet[FinishingRecord]:
    return (FinishingRecord.objects.visible_to(user).filter(piece=piece)
            .select_related("actor", "workshop", "step_run", "exemption")
            .order_by("recorded_at", "id"))


def exemptions_for(user) -> QuerySet[HallmarkExemption]:
    return HallmarkExemption.objects.visible_to(user).order_by("country", "metal")


def hallmark_country() -> str:
    code = (settings.ETABLI_HALLMARK_COUNTRY or "").strip().upper()
    return COUNTRY_ALIASES.get(code, code)


def open_finishing_run(piece: Piece) -> StepRun | None:
    run = piece.runs.filter(status__in=OPEN_STEP_STATUSES).first()
    return run if run is not None and run.step == StepKind.FINISHING else None


def route_has_hallmarking(piece: Piece) -> bool:
    """Whether a step still to do (or being done, or done since the last rework) hallmarks."""
    runs = piece.runs.exclude(status=StepStatus.SKIPPED).filter(reworked=False)
    return any(code in HALLMARK_OPERATIONS for r in runs.filter(step=StepKind.FINISHING)
               for code in r.operations or [])


# ---------------------------------------------------------------------------------------------
# hallmark requirement


@dataclass(frozen=True)
class HallmarkRequirement:
    required: bool
    country: str
    metal: str | None
    fineness: int | None
    weight_g: Decimal | None
    weight_source: str  # weighed, theoretical, unknown
    rule: HallmarkExemption | None  # the country's threshold for the metal, if it has one

    @property
    def status(self) -> str:
        return "required" if self.required else "exempt"

    @property
    def fineness_mark(self) -> str:
        return str(self.fineness) if self.fineness else ""

    @property
    def explanation(self) -> str:
        from etabli.materials.models import Metal

        metal = Metal(self.metal).label.lower() if self.metal in Metal.values else ""
        values = {"country": self.country, "metal": metal,
                  "weight": self.weight_g,
                  "limit": _grams(self.rule.under_weight_g) if self.rule else ""}
        if self.metal is None:
            return _("Guarantee mark required: the order line names no alloy, so no exemption "
                     "can apply.")
        if self.rule is None:
            return _("Guarantee mark required: %(country)s has no weight exemption for "
                     "%(metal)s.") % values
        if self.weight_g is None:
            return _("Guarantee mark required: the piece has not been weighed and has no "
                     "theoretical weight, so the %(country)s exemption under %(limit)s g "
                     "cannot be judged.") % values
        if not self.required:
            return _("Exempt from the guarantee mark: %(weight)s g of %(metal)s is under "
                     "%(limit)s g (%(country)s). The maker's mark is still struck.") % values
        return _("Guarantee mark required: %(weight)s g of %(metal)s is not under %(limit)s g "
                 "(%(country)s).") % values


def _grams(value: Decimal) -> str:
    """A threshold as the law writes it: 3, 7.78, 0.5 (not 3.000)."""
    return f"{value.normalize():f}"


def latest_weight(piece: Piece) -> Decimal | None:
    return (TrackingEvent.objects.filter(piece=piece, weight_g__isnull=False)
            .order_by("-occurred_at", "-id").values_list("weight_g", flat=True).first())


def hallmark_requirement(piece: Piece) -> HallmarkRequirement:
    """Must `piece` carry the guarantee mark in the country in force?

    The weight judged is the latest one weighed (a tracking event's reading), else the
    theoretical weight, else unknown — and an unknown weight never exempts. A piece is exempt
    when it weighs strictly less than its metal's threshold.
    """
    country = hallmark_country()
    alloy = piece.line.alloy if piece.line_id else None
    weight, source = latest_weight(piece), "weighed"
    if weight is None:
        weight, source = piece.theoretical_weight_g, "theoretical"
    if weight is None:
        source = "unknown"
    if alloy is None:
        return HallmarkRequirement(True, country, None, None, weight, source, None)
    rule = HallmarkExemption.objects.filter(country=country, metal=alloy.metal).first()
    exempt = rule is not None and weight is not None and weight < rule.under_weight_g
    return HallmarkRequirement(not exempt, country, alloy.metal, alloy.fineness_permille,
                               weight, source, rule)
