"""Small factories for tests: plain functions that build data through the services.

Nothing here writes rows directly when a service exists for it, so the data the tests see is
data the application could really have produced (audit entries, sequences, checklists, routes).

`HouseSetup` (built by the `house_setup` fixture in `tests/conftest.py`) is a whole house: three
outside workshops, one user of every role, a client, and helpers to launch orders and to walk
pieces along their route with the right person at each step.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from etabli.accounts.models import Role, User
from etabli.accounts.services import user_create
from etabli.clients.models import Client
from etabli.clients.services import client_create
from etabli.orders.models import CHECKLIST_CODES, Order
from etabli.orders.services import (
    launch_item_set,
    order_create,
    order_deadline_check,
    order_launch,
    order_update,
)
from etabli.production.models import Piece, PieceStatus, StepRun, StepStatus
from etabli.production.routing import order_route_step_skip, order_route_step_update
from etabli.production.services import (
    piece_complete,
    piece_receive,
    piece_release,
    piece_start,
    pieces_send,
)
from etabli.workshops.models import StepKind, Workshop
from etabli.workshops.selectors import house as house_workshop
from etabli.workshops.services import workshop_create
from tests import gate_support

_seq = itertools.count(1)

PASSWORD = "not-a-real-password"

CASTER_SKILLS = ["wax_print", "resin_print", "prototype_casting", "material_preparation",
                 "casting", "assembly"]
SETTER_SKILLS = ["setting"]
POLISHER_SKILLS = ["polishing", "plating", "engraving_hallmarking", "cleaning"]

# Who at the house does the work of a step the house itself runs (and may see the piece then).
HOUSE_STEP_ROLES = {
    StepKind.DESIGN: Role.DESIGNER,
    StepKind.PROTOTYPING: Role.DESIGNER,
    StepKind.FINISHING: Role.QUALITY,
    StepKind.DELIVERY: Role.LOGISTICS,
}


def make_workshop(code: str | None = None, *, skills: Iterable[str] = (), name: str = "",
                  kind: str = "external", capacity_benches: int = 1) -> Workshop:
    """An outside workshop (by default) with the given operation codes as skills."""
    code = code or f"ws{next(_seq)}"
    return workshop_create(actor=None, code=code, name=name or code.title(), kind=kind,
                           skills=list(skills), capacity_benches=capacity_benches)


def make_client(code: str | None = None, *, name: str = "", **kwargs: Any) -> Client:
    code = code or f"client{next(_seq)}"
    return client_create(actor=None, code=code, name=name or code.title(), **kwargs)


def make_user(role: str, *, username: str | None = None,
              workshops: Iterable[Workshop | str] = (), client: Client | str | None = None,
              **kwargs: Any) -> User:
    """A user of `role`; workshop members need `workshops`, client contacts a `client`."""
    username = username or f"{role}{next(_seq)}"
    codes = [w.code if isinstance(w, Workshop) else w for w in workshops]
    client_code = client.code if isinstance(client, Client) else client
    return user_create(actor=None, username=username, password=PASSWORD, role=role,
                       workshop_codes=codes or None, client_code=client_code,
                       check_password=False, **kwargs)


def default_line(**overrides: Any) -> dict:
    """One valid order line (a catalogue ring in 18k yellow gold)."""
    return {"description": "Solitaire ring, 1 ct", "model_reference": "R-100", "quantity": 1,
            "alloy": "750y", "size": "52", "target_price": "1200.00"} | overrides


@dataclass
class HouseSetup:
    """A house with three outside workshops and one user of every role.

    Default assignment of the standard route: order receipt, design and delivery at the house
    (from the template), prototyping and manufacturing at the caster, setting at the setter,
    finishing at the polisher.
    """

    house: Workshop
    caster: Workshop
    setter: Workshop
    polisher: Workshop
    admin: User
    manager: User
    sales: User
    designer: User
    quality: User
    logistics: User
    caster_member: User
    setter_member: User
    polisher_member: User
    client: Client
    client_contact: User
    other_client: Client
    other_client_contact: User
    members: dict[int, User] = field(default_factory=dict)

    @classmethod
    def build(cls) -> HouseSetup:
        caster = make_workshop("caster", name="Fonderie Dupont",
                               skills=CASTER_SKILLS, capacity_benches=3)
        setter = make_workshop("setter", name="Sertissage Martin", skills=SETTER_SKILLS)
        polisher = make_workshop("polisher", name="Polissage Leroy", skills=POLISHER_SKILLS)
        client = make_client("bijouterie-roux", name="Bijouterie Roux")
        other_client = make_client("maison-blanc", name="Maison Blanc")
        setup = cls(
            house=house_workshop(), caster=caster, setter=setter, polisher=polisher,
            admin=make_user(Role.ADMIN, username="admin"),
            manager=make_user(Role.PRODUCTION_MANAGER, username="manager"),
            sales=make_user(Role.SALES, username="sales"),
            designer=make_user(Role.DESIGNER, username="designer"),
            quality=make_user(Role.QUALITY, username="quality"),
            logistics=make_user(Role.LOGISTICS, username="logistics"),
            caster_member=make_user(Role.WORKSHOP, username="caster1", workshops=[caster]),
            setter_member=make_user(Role.WORKSHOP, username="setter1", workshops=[setter]),
            polisher_member=make_user(Role.WORKSHOP, username="polisher1", workshops=[polisher]),
            client=client,
            client_contact=make_user(Role.CLIENT, username="roux1", client=client),
            other_client=other_client,
            other_client_contact=make_user(Role.CLIENT, username="blanc1", client=other_client),
        )
        setup.members = {caster.pk: setup.caster_member, setter.pk: setup.setter_member,
                         polisher.pk: setup.polisher_member}
        return setup

    # -----------------------------------------------------------------------------------------
    # orders

    def default_assignments(self) -> dict[str, Workshop]:
        return {StepKind.PROTOTYPING: self.caster, StepKind.MANUFACTURING: self.caster,
                StepKind.SETTING: self.setter, StepKind.FINISHING: self.polisher}

    def draft_order(self, *, actor: User | None = None, lines: list[dict] | None = None,
                    client: Client | None = None, **kwargs: Any) -> Order:
        """A draft order (one default line unless `lines` says otherwise)."""
        return order_create(actor=actor or self.sales, client_id=(client or self.client).pk,
                            lines=[default_line()] if lines is None else lines, **kwargs)

    def assign_route(self, order: Order, *, actor: User | None = None,
                     assignments: dict[str, Workshop] | None = None) -> None:
        """Give every route step that has no workshop the one from `assignments`."""
        chosen = self.default_assignments() | (assignments or {})
        for rs in order.route.order_by("position"):
            if rs.workshop_id is None and not rs.skipped and rs.step in chosen:
                order_route_step_update(actor=actor or self.manager, order_id=order.pk,
                                        step_id=rs.pk, workshop_id=chosen[rs.step].pk)

    def check_all(self, order: Order, *, actor: User | None = None,
                  except_codes: Iterable[str] = ()) -> None:
        for code in CHECKLIST_CODES:
            if code not in except_codes:
                launch_item_set(actor=actor or self.sales, order_id=order.pk, code=code)

    def promise_realistic(self, order: Order, *, actor: User | None = None,
                          extra_days: int = 0) -> dt.date:
        """Set the promised date to the earliest the route and its buffer allow (+ extra)."""
        order.refresh_from_db()
        promised = order_deadline_check(order).earliest_promise + dt.timedelta(days=extra_days)
        order_update(actor=actor or self.sales, order_id=order.pk, promised_date=promised)
        return promised

    def qualified_order(self, *, actor: User | None = None, lines: list[dict] | None = None,
                        quantity: int | None = None,
                        assignments: dict[str, Workshop] | None = None,
                        skip: dict[str, dict] | None = None, **kwargs: Any) -> Order:
        """A draft order ready to launch: route assigned, sheet checked, realistic promise.

        `skip` maps a step to the keyword arguments of `order_route_step_skip` (reason, …).
        """
        if lines is None:
            lines = [default_line(quantity=quantity or 1)]
        order = self.draft_order(actor=actor, lines=lines, **kwargs)
        for step, how in (skip or {}).items():
            rs = order.route.get(step=step)
            order_route_step_skip(actor=self.manager, order_id=order.pk, step_id=rs.pk, **how)
        self.assign_route(order, assignments=assignments)
        self.check_all(order, actor=actor)
        self.promise_realistic(order, actor=actor)
        order.refresh_from_db()
        return order

    def launched_order(self, *, actor: User | None = None, **kwargs: Any) -> Order:
        """A launched order: see `qualified_order` for the arguments."""
        order = self.qualified_order(actor=actor, **kwargs)
        return order_launch(actor=actor or self.sales, order_id=order.pk)

    def launched_piece(self, **kwargs: Any) -> Piece:
        """The first piece of a freshly launched one-piece order (waiting for design)."""
        order = self.launched_order(**kwargs)
        return order.pieces.order_by("serial").first()

    # -----------------------------------------------------------------------------------------
    # people

    def actor_at(self, workshop: Workshop | int | None, step: str) -> User:
        """Who works on a piece at `workshop` during `step`: the workshop's member outside,
        the house role for that step at the house (the production manager otherwise)."""
        ws_id = workshop.pk if isinstance(workshop, Workshop) else workshop
        if ws_id in self.members:
            return self.members[ws_id]
        role = HOUSE_STEP_ROLES.get(step)
        return {Role.DESIGNER: self.designer, Role.QUALITY: self.quality,
                Role.LOGISTICS: self.logistics}.get(role, self.manager)

    # -----------------------------------------------------------------------------------------
    # walking pieces along their route

    @staticmethod
    def open_run(piece: Piece) -> StepRun | None:
        return piece.runs.filter(status__in=[StepStatus.READY, StepStatus.IN_TRANSIT,
                                             StepStatus.RECEIVED, StepStatus.IN_PROGRESS,
                                             StepStatus.ON_HOLD]).first()

    def advance(self, piece: Piece, *, weight_g: Any = None) -> Any:
        """Do the one next thing that moves `piece` along, as the person who would do it.

        READY elsewhere → send; in transit → receive; READY here or received → start;
        in progress → complete; on hold → release (production manager). Returns the event
        (or the transfer slip for a send). `weight_g` is recorded on sends, receipts and
        completions.
        """
        piece.refresh_from_db()
        run = self.open_run(piece)
        if run is None:
            raise AssertionError(f"{piece.serial} has no open step")
        step = run.step
        if run.status == StepStatus.READY and piece.location_id != run.workshop_id:
            sender = self.actor_at(piece.location_id, step)
            weights = {piece.pk: weight_g} if weight_g is not None else None
            gate_support.before_send(self, piece, run)
            return pieces_send(actor=sender, piece_ids=[piece.pk], weights_g=weights)
        here = self.actor_at(run.workshop_id, step)
        if run.status == StepStatus.IN_TRANSIT:
            return piece_receive(actor=here, piece_id=piece.pk, weight_g=weight_g)
        if run.status in (StepStatus.READY, StepStatus.RECEIVED):
            gate_support.before_start(self, piece, run)
            return piece_start(actor=here, piece_id=piece.pk)
        if run.status == StepStatus.IN_PROGRESS:
            gate_support.before_complete(self, piece, run)
            run.refresh_from_db()
            if run.status != StepStatus.IN_PROGRESS:  # the gate's own work ended the step
                return None
            return piece_complete(actor=here, piece_id=piece.pk, weight_g=weight_g)
        return piece_release(actor=self.manager, piece_id=piece.pk)

    def bring(self, piece: Piece, **kwargs: Any) -> Piece:
        """Send and receive `piece` to the workshop of its open step (if it is not there yet);
        the step is then RECEIVED (or still READY when the piece was already there)."""
        piece.refresh_from_db()
        while piece.status in (PieceStatus.READY, PieceStatus.IN_TRANSIT) \
                and piece.location_id != self.open_run(piece).workshop_id:
            self.advance(piece, **kwargs)
            piece.refresh_from_db()
        return piece

    def finish_step(self, piece: Piece, **kwargs: Any) -> Piece:
        """Move `piece` until its current open step is done (the next one is then READY)."""
        piece.refresh_from_db()
        run_id = self.open_run(piece).pk
        while StepRun.objects.get(pk=run_id).status != StepStatus.DONE:
            self.advance(piece, **kwargs)
        piece.refresh_from_db()
        return piece

    def walk(self, piece: Piece, *, to: str | None = None, arrive: bool = False,
             **kwargs: Any) -> Piece:
        """Walk `piece` along its route.

        With `to`, stop when the open step is `to` (READY, still where the previous step left
        it; with `arrive=True`, brought to the step's workshop). Without `to`, walk to the end:
        the piece is delivered.
        """
        piece.refresh_from_db()
        for _ in range(200):  # a route never has that many steps: guard against a loop
            run = self.open_run(piece)
            if run is None:
                if to is not None:
                    raise AssertionError(f"{piece.serial} was delivered before reaching {to}")
                return piece
            if run.step == to and run.status in (StepStatus.READY, StepStatus.IN_TRANSIT,
                                                 StepStatus.RECEIVED):
                return self.bring(piece, **kwargs) if arrive else piece
            self.finish_step(piece, **kwargs)
        raise AssertionError("walk did not end")
