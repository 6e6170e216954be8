"""The technical sheet: everything the bench needs to make one order line, or one piece of it.

What it is (model or custom design, size), the metal (alloy, fineness, colour, density, the
theoretical and fine weight, the budget), the stones (the line's text and, for a piece, its
setting plan), the approved design round with its renders, the route with the finishing
operations, customisations and engraving.

Who may print it is decided by the caller (the piece or the order, from their `visible_to`);
what it shows is decided here from the reader: prices only for those who see prices, the
client's identity (and who approved the design) only for the house's staff, renders only those
`Document.objects.visible_to` lets the reader see. The design and stone-setting parts are read
when those apps have their models, so the sheet works without them.
"""

from __future__ import annotations

import base64
from decimal import Decimal

from etabli.core import printing
from etabli.documents.models import Document
from etabli.workshops.models import StepKind

THUMBNAILS_MAX = 6
THUMBNAIL_MAX_BYTES = 512 * 1024  # our own 320 px JPEGs are far smaller


def thumbnail_data_uri(doc: Document) -> str:
    """The document's stored thumbnail (a JPEG made at upload) as a data: URI, or ""."""
    if not doc.thumbnail:
        return ""
    try:
        with doc.thumbnail.open("rb") as handle:
            data = handle.read(THUMBNAIL_MAX_BYTES + 1)
    except OSError:  # the file is gone from storage: the sheet names the document instead
        return ""
    if len(data) > THUMBNAIL_MAX_BYTES or not data.startswith(b"\xff\xd8\xff"):
        return ""
    return f"data:image/jpeg;base64,{base64.b64encode(data).decode('ascii')}"


def _approved_design(user, line) -> dict | None:
    """The line's standing design approval (the latest one no prototype withdrew), or None."""
    try:
        from etabli.design.models import DesignApproval
    except ImportError:  # the design app has no approvals yet
        return None
    # The reader reached this sheet through the line's order or piece, so they may know the
    # design was approved; who approved it is the client's or the house's name, shown to staff.
    approval = (DesignApproval.objects.filter(line=line, invalidated_by__isnull=True)
                .select_related("approved_by").order_by("-round_number", "-id").first())
    if approval is None:
        return None
    ids = [f.get("id") for f in approval.files or [] if isinstance(f, dict)]
    docs = list(Document.objects.visible_to(user).filter(pk__in=[i for i in ids if i])
                .order_by("kind", "original_name", "id"))
    renders, others = [], []
    for doc in docs:
        uri = thumbnail_data_uri(doc) if doc.is_image and len(renders) < THUMBNAILS_MAX else ""
        if uri:
            renders.append({"name": doc.original_name, "uri": uri,
                            "kind": doc.get_kind_display(), "version": doc.version})
        else:
            others.append({"name": doc.original_name, "kind": doc.get_kind_display(),
                           "version": doc.version})
    return {
        "round_number": approval.round_number, "approved_at": approval.approved_at,
        "approved_by": printing.person(approval.approved_by) if user.sees_clients else "",
        "on_behalf": approval.on_behalf,
        "estimated_metal_g": approval.estimated_metal_g,
        "estimated_stone_count": approval.estimated_stone_count,
        "estimated_stone_ct": approval.estimated_stone_ct,
        "renders": renders, "files": others,
    }


def _setting_plan(user, piece) -> dict | None:
    """The piece's setting plan with its stone groups, when the reader may see it."""
    try:
        from etabli.stonesetting.models import SettingPlan
    except ImportError:  # the stone-setting app has no plans yet
        return None
    plan = (SettingPlan.objects.visible_to(user).filter(piece=piece)
            .prefetch_related("groups__lot").first())
    if plan is None:
        return None
    groups = list(plan.groups.all())
    return {"plan": plan, "groups": groups,
            "stone_count": sum(g.count for g in groups),
            "carats": sum((g.carats for g in groups if g.carats is not None), Decimal(0))}


def _route(steps) -> tuple[list[dict], list[str]]:
    """The route's steps (with their operations) and the finishing operations, in order."""
    route, finishing = [], []
    for s in steps:
        skipped = bool(getattr(s, "skipped", False)) or getattr(s, "status", "") == "skipped"
        route.append({"position": s.position,
                      "step": StepKind(s.step).label if s.step in StepKind.values else s.step,
                      "operations": list(s.operations or []), "skipped": skipped})
        if s.step == StepKind.FINISHING and not skipped:
            finishing.extend(op for op in s.operations or [] if op not in finishing)
    return route, finishing


def _weights(alloy, weight_g):
    if weight_g is None:
        return None, None
    return weight_g, alloy.fine_weight_g(weight_g) if alloy is not None else None


def technical_sheet_context(user, *, line, piece=None) -> dict:
    """The context of `pdf/technical_sheet.html` for a line (piece=None) or one piece of it."""
    order = line.order
    if piece is not None:
        steps = list(piece.runs.order_by("position", "id"))
        # A step sent back for rework has a later attempt: the sheet shows each step once.
        latest = {}
        for run in steps:
            latest[run.position] = run
        route, finishing = _route(sorted(latest.values(), key=lambda r: r.position))
        theoretical = piece.theoretical_weight_g
    else:
        route, finishing = _route(order.route.order_by("position"))
        weights = {w for w in line.pieces.values_list("theoretical_weight_g", flat=True)
                   if w is not None}
        theoretical = weights.pop() if len(weights) == 1 else None
    weight_g, fine_g = _weights(line.alloy, theoretical)
    return {
        "order": order, "line": line, "piece": piece, "alloy": line.alloy,
        "theoretical_weight_g": weight_g, "fine_weight_g": fine_g,
        "budget_fine_g": (line.alloy.fine_weight_g(line.budget_metal_g)
                          if line.alloy is not None and line.budget_metal_g is not None
                          else None),
        "route": route, "finishing": finishing,
        "design": _approved_design(user, line),
        "setting": _setting_plan(user, piece) if piece is not None else None,
        "show_client": user.sees_clients, "show_prices": user.sees_prices,
    }
