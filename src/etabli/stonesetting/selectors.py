"""Reads for stone setting: a piece's plan, how it compares with the order, which setting step
waits for its control. Scoped by `pieces_for_setting` (see models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Prefetch
from django.utils.translation import gettext as _

from etabli.materials.models import AllocationStatus
from etabli.production.models import Piece, StepRun, StepStatus
from etabli.workshops.models import StepKind

from .models import (
    SettingControl,
    SettingControlCount,
    SettingGroup,
    SettingPlan,
    pieces_for_setting,
)

# How far the plan's carats may be from the order line's budget and still match it: stones of
# a size vary in weight, a count does not.
CARAT_TOLERANCE_PERCENT = Decimal("5")
MG = Decimal("0.001")


def plan_required(piece: Piece) -> bool:
    """A piece whose order line lists stones (or budgets some) is set to a plan."""
    line = piece.line
    return bool((line.stones or "").strip()) or bool(line.budget_stone_count)


def group_label(group: SettingGroup) -> str:
    """`Halo: 16 × diamond, round brilliant, 1.30 mm` — how a person names a group."""
    size = f", {group.size_label}" if group.size_label else ""
    return _("%(position)s: %(count)s × %(stone)s, %(shape)s%(size)s") % {
        "position": group.get_position_display(), "count": group.count,
        "stone": group.get_stone_type_display().lower(),
        "shape": group.get_shape_display().lower(), "size": size}


def group_covered(group: SettingGroup, piece_id: int) -> bool:
    """The group's stones are the client's, or allocated to this piece from the group's lot."""
    if group.supplied_by_client:
        return True
    alloc = group.allocation
    return bool(alloc is not None and alloc.status != AllocationStatus.RELEASED
                and alloc.piece_id == piece_id and alloc.lot_id == group.lot_id
                and alloc.count >= group.count)


def group_carats(group: SettingGroup) -> Decimal | None:
    if group.carats is not None:
        return group.carats
    alloc = group.allocation
    if alloc is not None and alloc.count:
        return (alloc.carats * group.count / alloc.count).quantize(MG)
    return None


@dataclass
class Comparison:
    """The plan's totals against the order line's stone budget."""

    planned_count: int
    planned_ct: Decimal | None
    budget_count: int | None
    budget_ct: Decimal | None
    line_stones: str
    uncovered: list[SettingGroup] = field(default_factory=list)

    @property
    def count_matches(self) -> bool | None:
        if self.budget_count is None:
            return None
        return self.planned_count == self.budget_count

    @property
    def ct_matches(self) -> bool | None:
        if self.budget_ct is None or self.planned_ct is None:
            return None
        return abs(self.planned_ct - self.budget_ct) \
            <= self.budget_ct * CARAT_TOLERANCE_PERCENT / 100

    @property
    def matches_budget(self) -> bool:
        return self.count_matches is not False and self.ct_matches is not False

    @property
    def uncovered_numbers(self) -> list[int]:
        return [g.number for g in self.uncovered]

    @property
    def has_budget(self) -> bool:
        return self.budget_count is not None or self.budget_ct is not None

    def as_dict(self) -> dict:
        return {"planned_count": self.planned_count, "planned_ct": self.planned_ct,
                "budget_count": self.budget_count, "budget_ct": self.budget_ct,
                "count_matches": self.count_matches, "ct_matches": self.ct_matches,
                "carat_tolerance_percent": CARAT_TOLERANCE_PERCENT,
                "allocations_missing": [g.number for g in self.uncovered]}


def compare(plan: SettingPlan, groups: list[SettingGroup] | None = None) -> Comparison:
    groups = list(plan.groups.all()) if groups is None else groups
    line = plan.piece.line
    carats = [group_carats(g) for g in groups]
    planned_ct = sum(carats, Decimal("0")) if groups and None not in carats else None
    return Comparison(
        planned_count=sum(g.count for g in groups), planned_ct=planned_ct,
        budget_count=line.budget_stone_count, budget_ct=line.budget_stone_ct,
        line_stones=line.stones or "",
        uncovered=[g for g in groups if not group_covered(g, plan.piece_id)])


def _groups():
    return SettingGroup.objects.select_related("lot", "allocation").order_by("number")


def piece_for_setting(user, piece_id) -> Piece | None:
    """The piece, if `user` may see its setting plan."""
    try:
        pk = int(piece_id)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(piece_id, bool):
        return None
    return (pieces_for_setting(user).select_related("order__client", "line__alloy", "location",
                                                    "current_run__workshop")
            .filter(pk=pk).first())


def plan_for(piece: Piece) -> SettingPlan | None:
    return (SettingPlan.objects.select_related("piece__line", "checked_by", "created_by")
            .prefetch_related(Prefetch("groups", queryset=_groups()))
            .filter(piece=piece).first())


def previous_run(piece: Piece, run: StepRun) -> StepRun | None:
    """The step done just before `run` (skipped steps are not steps)."""
    return (piece.runs.filter(position__lt=run.position).exclude(status=StepStatus.SKIPPED)
            .order_by("-position").first())


def is_controlled_setting_run(run: StepRun | None) -> bool:
    """A setting step finished normally (not sent back for rework): its return is controlled."""
    return bool(run is not None and run.step == StepKind.SETTING
                and run.status == StepStatus.DONE and not run.reworked)


def setting_run_awaiting_control(piece: Piece) -> StepRun | None:
    """The setting step whose control is due now: the piece is back from it and at the
    workshop of its next step, not started there yet, and no control has been recorded."""
    run = piece.current_run
    if run is None or run.status not in (StepStatus.READY, StepStatus.RECEIVED) \
            or piece.location_id != run.workshop_id:
        return None
    prev = previous_run(piece, run)
    if not is_controlled_setting_run(prev):
        return None
    if SettingControl.objects.filter(setting_run=prev).exists():
        return None
    return prev


def controls_for(piece: Piece) -> list[SettingControl]:
    return list(SettingControl.objects.filter(piece=piece)
                .select_related("recorded_by", "workshop", "setting_run__workshop")
                .prefetch_related(Prefetch("counts", queryset=SettingControlCount.objects
                                           .order_by("group_number")), "photos")
                .order_by("recorded_at", "id"))


def with_visible_photos(user, controls: list[SettingControl]) -> list[SettingControl]:
    """Each control's photos that `user` may open (documents keep their own visibility)."""
    from etabli.documents.models import Document

    ids = {d.pk for c in controls for d in c.photos.all()}
    visible = set(Document.objects.visible_to(user).filter(pk__in=ids)
                  .values_list("pk", flat=True)) if ids else set()
    for c in controls:
        c.visible_photos = [d for d in c.photos.all() if d.pk in visible]
    return controls


def plans_to_review(user):
    """House list: plans not yet checked first, then the latest checked."""
    return (SettingPlan.objects.visible_to(user)
            .select_related("piece__line", "piece__order", "piece__current_workshop",
                            "checked_by")
            .order_by("status", "-updated_at", "-id"))
