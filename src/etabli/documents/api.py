"""Documents over the API: list and read (with versions), upload, add a version, share."""

import datetime as dt

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate

from etabli.core.api import Pagination
from etabli.core.errors import NotFound
from etabli.core.schemas import request_user

from . import selectors, services
from .models import DocumentKind, Visibility

router = Router(tags=["Documents"])


def _uploader(obj, context) -> str | None:
    # Who attached a file is the house's to know (a workshop's people stay with it).
    user = request_user(context)
    if user is None or not user.sees_clients or obj.uploaded_by is None:
        return None
    return obj.uploaded_by.get_full_name() or obj.uploaded_by.username


class DocumentVersionOut(Schema):
    id: int
    version: int
    is_current: bool
    name: str
    content_type: str
    size_bytes: int
    visibility: Visibility
    uploaded_at: dt.datetime
    uploaded_by: str | None
    download_url: str

    @staticmethod
    def resolve_name(obj) -> str:
        return obj.original_name

    @staticmethod
    def resolve_uploaded_by(obj, context):
        return _uploader(obj, context)

    @staticmethod
    def resolve_download_url(obj) -> str:
        return reverse("document", args=[obj.token])


class DocumentOut(DocumentVersionOut):
    order_id: int
    line_id: int | None
    piece_id: int | None
    event_id: int | None
    kind: DocumentKind
    sha256: str
    family: str
    replaces_id: int | None
    thumbnail_url: str | None
    info_url: str

    @staticmethod
    def resolve_thumbnail_url(obj) -> str | None:
        return reverse("document_thumb", args=[obj.token]) if obj.is_image else None

    @staticmethod
    def resolve_info_url(obj) -> str:
        return reverse("document_info", args=[obj.token])


class DocumentDetailOut(DocumentOut):
    versions: list[DocumentVersionOut]


class VisibilityIn(Schema):
    visibility: Visibility


def _detail(request, document_id: int):
    doc = selectors.document_get(request.auth, document_id)
    if doc is None:
        raise NotFound(_("No document with id %(id)s.") % {"id": document_id})
    selectors.with_versions(request.auth, [doc])
    return doc


@router.get("/documents", response=list[DocumentOut], summary="List documents")
@paginate(Pagination)
def list_documents(request, filters: Query[selectors.DocumentFilters]):
    """Documents you may see, of an order (`order_id`), a line (`line_id`, with its pieces'
    documents) or a piece (`piece_id`), of a `kind`. `current_only` (default true) lists the
    newest version of each document you may see; false lists every version."""
    return selectors.document_list(request.auth, filters)


@router.get("/documents/{document_id}", response=DocumentDetailOut,
            summary="A document, with its versions")
def get_document(request, document_id: int):
    """`versions` lists every version you may see, newest first; `download_url` serves the file
    (to those who may see it, never as something a browser runs)."""
    return _detail(request, document_id)


@router.post("/documents", response={201: DocumentDetailOut}, summary="Attach a document")
def upload_document(request, file: File[UploadedFile], order_id: Form[int | None] = None,
                    line_id: Form[int | None] = None, piece_id: Form[int | None] = None,
                    kind: Form[DocumentKind] = DocumentKind.OTHER,
                    visibility: Form[Visibility] = Visibility.WORKSHOPS):
    """Multipart form: `file` for an order (`order_id`), one of its lines (`line_id`) or a piece
    (`piece_id`). The type is read from the content (photos JPEG/PNG/WebP, PDF, .xlsx, STL,
    OBJ, 3DM), never from the name; the size limit is the house's (ETABLI_MAX_UPLOAD_MB).
    Sales, production managers and administrators attach anything to an order; designers their
    design files (CAD, render, technical sheet, material specification); the people working on
    a piece attach to it."""
    doc = services.document_upload(actor=request.auth, order_id=order_id, line_id=line_id,
                                   piece_id=piece_id, uploaded_file=file, kind=kind,
                                   visibility=visibility)
    return 201, _detail(request, doc.pk)


@router.post("/documents/{document_id}/versions", response={201: DocumentDetailOut},
             summary="Add a new version of a document")
def new_version(request, document_id: int, file: File[UploadedFile],
                visibility: Form[Visibility | None] = None):
    """Multipart form: `file`, and `visibility` (default: the replaced version's). The document
    must be the current version (409 otherwise); the earlier versions are kept."""
    doc = services.document_new_version(actor=request.auth, document_id=document_id,
                                        uploaded_file=file, visibility=visibility)
    return 201, _detail(request, doc.pk)


@router.patch("/documents/{document_id}", response=DocumentDetailOut,
              summary="Change who may see a document")
def set_visibility(request, document_id: int, payload: VisibilityIn):
    """`house`, `workshops` (the workshops on the piece's route) or `client`. The house's
    staff only; applies to this version."""
    services.document_visibility_set(actor=request.auth, document_id=document_id,
                                     visibility=payload.visibility)
    return _detail(request, document_id)
