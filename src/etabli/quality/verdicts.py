"""Pass or fail, computed from what was measured: never typed.

Pure functions over an inspection's measurements and the tolerances it copied from its
template. Decimal arithmetic, exact at the edges: with a ±2 % tolerance a deviation of 2.00 %
passes and 2.01 % fails; with ±0.2 mm a dimension off by 0.200 mm passes and 0.201 mm fails.
The services store the overall verdict (for lists and filters) from the same functions the
pages and the sheet use to show each criterion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import CriterionKind, FunctionResult, Verdict

HUNDRED = Decimal(100)


@dataclass
class DimensionResult:
    name: str
    target_mm: Decimal
    measured_mm: Decimal | None
    deviation_mm: Decimal | None
    verdict: str


@dataclass
class CriterionResult:
    kind: str
    label: str
    verdict: str
    tolerance: Decimal | None
    expected: str = ""  # what the piece must show, in words and numbers
    measured: str = ""  # what was found
    detail: str = ""  # the deviation, or what is still missing
    dimensions: list[DimensionResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.verdict == Verdict.FAIL


@dataclass
class Assessment:
    criteria: list[CriterionResult]
    verdict: str

    @property
    def failed(self) -> list[CriterionResult]:
        return [c for c in self.criteria if c.verdict == Verdict.FAIL]

    @property
    def pending(self) -> list[CriterionResult]:
        return [c for c in self.criteria if c.verdict == Verdict.PENDING]


def weight_deviation_percent(theoretical_g: Decimal, measured_g: Decimal) -> Decimal:
    """|measured − theoretical| ÷ theoretical in %, rounded up to 0.01 % for display only (so
    a deviation just over the tolerance never reads as equal to it)."""
    exact = abs(measured_g - theoretical_g) * HUNDRED / theoretical_g
    return exact.quantize(Decimal("0.01"), rounding=ROUND_UP)


def weight_within(theoretical_g: Decimal, measured_g: Decimal, tolerance_pct: Decimal) -> bool:
    # Multiplied out rather than divided: no rounding anywhere.
    return abs(measured_g - theoretical_g) * HUNDRED <= tolerance_pct * theoretical_g


def dimension_within(target_mm: Decimal, measured_mm: Decimal, tolerance_mm: Decimal) -> bool:
    return abs(measured_mm - target_mm) <= tolerance_mm


def _label(kind: str) -> str:
    return str(CriterionKind(kind).label)


def _combine(verdicts: list[str]) -> str:
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.PENDING in verdicts:
        return Verdict.PENDING
    return Verdict.PASS


def _weight(ins, tol: Decimal) -> CriterionResult:
    res = CriterionResult(CriterionKind.WEIGHT, _label(CriterionKind.WEIGHT), Verdict.PENDING,
                          tol)
    theo, meas = ins.theoretical_weight_g, ins.measured_weight_g
    if theo is not None:
        res.expected = f"{theo} g ± {tol} %"
    if meas is not None:
        res.measured = f"{meas} g"
    if theo is None:
        res.detail = _("Enter the theoretical weight (the piece has none).")
    elif meas is None:
        res.detail = _("Weigh the piece.")
    else:
        res.verdict = Verdict.PASS if weight_within(theo, meas, tol) else Verdict.FAIL
        res.detail = _("deviation %(pct)s %%") % {"pct": weight_deviation_percent(theo, meas)}
    return res


def _dimensions(ins, dimensions, tol: Decimal) -> CriterionResult:
    res = CriterionResult(CriterionKind.DIMENSIONS, _label(CriterionKind.DIMENSIONS),
                          Verdict.PENDING, tol, expected=f"± {tol} mm")
    for d in dimensions:
        if d.measured_mm is None:
            res.dimensions.append(DimensionResult(d.name, d.target_mm, None, None,
                                                  Verdict.PENDING))
            continue
        dev = d.measured_mm - d.target_mm
        ok = dimension_within(d.target_mm, d.measured_mm, tol)
        res.dimensions.append(DimensionResult(d.name, d.target_mm, d.measured_mm, dev,
                                              Verdict.PASS if ok else Verdict.FAIL))
    if not res.dimensions:
        res.detail = _("Measure at least one dimension against its target.")
        return res
    res.verdict = _combine([d.verdict for d in res.dimensions])
    res.measured = "; ".join(
        f"{d.name} {d.measured_mm if d.measured_mm is not None else '—'} / {d.target_mm} mm"
        for d in res.dimensions)
    off = [d for d in res.dimensions if d.verdict == Verdict.FAIL]
    if off:
        res.detail = _("out of tolerance: %(names)s") % {
            "names": ", ".join(f"{d.name} ({d.deviation_mm:+} mm)" for d in off)}
    elif res.verdict == Verdict.PENDING:
        res.detail = _("Measure every dimension listed.")
    return res


def _fineness(ins) -> CriterionResult:
    res = CriterionResult(CriterionKind.FINENESS, _label(CriterionKind.FINENESS),
                          Verdict.PENDING, None)
    hallmark = ins.hallmark_fineness_permille
    if hallmark is not None:
        res.expected = _("≥ %(fineness)s ‰ (hallmark %(alloy)s)") % {
            "fineness": hallmark, "alloy": ins.alloy_name or hallmark}
    if ins.fineness_reading_permille is not None:
        res.measured = f"{ins.fineness_reading_permille} ‰"
        if ins.fineness_method:
            res.measured += f" ({ins.get_fineness_method_display()})"
    if hallmark is None:
        res.detail = _("The order line has no alloy: there is no hallmark to check against.")
    elif not ins.fineness_method or ins.fineness_reading_permille is None:
        res.detail = _("Test the metal (touchstone or XRF) and enter the reading.")
    else:
        ok = ins.fineness_reading_permille >= hallmark
        res.verdict = Verdict.PASS if ok else Verdict.FAIL
        if not ok:
            res.detail = _("below the hallmark by %(d)s ‰") % {
                "d": hallmark - ins.fineness_reading_permille}
    return res


def _surface(ins, tol: Decimal) -> CriterionResult:
    allowed = int(tol)
    res = CriterionResult(CriterionKind.SURFACE, _label(CriterionKind.SURFACE),
                          Verdict.PENDING, tol,
                          expected=ngettext("at most %(n)s visible defect under the loupe",
                                            "at most %(n)s visible defects under the loupe",
                                            allowed) % {"n": allowed})
    if ins.surface_defects is None:
        res.detail = _("Count the visible defects under the loupe.")
    else:
        res.measured = ngettext("%(n)s visible defect", "%(n)s visible defects",
                                ins.surface_defects) % {"n": ins.surface_defects}
        res.verdict = Verdict.PASS if ins.surface_defects <= allowed else Verdict.FAIL
    return res


def _stones(ins) -> CriterionResult:
    res = CriterionResult(CriterionKind.STONES, _label(CriterionKind.STONES), Verdict.PENDING,
                          None, expected=_("mechanical test passed, no loose stone"))
    if not ins.stones_applicable:
        res.verdict = Verdict.NOT_APPLICABLE
        res.expected = ""
        res.detail = _("The piece has no stones.")
        return res
    parts = []
    if ins.stones_mechanical_test is not None:
        parts.append(_("mechanical test passed") if ins.stones_mechanical_test
                     else _("mechanical test failed"))
    if ins.loose_stones is not None:
        parts.append(ngettext("%(n)s loose stone", "%(n)s loose stones", ins.loose_stones)
                     % {"n": ins.loose_stones})
    res.measured = ", ".join(parts)
    if ins.stones_mechanical_test is False or (ins.loose_stones or 0) > 0:
        res.verdict = Verdict.FAIL
    elif ins.stones_mechanical_test is None or ins.loose_stones is None:
        res.detail = _("Do the mechanical test and count loose stones.")
    else:
        res.verdict = Verdict.PASS
    return res


def _function(ins) -> CriterionResult:
    res = CriterionResult(CriterionKind.FUNCTION, _label(CriterionKind.FUNCTION),
                          Verdict.PENDING, None, expected=_("clasps and hinges work"))
    result = ins.function_result
    if not result:
        res.detail = _("Try the clasps and hinges (or say there are none).")
        return res
    res.measured = str(FunctionResult(result).label)
    res.verdict = {FunctionResult.OK: Verdict.PASS, FunctionResult.NOT_OK: Verdict.FAIL,
                   FunctionResult.NOT_APPLICABLE: Verdict.NOT_APPLICABLE}[result]
    return res


def assess(ins, dimensions=None) -> Assessment:
    """Every criterion the inspection copied from its template, and the overall verdict:
    fail as soon as one criterion fails, incomplete while one is not assessed, else pass.

    `ins` is an Inspection (saved or not); `dimensions` its measured dimensions (objects with
    name, target_mm, measured_mm), read from the database when not given.
    """
    if dimensions is None:
        dimensions = list(ins.dimensions.order_by("position")) if ins.pk else []
    results = []
    for c in ins.criteria:
        kind, tol = c["kind"], c.get("tolerance")
        tol = Decimal(tol) if tol is not None else None
        if kind == CriterionKind.WEIGHT:
            results.append(_weight(ins, tol))
        elif kind == CriterionKind.DIMENSIONS:
            results.append(_dimensions(ins, dimensions, tol))
        elif kind == CriterionKind.FINENESS:
            results.append(_fineness(ins))
        elif kind == CriterionKind.SURFACE:
            results.append(_surface(ins, tol))
        elif kind == CriterionKind.STONES:
            results.append(_stones(ins))
        elif kind == CriterionKind.FUNCTION:
            results.append(_function(ins))
    verdicts = [r.verdict for r in results if r.verdict != Verdict.NOT_APPLICABLE]
    return Assessment(results, _combine(verdicts))
