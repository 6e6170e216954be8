"""Serving documents to those who may see them, a document's page with its versions, a new
version, who may see it. Thin: reads start from `Document.objects.visible_to`, writes go
through the services."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from etabli.core.errors import DomainError
from etabli.core.web import form_error

from . import checks, selectors, services
from .forms import NewVersionForm, VisibilityForm
from .models import Document

log = logging.getLogger("etabli.documents")

def _doc_or_404(user, token: str) -> Document:
    doc = selectors.document_by_token(user, token)
    if doc is None:
        raise Http404("No such document.")
    return doc


def _safe_response(field_file, *, content_type: str, filename: str, attachment: bool):
    """The stored bytes, never as something a browser runs: the type we checked, nosniff, a
    sandbox without script, not embeddable by other sites."""
    try:
        handle = field_file.open("rb")
    except (FileNotFoundError, OSError) as exc:
        log.error("document file missing from storage: %s (%s)", field_file.name, exc)
        raise Http404("The document's file is missing.") from None
    response = FileResponse(handle, content_type=content_type, as_attachment=attachment,
                            filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    # Chrome refuses to start its PDF viewer in a sandboxed document ("This page has been
    # blocked by Chrome"), so a PDF opened in the browser goes without the sandbox: the
    # viewer runs it away from our origin, and uploads with scripts or actions are refused
    # (documents.checks). Everything else, and every download, keeps it.
    pdf_shown = content_type == "application/pdf" and not attachment
    response["Content-Security-Policy"] = ("default-src 'none'" if pdf_shown
                                           else "default-src 'none'; sandbox")
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private"
    return response


@login_required
def download(request, token: str):
    """Serve a document to someone allowed to see it: images and PDFs inline (or as a download
    with ?download=1), everything else as an attachment."""
    doc = _doc_or_404(request.user, token)
    return _safe_response(doc.file, content_type=doc.content_type, filename=doc.original_name,
                          attachment=not doc.served_inline or request.GET.get("download") == "1")


@login_required
def thumbnail(request, token: str):
    """An image's thumbnail (the image itself for one stored before thumbnails), to the same
    people as the document."""
    doc = _doc_or_404(request.user, token)
    if not doc.is_image:
        raise Http404("This document has no thumbnail.")
    if doc.thumbnail:
        return _safe_response(doc.thumbnail, content_type=checks.THUMBNAIL_CONTENT_TYPE,
                              filename=f"thumbnail-{doc.token}.jpg", attachment=False)
    return _safe_response(doc.file, content_type=doc.content_type, filename=doc.original_name,
                          attachment=False)


def _next_url(request, doc: Document) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return nxt
    return reverse("document_info", args=[doc.token])


def _where(user, doc: Document) -> dict:
    """Links to the order and the piece the document belongs to, in the user's own pages."""
    from etabli.production.models import Piece

    order_url = piece_url = None
    piece_seen = bool(doc.piece_id) and Piece.objects.visible_to(user).filter(
        pk=doc.piece_id).exists()
    if user.sees_clients:
        order_url = reverse("orders:detail", args=[doc.order_id])
        if piece_seen:
            piece_url = reverse("production:piece", args=[doc.piece_id])
    elif user.role == "client":
        order_url = reverse("portal:order", args=[doc.order_id])
    elif user.role == "workshop" and piece_seen:
        piece_url = reverse("workshop:piece", args=[doc.piece_id])
    return {"order_url": order_url, "piece_url": piece_url}


def _render_info(request, doc: Document, bound: dict | None = None, status: int = 200):
    user = request.user
    bound = bound or {}
    selectors.with_versions(user, [doc])
    can_revise = doc.is_current and services.may_revise(user, doc)
    can_share = services.may_set_visibility(user)
    return render(request, "documents/info.html", {
        "doc": doc, "versions": doc.versions, **_where(user, doc),
        "show_people": user.sees_clients,
        # A form sent back with its refusal is shown whoever sent it, with the reason.
        "version_form": bound.get("version") or (NewVersionForm() if can_revise else None),
        "visibility_form": bound.get("visibility") or (
            VisibilityForm(initial={"visibility": doc.visibility}) if can_share else None),
        "newest": doc.versions[0],  # the newest version this user may see
    }, status=status)


@login_required
def info(request, token: str):
    return _render_info(request, _doc_or_404(request.user, token))


@login_required
@require_POST
def new_version(request, token: str):
    user = request.user
    doc = _doc_or_404(user, token)
    form = NewVersionForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            new = services.document_new_version(
                actor=user, document_id=doc.pk, uploaded_file=form.cleaned_data["file"],
                visibility=form.cleaned_data["visibility"] or None)
        except DomainError as exc:
            form_error(form, exc)
        else:
            messages.success(request, _("Version %(v)s of %(name)s is attached; the earlier "
                                        "versions are kept.")
                             % {"v": new.version, "name": new.original_name})
            nxt = _next_url(request, doc)
            if nxt == reverse("document_info", args=[doc.token]):
                nxt = reverse("document_info", args=[new.token])
            return redirect(nxt)
    return _render_info(request, doc, {"version": form}, status=400)


@login_required
@require_POST
def set_visibility(request, token: str):
    user = request.user
    doc = _doc_or_404(user, token)
    form = VisibilityForm(request.POST)
    if form.is_valid():
        try:
            services.document_visibility_set(actor=user, document_id=doc.pk,
                                             visibility=form.cleaned_data["visibility"])
        except DomainError as exc:
            form_error(form, exc)
        else:
            doc.refresh_from_db()
            messages.success(request, _("%(name)s: %(who)s.")
                             % {"name": doc.original_name, "who": doc.get_visibility_display()})
            return redirect(_next_url(request, doc))
    return _render_info(request, doc, {"visibility": form}, status=400)
