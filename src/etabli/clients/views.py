"""The client portal: a client contact follows their own orders in plain words.

Reads start from `Order.objects.visible_to` (the contact's client only); no prices, no events'
internal details, no workshop names unless the house allows it (ETABLI_CLIENT_SEES_WORKSHOPS).
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from etabli.accounts.models import Role
from etabli.core.errors import DomainError
from etabli.core.web import form_error
from etabli.documents.selectors import latest_visible
from etabli.orders import selectors as order_selectors
from etabli.orders.models import Order, OrderStatus
from etabli.production.models import Piece, PieceStatus, StepRun, StepStatus
from etabli.shipping.forms import ReceptionForm
from etabli.shipping.models import Reception, ReceptionOutcome
from etabli.shipping.reception import reception_record
from etabli.workshops.models import STEP_ORDER, StepKind


def client_only(view):
    """Logged in as a client contact; anyone else is told the page does not exist."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if request.user.role != Role.CLIENT:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------------
# plain words

STEP_WORDS = {
    StepKind.ORDER_RECEIPT: gettext_lazy("Order confirmed"),
    StepKind.DESIGN: gettext_lazy("Design"),
    StepKind.PROTOTYPING: gettext_lazy("Prototype"),
    StepKind.MANUFACTURING: gettext_lazy("Making"),
    StepKind.SETTING: gettext_lazy("Stone setting"),
    StepKind.FINISHING: gettext_lazy("Finishing and checks"),
    StepKind.DELIVERY: gettext_lazy("Delivery"),
}
BEING_MADE = {
    StepKind.ORDER_RECEIPT: gettext_lazy("Order confirmed, production starting"),
    StepKind.DESIGN: gettext_lazy("Being made — design"),
    StepKind.PROTOTYPING: gettext_lazy("Being made — prototype"),
    StepKind.MANUFACTURING: gettext_lazy("Being made — casting and assembly"),
    StepKind.SETTING: gettext_lazy("Being made — setting stones"),
    StepKind.FINISHING: gettext_lazy("Being made — finishing and quality checks"),
}


def shows_workshops() -> bool:
    return bool(getattr(settings, "ETABLI_CLIENT_SEES_WORKSHOPS", False))


def piece_words(piece: Piece) -> str:
    """Where a piece is, as a client would say it."""
    if piece.status == PieceStatus.DELIVERED:
        return str(_("Delivered"))
    if piece.status == PieceStatus.ON_HOLD:
        return str(_("Paused — we will keep you informed"))
    if piece.current_step == StepKind.DELIVERY:
        if piece.status == PieceStatus.IN_PROGRESS:
            return str(_("On its way to you"))
        return str(_("Being prepared for delivery"))
    return str(BEING_MADE.get(piece.current_step, _("Being made")))


def _progress_rank(piece: Piece) -> int:
    if piece.current_step in STEP_ORDER:
        return STEP_ORDER.index(piece.current_step)
    return len(STEP_ORDER)


def order_words(order: Order, pieces: list[Piece]) -> str:
    """An order's status in plain words, from its least advanced piece."""
    if order.status == OrderStatus.DRAFT:
        return str(_("Order received — being confirmed"))
    if order.status == OrderStatus.CANCELLED:
        return str(_("Cancelled"))
    if order.status == OrderStatus.CLOSED:
        return str(_("Delivered — reception confirmed"))
    if order.status == OrderStatus.DELIVERED:
        if order.reception_confirmed_at:
            return str(_("Delivered — your reservations are being handled"))
        return str(_("Delivered"))
    waiting = [p for p in pieces if p.status != PieceStatus.DELIVERED]
    if not waiting:
        return str(_("Delivered"))
    words = piece_words(min(waiting, key=_progress_rank))
    delivered = len(pieces) - len(waiting)
    if delivered:
        words = _("%(words)s (%(done)d of %(total)d delivered)") % {
            "words": words, "done": delivered, "total": len(pieces)}
    return words


