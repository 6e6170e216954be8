"""Writes for CAD → weight: upload and analyse a mesh, count its stones, keep a piece's
theoretical weight (from its design or entered) for quality control's ±2 % check.

Every function is keyword-only, runs in one transaction and raises a DomainError on a guard.
A file that is not a mesh is refused before anything is stored.
"""

from __future__ import annotations

import os
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.documents.checks import max_upload_bytes, size_refusal
from etabli.documents.models import Document, DocumentKind, Visibility
from etabli.documents.services import document_upload

from . import units
from .cad import MESH_CONTENT_TYPES, MeshFacts, MeshInvalid, analyse_mesh, line_of
from .models import MeshAnalysis

MAX_STONE_COUNT = 10_000
MAX_THEORETICAL_WEIGHT_G = Decimal("100000")
WEIGHT_SOURCES = ("entered", "cad")
_EXTENSIONS = {".stl": ("stl_binary", "stl_ascii"), ".obj": ("obj",)}


def works_on_designs(user) -> bool:
    """Sales, production managers, administrators and designers upload CAD files and keep
    theoretical weights; workshops, clients, quality and logistics only read them."""
    return bool(user and user.is_active and (user.takes_orders or user.role == "designer"))


def _check_designs_role(actor) -> None:
    if not works_on_designs(actor):
        raise PermissionDenied(_("Only designers, sales, production managers and "
                                 "administrators work on CAD files and theoretical weights."))


def _target(actor, order_id: int, line_id: int | None, piece_id: int | None):
    """(order, line, piece) the upload is for, each visible to the actor."""
    from etabli.orders.models import Order
    from etabli.production.models import Piece

    if piece_id is not None:
        piece = (Piece.objects.visible_to(actor).select_related("order", "line")
                 .filter(pk=piece_id).first())
        if piece is None or (order_id is not None and piece.order_id != order_id):
            raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
        if line_id is not None and line_id != piece.line_id:
            raise ValidationFailed(_("Piece %(serial)s is not on that order line.")
                                   % {"serial": piece.serial}, details={"field": "line_id"})
        return piece.order, piece.line, piece
    order = Order.objects.visible_to(actor).filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    line = None
    if line_id is not None:
        line = order.lines.filter(pk=line_id).first()
        if line is None:
            raise NotFound(_("No line with id %(id)s on order %(ref)s.")
                           % {"id": line_id, "ref": order.reference})
    return order, line, None


def _clean_stone_count(stone_count) -> int | None:
    if stone_count is None or stone_count == "":
        return None
    if isinstance(stone_count, bool):
        raise ValidationFailed(_("The stone count is a whole number."),
                               details={"field": "stone_count"})
    try:
        value = int(stone_count)
    except (TypeError, ValueError):
        raise ValidationFailed(_("The stone count is a whole number."),
                               details={"field": "stone_count"}) from None
    if value != stone_count and str(value) != str(stone_count).strip():
        raise ValidationFailed(_("The stone count is a whole number."),
                               details={"field": "stone_count"})
    if not 0 <= value <= MAX_STONE_COUNT:
        raise ValidationFailed(_("The stone count is between 0 and %(max)s.")
                               % {"max": MAX_STONE_COUNT}, details={"field": "stone_count"})
    return value


def _check_name_matches(name: str, facts: MeshFacts) -> None:
    """The file's name must say what its content is (an OBJ called .stl is refused)."""
    ext = os.path.splitext(name or "")[1].lower()
    if ext not in _EXTENSIONS:
        raise MeshInvalid(_("Name the file .stl or .obj after what it holds (this one holds "
                            "%(kind)s)." ) % {"kind": _kind_label(facts.format)},
                          details={"field": "file"})
    if facts.format not in _EXTENSIONS[ext]:
        raise MeshInvalid(_("The file is called %(name)s but holds %(kind)s: it is not what "
                            "its name says. Export it again or rename it.")
                          % {"name": name, "kind": _kind_label(facts.format)},
                          details={"field": "file"})


def _kind_label(fmt: str) -> str:
    return {"stl_binary": _("a binary STL mesh"), "stl_ascii": _("an ASCII STL mesh"),
            "obj": _("an OBJ mesh")}[fmt]


def _facts_fields(facts: MeshFacts) -> dict:
    return {"is_watertight": facts.is_watertight, "volume_mm3": facts.volume_mm3,
            "triangle_count": facts.triangle_count, "size_x_mm": facts.size_x_mm,
            "size_y_mm": facts.size_y_mm, "size_z_mm": facts.size_z_mm,
            "problem": facts.problem}


