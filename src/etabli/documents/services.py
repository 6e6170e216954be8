"""Uploading documents: checked by content, stored under a name we choose."""

from __future__ import annotations

import hashlib
import os
import secrets

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import NotFound, PermissionDenied, ValidationFailed

from .models import Document, DocumentKind, Visibility

MAX_UPLOAD_BYTES = 25 * 1024 * 1024

# Recognised by their first bytes, never by their name. SVG and HTML are refused: they can
# carry script.
_SIGNATURES: list[tuple[bytes, str, str]] = [
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"%PDF-", "application/pdf", ".pdf"),
]


def sniff(head: bytes, filename: str) -> tuple[str, str]:
    """(content type, extension) of an accepted file, from its content."""
    for magic, ctype, ext in _SIGNATURES:
        if head.startswith(magic):
            return ctype, ext
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ".webp"
    lowered = head[:1024].lower()
    if b"<svg" in lowered or b"<html" in lowered or b"<script" in lowered \
            or b"<!doctype" in lowered:
        raise ValidationFailed(_("Web pages and SVG images cannot be uploaded."),
                               details={"field": "file"})
    ext = os.path.splitext(filename or "")[1].lower()
    # CAD files: binary STL has no magic number; 3DM starts with its own header; OBJ and ASCII
    # STL are plain text. Accepted as opaque downloads, never shown inline.
    if head.startswith(b"3D Geometry File Format"):
        return "model/vnd.3dm", ".3dm"
    if ext == ".stl":
        return "model/stl", ".stl"
    if ext == ".obj" and _is_text(head):
        return "model/obj", ".obj"
    raise ValidationFailed(
        _("This file type is not accepted: upload a photo (JPEG, PNG, WebP), a PDF or a CAD "
          "file (STL, OBJ, 3DM)."), details={"field": "file"})


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


@transaction.atomic
def document_upload(*, actor, order_id: int, uploaded_file, kind: str = DocumentKind.OTHER,
                    visibility: str = Visibility.WORKSHOPS, piece_id: int | None = None,
                    event=None) -> Document:
    from etabli.orders.models import Order
    from etabli.production.models import Piece

    if kind not in DocumentKind.values:
        raise ValidationFailed(_("Unknown document kind '%(kind)s'.") % {"kind": kind},
                               details={"field": "kind"})
    if visibility not in Visibility.values:
        raise ValidationFailed(_("Unknown visibility '%(visibility)s'.")
                               % {"visibility": visibility},
                               details={"field": "visibility"})
    piece = None
    if piece_id is not None:
        piece = Piece.objects.visible_to(actor).filter(pk=piece_id).first()
        if piece is None:
            raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
        order = piece.order
    else:
        # Designers attach their CAD files (through materials.cad_services.cad_upload) to the
        # orders they can see; every other document on an order comes from the order roles.
        designer_cad = kind == DocumentKind.CAD and actor.is_active and actor.role == "designer"
        if not (actor.takes_orders or designer_cad):
            raise PermissionDenied(_("Only sales, production managers and administrators "
                                     "attach documents to an order."))
        order = Order.objects.visible_to(actor).filter(pk=order_id).first()
        if order is None:
            raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    if actor.role in ("workshop",) and visibility == Visibility.HOUSE:
        visibility = Visibility.WORKSHOPS  # a workshop's own photo stays visible to it
    if uploaded_file is None:
        raise ValidationFailed(_("Choose a file."), details={"field": "file"})
    size = uploaded_file.size or 0
    if size == 0:
        raise ValidationFailed(_("The file is empty."), details={"field": "file"})
    if size > MAX_UPLOAD_BYTES:
        raise ValidationFailed(
            _("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
            % {"size": size // (1024 * 1024), "limit": MAX_UPLOAD_BYTES // (1024 * 1024)},
            details={"field": "file"})
    data = uploaded_file.read()
    ctype, ext = sniff(data[:2048], uploaded_file.name)
    name = os.path.basename((uploaded_file.name or "file").replace("\\", "/"))[:200] or "file"
    doc = Document(order=order, piece=piece, event=event, kind=kind, visibility=visibility,
                   token=secrets.token_hex(16), original_name=name, content_type=ctype,
                   size_bytes=size, sha256=hashlib.sha256(data).hexdigest(), uploaded_by=actor)
    doc.file.save(f"{doc.token}{ext}", ContentFile(data), save=False)
    doc.save()
    audit.record(actor=actor, action="document.upload", obj=doc,
                 after={"name": name, "kind": kind, "content_type": ctype, "size": size,
                        "visibility": visibility},
                 order_id=order.pk, piece_id=piece.pk if piece else None)
    return doc
