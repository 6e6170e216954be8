"""One demo order's scenes, played against the services as the person who would act.

`story.py` decides what happens and when; `OrderRun` does it: the sales assistant creates the
order and ticks the launch sheet, the production manager routes and launches it, each
workshop's member receives, starts and completes the pieces at their bench and sends them on,
the quality inspector sends a piece back for rework, and so on.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import TYPE_CHECKING

from etabli.accounts.models import User
from etabli.orders import services as orders
from etabli.orders.models import LAUNCH_CHECKLIST, ChecklistSection, Order
from etabli.production import services as production
from etabli.production.models import OPEN_STEP_STATUSES, Piece, StepStatus

from . import catalogue as cat
from . import steps, steps_quality

if TYPE_CHECKING:
    from .story import Leg, Plan, Story

HOUSE = "house"
# Who does a step the house runs itself (the production manager for anything else).
HOUSE_ROLE_USER = {"design": "designer", "prototyping": "designer", "finishing": "quality",
                   "delivery": "logistics"}


class OrderRun:
    """Plays the scenes of one order against the services, as the person who would act."""

    def __init__(self, story: Story, plan: Plan, legs: list[Leg] | None = None) -> None:
        self.story = story
        self.plan = plan
        self.legs = legs or []
        self.rng = random.Random(story.rng.getrandbits(64))
        self.order: Order | None = None
        self.transfer = None
        self.change = None
        self.weight: dict[int, Decimal | None] = {}
        self.nominal: dict[int, tuple[Decimal, Decimal]] = {}
        self._pieces: list[Piece] = []
        self.stones_set: set[int] = set()

    # people -----------------------------------------------------------------------------------

    def _worker(self, leg: Leg) -> User:
        if leg.workshop != HOUSE:
            return self.story.user(cat.WORKSHOP_MEMBER[leg.workshop])
        return self.story.user(HOUSE_ROLE_USER.get(leg.step, "manager"))

    def _sender(self, leg_no: int) -> User:
        where = self.legs[leg_no - 1].workshop if leg_no else HOUSE
        if where == HOUSE:
            return self.story.user("manager")
        return self.story.user(cat.WORKSHOP_MEMBER[where])

    # the order --------------------------------------------------------------------------------

    def create(self) -> None:
        plan = self.plan
        self.order = orders.order_create(
            actor=self.story.user(plan.created_by), client_id=self.story.clients[plan.client].pk,
            lines=plan.lines, promised_date=plan.promised_date,
            client_reference=plan.client_reference, notes=plan.notes,
            route_template=plan.template)

    def edit_route(self) -> None:
        for e in self.plan.edits:
            e.run(self.story, self.order)
        actual = [(rs.step, rs.workshop.code if rs.workshop else None, rs.planned_days,
                   rs.skipped) for rs in self.order.route.select_related("workshop")]
        wanted = [(r["step"], r["workshop"], r["days"], r["skipped"]) for r in self.plan.spec]
        if actual != wanted:
            raise RuntimeError(f"demo order {self.plan.no}: route {actual} is not {wanted}")

    def check(self, code: str) -> None:
        section = next(sec for c, sec, _label in LAUNCH_CHECKLIST if c == code)
        who = "manager" if section == ChecklistSection.FEASIBILITY else "sales"
        orders.launch_item_set(actor=self.story.user(who), order_id=self.order.pk, code=code)

    def cancel(self, reason: str) -> None:
        orders.order_cancel(actor=self.story.user("sales"), order_id=self.order.pk,
                            reason=reason)

    def launch(self) -> None:
        reason = ""
        if self.plan.scenario.override:
            reason = self.plan.scenario.text or cat.OVERRIDE_REASONS[0]
        orders.order_launch(actor=self.story.user("manager"), order_id=self.order.pk,
                            override_reason=reason)
        nominal = {}
        for line in self.order.lines.select_related("alloy"):
            model = next(m for m in cat.MODELS if m.description == line.description)
            density = cat.ALLOY_DENSITY.get(line.alloy.code, Decimal("15.50"))
            stones_g = sum((s.carats for s in model.stones if s.description == line.stones),
                           Decimal(0)) * Decimal("0.2")
            nominal[line.pk] = (model.weight_g * density / Decimal("15.50"), stones_g)
        self._pieces = list(Piece.objects.filter(order=self.order).order_by("serial"))
        self.nominal = {p.pk: nominal[p.line_id] for p in self._pieces}

    def pieces(self) -> list[Piece]:
        """The order's pieces (for their ids: the services read the current state)."""
        return self._pieces

    # weights ----------------------------------------------------------------------------------

    def _grams(self, value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.001"))

    def _weigh_after(self, piece: Piece, leg: Leg) -> Decimal | None:
        base, stones_g = self.nominal[piece.pk]
        w = self.weight.get(piece.pk)
        if "casting" in leg.operations:
            w = base * Decimal(str(round(self.rng.uniform(1.05, 1.09), 4)))
        if "assembly" in leg.operations:
            w = base * Decimal(str(round(self.rng.uniform(1.01, 1.03), 4)))
        if leg.step == "setting" and w is not None and piece.pk not in self.stones_set:
            w += stones_g  # a setting redone after a rework uses the same stones
            self.stones_set.add(piece.pk)
        if "polishing" in leg.operations and w is not None:
            w *= Decimal("0.985")
        self.weight[piece.pk] = self._grams(w) if w is not None else None
        return self.weight[piece.pk]

    def _weighed(self, pid: int) -> Decimal | None:
        w = self.weight.get(pid)
        if w is None:
            return None
        drift = Decimal(str(round(self.rng.uniform(-0.004, 0.004), 3)))
        if self.rng.random() < 0.03:  # now and then a slip does not match the scale
            drift = Decimal(str(round(self.rng.uniform(0.06, 0.09), 3)))
        return self._grams(w + drift)

    # moving pieces ----------------------------------------------------------------------------

    def _check_leg(self, piece: Piece, leg_no: int) -> None:
        run = piece.runs.filter(status__in=OPEN_STEP_STATUSES).select_related("workshop").first()
        leg = self.legs[leg_no]
        if run is None or run.step != leg.step or run.workshop.code != leg.workshop:
            raise RuntimeError(f"demo order {self.plan.no}: {piece.serial} is not at "
                               f"{leg.step}@{leg.workshop}")

    def _open(self, piece: Piece):
        return piece.runs.filter(status__in=OPEN_STEP_STATUSES).select_related("workshop").first()

    def send(self, leg: int) -> None:
        pieces = self.pieces()
        self._check_leg(pieces[0], leg)
        for p in pieces:
            steps.before_send(self, p, self._open(p))
        weights = {p.pk: self.weight[p.pk] for p in pieces if self.weight.get(p.pk)}
        self.transfer = production.pieces_send(
            actor=self._sender(leg), piece_ids=[p.pk for p in pieces], weights_g=weights)

    def receive(self, leg: int) -> None:
        weights = {p.pk: self._weighed(p.pk) for p in self.pieces() if self.weight.get(p.pk)}
        production.transfer_receive(actor=self._worker(self.legs[leg]),
                                    transfer_id=self.transfer.pk, weights_g=weights)

    def start(self, leg: int) -> None:
        pieces = self.pieces()
        self._check_leg(pieces[0], leg)
        for p in pieces:
            steps.before_start(self, p, self._open(p))
            production.piece_start(actor=self._worker(self.legs[leg]), piece_id=p.pk)

    def complete(self, leg: int) -> None:
        step = self.legs[leg]
        last_of_step = leg + 1 == len(self.legs) or self.legs[leg + 1].step != step.step
        for p in self.pieces():
            run = self._open(p)
            if run is None:  # ended with an earlier piece's (a shipment delivered them all)
                continue
            steps.before_complete(self, p, run)
            run.refresh_from_db()
            if run.status != StepStatus.IN_PROGRESS:  # the step's own work ended it
                continue
            production.piece_complete(
                actor=self._worker(step), piece_id=p.pk, weight_g=self._weigh_after(p, step),
                comment=cat.STEP_NOTES.get(step.step, "") if last_of_step else "")

    def rework(self, leg: int) -> None:
        step = self.legs[leg]
        actor = self.story.user("quality" if step.step == "finishing" else "manager")
        texts = cat.REWORKS_AT_FINISHING if step.step == "finishing" else cat.REWORKS_AT_SETTING
        for p in self.pieces():
            runs = [r for r in p.runs.order_by("position") if r.status != StepStatus.SKIPPED]
            target = runs[1:][step.rework_to]
            if target.step != self.legs[step.rework_to].step:
                raise RuntimeError(f"demo order {self.plan.no}: rework target mismatch")
            if step.step == "finishing":  # found by a failed inspection, sent back from its NC
                steps_quality.fail_and_rework(self, p, self._open(p), target,
                                              texts[self.plan.no % len(texts)])
                continue
            production.piece_rework(actor=actor, piece_id=p.pk, target_run_id=target.pk,
                                    comment=texts[self.plan.no % len(texts)])

    def _holder(self, incident: cat.Incident) -> User:
        if incident.who != "member":
            return self.story.user(incident.who)
        piece = self.pieces()[0]
        run = piece.runs.filter(status__in=OPEN_STEP_STATUSES).select_related("workshop").first()
        if run.workshop.code == HOUSE:
            return self.story.user("manager")
        return self.story.user(cat.WORKSHOP_MEMBER[run.workshop.code])

    def hold_first(self, incident: cat.Incident) -> None:
        production.piece_hold(actor=self._holder(incident), piece_id=self.pieces()[0].pk,
                              reason=incident.reason, comment=incident.comment)

    def hold_all(self, incident: cat.Incident) -> None:
        actor = self._holder(incident)
        for p in self.pieces():
            production.piece_hold(actor=actor, piece_id=p.pk, reason=incident.reason,
                                  comment=incident.comment)

    def release_all(self) -> None:
        for p in self.pieces():
            production.piece_release(actor=self.story.user("manager"), piece_id=p.pk,
                                     comment="Resolved; work resumes.")

    def confirm_reception(self) -> None:
        """The client's contact confirms reception (accepting, or with a reservation); for
        clients without one, sales records it (see steps_shipping)."""
        from .steps_shipping import confirm_reception

        confirm_reception(self)

    # change requests --------------------------------------------------------------------------

    def change_ask(self, description: str, who: str) -> None:
        self.change = orders.change_request_create(
            actor=self.story.user(who), order_id=self.order.pk, description=description)

    def change_assess(self, impact: int, assessment: str) -> None:
        self.order.refresh_from_db()
        promised = self.order.promised_date
        orders.change_request_assess(
            actor=self.story.user("sales"), cr_id=self.change.pk, impact_days=impact,
            new_promised_date=promised + dt.timedelta(days=impact) if promised else None,
            assessment=assessment)

    def change_decide(self, approve: bool) -> None:
        comment = "Approved; the client is told the new date." if approve \
            else "Rejected: too late in production; offered as a separate order."
        orders.change_request_decide(actor=self.story.user("manager"), cr_id=self.change.pk,
                                     approve=approve, comment=comment)
