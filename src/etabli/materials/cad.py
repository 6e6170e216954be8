"""CAD meshes → volume → weight.

A designer's STL (binary or ASCII) or OBJ is read with trimesh from its bytes: the format is
recognised from the content, never from the file's name alone. A closed mesh has a volume
(mm³); times an alloy's density it gives the metal weight the piece will have, and with the
fineness and today's price its fine weight and metal value.

STL and OBJ have no unit: Établi assumes millimetres (what jewellery CAD exports) and always
shows the bounding box, so a model exported in inches or metres is plain to see.

The reads for the CAD page and the API (estimates per alloy, the line's budget) are here too;
the writes are in `cad_services`.
"""

from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _

from etabli.core.errors import ValidationFailed

from . import units

MM3 = Decimal("0.001")
STL_CONTENT_TYPE = "model/stl"
OBJ_CONTENT_TYPE = "model/obj"
MESH_CONTENT_TYPES = (STL_CONTENT_TYPE, OBJ_CONTENT_TYPE)

# Bounds of a model a jeweller could make, in millimetres. Outside them the file is refused:
# a 20 mm ring exported in metres is 0.02 across, in micrometres 20 000.
MAX_SIZE_MM = 1000
MIN_SIZE_MM = Decimal("0.1")
# Inside the bounds but unusual for a piece of jewellery: shown as a warning about the units.
USUAL_MIN_MM = 2
USUAL_MAX_MM = 300
MAX_TRIANGLES = 5_000_000

_BINARY_STL_HEADER = 84
_BINARY_STL_TRIANGLE = 50
_OBJ_GEOMETRY_LINE = re.compile(rb"^\s*(v|f|vn|vt|o|g)\s", re.MULTILINE)


class MeshInvalid(ValidationFailed):
    """The file is not a mesh Établi can weigh (answered 400, nothing is stored)."""

    code = "invalid_mesh"


def _invalid(message: str) -> MeshInvalid:
    return MeshInvalid(message, details={"field": "file"})


@dataclass(frozen=True)
class MeshFacts:
    """What the mesh says, before anything is stored."""

    format: str  # "stl_binary", "stl_ascii" or "obj"
    content_type: str
    triangle_count: int
    size_x_mm: Decimal
    size_y_mm: Decimal
    size_z_mm: Decimal
    is_watertight: bool
    volume_mm3: Decimal | None
    problem: str = ""


def detect_format(data: bytes) -> str:
    """"stl_binary", "stl_ascii" or "obj", from the bytes; raises MeshInvalid otherwise.

    A binary STL is an 80-byte header, a triangle count and 50 bytes per triangle: its length
    says whether it is one (its header may well start with "solid", so this is tried first).
    """
    if len(data) >= _BINARY_STL_HEADER:
        (count,) = struct.unpack_from("<I", data, 80)
        if len(data) == _BINARY_STL_HEADER + count * _BINARY_STL_TRIANGLE:
            return "stl_binary"
    head = data[:4096]
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None:
            stripped = text.lstrip().lower()
            if stripped.startswith("solid") and ("facet" in stripped or "endsolid" in stripped
                                                 or len(data) > len(head)):
                return "stl_ascii"
            if _OBJ_GEOMETRY_LINE.search(head):
                return "obj"
    raise _invalid(_("This file is not a mesh Établi can read: upload a binary or ASCII STL, "
                     "or an OBJ file."))


def content_type_of(fmt: str) -> str:
    return OBJ_CONTENT_TYPE if fmt == "obj" else STL_CONTENT_TYPE


def _load(data: bytes, fmt: str):
    import numpy as np
    import trimesh

    file_type = "obj" if fmt == "obj" else "stl"
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type=file_type, force="mesh",
                              process=False)
    except Exception as exc:  # trimesh raises many kinds on broken input; all mean the same
        raise _invalid(_("The file could not be read as a mesh (%(format)s): %(reason)s")
                       % {"format": file_type.upper(), "reason": str(exc)[:120]}) from exc
    vertices = np.asarray(getattr(loaded, "vertices", np.empty((0, 3))), dtype=float)
    faces = np.asarray(getattr(loaded, "faces", np.empty((0, 3))))
    return trimesh, np, vertices, faces


