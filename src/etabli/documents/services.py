"""Documents: upload (checked by content, stored under a name we choose, with a thumbnail for
images), new versions that keep the old ones, and who may see each document."""

from __future__ import annotations

import hashlib
import secrets

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)

from . import checks
from .models import DESIGN_KINDS, Document, DocumentKind, Visibility

__all__ = ["document_files_discard", "document_new_version", "document_upload",
           "document_visibility_set", "may_attach", "may_revise", "may_set_visibility", "sniff"]


def _is_workshop(user) -> bool:
    return user.role == "workshop"


def sniff(head: bytes, filename: str = "") -> tuple[str, str]:
    """(content type, extension) that a file's first bytes announce, for a quick look before
    an upload (e.g. "is this a photo?"); `document_upload` checks the whole file."""
    ftype = checks.identify(head)
    if ftype is None:
        raise ValidationFailed(_("This file type is not accepted."), details={"field": "file"})
    return ftype.content_type, ftype.extension


def may_attach(user, *, kind: str, on_piece: bool) -> bool:
    """Whether `user`'s role attaches a document of `kind` to a piece (one they can see) or to
    an order or a line: the order roles anything anywhere, designers their design files, the
    people who work on a piece (workshops, quality, logistics, designers) documents on it.
    Client contacts attach nothing."""
    if not (user and user.is_active) or user.role == "client":
        return False
    if user.takes_orders:
        return True
    if user.role == "designer" and kind in DESIGN_KINDS:
        return True
    return on_piece


def may_revise(user, doc: Document) -> bool:
    """House staff who may attach such a document may add a new version of it (photos of a
    production event are facts, not revised)."""
    return bool(user.sees_clients and doc.event_id is None
                and may_attach(user, kind=doc.kind, on_piece=doc.piece_id is not None))


def may_set_visibility(user) -> bool:
    return bool(user and user.sees_clients)


def _clean_choice(value, choices, field: str, message: str) -> str:
    if value not in choices.values:
        raise ValidationFailed(message % {"value": value}, details={"field": field})
    return value


def _clean_kind(kind) -> str:
    return _clean_choice(kind, DocumentKind, "kind", _("Unknown document kind '%(value)s'."))


def _clean_visibility(visibility) -> str:
    return _clean_choice(visibility, Visibility, "visibility",
                         _("Unknown visibility '%(value)s'."))


def _target(actor, order_id, line_id, piece_id):
    """(order, line, piece) a document is for, each within the actor's scope."""
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
    if order_id is None and line_id is None:
        raise ValidationFailed(_("Say which order, line or piece the document is for."),
                               details={"field": "order_id"})
    orders = Order.objects.visible_to(actor)
    line = None
    if line_id is not None:
        from etabli.orders.models import OrderLine

        line = (OrderLine.objects.select_related("order")
                .filter(pk=line_id, order__in=orders).first())
        if line is None or (order_id is not None and line.order_id != order_id):
            raise NotFound(_("No order line with id %(id)s on this order.") % {"id": line_id})
        return line.order, line, None
    order = orders.filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return order, None, None


def _check_order_open(order) -> None:
    if order.status == "cancelled":
        raise TransitionNotAllowed(_("Order %(ref)s is cancelled: no more documents can be "
                                     "attached.") % {"ref": order.reference})


def _store(doc: Document, data: bytes, ftype: checks.FileType) -> None:
    """Write the file (and its thumbnail) then the row; a failure leaves no file behind."""
    thumb = checks.make_thumbnail(data) if ftype.is_image else None
    doc.file.save(f"{doc.token}{ftype.extension}", ContentFile(data), save=False)
    try:
        if thumb is not None:
            doc.thumbnail.save(f"{doc.token}-thumb.jpg", ContentFile(thumb), save=False)
        doc.save()
    except Exception:
        document_files_discard([doc])
        raise


def document_files_discard(docs) -> None:
    """Remove the stored files of documents whose rows were rolled back (the database forgets
    them; the storage does not)."""
    for doc in docs:
        for f in (doc.file, doc.thumbnail):
            if f:
                f.delete(save=False)


def _new_document(*, actor, order, line, piece, event, kind, visibility, uploaded_file,
                  family: str | None = None, version: int = 1,
                  replaces: Document | None = None) -> Document:
    data = checks.read_upload(uploaded_file)
    ftype = checks.inspect(data, name_hint=getattr(uploaded_file, "name", "") or "")
    token = secrets.token_hex(16)
    doc = Document(order=order, line=line, piece=piece, event=event, kind=kind,
                   visibility=visibility, token=token,
                   original_name=checks.clean_name(getattr(uploaded_file, "name", "")),
                   content_type=ftype.content_type, size_bytes=len(data),
                   sha256=hashlib.sha256(data).hexdigest(), uploaded_by=actor,
                   family=family or token, version=version, replaces=replaces,
                   is_current=True)
    _store(doc, data, ftype)
    return doc


