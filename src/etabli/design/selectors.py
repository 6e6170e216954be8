"""Reads for design: always from the models' `visible_to(user)`.

`line_state` says where a line's design stands (rounds sent, the limit, the valid approval and,
when there is none, what is missing); the gate, the pages and the API all use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Prefetch, Q
from django.urls import reverse
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.documents.models import Document, Visibility
from etabli.orders.models import OrderLine, OrderStatus
from etabli.production.models import Piece, PieceStatus
from etabli.workshops.models import StepKind

from . import budget
from .models import (
    DesignApproval,
    DesignBrief,
    DesignRound,
    Prototype,
    RoundStatus,
    _design_lines,
)


def round_limit() -> int:
    return int(getattr(settings, "ETABLI_DESIGN_ROUND_LIMIT", 3))


def works_on_design(user) -> bool:
    """Designers, sales, production managers and administrators prepare and send rounds and
    write briefs; others (quality, logistics) only read the design work."""
    return bool(user and user.is_active and (user.takes_orders or user.role == Role.DESIGNER))


def design_lines(user):
    """Order lines whose design `user` may see (house staff: the orders they see; a client:
    their own)."""
    return _design_lines(user)


def line_for(user, line_id: int) -> OrderLine | None:
    return (design_lines(user).select_related("order__client", "alloy")
            .filter(pk=line_id).first())


def brief_of(user, line: OrderLine) -> DesignBrief | None:
    return DesignBrief.objects.visible_to(user).filter(line=line).first()


def round_for(user, round_id: int) -> DesignRound | None:
    return (DesignRound.objects.visible_to(user)
            .select_related("line__order__client", "line__alloy").filter(pk=round_id).first())


def files_for(user, rounds) -> None:
    """Attach `r.shown_files` to each round: the files `user` may see (a client only those
    shared with the client), in one query."""
    rounds = list(rounds)
    if not rounds:
        return
    through = DesignRound.files.through
    visible = Document.objects.visible_to(user)
    if user.role == Role.CLIENT:
        visible = visible.filter(visibility=Visibility.CLIENT)
    links = (through.objects.filter(designround_id__in=[r.pk for r in rounds],
                                    document__in=visible)
             .select_related("document__uploaded_by").order_by("document__kind",
                                                                "document_id"))
    by_round: dict[int, list[Document]] = {}
    for link in links:
        by_round.setdefault(link.designround_id, []).append(link.document)
    for r in rounds:
        r.shown_files = by_round.get(r.pk, [])
        r.renders = [d for d in r.shown_files if d.is_image]
        r.other_files = [d for d in r.shown_files if not d.is_image]


# ---------------------------------------------------------------------------------------------
# where a line's design stands


@dataclass
class LineState:
    line: OrderLine
    rounds: list[DesignRound]
    rounds_sent: int
    limit: int
    latest: DesignRound | None  # the latest round sent (drafts are not the client's yet)
    draft: DesignRound | None
    approval: DesignApproval | None  # the approval of the latest sent round, if any
    invalidated_by: Prototype | None = None
    missing: str = ""
    design_url: str = ""
    pieces_at_design: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def over_limit(self) -> bool:
        return self.rounds_sent > self.limit

    @property
    def approved(self) -> bool:
        """The latest round sent is approved and no prototype has withdrawn that approval."""
        return self.approval is not None and self.invalidated_by is None

    @property
    def waiting_for_client(self) -> bool:
        return self.latest is not None and self.latest.status == RoundStatus.SENT

    @property
    def changes_requested(self) -> bool:
        return self.latest is not None and self.latest.status == RoundStatus.CHANGES_REQUESTED

    @property
    def limit_warning(self) -> str:
        if not self.over_limit:
            return ""
        return _("%(n)s design rounds sent, more than the house's limit of %(limit)s.") % {
            "n": self.rounds_sent, "limit": self.limit}

    @property
    def code(self) -> str:
        if self.approved:
            return "approved"
        if self.invalidated_by is not None:
            return "invalidated"
        if self.waiting_for_client:
            return "waiting"
        if self.changes_requested:
            return "changes_requested"
        return "draft" if self.draft is not None else "none"

    @property
    def label(self) -> str:
        return {
            "approved": _("Approved by the client"),
            "invalidated": _("Approval withdrawn: CAD changes needed"),
            "waiting": _("Waiting for the client"),
            "changes_requested": _("Changes requested"),
            "draft": _("Round being prepared"),
            "none": _("No round yet"),
        }[self.code]


def line_label(line: OrderLine) -> str:
    return _("line %(n)s (%(description)s)") % {"n": line.position,
                                                 "description": line.description}


def line_state(line: OrderLine, rounds: list[DesignRound] | None = None,
               invalidations: dict | None = None) -> LineState:
    """Where `line`'s design stands, from its rounds (all of them, drafts included).

    `invalidations` maps approval ids to the prototype that withdrew them, when the caller has
    already looked them up for several lines."""
    if rounds is None:
        rounds = list(line.design_rounds.select_related("approval").order_by("number"))
    sent = [r for r in rounds if r.status != RoundStatus.DRAFT]
    latest = sent[-1] if sent else None
    draft = next((r for r in rounds if r.status == RoundStatus.DRAFT), None)
    approval = None
    invalidated_by = None
    if latest is not None and latest.status == RoundStatus.APPROVED:
        approval = getattr(latest, "approval", None)
        if approval is not None and invalidations is not None:
            invalidated_by = invalidations.get(approval.pk)
        elif approval is not None:
            invalidated_by = (Prototype.objects.select_related("piece")
                              .filter(invalidates=approval).first())
    state = LineState(line=line, rounds=rounds, rounds_sent=len(sent), limit=round_limit(),
                      latest=latest, draft=draft, approval=approval,
                      invalidated_by=invalidated_by,
                      design_url=reverse("design:line", args=[line.pk]))
    state.missing = _missing(state)
    return state


def _missing(state: LineState) -> str:
    """What the line still needs before its pieces may leave design ("" when approved)."""
    where = line_label(state.line)
    url = state.design_url
    if state.approved:
        return ""
    if state.invalidated_by is not None:
        return _("The client's approval of round %(n)s of %(line)s was withdrawn: the "
                 "prototype of %(serial)s needs CAD changes (%(reason)s). Send a new round "
                 "from %(url)s and get it approved.") % {
            "n": state.latest.number, "line": where, "serial": state.invalidated_by.piece.serial,
            "reason": state.invalidated_by.reason, "url": url}
    if state.waiting_for_client:
        return _("Round %(n)s of %(line)s is waiting for the client's decision: the piece "
                 "leaves design once the client approves it (or the house records the "
                 "client's written approval at %(url)s).") % {
            "n": state.latest.number, "line": where, "url": url}
    if state.changes_requested:
        return _("The client asked for changes to round %(n)s of %(line)s: send a new round "
                 "from %(url)s and get it approved.") % {
            "n": state.latest.number, "line": where, "url": url}
    return _("No design round of %(line)s has been approved by the client: send the CAD and "
             "renders from %(url)s and get the client's approval.") % {"line": where,
                                                                        "url": url}


def line_states(lines) -> dict[int, LineState]:
    """The states of several lines in two queries (their rounds with their approvals), three
    when a round is approved (the prototypes that withdrew an approval)."""
    lines = list(lines)
    if not lines:
        return {}
    rounds = list(DesignRound.objects.filter(line__in=lines).select_related("approval")
                  .order_by("line_id", "number"))
    by_line: dict[int, list[DesignRound]] = {ln.pk: [] for ln in lines}
    for r in rounds:
        by_line[r.line_id].append(r)
    invalidations = invalidations_of(lines, rounds)
    return {ln.pk: line_state(ln, by_line[ln.pk], invalidations) for ln in lines}


def invalidations_of(lines, rounds) -> dict:
    """The prototypes that withdrew an approval, by approval id (a query only when a round of
    these lines is approved)."""
    if not any(r.status == RoundStatus.APPROVED for r in rounds):
        return {}
    return {p.invalidates_id: p for p in Prototype.objects.select_related("piece")
            .filter(line__in=lines, invalidates__isnull=False)}


def approval_budget(approval: DesignApproval) -> budget.BudgetConsistency:
    return budget.of_approval(approval)


# ---------------------------------------------------------------------------------------------
# prototypes

_RING_SIZE = re.compile(r"\s*(\d{1,2}([.,]\d{1,2}|\s?[½¼¾]|\s?1/2)?|[A-Za-z]\s?([½¼¾]|1/2)?)\s*")


def needs_fit_test(line: OrderLine) -> bool:
    """A ring (the line's size is a ring size — '52', '6.5', 'N½' — rather than a length or a
    diameter) is tried on a ring gauge: its prototype needs a fit test."""
    return bool(line.size and _RING_SIZE.fullmatch(line.size))


def prototypes_of(user, piece: Piece) -> list[Prototype]:
    return list(Prototype.objects.visible_to(user).filter(piece=piece)
                .select_related("run", "recorded_by").order_by("recorded_at", "id"))


# ---------------------------------------------------------------------------------------------
# the designer's list


@dataclass
class Worklist:
    at_design: list[LineState]
    waiting: list[LineState]
    changes: list[LineState]


def worklist(user) -> Worklist:
    """Lines with pieces at the design step, rounds waiting for the client, rounds the client
    asked to change — for the house's staff, on the orders they see."""
    lines = design_lines(user).filter(order__status__in=[OrderStatus.DRAFT,
                                                         OrderStatus.LAUNCHED])
    at_design_ids = set(
        Piece.objects.visible_to(user).filter(current_step=StepKind.DESIGN)
        .exclude(status=PieceStatus.DELIVERED).values_list("line_id", flat=True))
    # Lines whose latest word is the client's or a prototype's: waiting, changes requested,
    # an approval withdrawn (only on orders still open).
    open_round_ids = set(DesignRound.objects.filter(line__in=lines).filter(
        status__in=[RoundStatus.SENT, RoundStatus.CHANGES_REQUESTED])
        .values_list("line_id", flat=True))
    open_round_ids |= set(Prototype.objects.filter(line__in=lines, invalidates__isnull=False)
                          .values_list("line_id", flat=True))
    chosen = (lines.filter(Q(pk__in=at_design_ids) | Q(pk__in=open_round_ids))
              .select_related("order__client")
              .annotate(pieces_at_design=Count(
                  "pieces", filter=Q(pieces__current_step=StepKind.DESIGN)
                  & ~Q(pieces__status=PieceStatus.DELIVERED)))
              .order_by("order__promised_date", "order_id", "position"))
    states = line_states(chosen)
    at_design, waiting, changes = [], [], []
    for line in chosen:
        state = states[line.pk]
        state.pieces_at_design = line.pieces_at_design
        if state.waiting_for_client:
            waiting.append(state)
        elif state.changes_requested or state.code == "invalidated":
            changes.append(state)
        elif line.pk in at_design_ids:
            at_design.append(state)
    return Worklist(at_design=at_design, waiting=waiting, changes=changes)


def rounds_prefetch(user) -> Prefetch:
    return Prefetch("design_rounds", to_attr="shown_rounds",
                    queryset=DesignRound.objects.visible_to(user).select_related("approval")
                    .order_by("number"))
