"""Budget consistency: a design's estimated metal and stones against its line's budget.

Shown on the design pages and to the client before they approve, and kept in the approval.
Every figure is per piece, like the line's budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy


@dataclass(frozen=True)
class Figure:
    """One figure of the design against its budget."""

    key: str
    label: str
    unit: str
    estimated: Decimal | int | None
    budget: Decimal | int | None

    @property
    def difference(self) -> Decimal | int | None:
        if self.estimated is None or self.budget is None:
            return None
        return self.estimated - self.budget

    @property
    def difference_pct(self) -> Decimal | None:
        """The difference as a percentage of the budget (one decimal)."""
        if self.difference is None or not self.budget:
            return None
        return (Decimal(self.difference) * 100 / Decimal(self.budget)).quantize(
            Decimal("0.1"), ROUND_HALF_UP)

    @property
    def over(self) -> bool:
        return self.difference is not None and self.difference > 0

    @property
    def compared(self) -> bool:
        return self.difference is not None

    @property
    def signed_difference(self) -> str:
        """"+0.350", "−2", "0": how the difference reads on a page."""
        if self.difference is None:
            return ""
        if self.difference > 0:
            return f"+{self.difference}"
        if self.difference < 0:
            return f"−{-self.difference}"
        return "0"


LABELS = {
    "metal": gettext_lazy("Metal"),
    "stone_count": gettext_lazy("Stones"),
    "stone_ct": gettext_lazy("Stone weight"),
}


@dataclass(frozen=True)
class BudgetConsistency:
    metal: Figure
    stone_count: Figure
    stone_ct: Figure

    @property
    def figures(self) -> list[Figure]:
        return [self.metal, self.stone_count, self.stone_ct]

    @property
    def over(self) -> list[Figure]:
        return [f for f in self.figures if f.over]

    @property
    def consistent(self) -> bool:
        return not self.over

    @property
    def anything_compared(self) -> bool:
        return any(f.compared for f in self.figures)

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.metal.over:
            out.append(_("The design weighs %(est)s g of metal, %(diff)s g over the budget of "
                         "%(budget)s g.") % {"est": self.metal.estimated,
                                              "diff": self.metal.difference,
                                              "budget": self.metal.budget})
        if self.stone_count.over:
            out.append(_("The design has %(est)s stones, %(diff)s more than the budget of "
                         "%(budget)s.") % {"est": self.stone_count.estimated,
                                            "diff": self.stone_count.difference,
                                            "budget": self.stone_count.budget})
        if self.stone_ct.over:
            out.append(_("The design's stones weigh %(est)s ct, %(diff)s ct over the budget of "
                         "%(budget)s ct.") % {"est": self.stone_ct.estimated,
                                               "diff": self.stone_ct.difference,
                                               "budget": self.stone_ct.budget})
        return out

    def as_dict(self) -> dict:
        return {f.key: {"estimated": f.estimated, "budget": f.budget,
                        "difference": f.difference, "difference_pct": f.difference_pct,
                        "over": f.over} for f in self.figures} | {
            "consistent": self.consistent, "warnings": self.warnings}


def consistency(*, estimated_metal_g, estimated_stone_count, estimated_stone_ct,
                budget_metal_g, budget_stone_count, budget_stone_ct) -> BudgetConsistency:
    return BudgetConsistency(
        metal=Figure("metal", str(LABELS["metal"]), "g", estimated_metal_g, budget_metal_g),
        stone_count=Figure("stone_count", str(LABELS["stone_count"]), "",
                           estimated_stone_count, budget_stone_count),
        stone_ct=Figure("stone_ct", str(LABELS["stone_ct"]), "ct", estimated_stone_ct,
                        budget_stone_ct),
    )


def of_round(design_round, line=None) -> BudgetConsistency:
    """A round's estimates against its line's budget as it is now."""
    line = line or design_round.line
    return consistency(estimated_metal_g=design_round.estimated_metal_g,
                       estimated_stone_count=design_round.estimated_stone_count,
                       estimated_stone_ct=design_round.estimated_stone_ct,
                       budget_metal_g=line.budget_metal_g,
                       budget_stone_count=line.budget_stone_count,
                       budget_stone_ct=line.budget_stone_ct)


def of_approval(approval) -> BudgetConsistency:
    """The figures as they stood when the client approved (kept in the approval)."""
    return consistency(estimated_metal_g=approval.estimated_metal_g,
                       estimated_stone_count=approval.estimated_stone_count,
                       estimated_stone_ct=approval.estimated_stone_ct,
                       budget_metal_g=approval.budget_metal_g,
                       budget_stone_count=approval.budget_stone_count,
                       budget_stone_ct=approval.budget_stone_ct)