def step_bar(piece: Piece) -> list[dict]:
    """The seven steps of one piece: done, current, to come, or not needed."""
    runs_by_step: dict[str, list[StepRun]] = {}
    for run in piece.runs.all():
        runs_by_step.setdefault(run.step, []).append(run)
    bar = []
    for step in STEP_ORDER:
        runs = runs_by_step.get(step)
        if not runs:
            continue
        statuses = {r.status for r in runs}
        if statuses & {StepStatus.READY, StepStatus.IN_TRANSIT, StepStatus.RECEIVED,
                       StepStatus.IN_PROGRESS, StepStatus.ON_HOLD}:
            state, state_words = "current", _("now")
        elif StepStatus.PENDING in statuses:
            state, state_words = "pending", _("to come")
        elif statuses == {StepStatus.SKIPPED}:
            state, state_words = "skipped", _("not needed")
        else:
            state, state_words = "done", _("done")
        bar.append({"label": STEP_WORDS[step], "state": state, "state_words": state_words})
    return bar


# ---------------------------------------------------------------------------------------------
# pages


def _pieces_prefetch(user) -> Prefetch:
    return Prefetch("pieces", to_attr="client_pieces",
                    queryset=Piece.objects.visible_to(user)
                    .select_related("current_workshop").order_by("serial"))


@require_GET
@client_only
def orders(request):
    user = request.user
    qs = order_selectors.order_list(user).prefetch_related(_pieces_prefetch(user))
    rows = []
    for order in qs:
        rows.append({"order": order, "words": order_words(order, order.client_pieces),
                     "piece_count": len(order.client_pieces)})
    return render(request, "portal/orders.html", {"rows": rows})


def _order_or_404(user, order_id: int) -> Order:
    order = order_selectors.order_get(user, order_id)
    if order is None:
        raise Http404("No such order.")
    return order


@require_GET
@client_only
def order_detail(request, order_id: int):
    order = _order_or_404(request.user, order_id)
    return _render_order(request, order, None)


def _render_order(request, order: Order, form: ReceptionForm | None, status: int = 200):
    user = request.user
    pieces_qs = (Piece.objects.visible_to(user).select_related("current_workshop")
                 .prefetch_related(Prefetch("runs", queryset=StepRun.objects.order_by("position")))
                 .order_by("unit_no", "serial"))
    lines = list(order.lines.select_related("alloy").order_by("position")
                 .prefetch_related(Prefetch("pieces", queryset=pieces_qs, to_attr="client_pieces")))
    all_pieces: list[Piece] = []
    see_workshops = shows_workshops()
    for line in lines:
        for piece in line.client_pieces:
            piece.words = piece_words(piece)
            piece.bar = step_bar(piece)
            piece.where = (piece.current_workshop.name
                           if see_workshops and piece.current_workshop
                           and piece.status != PieceStatus.DELIVERED else "")
            all_pieces.append(piece)
    documents = list(latest_visible(user).filter(order=order)
                     .order_by("uploaded_at", "id"))
    can_confirm = (order.status == OrderStatus.DELIVERED
                   and order.reception_confirmed_at is None)
    if form is None:
        form = ReceptionForm(pieces=all_pieces)
    from etabli.core import panels

    return render(request, "portal/order.html", {
        "panels": panels.portal_order_panels(request, order),
        "order": order, "lines": lines, "words": order_words(order, all_pieces),
        "documents": documents, "form": form, "can_confirm": can_confirm,
        "confirmed_by": order.reception_confirmed_by if order.reception_confirmed_at else None,
        "reception": Reception.objects.visible_to(user).filter(order=order).first()
        if order.reception_confirmed_at else None,
    }, status=status)


@require_POST
@client_only
def confirm_reception(request, order_id: int):
    order = _order_or_404(request.user, order_id)
    pieces = list(Piece.objects.visible_to(request.user).filter(order=order)
                  .select_related("line").order_by("unit_no", "serial"))
    form = ReceptionForm(request.POST, pieces=pieces)
    if form.is_valid():
        try:
            reception_record(actor=request.user, order_id=order.pk,
                             outcome=form.cleaned_data["outcome"],
                             note=form.cleaned_data["note"], reservations=form.reservations())
        except DomainError as exc:
            form_error(form, exc if (exc.details or {}).get("field") != "reservations"
                       else DomainError(exc.message, details={"field": "reservation"}))
        else:
            if form.cleaned_data["outcome"] == ReceptionOutcome.RESERVATIONS:
                messages.success(request, _("Thank you: reception of order %(ref)s is "
                                            "confirmed and your reservations are noted; we "
                                            "will come back to you.")
                                 % {"ref": order.reference})
            else:
                messages.success(request, _("Thank you: reception of order %(ref)s is "
                                            "confirmed.") % {"ref": order.reference})
            return redirect("portal:order", order_id=order.pk)
    order.refresh_from_db()
    return _render_order(request, order, form)

