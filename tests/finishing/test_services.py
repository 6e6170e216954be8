"""Finishing services: each operation's rules, who may record, the hallmark requirement and its
edges, the gate, waivers, the assay office's step, and the exemptions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.finishing import selectors, services
from etabli.finishing.models import FinishingRecord, HallmarkExemption
from etabli.production.models import EventKind, PieceStatus, StepStatus, TrackingEvent
from etabli.production.services import piece_complete, piece_release
from tests.factories import make_user
from tests.finishing.builders import (
    ALL_OPERATIONS,
    assay_office,
    finishing_piece,
    open_run,
    set_theoretical,
    weigh,
)
from tests.finishing.support import record_all

pytestmark = pytest.mark.django_db


def rec(h, piece, operation, actor=None, **data):
    return services.finishing_record_create(actor=actor or h.polisher_member,
                                            piece_id=piece.pk, operation=operation, data=data)


def counts():
    return (FinishingRecord.objects.count(), AuditEntry.objects.count(),
            TrackingEvent.objects.count())


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def piece(h):
    """At the polisher, started, every finishing operation on its step; 18k yellow gold."""
    return finishing_piece(h, operations=ALL_OPERATIONS)


@pytest.fixture
def white(h):
    return finishing_piece(h, operations=ALL_OPERATIONS, alloy="750w")


# ---------------------------------------------------------------------------------------------
# operations


def test_polishing_records_the_finish_and_audits_it(h, piece):
    r = rec(h, piece, "polishing", finish="satin", )
    assert (r.operation, r.status, r.finish) == ("polishing", "done", "satin")
    assert r.workshop == h.polisher and r.actor == h.polisher_member
    assert r.step_run == open_run(piece)
    entry = AuditEntry.objects.get(action="finishing.record")
    assert entry.piece_id == piece.pk and entry.after["finish"] == "satin"


@pytest.mark.parametrize("finish", [None, "", "mirror", 3])
def test_polishing_needs_a_known_finish(h, piece, finish):
    before = counts()
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "polishing", finish=finish)
    assert exc.value.details["field"] == "finish"
    assert "bright, satin, brushed" in exc.value.message
    assert counts() == before


def test_plating_is_refused_on_yellow_gold(h, piece):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "plating", thickness_um="0.25")
    assert "only for white metal" in exc.value.message
    assert "18k yellow gold" in exc.value.message
    assert "waive" in exc.value.message
    assert not FinishingRecord.objects.exists()


@pytest.mark.parametrize("thickness", ["0.05", "0.25", "1.00", "1"])
def test_plating_white_gold_within_bounds(h, white, thickness):
    r = rec(h, white, "plating", thickness_um=thickness)
    assert r.plating_thickness_um == Decimal(thickness)


@pytest.mark.parametrize("thickness", ["0.04", "1.01", "0", "-0.2", "12"])
def test_plating_thickness_out_of_bounds(h, white, thickness):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, white, "plating", thickness_um=thickness)
    assert exc.value.details["field"] == "thickness_um"
    assert "0.05 to 1.00 µm" in exc.value.message


@pytest.mark.parametrize("thickness", ["", None, "thin", "NaN", "inf", True, "0.255"])
def test_plating_thickness_must_be_a_number_to_the_hundredth(h, white, thickness):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, white, "plating", thickness_um=thickness)
    assert exc.value.details["field"] == "thickness_um"


def test_plating_on_platinum_and_silver_white_metals(h):
    for alloy in ("950pt", "925ag"):
        p = finishing_piece(h, operations=["plating"], alloy=alloy)
        assert rec(h, p, "plating", thickness_um="0.30").status == "done"


def test_engraving_text_and_position(h, piece):
    r = rec(h, piece, "engraving", text="  À jamais — 12.06.2026 ", position="inside_band")
    assert (r.engraving_text, r.engraving_position) == ("À jamais — 12.06.2026", "inside_band")


@pytest.mark.parametrize("data, field", [
    ({"text": "", "position": "inside_band"}, "text"),
    ({"text": "x" * (services.ENGRAVING_MAX_CHARS + 1), "position": "back"}, "text"),
    ({"text": "two\nlines", "position": "back"}, "text"),
    ({"text": 42, "position": "back"}, "text"),
    ({"text": "Toujours"}, "position"),
    ({"text": "Toujours", "position": "underneath"}, "position"),
])
def test_engraving_rules(h, piece, data, field):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "engraving", **data)
    assert exc.value.details["field"] == field


def test_engraving_at_the_length_limit(h, piece):
    text = "x" * services.ENGRAVING_MAX_CHARS
    assert rec(h, piece, "engraving", text=text, position="back").engraving_text == text


def test_serial_engraving_defaults_to_the_serial(h, piece):
    r = rec(h, piece, "serial_engraving")
    assert r.engraving_text == piece.serial and r.engraving_position == ""


def test_serial_engraving_custom_text_and_limits(h, piece):
    with pytest.raises(ValidationFailed):
        rec(h, piece, "serial_engraving", text="S" * (services.SERIAL_MAX_CHARS + 1))
    r = rec(h, piece, "serial_engraving", text="MEB-0001", position="clasp")
    assert (r.engraving_text, r.engraving_position) == ("MEB-0001", "clasp")


def test_cleaning_method(h, piece):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "cleaning", method="acid")
    assert exc.value.details["field"] == "method"
    assert rec(h, piece, "cleaning", method="steam").cleaning_method == "steam"


def test_an_operation_not_on_the_step_is_refused(h):
    p = finishing_piece(h, operations=["polishing", "cleaning"])
    with pytest.raises(ValidationFailed) as exc:
        rec(h, p, "engraving", text="x", position="back")
    assert exc.value.details["field"] == "operation"
    assert "Polishing, Final cleaning" in exc.value.message
    with pytest.raises(ValidationFailed):
        rec(h, p, "varnishing")


def test_engraving_hallmarking_is_an_engraving_and_a_hallmark(h):
    p = finishing_piece(h, operations=["engraving_hallmarking", "inspection"])
    assert selectors.required_records(open_run(p)) == ["engraving", "hallmarking"]
    rec(h, p, "engraving", text="L & C", position="inside_band")
    rec(h, p, "hallmarking", maker_mark="LC ◇")
    with pytest.raises(ValidationFailed):
        rec(h, p, "polishing", finish="bright")


def test_one_record_per_operation_and_step(h, piece):
    first = rec(h, piece, "polishing", finish="bright")
    before = counts()
    with pytest.raises(Conflict) as exc:
        rec(h, piece, "polishing", finish="satin")
    assert "already recorded" in exc.value.message
    assert exc.value.details["record_id"] == first.pk
    assert counts() == before


def test_the_same_client_ref_records_once(h, piece):
    kwargs = {"actor": h.polisher_member, "piece_id": piece.pk, "operation": "polishing",
              "data": {"finish": "bright"}, "client_ref": "tap-1"}
    first = services.finishing_record_create(**kwargs)
    again = services.finishing_record_create(**kwargs)
    assert again.pk == first.pk and again.replayed and not first.replayed
    assert FinishingRecord.objects.count() == 1
    with pytest.raises(Conflict):
        services.finishing_record_create(**(kwargs | {"operation": "cleaning",
                                                      "data": {"method": "steam"}}))
    with pytest.raises(ValidationFailed):
        services.finishing_record_create(**(kwargs | {"client_ref": "x" * 65}))


# ---------------------------------------------------------------------------------------------
# when and who


def test_work_is_recorded_once_the_step_is_started(h):
    p = finishing_piece(h, started=False)
    with pytest.raises(TransitionNotAllowed) as exc:
        rec(h, p, "polishing", finish="bright")
    assert "Start the step" in exc.value.message


def test_nothing_is_recorded_outside_a_finishing_step(h):
    p = h.walk(h.launched_piece(), to="setting", arrive=True)
    h.advance(p)
    with pytest.raises(TransitionNotAllowed) as exc:
        rec(h, p, "polishing", actor=h.setter_member, finish="bright")
    assert "not in a finishing step" in exc.value.message


@pytest.mark.parametrize("who", ["setter_member", "caster_member", "client_contact",
                                 "other_client_contact", "designer", "logistics"])
def test_who_cannot_see_the_piece_is_told_it_does_not_exist(h, piece, who):
    with pytest.raises(NotFound):
        rec(h, piece, "polishing", actor=getattr(h, who), finish="bright")


@pytest.mark.parametrize("who", ["sales", "quality"])
def test_house_roles_that_do_not_record_here(h, piece, who):
    with pytest.raises(PermissionDenied):
        rec(h, piece, "polishing", actor=getattr(h, who), finish="bright")


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_production_may_record_anywhere(h, piece, who):
    r = rec(h, piece, "polishing", actor=getattr(h, who), finish="brushed")
    assert r.actor == getattr(h, who) and r.workshop == h.polisher


def test_a_second_member_of_the_workshop_may_record(h, piece):
    colleague = make_user("workshop", workshops=[h.polisher])
    assert rec(h, piece, "polishing", actor=colleague, finish="bright").actor == colleague


def test_the_quality_inspector_records_at_the_house(h):
    p = finishing_piece(h, operations=["cleaning", "inspection"], workshop=h.house)
    assert rec(h, p, "cleaning", actor=h.quality, method="ultrasonic").workshop == h.house
    with pytest.raises(PermissionDenied):
        rec(h, p, "cleaning", actor=h.sales, method="ultrasonic")


# ---------------------------------------------------------------------------------------------
# the hallmark requirement


def requirement(piece):
    piece.refresh_from_db()
    return selectors.hallmark_requirement(piece)


@pytest.mark.parametrize("grams, required", [("2.999", False), ("3.000", True),
                                             ("3.001", True), ("0.001", False)])
def test_france_gold_under_3_g_is_exempt(h, piece, grams, required):
    weigh(h, piece, grams)
    req = requirement(piece)
    assert req.required is required
    assert req.weight_g == Decimal(grams) and req.weight_source == "weighed"
    assert (req.country, req.metal, req.rule.under_weight_g) == ("FR", "gold", Decimal("3"))
    assert req.status == ("required" if required else "exempt")


def test_the_latest_weighing_counts_before_the_theoretical_weight(h, piece):
    set_theoretical(piece, "2.500")
    req = requirement(piece)
    assert (req.required, req.weight_source, req.weight_g) == (False, "theoretical",
                                                               Decimal("2.5"))
    weigh(h, piece, "2.900")
    weigh(h, piece, "3.100")
    req = requirement(piece)
    assert (req.required, req.weight_source, req.weight_g) == (True, "weighed",
                                                               Decimal("3.1"))


def test_unknown_weight_means_required(h, piece):
    req = requirement(piece)
    assert req.required and req.weight_source == "unknown" and req.weight_g is None
    assert "not been weighed" in req.explanation


def test_france_silver_and_platinum(h):
    silver = finishing_piece(h, operations=["hallmarking"], alloy="925ag")
    weigh(h, silver, "29.999")
    assert not requirement(silver).required
    weigh(h, silver, "30.000")
    assert requirement(silver).required
    platinum = finishing_piece(h, operations=["hallmarking"], alloy="950pt")
    weigh(h, platinum, "2.990")
    assert not requirement(platinum).required


def test_france_has_no_palladium_exemption(h):
    p = finishing_piece(h, operations=["hallmarking"], alloy="950pd")
    weigh(h, p, "0.500")
    req = requirement(p)
    assert req.required and req.rule is None
    assert "no weight exemption for palladium" in req.explanation


@pytest.mark.parametrize("country", ["GB", "UK", "gb"])
def test_uk_silver_under_7_78_g(h, settings, country):
    settings.ETABLI_HALLMARK_COUNTRY = country
    p = finishing_piece(h, operations=["hallmarking"], alloy="925ag")
    weigh(h, p, "7.779")
    assert not requirement(p).required and requirement(p).country == "GB"
    weigh(h, p, "7.780")
    assert requirement(p).required


@pytest.mark.parametrize("alloy, exempt, required", [
    ("750y", "0.999", "1.000"), ("950pt", "0.499", "0.500"), ("950pd", "0.999", "1.000")])
def test_uk_gold_platinum_palladium(h, settings, alloy, exempt, required):
    settings.ETABLI_HALLMARK_COUNTRY = "GB"
    p = finishing_piece(h, operations=["hallmarking"], alloy=alloy)
    weigh(h, p, exempt)
    assert not requirement(p).required
    weigh(h, p, required)
    assert requirement(p).required


def test_a_country_without_exemptions_hallmarks_everything(h, settings, piece):
    settings.ETABLI_HALLMARK_COUNTRY = "IT"
    weigh(h, piece, "0.100")
    assert requirement(piece).required


def test_an_exemption_changed_by_the_house_applies_at_once(h, piece):
    weigh(h, piece, "3.500")
    assert requirement(piece).required
    row = HallmarkExemption.objects.get(country="FR", metal="gold")
    services.hallmark_exemption_update(actor=h.manager, exemption_id=row.pk,
                                       under_weight_g="4")
    assert not requirement(piece).required


# ---------------------------------------------------------------------------------------------
# hallmarking


def test_marks_struck_take_the_fineness_from_the_alloy(h, piece):
    r = rec(h, piece, "hallmarking", maker_mark="EB ◇")
    assert (r.status, r.maker_mark, r.fineness_mark, r.hallmark_country) == (
        "done", "EB ◇", "750", "FR")
    assert r.exemption.metal == "gold"


def test_marks_struck_need_the_makers_mark_and_the_right_fineness(h, piece):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "hallmarking")
    assert exc.value.details["field"] == "maker_mark"
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "hallmarking", maker_mark="EB", fineness_mark="585")
    assert exc.value.details["field"] == "fineness_mark"
    assert "750" in exc.value.message
    assert rec(h, piece, "hallmarking", maker_mark="EB", fineness_mark="750").fineness_mark \
        == "750"


def test_exempt_only_when_light_enough(h, piece):
    weigh(h, piece, "3.000")
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "hallmarking", status="exempt")
    assert "not exempt" in exc.value.message
    assert "3.000 g of gold is not under 3 g (FR)" in exc.value.message
    weigh(h, piece, "2.999")
    r = rec(h, piece, "hallmarking", status="exempt", maker_mark="EB")
    assert (r.status, r.hallmark_weight_g, r.fineness_mark) == ("exempt", Decimal("2.999"), "")
    assert r.exemption == HallmarkExemption.objects.get(country="FR", metal="gold")


def test_a_light_piece_may_still_be_hallmarked(h, piece):
    weigh(h, piece, "1.200")
    assert rec(h, piece, "hallmarking", maker_mark="EB").status == "done"


def test_unknown_hallmark_outcome(h, piece):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "hallmarking", status="waived")
    assert exc.value.details["field"] == "status"


def test_a_refused_hallmark_needs_a_reason_and_holds_the_piece(h, piece):
    with pytest.raises(ValidationFailed) as exc:
        rec(h, piece, "hallmarking", status="refused")
    assert exc.value.details["field"] == "reason"
    r = rec(h, piece, "hallmarking", status="refused", reason="Fineness 742 at the touchstone.")
    piece.refresh_from_db()
    assert r.status == "refused" and piece.status == PieceStatus.ON_HOLD
    held = TrackingEvent.objects.filter(piece=piece, kind=EventKind.HELD).get()
    assert held.reason == "quality_stop" and "Fineness 742" in held.comment
    # The refusal does not count: released and corrected, the marks are struck on this step.
    assert "hallmarking" in selectors.missing_records(open_run(piece))
    piece_release(actor=h.manager, piece_id=piece.pk, comment="Re-alloyed")
    assert rec(h, piece, "hallmarking", maker_mark="EB").status == "done"
    assert "hallmarking" not in selectors.missing_records(open_run(piece))


# ---------------------------------------------------------------------------------------------
# the gate


def test_the_gate_lists_what_is_not_recorded(h, piece):
    with pytest.raises(TransitionNotAllowed) as exc:
        piece_complete(actor=h.polisher_member, piece_id=piece.pk)
    message = exc.value.message
    for label in ("Polishing", "Rhodium plating", "Engraving", "Serial number engraving",
                  "Hallmarking", "Final cleaning"):
        assert label in message
    assert "Finishing panel" in message
    assert exc.value.details["missing"] == ["polishing", "plating", "engraving",
                                            "serial_engraving", "hallmarking", "cleaning"]
    rec(h, piece, "polishing", finish="bright")
    rec(h, piece, "cleaning", method="steam")
    with pytest.raises(TransitionNotAllowed) as exc:
        piece_complete(actor=h.polisher_member, piece_id=piece.pk)
    assert exc.value.details["missing"] == ["plating", "engraving", "serial_engraving",
                                            "hallmarking"]
    assert "Polishing" not in exc.value.message
    assert open_run(piece).status == StepStatus.IN_PROGRESS


def test_the_gate_passes_with_records_waivers_and_an_exempt_hallmark(h, piece):
    weigh(h, piece, "2.100")
    record_all(h, piece, open_run(piece))
    records = dict(FinishingRecord.objects.values_list("operation", "status"))
    assert records == {"polishing": "done", "plating": "waived", "engraving": "done",
                       "serial_engraving": "done", "hallmarking": "exempt", "cleaning": "done"}
    assert selectors.missing_records(open_run(piece)) == []
    h.finish_step(piece)
    assert piece.runs.get(step="finishing").status == StepStatus.DONE


def test_the_gate_ignores_the_inspection_and_other_steps(h):
    p = finishing_piece(h, operations=["inspection"], workshop=h.house)
    assert selectors.required_records(open_run(p)) == []
    h.finish_step(p)  # only quality's own gate applies
    assert not FinishingRecord.objects.exists()


def test_a_reworked_piece_records_its_finishing_again(h):
    from etabli.production.services import piece_rework

    p = finishing_piece(h, operations=["polishing"])
    run = open_run(p)
    first = rec(h, p, "polishing", finish="bright")
    piece_rework(actor=h.manager, piece_id=p.pk, target_run_id=run.pk, comment="Again")
    h.advance(p)  # start the copy, at the same bench
    again = open_run(p)
    assert again.pk != run.pk and again.attempt == 2
    assert selectors.missing_records(again) == ["polishing"]
    second = rec(h, p, "polishing", finish="satin")
    assert (first.step_run_id, second.step_run_id) == (run.pk, again.pk)


# ---------------------------------------------------------------------------------------------
# waivers


def test_only_production_waives(h, piece):
    for who in (h.polisher_member, h.quality, h.sales):
        with pytest.raises(PermissionDenied):
            services.finishing_operation_waive(actor=who, piece_id=piece.pk,
                                               operation="plating", reason="No rhodium")
    with pytest.raises(ValidationFailed) as exc:
        services.finishing_operation_waive(actor=h.manager, piece_id=piece.pk,
                                           operation="plating", reason="  ")
    assert exc.value.details["field"] == "reason"
    r = services.finishing_operation_waive(actor=h.manager, piece_id=piece.pk,
                                           operation="plating", reason="Yellow gold")
    assert (r.status, r.reason, r.actor) == ("waived", "Yellow gold", h.manager)
    assert AuditEntry.objects.filter(action="finishing.waive", piece_id=piece.pk).exists()
    with pytest.raises(Conflict):
        services.finishing_operation_waive(actor=h.manager, piece_id=piece.pk,
                                           operation="plating", reason="Twice")
    with pytest.raises(ValidationFailed):
        services.finishing_operation_waive(actor=h.manager, piece_id=piece.pk,
                                           operation="inspection", reason="Quality's")


# ---------------------------------------------------------------------------------------------
# the assay office


def test_the_assay_office_step_goes_before_the_inspection(h):
    office, member = assay_office(h)
    p = finishing_piece(h, operations=["polishing", "cleaning", "inspection"], started=False)
    run = services.assay_step_add(actor=h.manager, piece_id=p.pk)
    assert (run.step, run.operations, run.workshop) == ("finishing", ["hallmarking"], office)
    finishing = list(p.runs.filter(step="finishing").order_by("position"))
    assert [r.operations for r in finishing] == [["polishing", "cleaning", "inspection"],
                                                 ["hallmarking"]]
    with pytest.raises(Conflict):
        services.assay_step_add(actor=h.manager, piece_id=p.pk)


def test_the_assay_office_step_before_a_separate_inspection(h):
    office, member = assay_office(h)
    p = finishing_piece(h, operations=["polishing", "cleaning"])
    from etabli.production.services import step_run_add

    step_run_add(actor=h.manager, piece_id=p.pk, step="finishing", workshop_id=h.house.pk,
                 planned_days=1, after_run_id=open_run(p).pk, operations=["inspection"])
    services.assay_step_add(actor=h.manager, piece_id=p.pk)
    steps = [(r.workshop.code, r.operations) for r in p.runs.filter(step="finishing")
             .order_by("position")]
    assert steps == [("polisher", ["polishing", "cleaning"]), ("assay", ["hallmarking"]),
                     ("house", ["inspection"])]


def test_the_assay_office_trip_is_a_step_with_its_own_slip(h):
    office, member = assay_office(h)
    p = finishing_piece(h, operations=["polishing"])
    services.assay_step_add(actor=h.manager, piece_id=p.pk)
    h.finish_step(p)
    slip = h.advance(p)  # the polisher sends it to the assay office
    assert (slip.from_workshop, slip.to_workshop) == (h.polisher, office)
    h.advance(p)  # received
    h.advance(p)  # started
    with pytest.raises(TransitionNotAllowed) as exc:
        piece_complete(actor=member, piece_id=p.pk)
    assert exc.value.details["missing"] == ["hallmarking"]
    r = rec(h, p, "hallmarking", actor=member, maker_mark="EB ◇")
    assert r.workshop == office
    piece_complete(actor=member, piece_id=p.pk)


def test_no_assay_office_trip_for_an_exempt_piece(h):
    assay_office(h)
    p = finishing_piece(h, operations=["polishing"])
    weigh(h, p, "2.000")
    with pytest.raises(ValidationFailed) as exc:
        services.assay_step_add(actor=h.manager, piece_id=p.pk)
    assert "No assay office trip is needed" in exc.value.message


def test_assay_step_guards(h):
    p = finishing_piece(h, operations=["polishing"])
    with pytest.raises(PermissionDenied):
        services.assay_step_add(actor=h.sales, piece_id=p.pk)
    with pytest.raises(NotFound):
        services.assay_step_add(actor=h.manager, piece_id=10**9)
    with pytest.raises(ValidationFailed) as exc:  # no workshop does hallmarking yet
        services.assay_step_add(actor=h.manager, piece_id=p.pk)
    assert exc.value.details["field"] == "workshop_id"
    first, _m = assay_office(h, "assay")
    second, _m = assay_office(h, "assay2")
    with pytest.raises(ValidationFailed) as exc:
        services.assay_step_add(actor=h.manager, piece_id=p.pk)
    assert "Bureau de garantie" in exc.value.message
    with pytest.raises(ValidationFailed):
        services.assay_step_add(actor=h.manager, piece_id=p.pk, workshop_id=h.setter.pk)
    run = services.assay_step_add(actor=h.manager, piece_id=p.pk, workshop_id=second.pk)
    assert run.workshop == second


def test_a_route_that_hallmarks_needs_no_assay_step(h):
    assay_office(h)
    p = finishing_piece(h)  # polishing, engraving_hallmarking, cleaning, inspection
    with pytest.raises(Conflict):
        services.assay_step_add(actor=h.manager, piece_id=p.pk)


# ---------------------------------------------------------------------------------------------
# exemptions


def test_exemptions_are_seeded():
    rows = {(e.country, e.metal): e.under_weight_g for e in HallmarkExemption.objects.all()}
    assert rows == {("FR", "gold"): Decimal("3"), ("FR", "platinum"): Decimal("3"),
                    ("FR", "silver"): Decimal("30"), ("GB", "gold"): Decimal("1"),
                    ("GB", "silver"): Decimal("7.78"), ("GB", "platinum"): Decimal("0.5"),
                    ("GB", "palladium"): Decimal("1")}


def test_exemption_lifecycle_by_the_manager(h):
    row = services.hallmark_exemption_create(actor=h.manager, country=" ch ", metal="gold",
                                             under_weight_g="1", legal_reference="LCMP")
    assert (row.country, row.under_weight_g) == ("CH", Decimal("1.000"))
    with pytest.raises(Conflict):
        services.hallmark_exemption_create(actor=h.admin, country="CH", metal="gold",
                                           under_weight_g="2")
    row = services.hallmark_exemption_update(actor=h.admin, exemption_id=row.pk,
                                             under_weight_g="1.5")
    assert row.under_weight_g == Decimal("1.5") and row.legal_reference == "LCMP"
    services.hallmark_exemption_delete(actor=h.manager, exemption_id=row.pk)
    assert not HallmarkExemption.objects.filter(country="CH").exists()
    actions = list(AuditEntry.objects.filter(object_type="finishing.hallmarkexemption")
                   .values_list("action", flat=True).order_by("id"))
    assert actions == ["hallmark_exemption.create", "hallmark_exemption.update",
                       "hallmark_exemption.delete"]


@pytest.mark.parametrize("who", ["sales", "quality", "designer", "polisher_member",
                                 "client_contact"])
def test_only_production_changes_exemptions(h, who):
    row = HallmarkExemption.objects.get(country="FR", metal="gold")
    with pytest.raises(PermissionDenied):
        services.hallmark_exemption_create(actor=getattr(h, who), country="CH", metal="gold",
                                           under_weight_g="1")
    with pytest.raises(PermissionDenied):
        services.hallmark_exemption_update(actor=getattr(h, who), exemption_id=row.pk,
                                           under_weight_g="9")
    with pytest.raises(PermissionDenied):
        services.hallmark_exemption_delete(actor=getattr(h, who), exemption_id=row.pk)
    assert HallmarkExemption.objects.get(pk=row.pk).under_weight_g == Decimal("3")


@pytest.mark.parametrize("data, field", [
    ({"country": "FRA"}, "country"), ({"country": "F1"}, "country"), ({"country": ""}, "country"),
    ({"metal": "copper"}, "metal"), ({"under_weight_g": "0"}, "under_weight_g"),
    ({"under_weight_g": "-1"}, "under_weight_g"), ({"under_weight_g": "1001"}, "under_weight_g"),
    ({"under_weight_g": "1.0005"}, "under_weight_g"), ({"under_weight_g": "abc"}, "under_weight_g"),
    ({"legal_reference": "x" * 201}, "legal_reference"),
])
def test_exemption_input_is_checked(h, data, field):
    good = {"country": "CH", "metal": "gold", "under_weight_g": "1", "legal_reference": ""}
    with pytest.raises(ValidationFailed) as exc:
        services.hallmark_exemption_create(actor=h.manager, **(good | data))
    assert exc.value.details["field"] == field
    assert not HallmarkExemption.objects.filter(country="CH").exists()


def test_unknown_exemption(h):
    with pytest.raises(NotFound):
        services.hallmark_exemption_update(actor=h.manager, exemption_id=10**9,
                                           under_weight_g="1")
    with pytest.raises(NotFound):
        services.hallmark_exemption_delete(actor=h.manager, exemption_id=10**9)