def analyse_mesh(data: bytes, *, filename: str = "") -> MeshFacts:
    """Read `data` as an STL or OBJ mesh and measure it. Raises MeshInvalid (400) when it is not
    a mesh, is empty, has coordinates that are not numbers or has an impossible size. A mesh
    that is not closed is not an error: its facts say so and it has no volume."""
    if not data:
        raise _invalid(_("The file is empty."))
    fmt = detect_format(data)
    trimesh, np, vertices, faces = _load(data, fmt)
    if len(faces) == 0 or len(vertices) == 0:
        raise _invalid(_("The file holds no triangles: there is no mesh to weigh."))
    if len(faces) > MAX_TRIANGLES:
        raise _invalid(_("The mesh has more than %(n)s triangles; simplify it before "
                         "uploading.") % {"n": f"{MAX_TRIANGLES:,}"})
    if not np.isfinite(vertices).all():
        raise _invalid(_("The mesh has coordinates that are not numbers (NaN or infinity): "
                         "the file is damaged; export it again."))
    extents = vertices.max(axis=0) - vertices.min(axis=0)
    size = [Decimal(repr(float(e))).quantize(MM3, ROUND_HALF_UP) for e in extents]
    largest = max(size)
    if largest > MAX_SIZE_MM:
        raise _invalid(_("The model is %(size)s mm across: far too large for a piece of "
                         "jewellery. STL and OBJ files have no unit and Établi reads them in "
                         "millimetres: export the model in millimetres.")
                       % {"size": f"{largest:.0f}"})
    if largest < MIN_SIZE_MM:
        raise _invalid(_("The model is %(size)s mm across: far too small. STL and OBJ files "
                         "have no unit and Établi reads them in millimetres: export the model "
                         "in millimetres.") % {"size": f"{largest:.3f}"})

    # STL is a soup of triangles: merge the shared corners so the edges can be followed.
    # (No `validate`: repairing normals needs scipy, and a mesh we repaired silently is not
    # the mesh the designer will send to the caster.)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=True, validate=False)
    if len(mesh.faces) == 0:
        raise _invalid(_("The file holds no triangles: there is no mesh to weigh."))
    problem = ""
    volume = None
    watertight = bool(mesh.is_watertight)
    if not watertight:
        problem = _("The mesh is not closed (it has holes or loose edges), so it has no volume "
                    "to weigh. Close it in the CAD program and upload it again.")
    elif not mesh.is_winding_consistent:
        watertight = False
        problem = _("The mesh's triangles face inconsistent ways, so its volume cannot be "
                    "trusted. Repair the normals in the CAD program and upload it again.")
    else:
        raw = abs(float(mesh.volume))  # an inside-out mesh has a negative volume
        if not math.isfinite(raw) or raw <= 0:
            watertight = False
            problem = _("The mesh encloses no volume.")
        else:
            volume = Decimal(repr(raw)).quantize(MM3, ROUND_HALF_UP)
            if volume <= 0:
                watertight = False
                volume = None
                problem = _("The mesh encloses no volume.")
    return MeshFacts(format=fmt, content_type=content_type_of(fmt),
                     triangle_count=int(len(faces)), size_x_mm=size[0], size_y_mm=size[1],
                     size_z_mm=size[2], is_watertight=watertight, volume_mm3=volume,
                     problem=problem[:240])


def units_warning(analysis) -> str:
    """A warning when the model's size is unusual for jewellery (a hint at the wrong unit)."""
    largest = max(analysis.size_x_mm, analysis.size_y_mm, analysis.size_z_mm)
    if largest < USUAL_MIN_MM:
        return _("The model is only %(size)s mm across: was it exported in centimetres, "
                 "inches or metres? Établi reads STL and OBJ in millimetres.") \
            % {"size": largest}
    if largest > USUAL_MAX_MM:
        return _("The model is %(size)s mm across: was it exported in a smaller unit? "
                 "Établi reads STL and OBJ in millimetres.") % {"size": largest}
    return ""


# ---------------------------------------------------------------------------------------------
# estimates (reads)


@dataclass
class AlloyEstimate:
    alloy: object
    weight_g: Decimal
    fine_g: Decimal
    weight_ozt: Decimal
    weight_dwt: Decimal
    price: object | None = None  # a MetalPrice, only for those who see prices

    @property
    def value(self) -> Decimal | None:
        if self.price is None:
            return None
        return (self.fine_g * self.price.price_per_fine_g).quantize(Decimal("0.01"),
                                                                    ROUND_HALF_UP)


