"""The inspection sheet (PDF): criteria, targets, measured values, tolerances, verdicts, the
signature with its SHA-256, and before/after finishing photos, in the order's language."""

from __future__ import annotations

import base64

from django.utils import translation

from etabli.core.printing import order_language, pdf_response, render_order_pdf

from .models import PhotoMoment
from .services import sheet_photos
from .verdicts import assess

PHOTO_MAX_BYTES = 4 * 1024 * 1024  # larger photos are listed by name, not printed


def _data_uri(doc) -> str:
    if doc.size_bytes > PHOTO_MAX_BYTES or not doc.is_image:
        return ""
    try:
        with doc.file.open("rb") as handle:
            data = handle.read()
    except OSError:
        return ""
    return f"data:{doc.content_type};base64,{base64.b64encode(data).decode('ascii')}"


def _photos(ins) -> list[dict]:
    """For a signed sheet, exactly the photos that were signed; else what would be."""
    from etabli.documents.models import Document

    if ins.is_signed:
        signed = ins.signed_content.get("photos", [])
        docs = Document.objects.in_bulk([p["document"] for p in signed])
        rows = [{"moment": p["moment"], "document": docs.get(p["document"]),
                 "name": p["name"], "sha256": p["sha256"]} for p in signed]
    else:
        rows = [{"moment": p["moment"], "document": p["document"],
                 "name": p["document"].original_name, "sha256": p["document"].sha256}
                for p in sheet_photos(ins)]
    for row in rows:
        row["src"] = _data_uri(row["document"]) if row["document"] is not None else ""
    return rows


def render_sheet(ins, request=None) -> bytes:
    piece = ins.piece
    order = piece.order
    with translation.override(order_language(order)):
        assessment = assess(ins, list(ins.dimensions.all()))
        photos = _photos(ins)
        context = {
            "inspection": ins, "piece": piece, "line": piece.line, "run": ins.run,
            "assessment": assessment,
            "before": [p for p in photos if p["moment"] == PhotoMoment.BEFORE],
            "after": [p for p in photos if p["moment"] == PhotoMoment.AFTER],
            "signer": (ins.signed_by.get_full_name() or ins.signed_by.username)
            if ins.signed_by_id else "",
        }
    return render_order_pdf("quality/sheet_pdf.html", context, order=order, request=request)


def sheet_response(request, ins):
    return pdf_response(render_sheet(ins, request), f"inspection-{ins.reference}.pdf")
