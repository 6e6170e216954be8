"""Materials services: every guard (roles, input, transitions), idempotency, nothing half-written,
audit, weighing tolerance, settlement against allowances, stock-takes, balances at a date,
statements, prices and valuation, unit conversions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from etabli.core.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.materials import ledger, selectors, services, stone_services, units
from etabli.materials.models import (
    AllocationStatus,
    Location,
    LocationKind,
    MaterialSlip,
    MaterialSlipLine,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    StockTake,
    StoneAllocation,
    StoneBalance,
    StoneEntry,
)
from tests.factories import make_user
from tests.materials.test_properties import assert_ledgers_consistent

pytestmark = pytest.mark.django_db
D = Decimal

COMPLIANCE = ("The diamonds herein invoiced have been purchased from legitimate sources not "
              "involved in funding conflict.")


# ---------------------------------------------------------------------------------------------
# helpers


def state() -> tuple:
    """Everything the services write, to compare before and after a refusal."""
    return (MetalEntry.objects.count(), StoneEntry.objects.count(),
            MaterialSlip.objects.count(), MaterialSlipLine.objects.count(),
            StockTake.objects.count(), StoneAllocation.objects.count(),
            sorted(MetalBalance.objects.values_list("location_id", "alloy_id", "alloy_g",
                                                    "fine_g")),
            sorted(StoneBalance.objects.values_list("location_id", "lot_id", "count",
                                                    "carats")),
            sorted(MaterialSlip.objects.values_list("pk", "status", "settled_at")),
            sorted(StoneAllocation.objects.values_list("pk", "status")))


def refused(exc_type, fn, *args, **kwargs) -> DomainError:
    """Call `fn`, expect `exc_type`, and check nothing was written."""
    before = state()
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert state() == before
    return info.value


def bal(kind: str, alloy: str = "750y", workshop=None) -> tuple[Decimal, Decimal]:
    loc = ledger.workshop_location(workshop) if workshop else Location.objects.get(kind=kind)
    row = MetalBalance.objects.filter(location=loc, alloy__code=alloy).first()
    return (row.alloy_g, row.fine_g) if row else (D("0"), D("0"))


def issue(h, grams="20.000", *, workshop=None, operation="assembly", alloy="750y", **kw):
    return services.material_issue(actor=h.manager, workshop_id=(workshop or h.caster).pk,
                                   operation=operation,
                                   metal=[{"alloy": alloy, "weight_g": grams}], **kw)


def receive(actor, slip, *weights, **stones):
    """Receive every line of `slip`: metal lines at `weights` (as sent when not given)."""
    lines = []
    for i, ln in enumerate(slip.lines.order_by("pk")):
        if ln.lot_id:
            lines.append({"line_id": ln.pk, "count": stones.get("count", ln.stone_count),
                          "carats": stones.get("carats", str(ln.carats_sent))})
        else:
            w = weights[i] if i < len(weights) else ln.weight_sent_g + ln.stones_weight_g
            lines.append({"line_id": ln.pk, "weight_g": str(w)})
    return services.material_slip_receive(actor=actor, slip_id=slip.pk, lines=lines)


def job(h, grams="20.000", **kw):
    """An issue to the caster, received there in full."""
    slip = issue(h, grams, **kw)
    receive(h.caster_member, slip)
    slip.refresh_from_db()
    return slip


def diamonds(h, count=50, carats="5.000"):
    return stone_services.stone_lot_receive(
        actor=h.manager, stone_type="diamond", shape="round", count=count, carats=carats,
        size_mm="2.0", compliance_statement=COMPLIANCE)


@pytest.fixture
def h(house_setup):
    services.metal_purchase(actor=house_setup.manager, alloy="750y", weight_g="100.000")
    return house_setup


# ---------------------------------------------------------------------------------------------
# roles


@pytest.mark.parametrize("who", ["sales", "designer", "quality", "logistics", "caster_member",
                                 "client_contact"])
def test_only_the_vault_keepers_buy_issue_settle_count_and_keep_stones(h, who):
    user = getattr(h, who)
    piece = h.launched_piece()
    slip = job(h)
    lot = diamonds(h)
    vault = Location.objects.get(kind=LocationKind.VAULT)
    for fn, kwargs in [
        (services.metal_purchase, {"alloy": "750y", "weight_g": "1"}),
        (services.material_issue, {"workshop_id": h.caster.pk,
                                   "metal": [{"alloy": "750y", "weight_g": "1"}]}),
        (services.material_issue_settle, {"issue_id": slip.pk}),
        (services.stock_take_create, {"location_id": vault.pk, "counts": {"750y": "80"}}),
        (services.loss_allowance_set, {"operation": "casting", "percent": "9"}),
        (services.refiner_send, {"lines": [{"alloy": "750y", "weight_g": "1"}]}),
        (stone_services.stone_lot_receive, {"stone_type": "ruby", "shape": "oval", "count": 1,
                                            "carats": "1", "size_mm": "5"}),
        (stone_services.stone_allocate, {"piece_id": piece.pk, "lot_id": lot.pk, "count": 1,
                                         "carats": "0.1"}),
    ]:
        refused((PermissionDenied, NotFound), fn, actor=user, **kwargs)


@pytest.mark.parametrize("who", ["sales", "designer", "client_contact"])
def test_house_roles_outside_materials_cannot_receive_return_cancel_or_break(h, who):
    user = getattr(h, who)
    slip = issue(h)
    lot = diamonds(h)
    refused((PermissionDenied, NotFound), services.material_slip_receive, actor=user,
            slip_id=slip.pk, lines=[{"line_id": slip.lines.get().pk, "weight_g": "20"}])
    refused((PermissionDenied, NotFound), services.material_slip_cancel, actor=user,
            slip_id=slip.pk, reason="mistake")
    receive(h.caster_member, slip)
    refused((PermissionDenied, NotFound), services.material_return, actor=user,
            issue_id=slip.pk, scrap=[{"weight_g": "1"}])
    refused((PermissionDenied, NotFound), stone_services.stone_breakage_record, actor=user,
            workshop_id=h.caster.pk, lot_id=lot.pk, count=1, carats="0.1", reason="chipped")


def test_a_workshop_member_cannot_act_for_another_workshop(h):
    slip = issue(h)
    line = slip.lines.get()
    # Another workshop's slip does not exist for the setter: same answer as an unknown id.
    refused(NotFound, services.material_slip_receive, actor=h.setter_member, slip_id=slip.pk,
            lines=[{"line_id": line.pk, "weight_g": "20"}])
    refused(NotFound, services.material_slip_cancel, actor=h.setter_member, slip_id=slip.pk,
            reason="not ours")
    receive(h.caster_member, slip)
    refused(NotFound, services.material_return, actor=h.setter_member, issue_id=slip.pk,
            scrap=[{"weight_g": "1"}])
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk,
                                   scrap=[{"weight_g": "5"}])
    refused(NotFound, services.material_slip_cancel, actor=h.setter_member, slip_id=ret.pk,
            reason="not ours")
    lot = diamonds(h)
    refused(NotFound, stone_services.stone_breakage_record, actor=h.setter_member,
            workshop_id=h.caster.pk, lot_id=lot.pk, count=1, carats="0.1", reason="chipped")
    # The return is received at the house, not by the workshop that sent it.
    refused(PermissionDenied, services.material_slip_receive, actor=h.caster_member,
            slip_id=ret.pk, lines=[{"line_id": ret.lines.get().pk, "weight_g": "5"}])
    services.material_slip_receive(actor=h.logistics, slip_id=ret.pk,
                                   lines=[{"line_id": ret.lines.get().pk, "weight_g": "5"}])


def test_the_production_manager_may_act_for_any_workshop(h):
    slip = issue(h)
    receive(h.manager, slip)
    ret = services.material_return(actor=h.manager, issue_id=slip.pk,
                                   scrap=[{"weight_g": "20"}], closes_issue=True)
    receive(h.admin, ret)
    slip.refresh_from_db()
    assert slip.settled_at is not None and slip.loss_g == 0


def test_prices_are_entered_by_roles_that_see_prices(h):
    for user in (h.caster_member, h.designer, h.logistics):
        refused(PermissionDenied, services.metal_price_set, actor=user, metal="gold",
                priced_on="2024-01-02", price_per_fine_g="60")
        refused(PermissionDenied, services.metal_prices_import, actor=user,
                text="date,metal,price_per_fine_g\n2024-01-02,gold,60\n")
    services.metal_price_set(actor=h.sales, metal="gold", priced_on="2024-01-02",
                             price_per_fine_g="60")


def test_an_inactive_workshop_member_can_do_nothing(h):
    member = make_user("workshop", workshops=[h.caster])
    member.is_active = False
    member.save()
    slip = issue(h)
    refused(NotFound, services.material_slip_receive, actor=member, slip_id=slip.pk,
            lines=[{"line_id": slip.lines.get().pk, "weight_g": "20"}])


# ---------------------------------------------------------------------------------------------
# input


BAD_WEIGHTS = ["-1", "0", "0.000", "-0.001", "1.2345", "50000.001", "1e9", "abc", "", None,
               "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", True, False, [], "1 g"]


@pytest.mark.parametrize("weight", BAD_WEIGHTS)
def test_bad_weights_are_refused_with_a_message(h, weight):
    exc = refused(ValidationFailed, services.metal_purchase, actor=h.manager, alloy="750y",
                  weight_g=weight)
    assert exc.details["field"] == "weight_g" and exc.message
    refused(ValidationFailed, services.material_issue, actor=h.manager,
            workshop_id=h.caster.pk, metal=[{"alloy": "750y", "weight_g": weight}])


def test_weights_with_a_decimal_comma_or_as_numbers_are_read(h):
    assert services.metal_purchase(actor=h.manager, alloy="750y",
                                   weight_g="1,5").alloy_g == D("1.500")
    assert services.metal_purchase(actor=h.manager, alloy="750y",
                                   weight_g=2.25).alloy_g == D("2.250")
    assert services.metal_purchase(actor=h.manager, alloy="750y",
                                   weight_g=" 50000 ").alloy_g == D("50000.000")


@pytest.mark.parametrize("alloy", ["unobtainium", "", None, "750Y ", 750])
def test_an_unknown_alloy_is_refused(h, alloy):
    refused(ValidationFailed, services.metal_purchase, actor=h.manager, alloy=alloy,
            weight_g="1")
    refused(ValidationFailed, services.material_issue, actor=h.manager,
            workshop_id=h.caster.pk, metal=[{"alloy": alloy, "weight_g": "1"}])


@pytest.mark.parametrize("bad_id", [999999, "999999", "abc", None, "", -1, 1.5, True, [1],
                                    float("nan"), float("inf"), 10 ** 30])
def test_unknown_ids_are_not_found(h, bad_id):
    refused(NotFound, services.material_slip_receive, actor=h.manager, slip_id=bad_id, lines=[])
    refused(NotFound, services.material_slip_cancel, actor=h.manager, slip_id=bad_id,
            reason="x")
    refused(NotFound, services.material_return, actor=h.caster_member, issue_id=bad_id,
            scrap=[{"weight_g": "1"}])
    refused(NotFound, services.material_issue_settle, actor=h.manager, issue_id=bad_id)
    refused(NotFound, services.stock_take_post, actor=h.manager, stock_take_id=bad_id)
    refused(NotFound, services.stock_take_create, actor=h.manager, location_id=bad_id,
            counts={"750y": "1"})
    refused(NotFound, services.material_issue, actor=h.manager, workshop_id=bad_id,
            metal=[{"alloy": "750y", "weight_g": "1"}])
    refused(NotFound, services.material_issue, actor=h.manager, workshop_id=h.caster.pk,
            stones=[{"lot_id": bad_id, "count": 1, "carats": "0.1"}])
    refused(NotFound, stone_services.stone_breakage_record, actor=h.caster_member,
            workshop_id=h.caster.pk, lot_id=bad_id, count=1, carats="0.1", reason="chipped")
    refused(NotFound, stone_services.stone_allocation_release, actor=h.manager,
            allocation_id=bad_id)


def test_a_return_slip_is_not_an_issue_to_settle_or_return_against(h):
    slip = job(h)
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk,
                                   scrap=[{"weight_g": "1"}])
    refused(NotFound, services.material_issue_settle, actor=h.manager, issue_id=ret.pk)
    refused(NotFound, services.material_return, actor=h.caster_member, issue_id=ret.pk,
            scrap=[{"weight_g": "1"}])


def test_issue_guards(h):
    refused(ValidationFailed, services.material_issue, actor=h.manager,
            workshop_id=h.caster.pk)  # nothing issued
    refused(ValidationFailed, services.material_issue, actor=h.manager,
            workshop_id=h.house.pk, metal=[{"alloy": "750y", "weight_g": "1"}])
    refused(ValidationFailed, issue, h, "1", operation="juggling")
    services.metal_purchase(actor=h.manager, alloy="585y", weight_g="10")
    # One alloy per slip: the second line fails after the first was posted; all rolled back.
    refused(ValidationFailed, services.material_issue, actor=h.manager,
            workshop_id=h.caster.pk, metal=[{"alloy": "750y", "weight_g": "1"},
                                            {"alloy": "585y", "weight_g": "1"}])
    refused(ValidationFailed, services.material_issue, actor=h.manager,
            workshop_id=h.caster.pk, metal=[{"alloy": "750y", "weight_g": "1"}] * 201)
    # More than the vault holds.
    exc = refused(Conflict, issue, h, "100.001")
    assert exc.code == "insufficient_metal"


def test_receive_guards(h):
    slip = issue(h)
    line = slip.lines.get()
    refused(ValidationFailed, services.material_slip_receive, actor=h.caster_member,
            slip_id=slip.pk, lines=[])  # every line must be confirmed
    refused(ValidationFailed, services.material_slip_receive, actor=h.caster_member,
            slip_id=slip.pk, lines=[{"line_id": line.pk, "weight_g": "20"},
                                    {"line_id": line.pk, "weight_g": "20"}])
    refused(ValidationFailed, services.material_slip_receive, actor=h.caster_member,
            slip_id=slip.pk, lines=[{"line_id": line.pk + 1000, "weight_g": "20"}])
    refused(ValidationFailed, services.material_slip_receive, actor=h.caster_member,
            slip_id=slip.pk, lines=[{"weight_g": "20"}])
    for weight in ["-1", "41.001", "NaN", "abc", "20.0001"]:
        refused(ValidationFailed, services.material_slip_receive, actor=h.caster_member,
                slip_id=slip.pk, lines=[{"line_id": line.pk, "weight_g": weight}])


# ---------------------------------------------------------------------------------------------
# transitions


def test_a_slip_is_received_once(h):
    slip = issue(h)
    receive(h.caster_member, slip)
    exc = refused(Conflict, receive, h.caster_member, slip)
    assert exc.code == "already_received"


def test_nothing_is_returned_before_the_issue_arrives_nor_after_the_job_is_settled(h):
    slip = issue(h)
    refused(TransitionNotAllowed, services.material_return, actor=h.caster_member,
            issue_id=slip.pk, scrap=[{"weight_g": "1"}])
    receive(h.caster_member, slip)
    services.material_issue_settle(actor=h.manager, issue_id=slip.pk)
    refused(TransitionNotAllowed, services.material_return, actor=h.caster_member,
            issue_id=slip.pk, scrap=[{"weight_g": "1"}])
    exc = refused(Conflict, services.material_issue_settle, actor=h.manager, issue_id=slip.pk)
    assert exc.code == "already_settled"


def test_the_last_return_is_sent_once(h):
    slip = job(h)
    services.material_return(actor=h.caster_member, issue_id=slip.pk,
                             scrap=[{"weight_g": "19"}], closes_issue=True)
    refused(TransitionNotAllowed, services.material_return, actor=h.caster_member,
            issue_id=slip.pk, scrap=[{"weight_g": "1"}])


def test_a_received_slip_cannot_be_cancelled_and_a_cancelled_one_not_received(h):
    slip = issue(h)
    receive(h.caster_member, slip)
    refused(TransitionNotAllowed, services.material_slip_cancel, actor=h.manager,
            slip_id=slip.pk, reason="too late")
    other = issue(h, "5")
    refused(ValidationFailed, services.material_slip_cancel, actor=h.manager, slip_id=other.pk,
            reason="  ")
    services.material_slip_cancel(actor=h.manager, slip_id=other.pk, reason="wrong workshop")
    refused(TransitionNotAllowed, receive, h.caster_member, other)
    refused(TransitionNotAllowed, services.material_slip_cancel, actor=h.manager,
            slip_id=other.pk, reason="again")
    assert bal(LocationKind.VAULT) == (D("80.000"), D("60.000"))
    assert bal(LocationKind.TRANSIT) == (D("0.000"), D("0.000"))
    assert_ledgers_consistent()


def test_a_job_is_not_settled_while_a_return_is_in_transit_nor_before_it_arrived(h):
    slip = issue(h)
    refused(TransitionNotAllowed, services.material_issue_settle, actor=h.manager,
            issue_id=slip.pk)
    receive(h.caster_member, slip)
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk,
                                   scrap=[{"weight_g": "5"}])
    refused(TransitionNotAllowed, services.material_issue_settle, actor=h.manager,
            issue_id=slip.pk)
    services.material_slip_cancel(actor=h.caster_member, slip_id=ret.pk, reason="forgot one")
    services.material_issue_settle(actor=h.manager, issue_id=slip.pk)
    slip.refresh_from_db()
    assert slip.loss_g == D("20.000")  # the cancelled return moved nothing


# ---------------------------------------------------------------------------------------------
# stones


def test_stone_guards(h):
    piece = h.launched_piece()
    refused(ValidationFailed, stone_services.stone_lot_receive, actor=h.manager,
            stone_type="diamond", shape="round", count=10, carats="1", size_mm="2")
    refused(ValidationFailed, stone_services.stone_lot_receive, actor=h.manager,
            stone_type="ruby", shape="round", count=0, carats="1", size_mm="2")
    refused(ValidationFailed, stone_services.stone_lot_receive, actor=h.manager,
            stone_type="ruby", shape="round", count=1, carats="NaN", size_mm="2")
    refused(ValidationFailed, stone_services.stone_lot_receive, actor=h.manager,
            stone_type="ruby", shape="round", count=1, carats="1")  # no size nor sieve
    refused(ValidationFailed, stone_services.stone_lot_receive, actor=h.manager,
            stone_type="kryptonite", shape="round", count=1, carats="1", size_mm="2")
    stone_services.stone_lot_receive(actor=h.manager, stone_type="ruby", shape="oval",
                                     count=3, carats="1.5", sieve="+6.5-7")
    lot = diamonds(h, count=10, carats="1.000")
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=6, carats="0.600")
    exc = refused(Conflict, stone_services.stone_allocate, actor=h.manager, piece_id=piece.pk,
                  lot_id=lot.pk, count=5, carats="0.400")
    assert exc.code == "insufficient_stones"
    refused(Conflict, stone_services.stone_allocate, actor=h.manager, piece_id=piece.pk,
            lot_id=lot.pk, count=4, carats="0.401")
    # Loose stones may not dip into the six reserved for the piece.
    refused(Conflict, services.material_issue, actor=h.manager, workshop_id=h.setter.pk,
            stones=[{"lot_id": lot.pk, "count": 5, "carats": "0.400"}])
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   stones=[{"lot_id": lot.pk, "count": 4, "carats": "0.400"}],
                                   allocation_ids=[alloc.pk])
    refused(TransitionNotAllowed, services.material_issue, actor=h.manager,
            workshop_id=h.setter.pk, allocation_ids=[alloc.pk])
    refused(TransitionNotAllowed, stone_services.stone_allocation_release, actor=h.manager,
            allocation_id=alloc.pk)
    loose, reserved = slip.lines.order_by("pk")
    # More stones or carats received than sent: weigh again.
    for n, ct in [(5, "0.400"), (4, "0.401")]:
        refused(ValidationFailed, services.material_slip_receive, actor=h.setter_member,
                slip_id=slip.pk, lines=[{"line_id": loose.pk, "count": n, "carats": ct},
                                        {"line_id": reserved.pk, "count": 6, "carats": "0.6"}])
    services.material_slip_receive(
        actor=h.setter_member, slip_id=slip.pk,
        lines=[{"line_id": loose.pk, "count": 3, "carats": "0.300"},
               {"line_id": reserved.pk, "count": 6, "carats": "0.600"}])
    slip.refresh_from_db()
    assert slip.weight_flagged
    refused(ValidationFailed, stone_services.stone_breakage_record, actor=h.setter_member,
            workshop_id=h.setter.pk, lot_id=lot.pk, count=1, carats="0.1", reason=" ")
    exc = refused(Conflict, stone_services.stone_breakage_record, actor=h.setter_member,
                  workshop_id=h.setter.pk, lot_id=lot.pk, count=10, carats="1.0",
                  reason="dropped the paper")
    assert exc.code == "insufficient_stones"
    stone_services.stone_breakage_record(actor=h.setter_member, workshop_id=h.setter.pk,
                                         lot_id=lot.pk, count=1, carats="0.100",
                                         reason="chipped", piece_id=piece.pk)
    balances = {b.location.kind: (b.count, b.carats) for b in selectors.lot_balances(lot)}
    assert balances == {LocationKind.WORKSHOP: (8, D("0.800")),
                        LocationKind.DIFFERENCE: (1, D("0.100")),
                        LocationKind.BROKEN: (1, D("0.100")),
                        LocationKind.SUPPLIER: (-10, D("-1.000"))}
    assert_ledgers_consistent()


def test_cancelling_an_issue_puts_reserved_stones_back_in_reserve(h):
    piece = h.launched_piece()
    lot = diamonds(h)
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=2, carats="0.2")
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   allocation_ids=[alloc.pk])
    services.material_slip_cancel(actor=h.manager, slip_id=slip.pk, reason="wrong setter")
    alloc.refresh_from_db()
    assert alloc.status == AllocationStatus.RESERVED and alloc.slip_id is None
    assert stone_services.lot_free_in_vault(lot) == (48, D("4.800"))
    assert_ledgers_consistent()


# ---------------------------------------------------------------------------------------------
# idempotency, nothing half-written, audit


def test_a_repeated_submission_counts_once(h):
    first = issue(h, "10", client_ref="form-1")
    again = issue(h, "10", client_ref="form-1")
    assert again.pk == first.pk
    assert bal(LocationKind.VAULT) == (D("90.000"), D("67.500"))
    receive(h.caster_member, first)
    ret = services.material_return(actor=h.caster_member, issue_id=first.pk,
                                   scrap=[{"weight_g": "2"}], client_ref="ret-1")
    assert services.material_return(actor=h.caster_member, issue_id=first.pk,
                                    scrap=[{"weight_g": "2"}], client_ref="ret-1").pk == ret.pk
    assert MaterialSlip.objects.filter(client_ref__in=["form-1", "ret-1"]).count() == 2
    refused(Conflict, services.material_return, actor=h.caster_member, issue_id=first.pk,
            scrap=[{"weight_g": "2"}], client_ref="form-1")
    refused(ValidationFailed, issue, h, "1", client_ref="x" * 65)


def test_a_replayed_return_is_not_shown_to_someone_else(h):
    """A client_ref is not a key to another workshop's slips."""
    slip = job(h)
    services.material_return(actor=h.caster_member, issue_id=slip.pk,
                             scrap=[{"weight_g": "2"}], client_ref="ret-9")
    for user in (h.setter_member, h.client_contact):
        refused((NotFound, PermissionDenied, Conflict), services.material_return, actor=user,
                issue_id=slip.pk, scrap=[{"weight_g": "2"}], client_ref="ret-9")