@dataclass
class BudgetCheck:
    line: object | None
    alloy: object | None = None
    estimated_g: Decimal | None = None
    budget_g: Decimal | None = None
    stone_count: int | None = None
    budget_stone_count: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def over_weight_g(self) -> Decimal | None:
        if self.estimated_g is None or self.budget_g is None:
            return None
        return self.estimated_g - self.budget_g

    @property
    def weight_over(self) -> bool:
        return self.over_weight_g is not None and self.over_weight_g > 0

    @property
    def stones_over(self) -> bool:
        return (self.stone_count is not None and self.budget_stone_count is not None
                and self.stone_count > self.budget_stone_count)

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.weight_over:
            out.append(_("The design weighs %(est)s g in %(alloy)s, %(over)s g over the line's "
                         "budget of %(budget)s g.")
                       % {"est": self.estimated_g, "alloy": _(self.alloy.name),
                          "over": self.over_weight_g, "budget": self.budget_g})
        if self.stones_over:
            out.append(_("The design has %(n)s stones, more than the line's budget of "
                         "%(budget)s.") % {"n": self.stone_count,
                                           "budget": self.budget_stone_count})
        return out


def alloy_estimates(volume_mm3: Decimal | None, *, with_prices: bool = False,
                    on_date=None, currency: str | None = None) -> list[AlloyEstimate]:
    """The weight of `volume_mm3` in every alloy (with fine weight, troy ounces, pennyweights
    and, when asked, the value of the fine metal at the price of `on_date`, today by default)."""
    from .models import Alloy
    from .selectors import price_on

    if volume_mm3 is None:
        return []
    prices: dict[str, object | None] = {}
    rows = []
    for alloy in Alloy.objects.order_by("metal", "-fineness_permille", "code"):
        weight = units.volume_weight_g(volume_mm3, alloy.density_g_cm3)
        price = None
        if with_prices:
            if alloy.metal not in prices:
                prices[alloy.metal] = price_on(alloy.metal, on_date, currency)
            price = prices[alloy.metal]
        rows.append(AlloyEstimate(alloy=alloy, weight_g=weight,
                                  fine_g=units.fine_g(weight, alloy.fineness_permille),
                                  weight_ozt=units.to_unit(weight, "ozt", 4),
                                  weight_dwt=units.to_unit(weight, "dwt", 3), price=price))
    return rows


def line_of(document):
    """The order line a CAD document is for: its own, its piece's, or the order's only line."""
    if document.line_id:
        return document.line
    if document.piece_id:
        return document.piece.line
    lines = list(document.order.lines.select_related("alloy")[:2])
    return lines[0] if len(lines) == 1 else None


def budget_check(document, analysis) -> BudgetCheck:
    """The design's estimate in the line's alloy and its stone count against the line's
    budget."""
    line = line_of(document)
    check = BudgetCheck(line=line, stone_count=analysis.stone_count if analysis else None)
    if line is None:
        check.notes.append(_("Attach the file to an order line to compare it with the line's "
                             "budget."))
        return check
    check.alloy = line.alloy
    check.budget_g = line.budget_metal_g
    check.budget_stone_count = line.budget_stone_count
    if analysis is not None and analysis.volume_mm3 is not None and line.alloy is not None:
        check.estimated_g = units.volume_weight_g(analysis.volume_mm3, line.alloy.density_g_cm3)
    if line.alloy is None:
        check.notes.append(_("The line has no alloy yet: the weight cannot be compared."))
    if line.budget_metal_g is None and line.budget_stone_count is None:
        check.notes.append(_("The line has no metal or stone budget."))
    return check


@dataclass
class CadReport:
    """Everything the CAD page and the API show about one mesh, for one reader."""

    document: object
    analysis: object | None
    estimates: list[AlloyEstimate]
    budget: BudgetCheck | None
    prices_shown: bool
    units_warning: str = ""


def cad_document_for(user, document_id: int):
    """The STL or OBJ document `document_id` if `user` may see it, else None."""
    from etabli.documents.models import Document

    return (Document.objects.visible_to(user)
            .select_related("order", "line__alloy", "piece__line__alloy", "uploaded_by")
            .filter(pk=document_id, content_type__in=MESH_CONTENT_TYPES).first())


def cad_report(user, document, *, on_date=None) -> CadReport:
    """The analysis of `document` with its weight in every alloy; fine metal values only for
    those who see prices; the line's budget only for the house's staff."""
    from .models import MeshAnalysis

    analysis = MeshAnalysis.objects.filter(document=document).first()
    prices_shown = bool(user.sees_prices)
    estimates = alloy_estimates(analysis.volume_mm3 if analysis else None,
                                with_prices=prices_shown, on_date=on_date,
                                currency=document.order.currency)
    budget = budget_check(document, analysis) if user.sees_clients else None
    return CadReport(document=document, analysis=analysis, estimates=estimates, budget=budget,
                     prices_shown=prices_shown,
                     units_warning=units_warning(analysis) if analysis else "")