@transaction.atomic
def cad_upload(*, actor, order_id: int | None, uploaded_file, line_id: int | None = None,
               piece_id: int | None = None, stone_count: int | None = None,
               visibility: str = Visibility.WORKSHOPS) -> MeshAnalysis:
    """Store a CAD mesh (STL or OBJ) for an order, one of its lines or a piece, and analyse it.

    The mesh is read before anything is written: a file that is not a mesh (whatever its name)
    is refused with a 400 and leaves no document behind. A mesh that is not closed is stored,
    with the reason it cannot be weighed.
    """
    _check_designs_role(actor)
    if order_id is None and piece_id is None:
        raise ValidationFailed(_("Say which order (or piece) the file is for."),
                               details={"field": "order_id"})
    order, line, piece = _target(actor, order_id, line_id, piece_id)
    if order.status == "cancelled":
        raise TransitionNotAllowed(_("Order %(ref)s is cancelled: no more files can be "
                                     "attached.") % {"ref": order.reference})
    stones = _clean_stone_count(stone_count)
    if uploaded_file is None:
        raise ValidationFailed(_("Choose a file."), details={"field": "file"})
    size = uploaded_file.size or 0
    if size > max_upload_bytes():
        raise size_refusal(size)
    data = uploaded_file.read()
    name = os.path.basename((uploaded_file.name or "").replace("\\", "/"))[:200]
    facts = analyse_mesh(data, filename=name)
    _check_name_matches(name, facts)

    doc = document_upload(actor=actor, order_id=order.pk, uploaded_file=ContentFile(data, name),
                          kind=DocumentKind.CAD, visibility=visibility,
                          piece_id=piece.pk if piece else None)
    try:
        if line is not None:
            doc.line = line
            doc.save(update_fields=["line"])
        analysis = MeshAnalysis.objects.create(document=doc, stone_count=stones,
                                               **_facts_fields(facts))
        audit.record(actor=actor, action="cad.analyse", obj=analysis,
                     after=_facts_fields(facts) | {"document": doc.pk, "stone_count": stones,
                                                   "format": facts.format},
                     order_id=order.pk, piece_id=piece.pk if piece else None)
    except Exception:
        # The transaction rolls the rows back; the stored file is ours to remove.
        doc.file.delete(save=False)
        raise
    return analysis


def _cad_document(actor, document_id: int, *, for_update: bool = False) -> Document:
    qs = Document.objects.visible_to(actor).select_related("order", "piece", "line")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    doc = qs.filter(pk=document_id).first()
    if doc is None or doc.content_type not in MESH_CONTENT_TYPES:
        raise NotFound(_("No CAD mesh (STL or OBJ) with id %(id)s.") % {"id": document_id})
    return doc


@transaction.atomic
def mesh_analyse(*, actor, document_id: int) -> MeshAnalysis:
    """Analyse (again) an STL or OBJ already attached, e.g. through the order's documents."""
    _check_designs_role(actor)
    doc = _cad_document(actor, document_id, for_update=True)
    with doc.file.open("rb") as fh:
        data = fh.read()
    facts = analyse_mesh(data, filename=doc.original_name)
    if facts.content_type != doc.content_type:
        raise MeshInvalid(_("The file is called %(name)s but holds %(kind)s: it is not what "
                            "its name says. Export it again or rename it.")
                          % {"name": doc.original_name, "kind": _kind_label(facts.format)},
                          details={"field": "file"})
    analysis = MeshAnalysis.objects.filter(document=doc).first()
    before = audit.snapshot(analysis, ["is_watertight", "volume_mm3", "problem"]) \
        if analysis else {}
    if analysis is None:
        analysis = MeshAnalysis.objects.create(document=doc, **_facts_fields(facts))
    else:
        for key, value in _facts_fields(facts).items():
            setattr(analysis, key, value)
        analysis.save()
    audit.record(actor=actor, action="cad.analyse", obj=analysis, before=before,
                 after=_facts_fields(facts) | {"document": doc.pk, "format": facts.format},
                 order_id=doc.order_id, piece_id=doc.piece_id)
    return analysis


