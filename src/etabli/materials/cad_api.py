"""CAD → weight over the API: upload a mesh, read its analysis and estimated weights, keep a
piece's theoretical weight."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile

from etabli.core.errors import NotFound
from etabli.documents.models import Visibility

from . import cad, cad_services

router = Router(tags=["cad"])


class SizeOut(Schema):
    x_mm: Decimal
    y_mm: Decimal
    z_mm: Decimal


class AnalysisOut(Schema):
    is_watertight: bool
    volume_mm3: Decimal | None
    triangle_count: int
    size: SizeOut
    stone_count: int | None
    problem: str
    units_warning: str
    analysed_at: dt.datetime


class EstimateOut(Schema):
    alloy: str
    alloy_name: str
    metal: str
    fineness_permille: int
    density_g_cm3: Decimal
    weight_g: Decimal
    weight_ozt: Decimal
    weight_dwt: Decimal
    fine_g: Decimal
    value: Decimal | None = None
    currency: str | None = None
    priced_on: dt.date | None = None


class BudgetOut(Schema):
    line_id: int | None
    alloy: str | None
    estimated_g: Decimal | None
    budget_metal_g: Decimal | None
    over_weight_g: Decimal | None
    weight_over: bool
    stone_count: int | None
    budget_stone_count: int | None
    stones_over: bool
    warnings: list[str]
    notes: list[str]


class CadOut(Schema):
    document_id: int
    name: str
    content_type: str
    order_id: int
    line_id: int | None
    piece_id: int | None
    mesh_url: str
    analysis: AnalysisOut | None
    estimates: list[EstimateOut]
    prices_shown: bool
    budget: BudgetOut | None


class StoneCountIn(Schema):
    stone_count: int | None


class ApplyWeightIn(Schema):
    piece_id: int | None = None


class TheoreticalWeightIn(Schema):
    weight_g: Decimal | None
    source: Literal["entered", "cad"] = "entered"


class PieceWeightOut(Schema):
    id: int
    serial: str
    theoretical_weight_g: Decimal | None


def _out(report: cad.CadReport) -> dict:
    doc, a = report.document, report.analysis
    analysis = None
    if a is not None:
        analysis = {"is_watertight": a.is_watertight, "volume_mm3": a.volume_mm3,
                    "triangle_count": a.triangle_count,
                    "size": {"x_mm": a.size_x_mm, "y_mm": a.size_y_mm, "z_mm": a.size_z_mm},
                    "stone_count": a.stone_count, "problem": a.problem,
                    "units_warning": report.units_warning, "analysed_at": a.analysed_at}
    estimates = []
    for e in report.estimates:
        row = {"alloy": e.alloy.code, "alloy_name": _(e.alloy.name), "metal": e.alloy.metal,
               "fineness_permille": e.alloy.fineness_permille,
               "density_g_cm3": e.alloy.density_g_cm3, "weight_g": e.weight_g,
               "weight_ozt": e.weight_ozt, "weight_dwt": e.weight_dwt, "fine_g": e.fine_g}
        if report.prices_shown and e.price is not None:
            row |= {"value": e.value, "currency": e.price.currency,
                    "priced_on": e.price.priced_on}
        estimates.append(row)
    budget = None
    b = report.budget
    if b is not None:
        budget = {"line_id": b.line.pk if b.line else None,
                  "alloy": b.alloy.code if b.alloy else None, "estimated_g": b.estimated_g,
                  "budget_metal_g": b.budget_g, "over_weight_g": b.over_weight_g,
                  "weight_over": b.weight_over, "stone_count": b.stone_count,
                  "budget_stone_count": b.budget_stone_count, "stones_over": b.stones_over,
                  "warnings": b.warnings, "notes": b.notes}
    return {"document_id": doc.pk, "name": doc.original_name, "content_type": doc.content_type,
            "order_id": doc.order_id, "line_id": doc.line_id, "piece_id": doc.piece_id,
            "mesh_url": reverse("cad:mesh", args=[doc.pk]), "analysis": analysis,
            "estimates": estimates, "prices_shown": report.prices_shown, "budget": budget}


def _report(request, document_id: int) -> dict:
    doc = cad.cad_document_for(request.auth, document_id)
    if doc is None:
        raise NotFound(_("No CAD mesh (STL or OBJ) with id %(id)s.") % {"id": document_id})
    return _out(cad.cad_report(request.auth, doc))


@router.post("/cad", response={201: CadOut}, summary="Upload a CAD mesh (STL or OBJ)")
def upload_cad(request, file: File[UploadedFile], order_id: Form[int | None] = None,
               line_id: Form[int | None] = None, piece_id: Form[int | None] = None,
               stone_count: Form[int | None] = None,
               visibility: Form[Visibility] = Visibility.WORKSHOPS):
    """Multipart form: `file` (a binary or ASCII STL, or an OBJ, in millimetres, at most
    25 MB) for an order (`order_id`), one of its lines (`line_id`) or a piece (`piece_id`).
    The mesh is read first: a file that is not a mesh answers 400 and nothing is stored. A
    mesh that is not closed is stored, with `analysis.is_watertight` false and the reason in
    `analysis.problem`. Designers, sales, production managers and administrators."""
    analysis = cad_services.cad_upload(actor=request.auth, order_id=order_id, line_id=line_id,
                                       piece_id=piece_id, uploaded_file=file,
                                       stone_count=stone_count, visibility=visibility)
    return 201, _report(request, analysis.document_id)


@router.get("/cad/{document_id}", response=CadOut,
            summary="A CAD mesh's analysis and estimated weight in each alloy")
def get_cad(request, document_id: int):
    """Volume, bounding box (STL and OBJ have no unit: millimetres are assumed) and whether the
    mesh is closed; its weight in each alloy with the fine weight; the value of the fine metal
    at today's price only for roles that see prices; the order line's budget (metal weight in
    the line's alloy, stone count) for the house's staff."""
    return _report(request, document_id)


@router.post("/cad/{document_id}/analyse", response=CadOut,
             summary="Analyse (again) an STL or OBJ already attached")
def analyse_cad(request, document_id: int):
    cad_services.mesh_analyse(actor=request.auth, document_id=document_id)
    return _report(request, document_id)


@router.put("/cad/{document_id}/stone-count", response=CadOut,
            summary="Set how many stones the design holds")
def set_stone_count(request, document_id: int, payload: StoneCountIn):
    cad_services.mesh_stone_count_set(actor=request.auth, document_id=document_id,
                                      stone_count=payload.stone_count)
    return _report(request, document_id)


@router.post("/cad/{document_id}/apply-weight", response=list[PieceWeightOut],
             summary="Use the design's weight as the theoretical weight of pieces")
def apply_weight(request, document_id: int, payload: ApplyWeightIn):
    """The design's weight in its line's alloy becomes the theoretical weight of `piece_id`,
    else of the document's piece, else of every piece of the line not yet delivered."""
    return cad_services.cad_weight_apply(actor=request.auth, document_id=document_id,
                                         piece_id=payload.piece_id)


@router.put("/pieces/{piece_id}/theoretical-weight", response=PieceWeightOut,
            summary="Set a piece's theoretical weight (for the ±2 % QC check)")
def set_theoretical_weight(request, piece_id: int, payload: TheoreticalWeightIn):
    """`weight_g` in grams (3 decimals), or null to clear it."""
    return cad_services.piece_theoretical_weight_set(actor=request.auth, piece_id=piece_id,
                                                     weight_g=payload.weight_g,
                                                     source=payload.source)