def test_a_failure_late_in_a_slip_leaves_nothing_behind(h):
    lot = diamonds(h)
    # Metal posted, then an unknown lot.
    refused(NotFound, services.material_issue, actor=h.manager, workshop_id=h.setter.pk,
            metal=[{"alloy": "750y", "weight_g": "5"}],
            stones=[{"lot_id": lot.pk + 99, "count": 1, "carats": "0.1"}])
    # Metal and stones posted, then a piece that does not exist.
    refused(NotFound, services.material_issue, actor=h.manager, workshop_id=h.setter.pk,
            metal=[{"alloy": "750y", "weight_g": "5"}],
            stones=[{"lot_id": lot.pk, "count": 1, "carats": "0.1"}], piece_ids=[10 ** 9])
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   metal=[{"alloy": "750y", "weight_g": "5"}],
                                   stones=[{"lot_id": lot.pk, "count": 2, "carats": "0.2"}])
    metal_line, stone_line = slip.lines.order_by("pk")
    # The metal line is booked before the stone line is found wrong: all rolled back.
    refused(ValidationFailed, services.material_slip_receive, actor=h.setter_member,
            slip_id=slip.pk, lines=[{"line_id": metal_line.pk, "weight_g": "4.9"},
                                    {"line_id": stone_line.pk, "count": 3, "carats": "0.2"}])
    receive(h.setter_member, slip)
    # A return whose scrap line is bad after a good one.
    refused(ValidationFailed, services.material_return, actor=h.setter_member,
            issue_id=slip.pk, scrap=[{"weight_g": "1"}, {"kind": "gravel", "weight_g": "1"}])
    refused(Conflict, services.material_return, actor=h.setter_member, issue_id=slip.pk,
            scrap=[{"weight_g": "1"}], stones=[{"lot_id": lot.pk, "count": 3, "carats": "0.3"}])
    assert_ledgers_consistent()


