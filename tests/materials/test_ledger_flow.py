"""The whole metal and stone story of issue #4's "done means", through the services."""

from decimal import Decimal

import pytest
from django.utils import timezone

from etabli.core.errors import Conflict, ValidationFailed
from etabli.materials import selectors, services, stone_services
from etabli.materials.models import (
    CastingStatus,
    Location,
    LocationKind,
    MetalBalance,
    MetalEntry,
    SlipStatus,
)

D = Decimal


def _conserved():
    from django.db.models import Sum

    for alloy_id in MetalBalance.objects.values_list("alloy_id", flat=True).distinct():
        total = MetalBalance.objects.filter(alloy_id=alloy_id).aggregate(
            g=Sum("alloy_g"), f=Sum("fine_g"))
        assert round(total["g"], 3) == 0 and round(total["f"], 3) == 0
    for b in MetalBalance.objects.all():
        into = MetalEntry.objects.filter(to_location=b.location, alloy=b.alloy).aggregate(
            g=Sum("alloy_g"))["g"] or 0
        out = MetalEntry.objects.filter(from_location=b.location, alloy=b.alloy).aggregate(
            g=Sum("alloy_g"))["g"] or 0
        assert b.alloy_g == round(Decimal(into) - Decimal(out), 3)


@pytest.mark.django_db
def test_casting_tree_of_rings_with_loss_against_allowance(house_setup):
    h = house_setup
    order = h.launched_order(lines=[{"description": "Band", "model_reference": "B-4",
                                     "quantity": 4, "alloy": "750y", "size": "52"}])
    pieces = list(order.pieces.order_by("serial"))
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="200.000")
    tree = services.casting_tree_create(actor=h.manager, workshop_id=h.caster.pk, alloy="750y",
                                        piece_ids=[p.pk for p in pieces], wax_weight_g="2.500")
    # 2.5 g of wax × 15.5 / 1.0 × 1.30
    assert tree.metal_needed_g == D("50.375")
    slip = services.casting_tree_issue(actor=h.manager, tree_id=tree.pk, weight_g="50.000")
    assert slip.status == SlipStatus.SENT
    line = slip.lines.get()
    services.material_slip_receive(actor=h.caster_member, slip_id=slip.pk,
                                   lines=[{"line_id": line.pk, "weight_g": "50.000"}])
    ret = services.casting_tree_return(
        actor=h.caster_member, tree_id=tree.pk,
        pieces=[{"piece_id": p.pk, "weight_g": "8.100"} for p in pieces],
        button_g="14.200", scrap_g="2.350")
    services.material_slip_receive(
        actor=h.manager, slip_id=ret.pk,
        lines=[{"line_id": ln.pk, "weight_g": str(ln.weight_sent_g)} for ln in ret.lines.all()])
    slip.refresh_from_db()
    tree.refresh_from_db()
    assert tree.status == CastingStatus.RETURNED
    assert slip.settled_at is not None
    # 50 − 32.4 − 14.2 − 2.35 = 1.05 g lost; the casting allowance is 1.5 % of 50 g = 0.75 g
    assert slip.loss_g == D("1.050")
    assert slip.allowance_g == D("0.750")
    assert slip.over_allowance
    assert tree.yield_percent == D("64.8")
    # The statement's days are the house's (local) days, not UTC's: near midnight they differ.
    day = timezone.localdate(slip.sent_at)
    statement = selectors.workshop_statement(h.caster, day, day)
    (st,) = statement.lines
    assert (st.issued_g, st.returned_pieces_g, st.returned_scrap_g, st.loss_g, st.closing_g) == (
        D("50.000"), D("32.400"), D("16.550"), D("1.050"), D("0.000"))
    _conserved()
    vault = Location.objects.get(kind=LocationKind.VAULT)
    assert MetalBalance.objects.get(location=vault).alloy_g == D("166.550")


@pytest.mark.django_db
def test_weight_difference_is_flagged_not_absorbed(house_setup):
    h = house_setup
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="100")
    slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                   operation="assembly",
                                   metal=[{"alloy": "750y", "weight_g": "20.000"}])
    line = slip.lines.get()
    slip = services.material_slip_receive(actor=h.caster_member, slip_id=slip.pk,
                                          lines=[{"line_id": line.pk, "weight_g": "19.900"}])
    assert slip.weight_flagged
    diff = Location.objects.get(kind=LocationKind.DIFFERENCE)
    assert MetalBalance.objects.get(location=diff).alloy_g == D("0.100")
    _conserved()
    with pytest.raises(Conflict):
        services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                metal=[{"alloy": "750y", "weight_g": "80.001"}])
    with pytest.raises(ValidationFailed):
        services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                metal=[{"alloy": "750y", "weight_g": "-1"}])