@transaction.atomic
def document_upload(*, actor, order_id: int | None = None, uploaded_file,
                    kind: str = DocumentKind.OTHER, visibility: str = Visibility.WORKSHOPS,
                    piece_id: int | None = None, line_id: int | None = None,
                    event=None) -> Document:
    """Attach a file to an order, one of its lines or a piece (version 1 of a new document).

    The file is checked by its content (see `checks`), stored under a random name, and an image
    gets a thumbnail. A workshop's upload is seen by the workshops on the route and the house.
    """
    kind = _clean_kind(kind)
    visibility = _clean_visibility(visibility)
    if actor.role == "client":
        raise PermissionDenied(_("Documents are attached by the house and its workshops."))
    if piece_id is None and not may_attach(actor, kind=kind, on_piece=False):
        if actor.role == "designer":
            raise PermissionDenied(_("Designers attach CAD files, renders, technical sheets "
                                     "and material specifications to an order."))
        raise PermissionDenied(_("Only sales, production managers and administrators "
                                 "attach documents to an order."))
    order, line, piece = _target(actor, order_id, line_id, piece_id)
    _check_order_open(order)
    if event is not None and (piece is None or event.piece_id != piece.pk):
        raise ValidationFailed(_("A photo of a production event belongs to that event's piece."),
                               details={"field": "piece_id"})
    if _is_workshop(actor):
        # A workshop's photo stays visible to it; sharing it with the client is the house's
        # decision (document_visibility_set).
        visibility = Visibility.WORKSHOPS
    doc = _new_document(actor=actor, order=order, line=line, piece=piece, event=event,
                        kind=kind, visibility=visibility, uploaded_file=uploaded_file)
    audit.record(actor=actor, action="document.upload", obj=doc,
                 after={"name": doc.original_name, "kind": kind,
                        "content_type": doc.content_type, "size": doc.size_bytes,
                        "visibility": visibility, "line": line.pk if line else None,
                        "version": 1},
                 order_id=order.pk, piece_id=piece.pk if piece else None)
    return doc


def _visible_document(actor, document_id, *, for_update: bool = False) -> Document:
    qs = Document.objects.visible_to(actor)
    if for_update:
        qs = qs.select_for_update(of=("self",))
    doc = qs.filter(pk=document_id).first()
    if doc is None:
        raise NotFound(_("No document with id %(id)s.") % {"id": document_id})
    return doc


@transaction.atomic
def document_new_version(*, actor, document_id: int, uploaded_file,
                         visibility: str | None = None) -> Document:
    """A new version of a document: same order, line, piece and kind; the visibility of the
    version it replaces unless another is given. The old versions stay (and stay
    downloadable); the new one becomes the current one."""
    doc = _visible_document(actor, document_id, for_update=True)
    if not may_revise(actor, doc):
        if doc.event_id is not None:
            raise PermissionDenied(_("A photo recorded with a production event is not revised: "
                                     "attach a new photo instead."))
        raise PermissionDenied(_("Your role does not add versions of this document."))
    if not doc.is_current:
        current = Document.objects.filter(family=doc.family, is_current=True).first()
        raise Conflict(_("%(name)s has a newer version (version %(version)s): add the new "
                         "version to that one.")
                       % {"name": doc.original_name, "version": current.version if current
                          else "?"},
                       details={"current_id": current.pk if current else None})
    visibility = doc.visibility if visibility in (None, "") else _clean_visibility(visibility)
    if doc.piece_id is not None and not doc.order.pieces.visible_to(actor) \
            .filter(pk=doc.piece_id).exists():
        # The piece must still be the actor's to work on (not a designer's once it left design).
        raise PermissionDenied(_("This document belongs to piece %(serial)s, which is no longer "
                                 "at your step.") % {"serial": doc.piece.serial})
    order = doc.order
    _check_order_open(order)
    Document.objects.filter(pk=doc.pk).update(is_current=False)
    doc.is_current = False
    new = _new_document(actor=actor, order=order, line=doc.line, piece=doc.piece, event=None,
                        kind=doc.kind, visibility=visibility, uploaded_file=uploaded_file,
                        family=doc.family, version=doc.version + 1, replaces=doc)
    audit.record(actor=actor, action="document.new_version", obj=new,
                 before={"document": doc.pk, "version": doc.version},
                 after={"document": new.pk, "name": new.original_name, "version": new.version,
                        "content_type": new.content_type, "size": new.size_bytes,
                        "visibility": visibility, "replaces": doc.pk},
                 order_id=order.pk, piece_id=doc.piece_id)
    return new


@transaction.atomic
def document_visibility_set(*, actor, document_id: int, visibility: str) -> Document:
    """Change who may see one document (one version): house staff only."""
    doc = _visible_document(actor, document_id, for_update=True)
    if not may_set_visibility(actor):
        raise PermissionDenied(_("Only the house's staff decide who sees a document."))
    visibility = _clean_visibility(visibility)
    if visibility == doc.visibility:
        return doc
    before = doc.visibility
    doc.visibility = visibility
    doc.save(update_fields=["visibility"])
    audit.record(actor=actor, action="document.visibility", obj=doc,
                 before={"visibility": before}, after={"visibility": visibility},
                 order_id=doc.order_id, piece_id=doc.piece_id)
    return doc