def test_every_change_is_audited(h):
    piece = h.launched_piece()
    slip = job(h)
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk,
                                   scrap=[{"weight_g": "19.5"}], closes_issue=True)
    receive(h.manager, ret)
    lot = diamonds(h)
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=1, carats="0.1")
    stone_services.stone_allocation_release(actor=h.manager, allocation_id=alloc.pk)
    cancelled = issue(h, "1")
    services.material_slip_cancel(actor=h.manager, slip_id=cancelled.pk, reason="typo")
    vault = Location.objects.get(kind=LocationKind.VAULT)
    take = services.stock_take_create(actor=h.manager, location_id=vault.pk,
                                      counts={"750y": "99"})
    services.stock_take_post(actor=h.manager, stock_take_id=take.pk, reason="scale drift")
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"metal.purchase", "material_slip.issue", "material_slip.receive",
            "material_slip.return", "material_slip.settle", "material_slip.cancel",
            "stone_lot.receive", "stone.allocate", "stone.release", "stock_take.create",
            "stock_take.post"} <= actions
    settle = AuditEntry.objects.get(action="material_slip.settle")
    assert settle.actor == h.manager and settle.object_id == str(slip.pk)


# ---------------------------------------------------------------------------------------------
# weighing


@pytest.mark.parametrize(("received", "flagged"), [
    ("20.000", False), ("19.950", False), ("20.050", False), ("19.949", True),
    ("20.051", True), ("0", True)])
