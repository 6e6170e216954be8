"""Quality control services: computed verdicts at the edges, sign-off and its immutability,
failure → hold → nonconformity → rework → right-first-time, the gate, templates, roles."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.materials import cad_services
from etabli.production.models import EventKind, HoldReason, PieceStatus, StepStatus
from etabli.production.services import piece_complete, piece_release
from etabli.quality import gates, services
from etabli.quality.models import (
    Inspection,
    InspectionCriterion,
    InspectionDimension,
    InspectionPhoto,
    InspectionStatus,
    InspectionTemplate,
    Nonconformity,
    NonconformityStatus,
    SignedInspectionError,
    Verdict,
    WeightSource,
)
from etabli.quality.verdicts import (
    assess,
    dimension_within,
    weight_deviation_percent,
    weight_within,
)
from tests.finishing import support as finishing_support
from tests.quality.conftest import open_inspection, png
from tests.quality.support import inspect_and_sign, passing_measurements

D = Decimal


def criterion(ins, kind):
    return next(c for c in assess(ins).criteria if c.kind == kind)


# ---------------------------------------------------------------------------------------------
# the house standard


@pytest.mark.django_db
def test_the_default_template_is_the_house_standard():
    template = InspectionTemplate.objects.get(is_default=True)
    assert template.code == "house-standard" and template.is_active
    rows = {c.kind: (c.enabled, c.tolerance) for c in template.criteria.all()}
    assert rows == {"weight": (True, D("2.000")), "dimensions": (True, D("0.200")),
                    "fineness": (True, None), "surface": (True, D("0.000")),
                    "stones": (True, None), "function": (True, None)}


# ---------------------------------------------------------------------------------------------
# tolerance arithmetic, exact at the edges


@pytest.mark.parametrize("measured, ok", [
    ("10.200", True), ("10.201", False), ("9.800", True), ("9.799", False), ("10.000", True)])
def test_weight_within_two_percent_at_the_edges(measured, ok):
    assert weight_within(D("10.000"), D(measured), D("2.00")) is ok


def test_weight_deviation_is_shown_rounded_up_never_down_to_the_tolerance():
    assert weight_deviation_percent(D("10.000"), D("10.200")) == D("2.00")
    assert weight_deviation_percent(D("10.000"), D("10.201")) == D("2.01")
    # 2.0004 % is over 2 %: it reads 2.01, not 2.00.
    assert weight_deviation_percent(D("25.000"), D("25.5001")) == D("2.01")
    assert weight_within(D("25.000"), D("25.5001"), D("2")) is False


@pytest.mark.parametrize("measured, ok", [
    ("2.700", True), ("2.701", False), ("2.300", True), ("2.299", False)])
def test_dimension_within_two_tenths_at_the_edges(measured, ok):
    assert dimension_within(D("2.500"), D(measured), D("0.200")) is ok


@pytest.mark.parametrize("measured, verdict, shown", [
    ("10.200", Verdict.PASS, "2.00"), ("10.201", Verdict.FAIL, "2.01"),
    ("9.800", Verdict.PASS, "2.00"), ("9.799", Verdict.FAIL, "2.01")])
def test_weight_verdict_through_the_service(house_setup, finishing_piece, measured, verdict,
                                            shown):
    h = house_setup
    ins = open_inspection(h, finishing_piece, theoretical_weight_g="10.000",
                          measured_weight_g=measured)
    c = criterion(ins, "weight")
    assert c.verdict == verdict
    assert shown in c.detail
    assert ins.verdict == verdict  # stored from the same computation


@pytest.mark.parametrize("measured, verdict", [
    ("2.700", Verdict.PASS), ("2.701", Verdict.FAIL), ("2.300", Verdict.PASS),
    ("2.299", Verdict.FAIL)])
def test_each_dimension_against_its_own_target(house_setup, finishing_piece, measured,
                                              verdict):
    h = house_setup
    ins = open_inspection(h, finishing_piece, dimensions=[
        {"name": "Band width", "target_mm": "2.500", "measured_mm": measured},
        {"name": "Inner diameter", "target_mm": "16.900", "measured_mm": "17.050"}])
    c = criterion(ins, "dimensions")
    assert [d.verdict for d in c.dimensions] == [verdict, Verdict.PASS]
    assert c.verdict == verdict and ins.verdict == verdict


def test_dimensions_missing_or_unmeasured_leave_the_inspection_incomplete(house_setup,
                                                                       finishing_piece):
    h = house_setup
    ins = open_inspection(h, finishing_piece, dimensions=[])
    assert criterion(ins, "dimensions").verdict == Verdict.PENDING
    assert ins.verdict == Verdict.PENDING
    services.inspection_measure(actor=h.quality, inspection_id=ins.pk, **passing_measurements(
        ins, dimensions=[{"name": "Width", "target_mm": "2.5", "measured_mm": None}]))
    ins.refresh_from_db()
    assert ins.verdict == Verdict.PENDING


@pytest.mark.parametrize("reading, verdict", [
    ("750.0", Verdict.PASS), ("752.3", Verdict.PASS), ("749.9", Verdict.FAIL)])
def test_fineness_reading_at_least_the_hallmark(house_setup, finishing_piece, reading,
                                               verdict):
    ins = open_inspection(house_setup, finishing_piece, fineness_method="touch",
                          fineness_reading_permille=reading)
    assert ins.hallmark_fineness_permille == 750
    assert criterion(ins, "fineness").verdict == verdict


@pytest.mark.parametrize("defects, verdict", [(0, Verdict.PASS), (1, Verdict.FAIL)])
def test_surface_zero_visible_defects(house_setup, finishing_piece, defects, verdict):
    ins = open_inspection(house_setup, finishing_piece, surface_defects=defects)
    assert criterion(ins, "surface").verdict == verdict


@pytest.mark.parametrize("test, loose, verdict", [
    (True, 0, Verdict.PASS), (True, 1, Verdict.FAIL), (False, 0, Verdict.FAIL),
    (None, 0, Verdict.PENDING)])
def test_stone_security(house_setup, finishing_piece, test, loose, verdict):
    ins = open_inspection(house_setup, finishing_piece, stones_mechanical_test=test,
                          loose_stones=loose)
    assert ins.stones_applicable  # the route sets stones
    assert criterion(ins, "stones").verdict == verdict


def test_stone_security_is_not_applicable_without_stones(house_setup, plain_piece):
    h = house_setup
    ins = open_inspection(h, plain_piece)
    assert not ins.stones_applicable
    assert criterion(ins, "stones").verdict == Verdict.NOT_APPLICABLE
    assert ins.verdict == Verdict.PASS
    with pytest.raises(ValidationFailed, match="no stones") as exc:
        services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                    **passing_measurements(ins, stones_mechanical_test=True))
    assert exc.value.details["field"] == "stones_mechanical_test"


@pytest.mark.parametrize("result, verdict", [
    ("ok", Verdict.PASS), ("not_ok", Verdict.FAIL), ("na", Verdict.NOT_APPLICABLE),
    ("", Verdict.PENDING)])
def test_function_of_clasps_and_hinges(house_setup, finishing_piece, result, verdict):
    ins = open_inspection(house_setup, finishing_piece, function_result=result)
    assert criterion(ins, "function").verdict == verdict


@pytest.mark.parametrize("field, value, words", [
    ("measured_weight_g", "10.0001", "3 decimals"),
    ("measured_weight_g", "-1", "between"),
    ("measured_weight_g", "heavy", "not a number"),
    ("measured_weight_g", True, "must be a number"),
    ("measured_weight_g", "NaN", "must be a number"),
    ("fineness_reading_permille", "1001", "between"),
    ("fineness_reading_permille", "750.25", "1 decimals"),
    ("surface_defects", "1.5", "whole number"),
    ("surface_defects", -1, "between"),
    ("loose_stones", True, "whole number"),
    ("function_result", "maybe", "Unknown value"),
    ("fineness_method", "taste", "Unknown value"),
])
def test_bad_measurements_are_refused_with_the_field(house_setup, finishing_piece, field,
                                                     value, words):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    with pytest.raises(ValidationFailed, match=words) as exc:
        services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                    **passing_measurements(ins, **{field: value}))
    assert exc.value.details["field"] == field
    ins.refresh_from_db()
    assert ins.measured_weight_g is None  # nothing half-written


@pytest.mark.parametrize("dims, field", [
    ([{"name": "", "target_mm": "2.5", "measured_mm": "2.5"}], "dimensions.0.name"),
    ([{"name": "Width", "target_mm": "", "measured_mm": "2.5"}], "dimensions.0.target_mm"),
    ([{"name": "Width", "target_mm": "0", "measured_mm": "2.5"}], "dimensions.0.target_mm"),
    ([{"name": "Width", "target_mm": "2.5", "measured_mm": "2.5001"}],
     "dimensions.0.measured_mm"),
    ([{"name": "Width", "target_mm": "2.5", "measured_mm": "2.5"},
      {"name": "width", "target_mm": "3", "measured_mm": "3"}], "dimensions.1.name"),
    ([{"name": f"D{i}", "target_mm": "1", "measured_mm": "1"} for i in range(21)],
     "dimensions"),
])
def test_bad_dimensions_are_refused(house_setup, finishing_piece, dims, field):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    with pytest.raises(ValidationFailed) as exc:
        services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                    **passing_measurements(ins, dimensions=dims))
    assert exc.value.details["field"] == field


def test_a_reading_needs_its_method(house_setup, finishing_piece):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    with pytest.raises(ValidationFailed, match="touchstone or XRF"):
        services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                    **passing_measurements(ins, fineness_method=""))


# ---------------------------------------------------------------------------------------------
# theoretical weight


def test_theoretical_weight_entered_when_the_piece_has_none(house_setup, finishing_piece):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    assert ins.theoretical_weight_g is None and ins.theoretical_weight_source == ""
    assert criterion(ins, "weight").verdict == Verdict.PENDING
    assert "theoretical weight" in criterion(ins, "weight").detail
    services.inspection_measure(actor=h.quality, inspection_id=ins.pk, **passing_measurements(
        ins, theoretical_weight_g="8.450", measured_weight_g="8.500"))
    ins.refresh_from_db()
    assert ins.theoretical_weight_g == D("8.450")
    assert ins.theoretical_weight_source == WeightSource.ENTERED
    assert ins.verdict == Verdict.PASS


def test_the_pieces_theoretical_weight_is_the_target_and_cannot_be_moved(house_setup):
    h = house_setup
    piece = h.launched_piece()
    cad_services.piece_theoretical_weight_set(actor=h.manager, piece_id=piece.pk,
                                              weight_g="12.000")
    h.walk(piece, to="finishing", arrive=True)
    h.advance(piece)
    ins = services.inspection_create(actor=h.quality, piece_id=piece.pk)
    assert ins.theoretical_weight_g == D("12.000")
    assert ins.theoretical_weight_source == WeightSource.PIECE
    with pytest.raises(ValidationFailed, match="cannot be changed from an inspection"):
        services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                    **passing_measurements(ins, theoretical_weight_g="11.000"))
    services.inspection_measure(actor=h.quality, inspection_id=ins.pk, **passing_measurements(
        ins, theoretical_weight_g="12.000", measured_weight_g="12.240"))
    ins.refresh_from_db()
    assert ins.verdict == Verdict.PASS


def test_theoretical_weight_from_the_cad_estimate(house_setup, media):
    import trimesh
    from django.core.files.uploadedfile import SimpleUploadedFile

    h = house_setup
    piece = h.launched_piece()
    cube = trimesh.creation.box(extents=(10, 10, 10)).export(file_type="stl")
    cad_services.cad_upload(actor=h.manager, order_id=piece.order_id, piece_id=piece.pk,
                            uploaded_file=SimpleUploadedFile("ring.stl", cube))
    h.walk(piece, to="finishing", arrive=True)
    h.advance(piece)
    ins = services.inspection_create(actor=h.quality, piece_id=piece.pk)
    # 1000 mm³ of 750 yellow gold at 15.50 g/cm³
    assert ins.theoretical_weight_g == D("15.500")
    assert ins.theoretical_weight_source == WeightSource.CAD
    # The inspector may correct an estimate (it leaves out the stones, for one).
    services.inspection_measure(actor=h.quality, inspection_id=ins.pk, **passing_measurements(
        ins, theoretical_weight_g="15.900", measured_weight_g="15.900"))
    ins.refresh_from_db()
    assert ins.theoretical_weight_source == WeightSource.ENTERED


# ---------------------------------------------------------------------------------------------
# opening an inspection


def test_open_an_inspection_copies_the_templates_criteria(house_setup, finishing_piece):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    assert ins.reference.startswith("QC-")
    assert ins.run_id == finishing_piece.current_run_id
    assert [c["kind"] for c in ins.criteria] == ["weight", "dimensions", "fineness", "surface",
                                                 "stones", "function"]
    assert ins.criteria[0]["tolerance"] == "2.00"
    assert ins.status == InspectionStatus.DRAFT and ins.verdict == Verdict.PENDING
    entry = AuditEntry.objects.get(action="quality.inspection.create")
    assert entry.actor == h.quality and entry.piece_id == finishing_piece.pk


def test_editing_the_template_leaves_opened_inspections_alone(house_setup, finishing_piece):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    template = InspectionTemplate.objects.get(is_default=True)
    services.template_update(actor=h.quality, template_id=template.pk,
                             criteria=[{"kind": "weight", "tolerance": "1.50"}])
    ins.refresh_from_db()
    assert ins.criteria[0]["tolerance"] == "2.00"
    services.inspection_measure(actor=h.quality, inspection_id=ins.pk, **passing_measurements(
        ins, theoretical_weight_g="10.000", measured_weight_g="10.180"))
    ins.refresh_from_db()
    assert ins.verdict == Verdict.PASS  # 1.8 % under the copied ±2 %


def test_one_inspection_at_a_time_per_step(house_setup, finishing_piece):
    h = house_setup
    first = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    with pytest.raises(Conflict, match="already open") as exc:
        services.inspection_create(actor=h.manager, piece_id=finishing_piece.pk)
    assert exc.value.details["inspection_id"] == first.pk


def test_a_step_that_passed_is_not_inspected_again(house_setup, finishing_piece):
    h = house_setup
    inspect_and_sign(h, finishing_piece)
    with pytest.raises(Conflict, match="already passed"):
        services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)


def test_only_in_finishing_and_where_the_piece_is(house_setup):
    h = house_setup
    piece = h.launched_piece()
    with pytest.raises(NotFound):  # quality sees pieces in finishing only
        services.inspection_create(actor=h.quality, piece_id=piece.pk)
    with pytest.raises(TransitionNotAllowed, match="not in finishing"):
        services.inspection_create(actor=h.manager, piece_id=piece.pk)
    h.walk(piece, to="finishing")
    h.advance(piece)  # sent: in transit to the polisher
    with pytest.raises(TransitionNotAllowed, match="receive it first"):
        services.inspection_create(actor=h.quality, piece_id=piece.pk)


def test_not_while_on_hold(house_setup, finishing_piece):
    from etabli.production.services import piece_hold

    h = house_setup
    piece_hold(actor=h.manager, piece_id=finishing_piece.pk, reason="capacity")
    with pytest.raises(TransitionNotAllowed, match="on hold"):
        services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)


def test_unknown_or_inactive_template(house_setup, finishing_piece):
    h = house_setup
    with pytest.raises(NotFound):
        services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk,
                                   template_id=999999)
    other = services.template_create(actor=h.quality, code="chains", name="Chains")
    services.template_update(actor=h.quality, template_id=other.pk, is_active=False)
    with pytest.raises(NotFound):
        services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk,
                                   template_id=other.pk)


@pytest.mark.parametrize("who, error", [
    ("sales", PermissionDenied), ("designer", PermissionDenied),
    ("logistics", PermissionDenied), ("polisher_member", NotFound),
    ("client_contact", NotFound)])
def test_who_may_inspect(house_setup, finishing_piece, who, error):
    h = house_setup
    with pytest.raises(error):
        services.inspection_create(actor=getattr(h, who), piece_id=finishing_piece.pk)
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    with pytest.raises(error):
        services.inspection_measure(actor=getattr(h, who), inspection_id=ins.pk,
                                    **passing_measurements(ins))
    with pytest.raises(error):
        services.inspection_sign(actor=getattr(h, who), inspection_id=ins.pk)


@pytest.mark.parametrize("who", ["manager", "admin"])
def test_managers_and_administrators_inspect_too(house_setup, finishing_piece, who):
    h = house_setup
    ins = inspect_and_sign(h, finishing_piece, actor=getattr(h, who))
    assert ins.signed_by == getattr(h, who) and ins.verdict == Verdict.PASS


# ---------------------------------------------------------------------------------------------
# signing


def test_sign_records_who_when_what_and_its_sha256(house_setup, finishing_piece):
    h = house_setup
    ins = open_inspection(h, finishing_piece)
    signed = services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    signed.refresh_from_db()
    assert signed.status == InspectionStatus.SIGNED and signed.verdict == Verdict.PASS
    assert signed.signed_by == h.quality and signed.signed_at is not None
    content = signed.signed_content
    assert content["piece"] == finishing_piece.serial
    assert content["verdict"] == "pass" and content["signed_by"]["username"] == "quality"
    assert content["measured_weight_g"] == "10.000"
    assert content["dimensions"] == [{"name": "Band width", "target_mm": "2.500",
                                      "measured_mm": "2.520"}]
    digest = hashlib.sha256(services.canonical_json(content)).hexdigest()
    assert signed.signed_sha256 == digest
    assert AuditEntry.objects.filter(action="quality.inspection.sign",
                                     after__sha256=digest).exists()


def test_an_incomplete_inspection_cannot_be_signed(house_setup, finishing_piece):
    h = house_setup
    ins = open_inspection(h, finishing_piece, function_result="", surface_defects=None)
    with pytest.raises(ValidationFailed, match="Surface, Function") as exc:
        services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    assert exc.value.details["pending"] == ["surface", "function"]
    ins.refresh_from_db()
    assert ins.status == InspectionStatus.DRAFT


def test_a_failure_may_be_signed_before_everything_is_measured(house_setup, finishing_piece):
    h = house_setup
    ins = open_inspection(h, finishing_piece, function_result="", loose_stones=2)
    signed = services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    assert signed.verdict == Verdict.FAIL


def test_nothing_of_a_signed_inspection_changes_through_the_services(house_setup,
                                                                     finishing_piece, media):
    h = house_setup
    ins = inspect_and_sign(h, finishing_piece)
    with pytest.raises(TransitionNotAllowed, match="cannot change") as exc:
        services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                    **passing_measurements(ins, measured_weight_g="9.000"))
    assert exc.value.status == 409
    for call in (
        lambda: services.inspection_sign(actor=h.quality, inspection_id=ins.pk),
        lambda: services.inspection_photo_add(actor=h.quality, inspection_id=ins.pk,
                                              uploaded_file=png(), moment="after"),
        lambda: services.inspection_discard(actor=h.quality, inspection_id=ins.pk),
    ):
        with pytest.raises(TransitionNotAllowed) as exc:
            call()
        assert exc.value.status == 409
    ins.refresh_from_db()
    assert ins.measured_weight_g == D("10.000")


def test_the_models_refuse_to_change_a_signed_inspection(house_setup, finishing_piece):
    h = house_setup
    ins = inspect_and_sign(h, finishing_piece)
    ins.notes = "edited afterwards"
    with pytest.raises(SignedInspectionError):
        ins.save()
    with pytest.raises(SignedInspectionError):
        Inspection.objects.filter(pk=ins.pk).update(measured_weight_g=D("9"))
    with pytest.raises(SignedInspectionError):
        ins.delete()
    dim = ins.dimensions.get()
    dim.measured_mm = D("2.9")
    with pytest.raises(SignedInspectionError):
        dim.save()
    with pytest.raises(SignedInspectionError):
        InspectionDimension.objects.filter(inspection=ins).update(measured_mm=D("2.9"))
    with pytest.raises(SignedInspectionError):
        InspectionDimension.objects.create(inspection=ins, position=9, name="New",
                                           target_mm=D("1"))
    with pytest.raises(SignedInspectionError):
        dim.delete()
    fresh = Inspection.objects.get(pk=ins.pk)
    assert fresh.notes == "" and fresh.dimensions.get().measured_mm == D("2.520")


def test_the_database_refuses_to_change_a_signed_inspection(house_setup, finishing_piece):
    h = house_setup
    ins = inspect_and_sign(h, finishing_piece)
    dim = ins.dimensions.get()
    statements = [
        ("UPDATE quality_inspection SET measured_weight_g = 9 WHERE id = %s", [ins.pk]),
        ("UPDATE quality_inspectiondimension SET measured_mm = 9 WHERE id = %s", [dim.pk]),
        ("INSERT INTO quality_inspectiondimension (inspection_id, position, name, target_mm) "
         "VALUES (%s, 5, 'x', 1)", [ins.pk]),
    ]
    for sql, params in statements:
        with pytest.raises(IntegrityError, match="signed inspection"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
    assert Inspection.objects.get(pk=ins.pk).measured_weight_g == D("10.000")


def test_a_draft_still_changes_and_can_be_discarded(house_setup, finishing_piece):
    h = house_setup
    ins = open_inspection(h, finishing_piece)
    Inspection.objects.filter(pk=ins.pk).update(notes="fine")  # a draft is not frozen
    services.inspection_discard(actor=h.quality, inspection_id=ins.pk)
    assert not Inspection.objects.filter(pk=ins.pk).exists()
    assert AuditEntry.objects.filter(action="quality.inspection.discard").exists()


# ---------------------------------------------------------------------------------------------
# photos


def test_before_and_after_photos(house_setup, finishing_piece, media):
    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    before = services.inspection_photo_add(actor=h.quality, inspection_id=ins.pk,
                                           uploaded_file=png("before.png"), moment="before",
                                           client_ref="ph-1")
    again = services.inspection_photo_add(actor=h.quality, inspection_id=ins.pk,
                                          uploaded_file=png("before.png"), moment="before",
                                          client_ref="ph-1")
    assert again.pk == before.pk and again.replayed
    services.inspection_photo_add(actor=h.quality, inspection_id=ins.pk,
                                  uploaded_file=png("after.png", "blue"), moment="after")
    assert InspectionPhoto.objects.filter(inspection=ins).count() == 2
    doc = before.document
    assert doc.piece_id == finishing_piece.pk and doc.visibility == "house"
    with pytest.raises(ValidationFailed, match="before or after"):
        services.inspection_photo_add(actor=h.quality, inspection_id=ins.pk,
                                      uploaded_file=png(), moment="during")
    from django.core.files.uploadedfile import SimpleUploadedFile

    pdf = SimpleUploadedFile("x.png", b"%PDF-1.4 not a photo")
    with pytest.raises(ValidationFailed, match="JPEG, PNG or WebP"):
        services.inspection_photo_add(actor=h.quality, inspection_id=ins.pk,
                                      uploaded_file=pdf, moment="after")
    services.inspection_measure(actor=h.quality, inspection_id=ins.pk,
                                **passing_measurements(ins))
    signed = services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    assert [(p["moment"], p["source"]) for p in signed.signed_content["photos"]] == [
        ("after", "inspection"), ("before", "inspection")]
    assert signed.signed_content["photos"][1]["sha256"] == doc.sha256


def test_before_photos_come_from_the_finishing_events_when_none_taken(house_setup, media):
    from etabli.documents.services import document_upload
    from etabli.production.models import TrackingEvent

    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to="finishing", arrive=True)
    event = h.advance(piece)  # started at the polisher
    assert isinstance(event, TrackingEvent) and event.kind == EventKind.STARTED
    document_upload(actor=h.polisher_member, order_id=piece.order_id, piece_id=piece.pk,
                    uploaded_file=png("arrived.png"), kind="photo", event=event)
    ins = open_inspection(h, piece)
    signed = services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    assert [(p["moment"], p["source"], p["name"]) for p in signed.signed_content["photos"]] \
        == [("before", "event", "arrived.png")]


# ---------------------------------------------------------------------------------------------
# failure, nonconformity, rework, right first time


def _fail(h, piece):
    ins = open_inspection(h, piece, loose_stones=1, surface_defects=2)
    return services.inspection_sign(actor=h.quality, inspection_id=ins.pk)


def test_a_failure_stops_the_piece_and_opens_a_nonconformity(house_setup, finishing_piece):
    h = house_setup
    ins = _fail(h, finishing_piece)
    finishing_piece.refresh_from_db()
    assert finishing_piece.status == PieceStatus.ON_HOLD
    held = finishing_piece.events.filter(kind=EventKind.HELD).get()
    assert held.reason == HoldReason.QUALITY_STOP and ins.reference in held.comment
    nc = Nonconformity.objects.get(inspection=ins)
    assert nc.reference.startswith("NC-") and nc.status == NonconformityStatus.OPEN
    assert nc.held and nc.piece == finishing_piece
    assert [c["kind"] for c in nc.failed_criteria] == ["surface", "stones"]
    assert AuditEntry.objects.filter(action="quality.nonconformity.open",
                                     object_id=str(nc.pk)).exists()


def test_failure_cause_rework_and_right_first_time(house_setup, finishing_piece):
    h = house_setup
    piece = finishing_piece
    failed_run = h.open_run(piece)
    nc = Nonconformity.objects.get(inspection=_fail(h, piece))
    setting = piece.runs.get(step="setting")
    with pytest.raises(TransitionNotAllowed, match="root cause"):
        services.nonconformity_send_to_rework(actor=h.quality, nc_id=nc.pk,
                                              target_run_id=setting.pk)
    with pytest.raises(ValidationFailed) as exc:
        services.nonconformity_record_cause(actor=h.quality, nc_id=nc.pk, root_cause="gremlins",
                                            corrective_action="Re-set.")
    assert exc.value.details["field"] == "root_cause"
    with pytest.raises(ValidationFailed) as exc:
        services.nonconformity_record_cause(actor=h.quality, nc_id=nc.pk, root_cause="setting",
                                            corrective_action="  ")
    assert exc.value.details["field"] == "corrective_action"
    services.nonconformity_record_cause(actor=h.quality, nc_id=nc.pk, root_cause="setting",
                                        corrective_action="Re-set the pavé row, re-polish.")
    receipt = piece.runs.get(step="order_receipt")
    with pytest.raises(ValidationFailed):
        services.nonconformity_send_to_rework(actor=h.quality, nc_id=nc.pk,
                                              target_run_id=receipt.pk)
    nc.refresh_from_db()
    assert nc.status == NonconformityStatus.OPEN  # nothing half-written
    services.nonconformity_send_to_rework(actor=h.quality, nc_id=nc.pk,
                                          target_run_id=setting.pk)
    nc.refresh_from_db()
    piece.refresh_from_db()
    assert nc.status == NonconformityStatus.IN_REWORK and nc.rework_run == setting
    assert piece.rework_count == 1 and not piece.right_first_time
    assert piece.current_step == "setting"
    failed_run.refresh_from_db()
    assert failed_run.reworked and failed_run.status == StepStatus.DONE
    rework = piece.events.get(kind=EventKind.REWORK)
    assert nc.reference in rework.comment
    with pytest.raises(TransitionNotAllowed, match="already sent back"):
        services.nonconformity_send_to_rework(actor=h.quality, nc_id=nc.pk,
                                              target_run_id=setting.pk)

    # Back in finishing: the old inspections do not count, a new one is needed.
    h.walk(piece, to="finishing", arrive=True)
    h.advance(piece)
    new_run = h.open_run(piece)
    assert new_run.pk != failed_run.pk and new_run.attempt == 2
    with pytest.raises(TransitionNotAllowed, match="needs a signed passing inspection"):
        gates.check_leave(piece, new_run)
    passed = inspect_and_sign(h, piece)
    nc.refresh_from_db()
    assert nc.status == NonconformityStatus.CLOSED
    assert nc.closed_by_inspection == passed and nc.closed_at is not None
    with pytest.raises(TransitionNotAllowed, match="closed"):
        services.nonconformity_record_cause(actor=h.quality, nc_id=nc.pk, root_cause="other",
                                            corrective_action="x")
    h.walk(piece)  # finishes and delivers
    piece.refresh_from_db()
    assert piece.status == PieceStatus.DELIVERED and piece.rework_count == 1


def test_finishing_done_again_in_place(house_setup, finishing_piece):
    h = house_setup
    run = h.open_run(finishing_piece)
    nc = Nonconformity.objects.get(inspection=_fail(h, finishing_piece))
    services.nonconformity_record_cause(actor=h.manager, nc_id=nc.pk, root_cause="polishing",
                                        corrective_action="Polish again.")
    services.nonconformity_send_to_rework(actor=h.manager, nc_id=nc.pk, target_run_id=run.pk,
                                          comment="Only the shank.")
    finishing_piece.refresh_from_db()
    assert finishing_piece.current_step == "finishing" and finishing_piece.rework_count == 1


def test_released_by_hand_and_inspected_again_on_the_same_step(house_setup, finishing_piece):
    h = house_setup
    nc = Nonconformity.objects.get(inspection=_fail(h, finishing_piece))
    piece_release(actor=h.manager, piece_id=finishing_piece.pk, comment="Dust, not a defect.")
    run = h.open_run(finishing_piece)
    with pytest.raises(TransitionNotAllowed, match="failed inspection"):
        gates.check_leave(finishing_piece, run)
    inspect_and_sign(h, finishing_piece)
    nc.refresh_from_db()
    assert nc.status == NonconformityStatus.CLOSED
    gates.check_leave(finishing_piece, run)  # the latest signed inspection passed


def test_a_failure_on_a_piece_already_held_keeps_the_hold(house_setup, finishing_piece):
    from etabli.production.services import piece_hold

    h = house_setup
    ins = open_inspection(h, finishing_piece, surface_defects=3)
    piece_hold(actor=h.manager, piece_id=finishing_piece.pk, reason="capacity")
    services.inspection_sign(actor=h.quality, inspection_id=ins.pk)
    nc = Nonconformity.objects.get(inspection=ins)
    assert not nc.held
    assert finishing_piece.events.filter(kind=EventKind.HELD).count() == 1


def test_the_piece_moved_on_since(house_setup, finishing_piece):
    from etabli.production.services import piece_rework

    h = house_setup
    ins = services.inspection_create(actor=h.quality, piece_id=finishing_piece.pk)
    setting = finishing_piece.runs.get(step="setting")
    piece_rework(actor=h.manager, piece_id=finishing_piece.pk, target_run_id=setting.pk,
                 comment="Stone chipped.")
    with pytest.raises(TransitionNotAllowed, match="has left the step"):
        services.inspection_sign(actor=h.manager, inspection_id=ins.pk)
    services.inspection_discard(actor=h.manager, inspection_id=ins.pk)


def test_nonconformity_roles(house_setup, finishing_piece):
    h = house_setup
    nc = Nonconformity.objects.get(inspection=_fail(h, finishing_piece))
    for who, error in (("sales", PermissionDenied), ("polisher_member", NotFound),
                       ("client_contact", NotFound)):
        with pytest.raises(error):
            services.nonconformity_record_cause(actor=getattr(h, who), nc_id=nc.pk,
                                                root_cause="setting", corrective_action="x")
    with pytest.raises(NotFound):
        services.nonconformity_record_cause(actor=h.quality, nc_id=999999,
                                            root_cause="setting", corrective_action="x")


# ---------------------------------------------------------------------------------------------
# the gate


def test_gate_finishing_with_inspection_needs_a_signed_pass(house_setup, finishing_piece):
    h = house_setup
    piece = finishing_piece
    run = h.open_run(piece)
    assert "inspection" in run.operations
    finishing_support.before_complete(h, piece, run)  # its own records: only ours speaks
    with pytest.raises(TransitionNotAllowed, match="Quality page"):
        piece_complete(actor=h.polisher_member, piece_id=piece.pk)
    open_inspection(h, piece)  # measured, not signed
    with pytest.raises(TransitionNotAllowed, match="needs a signed passing inspection"):
        piece_complete(actor=h.polisher_member, piece_id=piece.pk)
    services.inspection_sign(actor=h.quality,
                             inspection_id=Inspection.objects.get(run=run).pk)
    piece_complete(actor=h.polisher_member, piece_id=piece.pk)
    run.refresh_from_db()
    assert run.status == StepStatus.DONE


def test_gate_ignores_other_steps_and_finishing_without_inspection(house_setup):
    h = house_setup
    piece = h.launched_piece()
    for run in piece.runs.all():
        if run.step != "finishing":
            gates.check_leave(piece, run)
    run = piece.runs.get(step="finishing")
    run.operations = ["polishing"]
    gates.check_leave(piece, run)


# ---------------------------------------------------------------------------------------------
# templates


def test_template_update_by_quality(house_setup):
    h = house_setup
    template = InspectionTemplate.objects.get(is_default=True)
    services.template_update(actor=h.quality, template_id=template.pk, name="Maison",
                             criteria=[{"kind": "dimensions", "tolerance": "0.150"},
                                       {"kind": "function", "enabled": False}])
    rows = {c.kind: c for c in template.criteria.all()}
    assert rows["dimensions"].tolerance == D("0.150") and not rows["function"].enabled
    template.refresh_from_db()
    assert template.name == "Maison" and template.updated_by == h.quality
    assert AuditEntry.objects.filter(action="quality.template.update").exists()


@pytest.mark.parametrize("criteria, field", [
    ([{"kind": "weight", "tolerance": "0"}], "criteria.weight.tolerance"),
    ([{"kind": "weight", "tolerance": "25"}], "criteria.weight.tolerance"),
    ([{"kind": "weight", "tolerance": "1.234"}], "criteria.weight.tolerance"),
    ([{"kind": "weight", "tolerance": None}], "criteria.weight.tolerance"),
    ([{"kind": "dimensions", "tolerance": "x"}], "criteria.dimensions.tolerance"),
    ([{"kind": "fineness", "tolerance": "5"}], "criteria.fineness.tolerance"),
    ([{"kind": "colour"}], "criteria"),
    ([{"kind": "weight"}, {"kind": "weight"}], "criteria"),
    ([{"kind": k, "enabled": False} for k in ("weight", "dimensions", "fineness", "surface",
                                             "stones", "function")], "criteria"),
])
def test_template_update_guards(house_setup, criteria, field):
    h = house_setup
    template = InspectionTemplate.objects.get(is_default=True)
    with pytest.raises(ValidationFailed) as exc:
        services.template_update(actor=h.manager, template_id=template.pk, criteria=criteria)
    assert exc.value.details["field"] == field
    assert InspectionCriterion.objects.get(template=template, kind="weight").tolerance \
        == D("2.000")


def test_template_default_stays_active_and_roles(house_setup):
    h = house_setup
    template = InspectionTemplate.objects.get(is_default=True)
    with pytest.raises(ValidationFailed, match="stays active"):
        services.template_update(actor=h.admin, template_id=template.pk, is_active=False)
    with pytest.raises(PermissionDenied):
        services.template_update(actor=h.sales, template_id=template.pk, name="x")
    with pytest.raises(NotFound):
        services.template_update(actor=h.polisher_member, template_id=template.pk, name="x")
    other = services.template_create(actor=h.manager, code="chains", name="Chains")
    assert other.criteria.count() == 6
    services.template_update(actor=h.manager, template_id=other.pk, is_default=True)
    template.refresh_from_db()
    assert not template.is_default
    with pytest.raises(Conflict):
        services.template_create(actor=h.manager, code="chains", name="Again")
    with pytest.raises(ValidationFailed):
        services.template_create(actor=h.manager, code="Bad Code", name="x")
