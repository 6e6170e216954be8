"""Pages for CAD → weight: upload a mesh, see it in 3D with its volume and its weight in each
alloy, compare it with the order line's budget, keep it as the pieces' theoretical weight.

Thin: reads start from `Document.objects.visible_to` (through `cad.cad_document_for`), writes
go through `cad_services`.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from etabli.core.errors import DomainError
from etabli.core.web import form_error
from etabli.documents.checks import max_upload_bytes
from etabli.documents.models import Visibility

from . import cad, cad_services


class CadUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CAD file (STL or OBJ)"),
                           help_text=gettext_lazy("Binary or ASCII STL, or OBJ, exported in "
                                                  "millimetres; at most 25 MB."),
                           widget=forms.ClearableFileInput(attrs={"accept": ".stl,.obj"}))
    line = forms.TypedChoiceField(label=gettext_lazy("Order line"), required=False, coerce=int,
                                  empty_value=None)
    stone_count = forms.IntegerField(label=gettext_lazy("Stones in the design"), required=False,
                                     min_value=0, max_value=cad_services.MAX_STONE_COUNT)
    visibility = forms.ChoiceField(label=gettext_lazy("Who sees it"),
                                   choices=Visibility.choices, initial=Visibility.WORKSHOPS)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        if lines:
            self.fields["line"].choices = [("", _("The whole order"))] + [
                (ln.pk, f"{ln.position}. {ln.description}") for ln in lines]
        else:
            del self.fields["line"]


class StoneCountForm(forms.Form):
    stone_count = forms.IntegerField(label=gettext_lazy("Stones in the design"), required=False,
                                     min_value=0, max_value=cad_services.MAX_STONE_COUNT)


class TheoreticalWeightForm(forms.Form):
    weight_g = forms.DecimalField(label=gettext_lazy("Theoretical weight (g)"), required=False,
                                  min_value=0, max_digits=10, decimal_places=3,
                                  help_text=gettext_lazy("Empty to clear it."))


def _document_or_404(user, document_id: int):
    doc = cad.cad_document_for(user, document_id)
    if doc is None:
        raise Http404("No such CAD file.")
    return doc


def _page(request, doc, bound: dict | None = None, status: int = 200):
    from etabli.production.models import Piece, PieceStatus

    user = request.user
    bound = bound or {}
    report = cad.cad_report(user, doc)
    works = cad_services.works_on_designs(user)
    a = report.analysis
    line = cad.line_of(doc)
    pieces = []
    if works and line is not None:
        pieces = list(Piece.objects.visible_to(user).filter(line=line)
                      .exclude(status=PieceStatus.DELIVERED).order_by("serial"))
    line_weight = None
    if a is not None and a.volume_mm3 is not None and line is not None and line.alloy:
        line_weight = next((e for e in report.estimates if e.alloy.pk == line.alloy_id), None)
    order_url = None
    if user.sees_clients:
        order_url = reverse("orders:detail", args=[doc.order_id])
    piece_url = reverse("production:piece", args=[doc.piece_id]) if doc.piece_id else None
    return render(request, "materials/cad_page.html", {
        "doc": doc, "report": report, "analysis": a, "line": line, "pieces": pieces,
        "line_weight": line_weight, "works": works, "order_url": order_url,
        "piece_url": piece_url,
        "format": "obj" if doc.content_type == cad.OBJ_CONTENT_TYPE else "stl",
        "stone_form": bound.get("stones") or StoneCountForm(
            initial={"stone_count": a.stone_count if a else None}),
    }, status=status)


@login_required
def cad_page(request, document_id: int):
    return _page(request, _document_or_404(request.user, document_id))


@login_required
def cad_mesh(request, document_id: int):
    """The mesh's bytes for the 3D preview, to those who may see the document; never as
    something a browser would run or display by itself."""
    doc = _document_or_404(request.user, document_id)
    response = FileResponse(doc.file.open("rb"), content_type="application/octet-stream",
                            as_attachment=True, filename=doc.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _upload_target(request):
    """(order, piece, lines) named by ?order= or ?piece=, visible to the user."""
    from etabli.orders.models import Order
    from etabli.production.models import Piece

    def _int(name):
        raw = request.GET.get(name) or request.POST.get(name)
        try:
            return int(raw) if raw else None
        except ValueError:
            raise Http404("Bad id.") from None

    piece_id, order_id = _int("piece"), _int("order")
    user = request.user
    if piece_id is not None:
        piece = (Piece.objects.visible_to(user).select_related("order", "line")
                 .filter(pk=piece_id).first())
        if piece is None:
            raise Http404("No such piece.")
        return piece.order, piece, []
    order = Order.objects.visible_to(user).filter(pk=order_id).first() if order_id else None
    if order is None:
        raise Http404("No such order.")
    return order, None, list(order.lines.order_by("position"))


@login_required
def cad_upload_page(request):
    if not cad_services.works_on_designs(request.user):
        raise Http404("No such page.")
    order, piece, lines = _upload_target(request)
    status = 200
    if request.method == "POST":
        form = CadUploadForm(request.POST, request.FILES, lines=lines)
        if form.is_valid():
            data = form.cleaned_data
            try:
                analysis = cad_services.cad_upload(
                    actor=request.user, order_id=order.pk, piece_id=piece.pk if piece else None,
                    line_id=data.get("line"), uploaded_file=data["file"],
                    stone_count=data.get("stone_count"), visibility=data["visibility"])
            except DomainError as exc:
                form_error(form, exc)
                status = exc.status
            else:
                messages.success(request, _("%(name)s is analysed.")
                                 % {"name": analysis.document.original_name})
                return redirect("cad:page", document_id=analysis.document_id)
        else:
            status = 400
    else:
        initial = {}
        if request.GET.get("line", "").isdigit():
            initial["line"] = int(request.GET["line"])
        form = CadUploadForm(lines=lines, initial=initial)
    return render(request, "materials/cad_upload.html", {
        "form": form, "order": order, "piece": piece,
        "max_mb": max_upload_bytes() // (1024 * 1024),
        "order_url": reverse("orders:detail", args=[order.pk]) if request.user.sees_clients
        else None,
        "piece_url": reverse("production:piece", args=[piece.pk]) if piece else None,
    }, status=status)


def _back(doc):
    return redirect("cad:page", document_id=doc.pk)


@login_required
@require_POST
def cad_analyse(request, document_id: int):
    doc = _document_or_404(request.user, document_id)
    try:
        cad_services.mesh_analyse(actor=request.user, document_id=doc.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(name)s is analysed.") % {"name": doc.original_name})
    return _back(doc)


@login_required
@require_POST
def cad_stone_count(request, document_id: int):
    doc = _document_or_404(request.user, document_id)
    form = StoneCountForm(request.POST)
    if form.is_valid():
        try:
            cad_services.mesh_stone_count_set(actor=request.user, document_id=doc.pk,
                                              stone_count=form.cleaned_data["stone_count"])
        except DomainError as exc:
            form_error(form, exc)
            return _page(request, doc, {"stones": form}, status=exc.status)
        messages.success(request, _("Stone count saved."))
        return _back(doc)
    return _page(request, doc, {"stones": form}, status=400)


@login_required
@require_POST
def cad_apply_weight(request, document_id: int):
    doc = _document_or_404(request.user, document_id)
    raw = request.POST.get("piece") or None
    try:
        piece_id = int(raw) if raw else None
        pieces = cad_services.cad_weight_apply(actor=request.user, document_id=doc.pk,
                                               piece_id=piece_id)
    except ValueError:
        messages.error(request, _("Choose a piece."))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Theoretical weight %(weight)s g kept for %(serials)s.")
                         % {"weight": pieces[0].theoretical_weight_g,
                            "serials": ", ".join(p.serial for p in pieces)})
    return _back(doc)


@login_required
@require_POST
def piece_weight(request, piece_id: int):
    """The theoretical weight entered by hand on the piece page."""
    form = TheoreticalWeightForm(request.POST)
    target = reverse("production:piece", args=[piece_id])
    if not form.is_valid():
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect(target)
    try:
        piece = cad_services.piece_theoretical_weight_set(
            actor=request.user, piece_id=piece_id, weight_g=form.cleaned_data["weight_g"])
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from exc
        messages.error(request, exc.message)
    else:
        if piece.theoretical_weight_g is None:
            messages.success(request, _("Theoretical weight of %(serial)s cleared.")
                             % {"serial": piece.serial})
        else:
            messages.success(request, _("Theoretical weight of %(serial)s: %(weight)s g.")
                             % {"serial": piece.serial, "weight": piece.theoretical_weight_g})
    return redirect(target)
