"""Reads of documents, always from `Document.objects.visible_to(user)`."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from ninja import Schema

from .models import Document, DocumentKind


class DocumentFilters(Schema):
    """The one definition of the document list's filters (API and pages)."""

    order_id: int | None = None
    line_id: int | None = None
    piece_id: int | None = None
    kind: DocumentKind | None = None
    current_only: bool = True


def latest_visible(user, qs: QuerySet[Document] | None = None) -> QuerySet[Document]:
    """Of each document, the newest version `user` may see: the current version for the
    house's staff; for others an older version stays listed when the newer one is not shared
    with them."""
    visible = Document.objects.visible_to(user)
    qs = visible if qs is None else qs
    if user.sees_clients:
        return qs.filter(is_current=True)
    newer = visible.filter(family=OuterRef("family"), version__gt=OuterRef("version"))
    return qs.filter(~Exists(newer))


def with_versions(user, docs: list[Document]) -> list[Document]:
    """Attach `doc.versions` (every version of the document the user may see, newest first) to
    each document, in one query for the whole list."""
    families = {d.family for d in docs}
    by_family: dict[str, list[Document]] = {}
    if families:
        for v in (Document.objects.visible_to(user).filter(family__in=families)
                  .select_related("uploaded_by").order_by("family", "-version")):
            by_family.setdefault(v.family, []).append(v)
    from .services import may_revise

    for d in docs:
        d.versions = by_family.get(d.family, [d])
        d.older_versions = [v for v in d.versions if v.version < d.version]
        d.can_revise = d.is_current and may_revise(user, d)
    return docs


def document_list(user, filters: DocumentFilters | None = None) -> QuerySet[Document]:
    f = filters or DocumentFilters()
    qs = Document.objects.visible_to(user)
    if f.current_only:
        qs = latest_visible(user, qs)
    if f.order_id is not None:
        qs = qs.filter(order_id=f.order_id)
    if f.line_id is not None:
        qs = qs.filter(line_id=f.line_id)
    if f.piece_id is not None:
        qs = qs.filter(piece_id=f.piece_id)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    return qs.select_related("uploaded_by").order_by("order_id", "uploaded_at", "id")


def document_get(user, document_id: int) -> Document | None:
    return (Document.objects.visible_to(user).select_related("uploaded_by", "order", "line",
                                                               "piece")
            .filter(pk=document_id).first())


def document_by_token(user, token: str) -> Document | None:
    return (Document.objects.visible_to(user).select_related("uploaded_by", "order", "line",
                                                               "piece")
            .filter(token=token).first())


def order_documents(user, order) -> list[Document]:
    """The order's documents (its own, its lines' and its pieces'), the newest version of each
    the user may see, with their versions."""
    docs = list(latest_visible(user).filter(order=order)
                .select_related("uploaded_by", "piece", "line")
                .order_by("uploaded_at", "id"))
    return with_versions(user, docs)


def piece_documents(user, piece) -> QuerySet[Document]:
    """A piece's documents with those of its line and its order (newest visible versions)."""
    return latest_visible(user).filter(
        Q(piece=piece) | Q(piece__isnull=True, line_id=piece.line_id)
        | Q(piece__isnull=True, line__isnull=True, order_id=piece.order_id))