@transaction.atomic
def mesh_stone_count_set(*, actor, document_id: int, stone_count: int | None) -> MeshAnalysis:
    """How many stones the design holds, as its designer counts them (compared with the
    line's budget)."""
    _check_designs_role(actor)
    doc = _cad_document(actor, document_id)
    analysis = MeshAnalysis.objects.select_for_update().filter(document=doc).first()
    if analysis is None:
        raise NotFound(_("This file has not been analysed yet."))
    value = _clean_stone_count(stone_count)
    before = {"stone_count": analysis.stone_count}
    analysis.stone_count = value
    analysis.save(update_fields=["stone_count"])
    audit.record(actor=actor, action="cad.stone_count", obj=analysis, before=before,
                 after={"stone_count": value}, order_id=doc.order_id, piece_id=doc.piece_id)
    return analysis


def _clean_weight(weight_g) -> Decimal | None:
    if weight_g is None or weight_g == "":
        return None
    if isinstance(weight_g, bool):
        raise ValidationFailed(_("The theoretical weight is a number of grams."),
                               details={"field": "weight_g"})
    try:
        value = Decimal(str(weight_g).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(_("The theoretical weight is a number of grams."),
                               details={"field": "weight_g"}) from None
    if not value.is_finite() or value <= 0 or value > MAX_THEORETICAL_WEIGHT_G:
        raise ValidationFailed(_("The theoretical weight is more than 0 g and at most "
                                 "%(max)s g.") % {"max": MAX_THEORETICAL_WEIGHT_G},
                               details={"field": "weight_g"})
    return value.quantize(units.MG, ROUND_HALF_UP)


@transaction.atomic
def piece_theoretical_weight_set(*, actor, piece_id: int, weight_g, source: str = "entered",
                                 document_id: int | None = None):
    """Keep the weight a piece should have when finished (from its design or entered), for
    quality control's ±2 % check. `None` clears it."""
    from etabli.production.models import Piece, PieceStatus

    _check_designs_role(actor)
    if source not in WEIGHT_SOURCES:
        raise ValidationFailed(_("Unknown source '%(source)s'.") % {"source": source},
                               details={"field": "source"})
    value = _clean_weight(weight_g)
    piece = (Piece.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=piece_id).first())
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    if piece.status == PieceStatus.DELIVERED:
        raise TransitionNotAllowed(_("%(serial)s has been delivered: its theoretical weight "
                                     "no longer changes.") % {"serial": piece.serial})
    before = {"theoretical_weight_g": piece.theoretical_weight_g}
    piece.theoretical_weight_g = value
    piece.save(update_fields=["theoretical_weight_g"])
    audit.record(actor=actor, action="piece.theoretical_weight", obj=piece, before=before,
                 after={"theoretical_weight_g": value, "source": source,
                        "document": document_id},
                 order_id=piece.order_id, piece_id=piece.pk)
    return piece


@transaction.atomic
def cad_weight_apply(*, actor, document_id: int, piece_id: int | None = None) -> list:
    """Use the design's estimated weight, in its line's alloy, as the theoretical weight of one
    piece (`piece_id`, else the document's own piece) or of every piece of the line not yet
    delivered."""
    from etabli.production.models import Piece, PieceStatus

    _check_designs_role(actor)
    doc = _cad_document(actor, document_id)
    analysis = MeshAnalysis.objects.filter(document=doc).first()
    if analysis is None:
        raise NotFound(_("This file has not been analysed yet."))
    if analysis.volume_mm3 is None:
        raise TransitionNotAllowed(_("The mesh is not closed: it has no weight to use."))
    line = line_of(doc)
    if line is None:
        raise ValidationFailed(_("The file is not attached to an order line: there is no "
                                 "alloy to weigh it in."), details={"field": "document_id"})
    if line.alloy is None:
        raise ValidationFailed(_("The order line has no alloy yet: there is no density to "
                                 "weigh the design with."), details={"field": "document_id"})
    weight = units.volume_weight_g(analysis.volume_mm3, line.alloy.density_g_cm3)
    pieces = Piece.objects.visible_to(actor).filter(line=line)
    target = piece_id if piece_id is not None else doc.piece_id
    if target is not None:
        chosen = list(pieces.filter(pk=target))
        if not chosen:
            raise NotFound(_("No piece with id %(id)s on this design's order line.")
                           % {"id": target})
    else:
        chosen = list(pieces.exclude(status=PieceStatus.DELIVERED).order_by("serial"))
        if not chosen:
            raise TransitionNotAllowed(_("The line has no pieces to weigh yet: they are "
                                         "made when the order is launched."))
    return [piece_theoretical_weight_set(actor=actor, piece_id=p.pk, weight_g=weight,
                                         source="cad", document_id=doc.pk)
            for p in chosen]