def test_a_difference_beyond_the_tolerance_is_flagged(h, received, flagged):
    slip = issue(h)
    receive(h.caster_member, slip, received)
    slip.refresh_from_db()
    assert slip.weight_flagged is flagged
    assert slip.lines.get().difference_flagged is flagged
    diff = D("20.000") - D(received)
    assert bal(LocationKind.DIFFERENCE)[0] == diff
    assert bal(None, workshop=h.caster)[0] == D(received)
    assert_ledgers_consistent()
    assert (slip in selectors.flags(h.manager)["weight_flagged"]) is flagged


def test_the_tolerance_is_configurable(h, settings):
    settings.ETABLI_WEIGHT_TOLERANCE_G = "0.010"
    slip = issue(h)
    receive(h.caster_member, slip, "19.989")
    slip.refresh_from_db()
    assert slip.weight_flagged


def test_a_short_receipt_after_rounding_milligrams_splits_fine_metal_within_each_part(h):
    """Regression: the last grams of a workshop can carry a milligram of fine metal more than
    their nominal fine weight (small issues round up); received 1 mg short, that milligram used
    to land on a 1 mg difference entry holding 2 mg of fine metal (a 500)."""
    first = None
    for grams in ("10.000", "0.002", "0.002"):  # 0.002 g of 750 is 0.0015 → 0.002 g fine
        slip = job(h, grams)
        first = first or slip
    assert bal(None, workshop=h.caster) == (D("10.004"), D("7.504"))
    ret = services.material_return(actor=h.caster_member, issue_id=first.pk,
                                   scrap=[{"kind": "filings", "weight_g": "10.004"}])
    receive(h.manager, ret, "10.003")
    diff = MetalEntry.objects.get(slip=ret, kind="difference")
    assert diff.alloy_g == D("0.001") and diff.fine_g <= diff.alloy_g
    assert_ledgers_consistent()