@pytest.mark.django_db
def test_stones_allocated_issued_broken_and_set(house_setup):
    h = house_setup
    piece = h.launched_piece()
    lot = stone_services.stone_lot_receive(
        actor=h.manager, stone_type="diamond", shape="round", count=50, carats="5.000",
        size_mm="2.0", colour="G", clarity="VS1", supplier="Diamants SA",
        compliance_statement="The diamonds herein invoiced have been purchased from legitimate "
                             "sources not involved in funding conflict …")
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=12, carats="1.200")
    with pytest.raises(Conflict):
        stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                      count=39, carats="3.900")
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   operation="setting", allocation_ids=[alloc.pk])
    line = slip.lines.get()
    services.material_slip_receive(actor=h.setter_member, slip_id=slip.pk,
                                   lines=[{"line_id": line.pk, "count": 12, "carats": "1.200"}])
    stone_services.stone_breakage_record(actor=h.setter_member, workshop_id=h.setter.pk,
                                         lot_id=lot.pk, count=1, carats="0.100",
                                         reason="Chipped while closing the prongs",
                                         piece_id=piece.pk)
    ret = services.material_return(
        actor=h.setter_member, issue_id=slip.pk, closes_issue=True,
        stones=[{"lot_id": lot.pk, "count": 10, "carats": "1.000", "piece_id": piece.pk},
                {"lot_id": lot.pk, "count": 1, "carats": "0.100"}])
    services.material_slip_receive(
        actor=h.manager, slip_id=ret.pk,
        lines=[{"line_id": ln.pk, "count": ln.stone_count, "carats": str(ln.carats_sent)}
               for ln in ret.lines.all()])
    alloc.refresh_from_db()
    assert (alloc.status, alloc.count_set) == ("set", 10)
    balances = {b.location.kind: (b.count, b.carats) for b in selectors.lot_balances(lot)}
    assert balances[LocationKind.VAULT] == (39, D("3.900"))
    assert balances[LocationKind.IN_PIECES] == (10, D("1.000"))
    assert balances[LocationKind.BROKEN] == (1, D("0.100"))
    (rate,) = selectors.breakage_rates(h.manager)
    assert rate.received == 12 and rate.broken == 1 and rate.rate_percent == D("8.33")


@pytest.mark.django_db
def test_scrap_refined_into_fine_gold(house_setup):
    h = house_setup
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="40")
    slip = services.refiner_send(actor=h.manager, lines=[{"alloy": "750y", "weight_g": "40"}])
    slip = services.refiner_settle(actor=h.manager, slip_id=slip.pk,
                                   returned=[{"alloy": "999au", "weight_g": "29.900"}])
    # 40 g × 0.750 = 30 g fine sent; 29.9 g × 0.999 = 29.870 g back
    assert slip.loss_fine_g == D("0.130")
    vault = Location.objects.get(kind=LocationKind.VAULT)
    assert MetalBalance.objects.get(location=vault, alloy__code="999au").alloy_g == D("29.900")
    with pytest.raises(Conflict):
        services.refiner_settle(actor=h.manager, slip_id=slip.pk, returned=[])
    _conserved()
    slip2 = services.refiner_send(actor=h.manager, lines=[{"alloy": "999au", "weight_g": "1"}])
    with pytest.raises(ValidationFailed):
        services.refiner_settle(actor=h.manager, slip_id=slip2.pk,
                                returned=[{"alloy": "999au", "weight_g": "1.5"}])


@pytest.mark.django_db
def test_delivered_piece_takes_its_metal_and_stones_out_of_production(house_setup):
    h = house_setup
    piece = h.launched_piece()
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="20")
    issue = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                    operation="casting", piece_ids=[piece.pk],
                                    metal=[{"alloy": "750y", "weight_g": "10"}])
    services.material_slip_receive(actor=h.caster_member, slip_id=issue.pk,
                                   lines=[{"line_id": issue.lines.get().pk, "weight_g": "10"}])
    ret = services.material_return(actor=h.caster_member, issue_id=issue.pk, closes_issue=True,
                                   pieces=[{"piece_id": piece.pk, "weight_g": "9.500"}])
    services.material_slip_receive(actor=h.manager, slip_id=ret.pk,
                                   lines=[{"line_id": ret.lines.get().pk, "weight_g": "9.500"}])
    in_pieces = Location.objects.get(kind=LocationKind.IN_PIECES)
    assert MetalBalance.objects.get(location=in_pieces).alloy_g == D("9.500")
    h.walk(piece)
    piece.refresh_from_db()
    assert piece.status == "delivered"
    assert MetalBalance.objects.get(location=in_pieces).alloy_g == 0
    delivered = Location.objects.get(kind=LocationKind.DELIVERED)
    assert MetalBalance.objects.get(location=delivered).alloy_g == D("9.500")
    _conserved()


@pytest.mark.django_db
def test_losses_report_costs_the_same_for_one_job_or_many(house_setup,
                                                          django_assert_max_num_queries):
    import datetime as dt

    from django.utils import timezone

    h = house_setup
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="100")
    for _ in range(6):
        slip = services.material_issue(actor=h.manager, workshop_id=h.polisher.pk,
                                       operation="polishing",
                                       metal=[{"alloy": "750y", "weight_g": "5"}])
        services.material_slip_receive(actor=h.polisher_member, slip_id=slip.pk,
                                       lines=[{"line_id": slip.lines.get().pk,
                                               "weight_g": "5"}])
        services.material_issue_settle(actor=h.manager, issue_id=slip.pk)
    today = timezone.localdate()
    with django_assert_max_num_queries(3):
        (row,) = selectors.losses_by_workshop(h.manager, today - dt.timedelta(days=1), today)
    assert (row.jobs, row.issued_g, row.loss_g) == (6, D("30.000"), D("30.000"))


@pytest.mark.django_db
def test_ledger_entries_and_tracking_events_are_never_rewritten(house_setup):
    from etabli.production.models import TrackingEvent

    h = house_setup
    entry = services.metal_purchase(actor=h.manager, alloy="750y", weight_g="1")
    entry.alloy_g = D("2")
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    piece = h.launched_piece()
    h.advance(piece)
    event = TrackingEvent.objects.filter(piece=piece).first()
    with pytest.raises(ValueError, match="append-only"):
        event.save()
