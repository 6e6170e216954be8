"""What design adds to shared pages (see core.panels): a list of dicts, each with a
`template` to include and whatever that template needs. Each panel costs a fixed, small number
of queries."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.production.models import PieceStatus
from etabli.workshops.models import StepKind

from . import selectors
from .forms import PrototypeForm
from .models import DesignRound, Prototype


def _prototyping_open(piece) -> bool:
    # From the piece's cached state (no query): its open step is prototyping, begun.
    return (piece.current_step == StepKind.PROTOTYPING
            and piece.status in (PieceStatus.IN_PROGRESS, PieceStatus.ON_HOLD))


def may_record_prototype(user, piece, prototypes: list[Prototype]) -> bool:
    """Whether the prototype form is offered (the service has the last word)."""
    if not _prototyping_open(piece) or any(p.run_id == piece.current_run_id for p in prototypes):
        return False
    if user.role == Role.DESIGNER or user.runs_production:
        return True
    if user.role == Role.WORKSHOP:
        ids = user.workshop_ids()
        return piece.current_workshop_id in ids and piece.location_id in ids
    return False


def prototype_panel(request, piece, form=None, prototypes: list[Prototype] | None = None
                    ) -> dict:
    user = request.user
    if prototypes is None:
        prototypes = selectors.prototypes_of(user, piece)
    ring_size = piece.line.size if selectors.needs_fit_test(piece.line) else ""
    workshop = user.role == Role.WORKSHOP
    show_form = form is not None or may_record_prototype(user, piece, prototypes)
    return {
        "template": "design/_prototype_panel.html",
        "piece": piece,
        "prototypes": prototypes,
        "form": (form or PrototypeForm(ring_size=ring_size, workshop=workshop))
        if show_form else None,
        "action": reverse("design:prototype", args=[piece.pk]),
        "ring_size": ring_size,
        "workshop": workshop,
        "next": request.get_full_path(),
    }


def piece_panels(request, piece) -> list[dict]:
    """The line's design status and the piece's prototypes: two queries (the line's rounds
    with their approvals, the line's prototypes)."""
    user = request.user
    if not user.sees_clients:
        return []
    line = piece.line
    rounds = list(line.design_rounds.select_related("approval").order_by("number"))
    line_prototypes = list(Prototype.objects.visible_to(user).filter(line_id=line.pk)
                           .select_related("piece", "recorded_by").order_by("recorded_at", "id"))
    at_design = piece.current_step in (StepKind.DESIGN, StepKind.PROTOTYPING)
    if not (rounds or line_prototypes or at_design or line.is_custom_design):
        return []
    invalidations = {p.invalidates_id: p for p in line_prototypes if p.invalidates_id}
    state = selectors.line_state(line, rounds, invalidations)
    panels = [{"template": "design/_piece_panel.html", "state": state, "piece": piece,
               "works": selectors.works_on_design(user)}]
    mine = [p for p in line_prototypes if p.piece_id == piece.pk]
    if piece.current_step == StepKind.PROTOTYPING or mine:
        panels.append(prototype_panel(request, piece, prototypes=mine))
    return panels


def order_panels(request, order) -> list[dict]:
    user = request.user
    if not user.sees_clients:
        return []
    lines = list(selectors.design_lines(user).filter(order=order).select_related("design_brief")
                 .order_by("position"))
    states = selectors.line_states(lines)
    rows = [states[ln.pk] for ln in lines
            if ln.is_custom_design or states[ln.pk].rounds or hasattr(ln, "design_brief")]
    if not rows:
        return []
    return [{"template": "design/_order_panel.html", "rows": rows,
             "works": selectors.works_on_design(user)}]


def portal_order_panels(request, order) -> list[dict]:
    """The designs sent to the client on this order: one query when there are none."""
    user = request.user
    if user.role != Role.CLIENT:
        return []
    rounds = list(DesignRound.objects.visible_to(user).filter(line__order_id=order.pk)
                  .select_related("line", "approval").order_by("line__position", "number"))
    if not rounds:
        return []
    by_line: dict = {}
    for r in rounds:
        by_line.setdefault(r.line_id, (r.line, []))[1].append(r)
    lines = [line for line, _rounds in by_line.values()]
    invalidations = selectors.invalidations_of(lines, rounds)
    rows = []
    for line, line_rounds in by_line.values():
        state = selectors.line_state(line, line_rounds, invalidations)
        rows.append({"line": line, "state": state, "round": state.latest,
                     "url": reverse("design:portal_round", args=[state.latest.pk])})
    return [{"template": "design/_portal_panel.html", "rows": rows,
             "waiting": sum(1 for r in rows if r["state"].waiting_for_client)}]


def workshop_piece_panels(request, piece) -> list[dict]:
    user = request.user
    if user.role != Role.WORKSHOP:
        return []
    at_prototyping = (piece.current_step == StepKind.PROTOTYPING
                      and piece.current_workshop_id in user.workshop_ids())
    prototypes = selectors.prototypes_of(user, piece)  # those made at this workshop
    if not at_prototyping and not prototypes:
        return []
    return [prototype_panel(request, piece, prototypes=prototypes)]


def nav_items(user) -> list[tuple[str, str]]:
    if selectors.works_on_design(user):
        return [(_("Design"), reverse("design:home"))]
    return []