def test_a_piece_is_weighed_without_its_stones(h):
    piece = h.launched_piece()
    lot = diamonds(h)
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=10, carats="1.000")
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   operation="setting", allocation_ids=[alloc.pk],
                                   metal=[{"alloy": "750y", "weight_g": "6"}],
                                   piece_ids=[piece.pk])
    receive(h.setter_member, slip)
    ret = services.material_return(
        actor=h.setter_member, issue_id=slip.pk, closes_issue=True,
        pieces=[{"piece_id": piece.pk, "weight_g": "6.150"}],  # 5.950 g metal + 0.2 g stones
        stones=[{"lot_id": lot.pk, "count": 10, "carats": "1.000", "piece_id": piece.pk}])
    line = ret.lines.get(kind="piece")
    assert (line.gross_weight_g, line.stones_weight_g, line.weight_sent_g) == (
        D("6.150"), D("0.200"), D("5.950"))
    refused(ValidationFailed, receive, h.manager, ret, "0.150")
    receive(h.manager, ret)
    assert bal(LocationKind.IN_PIECES) == (D("5.950"), D("4.463"))
    slip.refresh_from_db()
    assert slip.loss_g == D("0.050")
    alloc.refresh_from_db()
    assert alloc.status == AllocationStatus.SET and alloc.count_set == 10
    assert_ledgers_consistent()


