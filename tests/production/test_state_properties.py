"""Property: whatever people do to a piece, its cached state equals the state its events say.

A Hypothesis state machine applies random sequences of actions (send, receive, start, complete,
hold, release, rework, note, skip) to a launched piece — as the production manager or as the
person who would naturally act at the piece's workshop — and ignores the refusals (DomainError).
After every step it replays the piece's events with `derive_piece_state` and compares the result
with the cached fields on `Piece` and each `StepRun`, and checks that the piece never has more
than one open step.

Each example runs inside its own `transaction.atomic()` that is rolled back in `teardown`, so
examples do not see each other's pieces; the house (workshops, users) is built once per test.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from etabli.core.errors import DomainError
from etabli.orders.models import OrderStatus
from etabli.production import services
from etabli.production.models import (
    OPEN_STEP_STATUSES,
    HoldReason,
    Piece,
    PieceStatus,
    SkipReason,
    StepRun,
    StepStatus,
)
from etabli.production.state import derive_piece_state
from etabli.workshops.models import StepKind
from tests.factories import HouseSetup

ACTORS = st.sampled_from(["manager", "natural"])


class PieceLifecycle(RuleBasedStateMachine):
    setup: HouseSetup  # set on a subclass by the test

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.piece: Piece | None = None

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # -----------------------------------------------------------------------------------------

    @initialize(skip_prototyping=st.booleans(), quantity=st.integers(1, 2))
    def launch(self, skip_prototyping: bool, quantity: int) -> None:
        skip = ({StepKind.PROTOTYPING: {"reason": SkipReason.SIMPLE_DESIGN}}
                if skip_prototyping else None)
        order = self.setup.launched_order(quantity=quantity, skip=skip)
        self.order = order
        self.piece = order.pieces.order_by("serial").first()

    def _actor(self, who: str, step_of_location: bool = True):
        piece = Piece.objects.get(pk=self.piece.pk)
        if who == "manager":
            return self.setup.manager
        run = HouseSetup.open_run(piece)
        step = run.step if run else StepKind.DELIVERY
        where = piece.location_id if step_of_location else (run.workshop_id if run else None)
        if where is None:
            where = piece.transit_to_id
        return self.setup.actor_at(where, step)

    @staticmethod
    def _do(fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except DomainError:
            pass  # a refusal is a fine outcome; the invariants check nothing was half-done

    # -----------------------------------------------------------------------------------------
    # actions

    @rule(who=ACTORS)
    def send(self, who: str) -> None:
        self._do(services.pieces_send, actor=self._actor(who), piece_ids=[self.piece.pk],
                 weights_g={self.piece.pk: "12.345"})

    @rule(who=ACTORS, weight=st.sampled_from([None, "12.345", "12.400", "11.000"]))
    def receive(self, who: str, weight) -> None:
        self._do(services.piece_receive, actor=self._actor(who, step_of_location=False),
                 piece_id=self.piece.pk, weight_g=weight)

    @rule(who=ACTORS)
    def start(self, who: str) -> None:
        self._do(services.piece_start, actor=self._actor(who), piece_id=self.piece.pk)

    @rule(who=ACTORS)
    def complete(self, who: str) -> None:
        self._do(services.piece_complete, actor=self._actor(who), piece_id=self.piece.pk)

    @rule(who=ACTORS, reason=st.sampled_from(HoldReason.values))
    def hold(self, who: str, reason: str) -> None:
        self._do(services.piece_hold, actor=self._actor(who), piece_id=self.piece.pk,
                 reason=reason, comment="waiting")

    @rule()
    def release(self) -> None:
        self._do(services.piece_release, actor=self.setup.manager, piece_id=self.piece.pk)

    @rule(pick=st.integers(0, 40), among=st.sampled_from(["done", "done", "any"]),
          comment=st.sampled_from(["", "porosity in the shank", "stone loose"]))
    def rework(self, pick: int, among: str, comment: str) -> None:
        runs = StepRun.objects.filter(piece_id=self.piece.pk).order_by("position")
        if among == "done":  # mostly aim at steps already done (or the open one): the valid ones
            runs = runs.exclude(status__in=[StepStatus.PENDING, StepStatus.SKIPPED])
        runs = list(runs)
        target = runs[pick % len(runs)]
        self._do(services.piece_rework, actor=self.setup.manager, piece_id=self.piece.pk,
                 target_run_id=target.pk, comment=comment)

    @rule(who=ACTORS)
    def note(self, who: str) -> None:
        self._do(services.piece_note, actor=self._actor(who), piece_id=self.piece.pk,
                 comment="photo taken")

    @rule(pick=st.integers(0, 40), reason=st.sampled_from(SkipReason.values),
          comment=st.sampled_from(["", "not needed"]),
          reference=st.sampled_from(["", "WAIVER-7"]))
    def skip(self, pick: int, reason: str, comment: str, reference: str) -> None:
        runs = list(StepRun.objects.filter(piece_id=self.piece.pk).order_by("position"))
        target = runs[pick % len(runs)]
        self._do(services.step_run_skip, actor=self.setup.manager, run_id=target.pk,
                 reason=reason, comment=comment, reference=reference)

    @precondition(lambda self: self.piece is not None)
    @rule(steps=st.integers(1, 8))
    def push_forward(self, steps: int) -> None:
        """A few normal next actions, so examples also reach the later steps and delivery."""
        for _ in range(steps):
            piece = Piece.objects.get(pk=self.piece.pk)
            if piece.status == PieceStatus.DELIVERED:
                return
            self._do(self.setup.advance, piece)

    # -----------------------------------------------------------------------------------------
    # invariants

    @invariant()
    def cache_matches_events(self) -> None:
        if self.piece is None:
            return
        piece = Piece.objects.get(pk=self.piece.pk)
        derived = derive_piece_state(piece)
        assert piece.status == derived.status
        assert piece.current_run_id == derived.current_run_id
        assert piece.location_id == derived.location_id
        assert piece.transit_to_id == derived.transit_to_id
        assert piece.rework_count == derived.rework_count
        stored = dict(piece.runs.values_list("id", "status"))
        assert stored == derived.run_status
        if piece.current_run_id is not None:
            run = piece.runs.get(pk=piece.current_run_id)
            assert piece.current_step == run.step
            assert piece.current_workshop_id == run.workshop_id

    @invariant()
    def at_most_one_open_step(self) -> None:
        if self.piece is None:
            return
        open_runs = StepRun.objects.filter(piece_id=self.piece.pk,
                                           status__in=OPEN_STEP_STATUSES).count()
        piece = Piece.objects.get(pk=self.piece.pk)
        assert open_runs == (0 if piece.status == PieceStatus.DELIVERED else 1)

    @invariant()
    def order_delivered_with_its_pieces(self) -> None:
        if self.piece is None:
            return
        self.order.refresh_from_db()
        all_delivered = not self.order.pieces.exclude(status=PieceStatus.DELIVERED).exists()
        expected = OrderStatus.DELIVERED if all_delivered else OrderStatus.LAUNCHED
        assert self.order.status == expected


@pytest.mark.django_db
def test_cached_piece_state_always_matches_its_events(house_setup):
    class Machine(PieceLifecycle):
        setup = house_setup

    run_state_machine_as_test(
        Machine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None,
                          database=None, suppress_health_check=[HealthCheck.too_slow],
                          # The explain phase replays a failure many times over; too slow here.
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]),
    )