# ---------------------------------------------------------------------------------------------
# settlement


def test_a_gain_is_booked_and_never_over_the_allowance(h):
    slip = job(h, "10")
    job(h, "10")  # the caster holds metal of another job too
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk,
                                   scrap=[{"weight_g": "10.200"}], closes_issue=True)
    receive(h.manager, ret)
    slip.refresh_from_db()
    assert slip.loss_g == D("-0.200") and not slip.over_allowance
    assert slip.allowance_g == D("0.100")  # 1 % of 10 g for assembly
    # The gain goes back to the workshop: it still holds the other job's 10 g.
    assert bal(None, workshop=h.caster) == (D("10.000"), D("7.500"))
    assert bal(LocationKind.LOSS) == (D("-0.200"), D("-0.150"))
    assert_ledgers_consistent()


@pytest.mark.parametrize(("lost", "over"), [("0.100", False), ("0.101", True)])
def test_loss_against_the_house_default_allowance(h, lost, over):
    slip = job(h, "10")
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk, closes_issue=True,
                                   scrap=[{"weight_g": str(D("10") - D(lost))}])
    receive(h.manager, ret)
    slip.refresh_from_db()
    assert (slip.loss_g, slip.allowance_g, slip.over_allowance) == (D(lost), D("0.100"), over)
    assert (slip in selectors.flags(h.manager)["over_allowance"]) is over


def test_a_workshop_allowance_overrides_the_house_default(h):
    services.loss_allowance_set(actor=h.manager, operation="assembly", percent="3",
                                workshop_id=h.caster.pk)
    assert services.allowance_percent(h.caster, "assembly") == D("3.00")
    assert services.allowance_percent(h.setter, "assembly") == D("1.00")
    assert services.allowance_percent(None, "assembly") == D("1.00")
    assert services.allowance_percent(h.caster, "") is None
    assert services.allowance_percent(h.caster, "inspection") is None
    slip = job(h, "10")
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk, closes_issue=True,
                                   scrap=[{"weight_g": "9.750"}])
    receive(h.manager, ret)
    slip.refresh_from_db()
    assert (slip.allowance_g, slip.over_allowance) == (D("0.300"), False)
    # Changing the house default afterwards does not change the caster's own.
    services.loss_allowance_set(actor=h.manager, operation="assembly", percent="0.5")
    assert services.allowance_percent(h.caster, "assembly") == D("3.00")
    services.loss_allowance_set(actor=h.manager, operation="assembly", percent="0",
                                workshop_id=h.caster.pk)
    assert services.allowance_percent(h.caster, "assembly") == D("0.00")
    for pct in ["-1", "100.01", "NaN", "abc"]:
        refused(ValidationFailed, services.loss_allowance_set, actor=h.manager,
                operation="assembly", percent=pct)
    refused(ValidationFailed, services.loss_allowance_set, actor=h.manager,
            operation="juggling", percent="1")


def test_settling_by_hand_books_what_the_workshop_still_holds(h):
    slip = job(h, "20")
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk,
                                   pieces=[], scrap=[{"kind": "sweeps", "weight_g": "3.333"}])
    receive(h.manager, ret)
    figures = services.job_figures(slip)
    assert figures["remaining_g"] == D("16.667")
    services.material_issue_settle(actor=h.manager, issue_id=slip.pk)
    slip.refresh_from_db()
    assert slip.loss_g == D("16.667") and slip.over_allowance
    assert bal(None, workshop=h.caster) == (D("0.000"), D("0.000"))
    assert_ledgers_consistent()


# ---------------------------------------------------------------------------------------------
# stock-take


def test_stock_take_posts_differences_with_a_reason(h):
    vault = Location.objects.get(kind=LocationKind.VAULT)
    take = services.stock_take_create(actor=h.manager, location_id=vault.pk,
                                      counts={"750y": "99.500", "585y": "2"})
    lines = {ln.alloy.code: ln for ln in take.lines.all()}
    assert (lines["750y"].book_g, lines["750y"].difference_g) == (D("100.000"), D("-0.500"))
    assert (lines["585y"].book_g, lines["585y"].difference_g) == (D("0"), D("2.000"))
    refused(ValidationFailed, services.stock_take_post, actor=h.manager, stock_take_id=take.pk,
            reason="")
    services.stock_take_post(actor=h.manager, stock_take_id=take.pk, reason="annual count")
    assert bal(LocationKind.VAULT) == (D("99.500"), D("74.625"))
    assert bal(LocationKind.VAULT, "585y")[0] == D("2.000")
    assert bal(LocationKind.ADJUSTMENT) == (D("0.500"), D("0.375"))
    assert MetalEntry.objects.filter(stock_take=take, kind="adjustment").count() == 2
    exc = refused(Conflict, services.stock_take_post, actor=h.manager, stock_take_id=take.pk,
                  reason="again")
    assert exc.code == "already_posted"
    assert_ledgers_consistent()


def test_stock_take_without_difference_needs_no_reason_and_posts_nothing(h):
    vault = Location.objects.get(kind=LocationKind.VAULT)
    take = services.stock_take_create(actor=h.manager, location_id=vault.pk,
                                      counts={"750y": "100"})
    services.stock_take_post(actor=h.manager, stock_take_id=take.pk)
    assert not MetalEntry.objects.filter(stock_take=take).exists()


def test_stock_take_refuses_a_book_that_moved_since_the_count(h):
    vault = Location.objects.get(kind=LocationKind.VAULT)
    take = services.stock_take_create(actor=h.manager, location_id=vault.pk,
                                      counts={"750y": "99"})
    issue(h, "1")
    exc = refused(Conflict, services.stock_take_post, actor=h.manager, stock_take_id=take.pk,
                  reason="count")
    assert exc.code == "book_moved"


def test_stock_take_guards(h):
    transit = ledger.location(LocationKind.TRANSIT)
    loss = ledger.location(LocationKind.LOSS)
    vault = Location.objects.get(kind=LocationKind.VAULT)
    for loc in (transit, loss):
        refused(ValidationFailed, services.stock_take_create, actor=h.manager,
                location_id=loc.pk, counts={"750y": "1"})
    refused(ValidationFailed, services.stock_take_create, actor=h.manager, location_id=vault.pk,
            counts={})
    for counts in ({"750y": "-1"}, {"nope": "1"}, {"750y": "NaN"}):
        refused(ValidationFailed, services.stock_take_create, actor=h.manager,
                location_id=vault.pk, counts=counts)


def test_a_workshop_count_writes_off_what_is_missing(h):
    job(h, "10")
    loc = ledger.workshop_location(h.caster)
    take = services.stock_take_create(actor=h.manager, location_id=loc.pk,
                                      counts={"750y": "0"})
    services.stock_take_post(actor=h.manager, stock_take_id=take.pk, reason="closing the bench")
    assert bal(None, workshop=h.caster) == (D("0.000"), D("0.000"))
    assert_ledgers_consistent()


# ---------------------------------------------------------------------------------------------
# balances at a date, statements


def _backdate(days: int, **filters) -> None:
    """Move entries into the past (services always book now); tests only."""
    when = timezone.now() - dt.timedelta(days=days)
    MetalEntry.objects.filter(**filters).update(occurred_at=when)


def test_balances_at_a_past_moment_are_what_they_were(h):
    after_purchase = timezone.now()
    slip = job(h, "30")
    after_issue = timezone.now()
    ret = services.material_return(actor=h.caster_member, issue_id=slip.pk, closes_issue=True,
                                   scrap=[{"weight_g": "29.700"}])
    receive(h.manager, ret)

    def as_dict(rows):
        return {(r.location.kind, r.location.name, r.alloy.code): (r.alloy_g, r.fine_g)
                for r in rows}

    then = as_dict(selectors.metal_balances(h.manager, at=after_purchase))
    assert then == {("vault", "House vault", "750y"): (D("100.000"), D("75.000"))}
    mid = as_dict(selectors.metal_balances(h.manager, at=after_issue))
    assert mid == {("vault", "House vault", "750y"): (D("70.000"), D("52.500")),
                   ("workshop", "Fonderie Dupont", "750y"): (D("30.000"), D("22.500"))}
    assert as_dict(selectors.metal_balances(h.manager, at=timezone.now())) == as_dict(
        selectors.metal_balances(h.manager))
    everything = selectors.metal_balances(h.manager, physical_only=False, at=timezone.now())
    assert sum(r.alloy_g for r in everything) == 0 and sum(r.fine_g for r in everything) == 0
    # A workshop member sees their own workshop only.
    assert all(r.location.workshop_id == h.caster.pk
               for r in selectors.metal_balances(h.caster_member, at=after_issue))
    assert selectors.metal_balances(h.client_contact) == []


def test_workshop_statement_opens_with_what_the_workshop_held_and_closes_on_its_book(h):
    old = job(h, "10")
    old_ret = services.material_return(actor=h.caster_member, issue_id=old.pk,
                                       pieces=[], scrap=[{"weight_g": "4"}])
    receive(h.manager, old_ret)
    _backdate(10, slip__in=[old, old_ret])
    today = timezone.localdate()
    new = job(h, "20")
    piece = h.launched_piece()
    new.pieces.add(piece)
    ret = services.material_return(actor=h.caster_member, issue_id=new.pk, closes_issue=True,
                                   pieces=[{"piece_id": piece.pk, "weight_g": "15.000"}],
                                   scrap=[{"weight_g": "4.500"}])
    receive(h.manager, ret)
    st = selectors.workshop_statement(h.caster, today, today)
    (line,) = st.lines
    assert (line.opening_g, line.issued_g, line.returned_pieces_g, line.returned_scrap_g,
            line.loss_g, line.closing_g) == (D("6.000"), D("20.000"), D("15.000"),
                                             D("4.500"), D("0.500"), D("6.000"))
    assert line.closing_fine_g == bal(None, workshop=h.caster)[1] == D("4.500")
    assert [j.pk for j in st.jobs] == [new.pk]
    past = selectors.workshop_statement(h.caster, today - dt.timedelta(days=11),
                                        today - dt.timedelta(days=9))
    (line,) = past.lines
    assert (line.opening_g, line.issued_g, line.returned_scrap_g, line.closing_g) == (
        D("0"), D("10.000"), D("4.000"), D("6.000"))


# ---------------------------------------------------------------------------------------------
# prices and valuation


def test_price_on_picks_the_latest_price_on_or_before_the_date(h):
    for day, price in [("2024-03-01", "60"), ("2024-03-05", "62.5"), ("2024-03-10", "61")]:
        services.metal_price_set(actor=h.manager, metal="gold", priced_on=day,
                                 price_per_fine_g=price)
    assert selectors.price_on("gold", dt.date(2024, 2, 29)) is None
    assert selectors.price_on("gold", dt.date(2024, 3, 1)).price_per_fine_g == D("60")
    assert selectors.price_on("gold", dt.date(2024, 3, 9)).price_per_fine_g == D("62.5")
    assert selectors.price_on("gold", dt.date(2024, 3, 10)).price_per_fine_g == D("61")
    assert selectors.price_on("gold", dt.date(2030, 1, 1)).price_per_fine_g == D("61")
    assert selectors.price_on("silver", dt.date(2024, 3, 9)) is None
    assert selectors.price_on("gold", dt.date(2024, 3, 9), "USD") is None
    # Correcting a day's price replaces it.
    services.metal_price_set(actor=h.manager, metal="gold", priced_on="2024-03-05",
                             price_per_fine_g="62.75")
    assert selectors.price_on("gold", dt.date(2024, 3, 6)).price_per_fine_g == D("62.75")
    future = timezone.localdate() + dt.timedelta(days=5)
    for bad in [{"priced_on": future}, {"priced_on": "yesterday"}, {"price_per_fine_g": "0"},
                {"price_per_fine_g": "-3"}, {"price_per_fine_g": "NaN"},
                {"price_per_fine_g": "100001"}, {"metal": "tin"}, {"currency": "EURO"}]:
        kwargs = {"metal": "gold", "priced_on": "2024-03-02", "price_per_fine_g": "60"} | bad
        refused(ValidationFailed, services.metal_price_set, actor=h.manager, **kwargs)


@pytest.mark.parametrize("text", [
    "date,metal,price_per_fine_g\n2024-01-02,gold,60.10\n2024-01-03,silver,0.75\n",
    "\ufeffdate;metal;price_per_fine_g;currency\n2024-01-02;gold;60,10;eur\n"
    "2024-01-03;Silver;0,75;EUR\n\n",
    "Date, Metal ,Price_per_fine_g\r\n2024-01-02,gold,60.10\r\n2024-01-03,silver,0.75\r\n",
])
def test_prices_import_from_csv_with_either_delimiter(h, text):
    assert services.metal_prices_import(actor=h.manager, text=text) == 2
    assert selectors.price_on("gold", dt.date(2024, 1, 2)).price_per_fine_g == D("60.10")
    assert selectors.price_on("silver", dt.date(2024, 1, 4)).price_per_fine_g == D("0.75")
    assert AuditEntry.objects.filter(action="metal_price.import").exists()


@pytest.mark.parametrize(("text", "line"), [
    ("date,metal,price_per_fine_g\n2024-01-02,gold,60\n2024-01-03,gold,abc\n", 3),
    ("date;metal;price_per_fine_g\n2024-01-02;gold;60\n2024-13-03;gold;61\n", 3),
    ("date,metal,price_per_fine_g\n2024-01-02,tin,60\n", 2),
    ("date,metal,price_per_fine_g\n2024-01-02,gold,60\n\n2024-01-04,gold,-1\n", 4),
])
def test_a_bad_csv_line_imports_nothing_and_says_which_line(h, text, line):
    exc = refused(ValidationFailed, services.metal_prices_import, actor=h.manager, text=text)
    assert exc.details["line"] == line and f"Line {line}:" in exc.message
    assert not MetalPrice.objects.exists()


@pytest.mark.parametrize("text", ["", "   ", "date,metal\n2024-01-02,gold\n",
                                  "date,metal,price_per_fine_g\n"])
def test_an_empty_or_incomplete_csv_is_refused(h, text):
    refused(ValidationFailed, services.metal_prices_import, actor=h.manager, text=text)


def test_balances_are_valued_at_the_price_of_the_date(h):
    services.metal_price_set(actor=h.manager, metal="gold", priced_on="2024-01-02",
                             price_per_fine_g="60")
    services.metal_price_set(actor=h.manager, metal="gold", priced_on="2024-02-01",
                             price_per_fine_g="65.1234")
    services.metal_purchase(actor=h.manager, alloy="950pt", weight_g="10")
    rows = {r.alloy.code: r for r in selectors.metal_balances(
        h.manager, with_prices=True, price_date=dt.date(2024, 1, 31))}
    assert rows["750y"].value == D("4500.00")  # 75 g fine × 60
    assert rows["950pt"].value is None  # no platinum price
    rows = {r.alloy.code: r for r in selectors.metal_balances(
        h.manager, with_prices=True, price_date=dt.date(2024, 2, 1))}
    assert rows["750y"].value == D("4884.26")  # 75 × 65.1234 = 4884.255
    assert selectors.fine_totals_by_metal(list(rows.values())) == {
        "gold": D("75.000"), "platinum": D("9.500")}
    assert selectors.value_of(D("1.000"), None) is None


# ---------------------------------------------------------------------------------------------
# units


def test_unit_conversions_use_the_exact_definitions():
    assert units.TROY_OUNCE_G == D("31.1034768")
    assert units.PENNYWEIGHT_G == D("1.55517384")
    assert units.GRAIN_G == D("0.06479891")
    assert units.CARAT_G == D("0.2")
    assert units.from_unit(D("1"), "ozt") == D("31.103")
    assert units.from_unit(D("1"), "dwt") == D("1.555")
    assert units.from_unit(D("1000"), "gr") == D("64.799")
    assert units.from_unit(D("5"), "ct") == D("1.000")
    assert units.to_unit(D("31.1034768"), "ozt", 4) == D("1.0000")
    assert units.to_unit(D("1.55517384"), "dwt") == D("1.000")
    assert units.to_unit(D("0.06479891"), "gr", 1) == D("1.0")
    assert units.to_unit(D("1"), "ct") == D("5.000")
    assert units.conversions(D("31.104")) == {"g": D("31.104"), "ozt": D("1.0000"),
                                              "dwt": D("20.000"), "gr": D("480.0")}
    assert units.carats_to_g(D("1.234")) == D("0.247")
    assert units.fine_g(D("0.002"), 750) == D("0.002")  # 1.5 mg, half up
    assert units.fine_g(D("10"), 585) == D("5.850")
