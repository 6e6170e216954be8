"""Stone setting services: the plan and its groups (stones reserved through the materials
ledger, never beyond what is free), the check before the setter, reopening, the gates, and the
control on return (counts, breakage through the ledger, pass/fail computed, hold on failure)."""

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
from etabli.materials import stone_services
from etabli.materials.models import (
    AllocationStatus,
    EntryKind,
    LocationKind,
    StoneAllocation,
    StoneEntry,
)
from etabli.materials.services import lot_free_in_vault
from etabli.production.models import PieceStatus, StepStatus
from etabli.production.services import piece_release, piece_rework, piece_start, pieces_send
from etabli.stonesetting import services
from etabli.stonesetting.models import (
    PlanStatus,
    SettingControl,
    SettingGroup,
    SettingPlan,
)
from etabli.workshops.models import StepKind
from tests.stonesetting.helpers import (
    back_from_setting,
    check,
    counts,
    group,
    issue_stones_to_setter,
    piece_at_setting,
    plan_with_lot,
    png,
    stones_line,
)
from tests.stonesetting.support import stone_lot

pytestmark = pytest.mark.django_db
D = Decimal


def rows() -> tuple[int, ...]:
    return (SettingPlan.objects.count(), SettingGroup.objects.count(),
            StoneAllocation.objects.count(), SettingControl.objects.count(),
            StoneEntry.objects.count())


# ---------------------------------------------------------------------------------------------
# the plan and its groups


def test_manager_plans_groups_and_their_stones_are_reserved_in_the_ledger(h, at_setting):
    lot = stone_lot(h, count=100, carats="1.000", size_mm="1.30", sieve="+6.5-7")
    plan = services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    assert plan.status == PlanStatus.DRAFT and plan.revision == 1
    g = services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=12, lot_id=lot.pk))
    # Type, shape, size and sieve come from the lot; the carats of 12 average stones are
    # reserved for the piece.
    assert (g.stone_type, g.shape, g.size_mm, g.sieve) == ("diamond", "round", D("1.30"),
                                                          "+6.5-7")
    alloc = g.allocation
    assert (alloc.piece_id, alloc.lot_id, alloc.count, alloc.carats, alloc.status) == (
        at_setting.pk, lot.pk, 12, D("0.120"), AllocationStatus.RESERVED)
    assert lot_free_in_vault(lot) == (88, D("0.880"))
    assert AuditEntry.objects.filter(action="setting_group.add", piece_id=at_setting.pk).exists()
    assert AuditEntry.objects.filter(action="stone.allocate", piece_id=at_setting.pk).exists()


def test_stones_are_never_reserved_beyond_what_the_lot_has_free(h, at_setting):
    lot = stone_lot(h, count=10, carats="0.100")
    other = piece_at_setting(h)
    stone_services.stone_allocate(actor=h.manager, piece_id=other.pk, lot_id=lot.pk, count=4,
                                  carats="0.040")
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    before = rows()
    with pytest.raises(Conflict) as exc:
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=7, lot_id=lot.pk))
    assert "6 stones" in exc.value.message and exc.value.code == "insufficient_stones"
    assert rows() == before
    g = services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=6, lot_id=lot.pk))
    assert g.allocation.count == 6 and lot_free_in_vault(lot)[0] == 0


@pytest.mark.parametrize("who", ["manager", "admin", "designer"])
def test_house_roles_that_draft_a_plan(h, at_setting, who):
    plan = services.setting_plan_create(actor=getattr(h, who), piece_id=at_setting.pk,
                                        groups=[group(stone_type="diamond", shape="round",
                                                      size_mm="1.30")])
    assert plan.groups.count() == 1 and plan.created_by == getattr(h, who)


@pytest.mark.parametrize("who", ["sales", "quality", "logistics"])
def test_other_house_roles_do_not_draft(h, at_setting, who):
    with pytest.raises(PermissionDenied):
        services.setting_plan_create(actor=getattr(h, who), piece_id=at_setting.pk)
    assert not SettingPlan.objects.exists()


def test_workshops_and_clients_do_not_draft(h, at_setting):
    # The setter sees the plan of a piece coming to it, but may not write it; the caster, where
    # the piece is, neither; a client cannot even see it.
    for member in (h.setter_member, h.caster_member):
        with pytest.raises(PermissionDenied):
            services.setting_plan_create(actor=member, piece_id=at_setting.pk)
    with pytest.raises(NotFound):
        services.setting_plan_create(actor=h.client_contact, piece_id=at_setting.pk)
    with pytest.raises(NotFound):
        services.setting_plan_create(actor=h.polisher_member, piece_id=at_setting.pk)
    assert not SettingPlan.objects.exists()


def test_designer_drafts_but_only_the_vault_keepers_reserve_stones(h, at_setting):
    lot = stone_lot(h)
    services.setting_plan_create(actor=h.designer, piece_id=at_setting.pk)
    before = rows()
    with pytest.raises(PermissionDenied) as exc:
        services.setting_group_add(actor=h.designer, piece_id=at_setting.pk,
                                   **group(lot_id=lot.pk))
    assert exc.value.details["field"] == "lot_id" and rows() == before
    g = services.setting_group_add(actor=h.designer, piece_id=at_setting.pk,
                                   **group(stone_type="diamond", shape="round", size_mm="1.3"))
    assert g.lot is None and g.allocation is None
    # The manager then chooses the lot: the stones are reserved.
    g = services.setting_group_update(actor=h.manager, group_id=g.pk, lot_id=lot.pk)
    assert g.allocation.count == 12 and g.lot == lot


def test_a_piece_has_one_plan_and_a_delivered_piece_none(h, at_setting):
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    with pytest.raises(Conflict) as exc:
        services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    assert exc.value.code == "plan_exists"
    plain = h.launched_piece(skip={StepKind.SETTING: {"reason": "other", "comment": "Plain."},
                                   **{k: v for k, v in _skips().items()}})
    h.walk(plain)
    with pytest.raises(TransitionNotAllowed):
        services.setting_plan_create(actor=h.manager, piece_id=plain.pk)


def _skips():
    from tests.stonesetting.helpers import CATALOGUE_SKIPS

    return CATALOGUE_SKIPS


@pytest.mark.parametrize("fields, field", [
    ({"setting_type": "glue"}, "setting_type"),
    ({"setting_type": ""}, "setting_type"),
    ({"position": "inside"}, "position"),
    ({"count": 0}, "count"),
    ({"count": "twelve"}, "count"),
    ({"count": True}, "count"),
    ({"count": None}, "count"),
    ({"carats": "-1"}, "carats"),
    ({"carats": "0.1234"}, "carats"),
    ({"size_mm": "0"}, "size_mm"),
    ({"size_mm": "abc"}, "size_mm"),
    ({"size_mm": "1.234"}, "size_mm"),
    ({"size_mm": None, "sieve": ""}, "size_mm"),
    ({"stone_type": "glass"}, "stone_type"),
    ({"stone_type": None}, "stone_type"),
    ({"shape": "blob"}, "shape"),
    ({"note": "x" * 241}, "note"),
    ({"colour": "blue"}, "colour"),
    ({"supplied_by_client": "perhaps"}, "supplied_by_client"),
])
def test_bad_group_fields_are_refused_and_name_the_field(h, at_setting, fields, field):
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    data = group(stone_type="diamond", shape="round", size_mm="1.30") | fields
    before = rows()
    with pytest.raises(ValidationFailed) as exc:
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk, **data)
    assert exc.value.details["field"] == field
    assert rows() == before


def test_the_lot_must_hold_the_stones_the_group_names(h, at_setting):
    sapphires = stone_lot(h, stone_type="sapphire", shape="oval", count=5, carats="6.000",
                          size_mm="6.00")
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    with pytest.raises(ValidationFailed) as exc:
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, lot_id=sapphires.pk, stone_type="diamond"))
    assert "sapphire" in exc.value.message and exc.value.details["field"] == "stone_type"
    with pytest.raises(ValidationFailed) as exc:
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, lot_id=sapphires.pk, shape="pear"))
    assert exc.value.details["field"] == "shape"
    with pytest.raises(NotFound):
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, lot_id=999999))
    with pytest.raises(ValidationFailed) as exc:
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, lot_id=sapphires.pk,
                                           supplied_by_client=True))
    assert exc.value.details["field"] == "lot_id"
    assert not StoneAllocation.objects.exists()


def test_the_clients_own_stones_need_no_lot(h, at_setting):
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    g = services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, position="centre", setting_type="bezel",
                                           stone_type="diamond", shape="other",
                                           supplied_by_client=True, carats="0.800"))
    assert g.supplied_by_client and g.lot is None and g.allocation is None


def test_changing_a_group_moves_its_reservation_only_when_the_stones_change(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting, count=12, carats=None)
    g = plan.groups.get()
    first = g.allocation
    g = services.setting_group_update(actor=h.manager, group_id=g.pk, note="Grain by hand.",
                                      setting_type="pave")
    assert g.allocation == first and g.note == "Grain by hand."
    g = services.setting_group_update(actor=h.manager, group_id=g.pk, count=14)
    first.refresh_from_db()
    assert first.status == AllocationStatus.RELEASED
    assert g.allocation.count == 14 and g.allocation.status == AllocationStatus.RESERVED
    assert lot_free_in_vault(lot)[0] == 86
    other = stone_lot(h, count=50, carats="0.500")
    g = services.setting_group_update(actor=h.manager, group_id=g.pk, lot_id=other.pk)
    assert g.lot == other and g.allocation.lot == other
    assert lot_free_in_vault(lot)[0] == 100 and lot_free_in_vault(other)[0] == 36
    g = services.setting_group_update(actor=h.manager, group_id=g.pk, lot_id=None)
    assert g.lot is None and g.allocation is None and lot_free_in_vault(other)[0] == 50


def test_a_designer_cannot_move_a_reservation(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    g = plan.groups.get()
    with pytest.raises(PermissionDenied):
        services.setting_group_update(actor=h.designer, group_id=g.pk, count=10)
    g = services.setting_group_update(actor=h.designer, group_id=g.pk, note="Check the seats.")
    assert g.allocation.count == 12


def test_stones_issued_to_the_setter_stay_with_their_group(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    g = plan.groups.get()
    issue_stones_to_setter(h, at_setting)
    with pytest.raises(TransitionNotAllowed):
        services.setting_group_update(actor=h.manager, group_id=g.pk, count=13)
    with pytest.raises(TransitionNotAllowed):
        services.setting_group_update(actor=h.manager, group_id=g.pk, lot_id=None)
    with pytest.raises(TransitionNotAllowed):
        services.setting_group_remove(actor=h.manager, group_id=g.pk)
    # Fewer stones needed than were issued: the issued stones still cover the group.
    g = services.setting_group_update(actor=h.manager, group_id=g.pk, count=11)
    assert g.allocation.status == AllocationStatus.ISSUED and g.allocation.count == 12


def test_an_allocation_made_on_the_stone_pages_can_be_the_groups(h, at_setting):
    lot = stone_lot(h)
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=at_setting.pk,
                                          lot_id=lot.pk, count=14, carats="0.140")
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    g = services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=12, allocation_id=alloc.pk))
    assert g.allocation == alloc and g.lot == lot and StoneAllocation.objects.count() == 1
    with pytest.raises(Conflict):
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, allocation_id=alloc.pk))
    with pytest.raises(ValidationFailed) as exc:
        services.setting_group_update(actor=h.manager, group_id=g.pk, allocation_id=alloc.pk,
                                      count=15)
    assert exc.value.details["field"] == "count"
    # Another piece's allocation is not this piece's.
    other = piece_at_setting(h)
    theirs = stone_services.stone_allocate(actor=h.manager, piece_id=other.pk, lot_id=lot.pk,
                                           count=1, carats="0.010")
    with pytest.raises(NotFound):
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=1, allocation_id=theirs.pk))


def test_removing_a_group_gives_its_stones_back(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    g = plan.groups.get()
    services.setting_group_remove(actor=h.manager, group_id=g.pk)
    assert not plan.groups.exists() and lot_free_in_vault(lot)[0] == 100
    assert AuditEntry.objects.filter(action="setting_group.remove").exists()
    with pytest.raises(NotFound):
        services.setting_group_remove(actor=h.manager, group_id=g.pk)


def test_groups_set_replaces_the_groups_freeing_stones_first(h, at_setting):
    lot = stone_lot(h, count=12, carats="0.120")
    plan, _lot = plan_with_lot(h, at_setting, lot=lot)
    g = plan.groups.get()
    # The 12 stones are all reserved by group 1: replacing it by two groups of 6 works only
    # because the old group's stones are released first.
    plan = services.setting_plan_groups_set(
        actor=h.manager, piece_id=at_setting.pk,
        groups=[group(count=6, lot_id=lot.pk, position="centre"),
                group(count=6, lot_id=lot.pk, position="halo")])
    assert [x.count for x in plan.groups.order_by("number")] == [6, 6]
    assert not SettingGroup.objects.filter(pk=g.pk).exists()
    first = plan.groups.order_by("number").first()
    plan = services.setting_plan_groups_set(
        actor=h.manager, piece_id=at_setting.pk,
        groups=[{"id": first.pk, "note": "Centre first."}])
    assert list(plan.groups.values_list("note", flat=True)) == ["Centre first."]
    assert lot_free_in_vault(lot)[0] == 6
    with pytest.raises(NotFound):
        services.setting_plan_groups_set(actor=h.manager, piece_id=at_setting.pk,
                                         groups=[{"id": 999999, "count": 1}])
    with pytest.raises(ValidationFailed):
        services.setting_plan_groups_set(actor=h.manager, piece_id=at_setting.pk,
                                         groups=[{"id": first.pk}, {"id": first.pk}])
    with pytest.raises(ValidationFailed):
        services.setting_plan_groups_set(actor=h.manager, piece_id=at_setting.pk,
                                         groups=["not a group"])


# ---------------------------------------------------------------------------------------------
# the check and reopening


@pytest.mark.parametrize("who", ["manager", "admin", "quality"])
def test_the_check_records_who_and_when(h, at_setting, who):
    plan_with_lot(h, at_setting)
    plan = check(h, at_setting, actor=getattr(h, who))
    assert plan.status == PlanStatus.CHECKED and plan.checked_by == getattr(h, who)
    assert plan.checked_at is not None and plan.stones_match and plan.preparation_checked
    entry = AuditEntry.objects.get(action="setting_plan.check", piece_id=at_setting.pk)
    assert entry.after["comparison"]["planned_count"] == 12
    assert entry.after["comparison"]["count_matches"] is True


@pytest.mark.parametrize("who", ["designer", "sales", "logistics", "setter_member"])
def test_other_roles_do_not_check(h, at_setting, who):
    plan_with_lot(h, at_setting)
    with pytest.raises(PermissionDenied):
        check(h, at_setting, actor=getattr(h, who))
    assert SettingPlan.objects.get().status == PlanStatus.DRAFT


def test_the_check_needs_stones_allocated_for_every_group(h, at_setting):
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk)
    with pytest.raises(ValidationFailed) as exc:
        check(h, at_setting)
    assert exc.value.details["field"] == "groups"
    lot = stone_lot(h)
    services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                               **group(count=10, lot_id=lot.pk))
    services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                               **group(count=2, position="centre", stone_type="diamond",
                                       shape="round", size_mm="2.00"))
    with pytest.raises(ValidationFailed) as exc:
        check(h, at_setting)
    assert exc.value.code == "allocations_missing" and exc.value.details["groups"] == [2]
    assert "group 2" in exc.value.message
    # Stones released on the stone pages leave the group uncovered too.
    g1 = SettingGroup.objects.get(number=1)
    stone_services.stone_allocation_release(actor=h.manager, allocation_id=g1.allocation_id)
    services.setting_group_update(actor=h.manager, group_id=SettingGroup.objects.get(
        number=2).pk, supplied_by_client=True)
    with pytest.raises(ValidationFailed) as exc:
        check(h, at_setting)
    assert exc.value.details["groups"] == [1]


@pytest.mark.parametrize("field", ["stones_match", "preparation_checked"])
def test_both_confirmations_are_needed(h, at_setting, field):
    plan_with_lot(h, at_setting)
    with pytest.raises(ValidationFailed) as exc:
        check(h, at_setting, **{field: False})
    assert exc.value.details["field"] == field


def test_a_plan_departing_from_the_budget_needs_a_note_saying_why(h, at_setting):
    plan_with_lot(h, at_setting, count=14, carats="0.140")
    with pytest.raises(ValidationFailed) as exc:
        check(h, at_setting)
    assert exc.value.details["field"] == "note" and "14 stones" in exc.value.message
    plan = check(h, at_setting, note="Client approved 14 stones at design round 2.")
    assert plan.check_note.startswith("Client approved")


@pytest.mark.parametrize("carats, needs_note", [("0.126", False), ("0.114", False),
                                                ("0.127", True), ("0.113", True)])
def test_carats_match_the_budget_within_five_percent(h, at_setting, carats, needs_note):
    plan_with_lot(h, at_setting, count=12, carats=carats)
    if needs_note:
        with pytest.raises(ValidationFailed):
            check(h, at_setting)
    else:
        assert check(h, at_setting).status == PlanStatus.CHECKED


def test_without_a_budget_the_person_compares_with_the_line(h):
    piece = piece_at_setting(h, line=stones_line(budget_stone_count=None,
                                                 budget_stone_ct=None))
    plan_with_lot(h, piece, count=20)
    assert check(h, piece).status == PlanStatus.CHECKED


def test_a_checked_plan_is_read_only_until_reopened_and_reopening_is_audited(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    g = plan.groups.get()
    check(h, at_setting)
    with pytest.raises(TransitionNotAllowed):
        check(h, at_setting)
    for call in (lambda: services.setting_group_update(actor=h.manager, group_id=g.pk,
                                                       note="x"),
                 lambda: services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                                    **group(count=1, lot_id=lot.pk)),
                 lambda: services.setting_group_remove(actor=h.manager, group_id=g.pk)):
        with pytest.raises(TransitionNotAllowed):
            call()
    for who in (h.quality, h.designer, h.sales):
        with pytest.raises(PermissionDenied):
            services.setting_plan_reopen(actor=who, piece_id=at_setting.pk, reason="Change")
    with pytest.raises(ValidationFailed):
        services.setting_plan_reopen(actor=h.manager, piece_id=at_setting.pk, reason="  ")
    plan = services.setting_plan_reopen(actor=h.manager, piece_id=at_setting.pk,
                                        reason="The client wants rubies on the shoulders.")
    assert (plan.status, plan.revision, plan.checked_by, plan.stones_match) == (
        PlanStatus.DRAFT, 2, None, False)
    entry = AuditEntry.objects.get(action="setting_plan.reopen")
    assert entry.before["status"] == "checked" and entry.after["reason"].startswith("The client")
    with pytest.raises(TransitionNotAllowed):
        services.setting_plan_reopen(actor=h.manager, piece_id=at_setting.pk, reason="Again")
    services.setting_group_update(actor=h.manager, group_id=g.pk, note="Editable again.")


# ---------------------------------------------------------------------------------------------
# the gate before the setter


def test_a_piece_with_stones_goes_to_the_setter_only_with_a_checked_plan(h, at_setting):
    with pytest.raises(TransitionNotAllowed) as exc:
        pieces_send(actor=h.caster_member, piece_ids=[at_setting.pk])
    assert exc.value.code == "setting_plan_missing"
    assert f"/setting/pieces/{at_setting.pk}/" in exc.value.message
    plan_with_lot(h, at_setting)
    with pytest.raises(TransitionNotAllowed) as exc:
        pieces_send(actor=h.caster_member, piece_ids=[at_setting.pk])
    assert exc.value.code == "setting_plan_not_checked" and "checked" in exc.value.message
    check(h, at_setting)
    # Stones released behind the plan's back: the gate sees it.
    alloc = StoneAllocation.objects.get()
    stone_services.stone_allocation_release(actor=h.manager, allocation_id=alloc.pk)
    with pytest.raises(TransitionNotAllowed) as exc:
        pieces_send(actor=h.caster_member, piece_ids=[at_setting.pk])
    assert exc.value.code == "setting_allocations_missing" and "group 1" in exc.value.message
    at_setting.refresh_from_db()
    assert at_setting.status == PieceStatus.READY


def test_sending_with_a_checked_plan(h, at_setting):
    plan_with_lot(h, at_setting)
    check(h, at_setting)
    slip = pieces_send(actor=h.caster_member, piece_ids=[at_setting.pk])
    assert slip.to_workshop == h.setter


def test_a_piece_without_stones_or_a_setting_step_is_untouched(h):
    from tests.stonesetting.helpers import CATALOGUE_SKIPS

    plain = h.launched_piece(skip=CATALOGUE_SKIPS)  # the default line lists no stones
    h.walk(plain, to=StepKind.SETTING)
    pieces_send(actor=h.caster_member, piece_ids=[plain.pk])
    h.walk(plain)
    assert not SettingPlan.objects.exists() and not SettingControl.objects.exists()
    no_setting = h.launched_piece(lines=[stones_line()], skip=CATALOGUE_SKIPS | {
        StepKind.SETTING: {"reason": "other", "comment": "Stones glued by the client."}})
    h.walk(no_setting)
    no_setting.refresh_from_db()
    assert no_setting.status == PieceStatus.DELIVERED


# ---------------------------------------------------------------------------------------------
# the control on return


@pytest.fixture
def returned(h, at_setting):
    plan_with_lot(h, at_setting)
    check(h, at_setting)
    return back_from_setting(h, at_setting)


def test_the_step_after_setting_starts_only_after_its_control(h, returned):
    with pytest.raises(TransitionNotAllowed) as exc:
        piece_start(actor=h.polisher_member, piece_id=returned.pk)
    assert exc.value.code == "setting_control_missing"
    assert f"/setting/pieces/{returned.pk}/" in exc.value.message
    plan = SettingPlan.objects.get()
    control = services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                              stones_secure=True, counts=counts(plan),
                                              notes="All grains closed.")
    assert control.passed and control.workshop == h.polisher
    assert control.recorded_by == h.polisher_member and control.plan_revision == 1
    assert [(c.planned, c.counted) for c in control.counts.all()] == [(12, 12)]
    assert AuditEntry.objects.filter(action="setting_control.record").exists()
    piece_start(actor=h.polisher_member, piece_id=returned.pk)


@pytest.mark.parametrize("secure, counted, passed", [
    (True, 12, True), (False, 12, False), (True, 11, False), (True, 13, False)])
def test_pass_or_fail_is_computed(h, returned, secure, counted, passed):
    plan = SettingPlan.objects.get()
    control = services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                              stones_secure=secure,
                                              counts=counts(plan, g1=counted))
    assert control.passed is passed
    returned.refresh_from_db()
    assert (returned.status == PieceStatus.ON_HOLD) is (not passed)


def test_a_failed_control_holds_the_piece_until_it_is_set_again(h, returned):
    plan = SettingPlan.objects.get()
    control = services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                              stones_secure=False, counts=counts(plan, g1=11))
    returned.refresh_from_db()
    hold = control.hold_event
    assert returned.status == PieceStatus.ON_HOLD and hold.reason == "quality_stop"
    assert "11 of 12" in hold.comment and "not secure" in hold.comment
    # Released by mistake: the gate still stops the next step.
    piece_release(actor=h.manager, piece_id=returned.pk)
    with pytest.raises(TransitionNotAllowed) as exc:
        piece_start(actor=h.polisher_member, piece_id=returned.pk)
    assert exc.value.code == "setting_control_failed"
    from etabli.production.services import piece_hold

    piece_hold(actor=h.manager, piece_id=returned.pk, reason="quality_stop")
    setting_run = returned.runs.get(step=StepKind.SETTING)
    piece_rework(actor=h.quality, piece_id=returned.pk, target_run_id=setting_run.pk,
                 comment="One grain missing on the band: re-set.")
    returned.refresh_from_db()
    assert returned.current_step == StepKind.SETTING and returned.rework_count == 1
    # Back to the setter (the plan is still checked), set again, controlled again.
    h.finish_step(returned)
    h.bring(returned)
    second = services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                             stones_secure=True, counts=counts(plan))
    assert second.passed and second.setting_run != control.setting_run
    piece_start(actor=h.polisher_member, piece_id=returned.pk)


def test_the_control_is_due_only_when_the_piece_is_back(h, at_setting):
    plan, _lot = plan_with_lot(h, at_setting)
    check(h, at_setting)
    args = {"stones_secure": True, "counts": counts(plan)}
    with pytest.raises(TransitionNotAllowed) as exc:
        services.setting_control_record(actor=h.manager, piece_id=at_setting.pk, **args)
    assert exc.value.code == "control_not_due" and "not back" in exc.value.message
    h.finish_step(at_setting)  # set; now ready to go to the polisher, still at the setter
    with pytest.raises(TransitionNotAllowed) as exc:
        services.setting_control_record(actor=h.manager, piece_id=at_setting.pk, **args)
    assert "receive it there" in exc.value.message
    pieces_send(actor=h.setter_member, piece_ids=[at_setting.pk])
    with pytest.raises(TransitionNotAllowed):  # in transit
        services.setting_control_record(actor=h.manager, piece_id=at_setting.pk, **args)
    h.advance(at_setting)  # received at the polisher
    services.setting_control_record(actor=h.manager, piece_id=at_setting.pk, **args)
    with pytest.raises(TransitionNotAllowed) as exc:
        services.setting_control_record(actor=h.manager, piece_id=at_setting.pk, **args)
    assert "already recorded" in exc.value.message


@pytest.mark.parametrize("who, error", [
    ("polisher_member", None), ("manager", None), ("admin", None), ("quality", None),
    ("setter_member", NotFound), ("caster_member", NotFound),
    ("sales", PermissionDenied), ("designer", PermissionDenied),
    ("logistics", PermissionDenied), ("client_contact", NotFound)])
def test_who_records_the_control(h, returned, who, error):
    plan = SettingPlan.objects.get()
    args = {"actor": getattr(h, who), "piece_id": returned.pk, "stones_secure": True,
            "counts": counts(plan)}
    if error is None:
        assert services.setting_control_record(**args).passed
    else:
        with pytest.raises(error):
            services.setting_control_record(**args)
        assert not SettingControl.objects.exists()


@pytest.mark.parametrize("kwargs, field", [
    ({"counts": []}, "counts"),
    ({"counts": "all"}, "counts"),
    ({"counts": [{"group_id": 999999, "counted": 1}]}, "counts[0].group_id"),
    ({"counts": [{"counted": 12}]}, "counts[0].group_id"),
    ({"counts": ["x"]}, "counts[0]"),
    ({"stones_secure": None}, "stones_secure"),
    ({"stones_secure": "maybe"}, "stones_secure"),
    ({"notes": "x" * 4001}, "notes"),
    ({"client_ref": "x" * 65}, "client_ref"),
])
def test_bad_control_input_is_refused_and_nothing_is_written(h, returned, kwargs, field):
    plan = SettingPlan.objects.get()
    args = {"stones_secure": True, "counts": counts(plan)} | kwargs
    with pytest.raises(ValidationFailed) as exc:
        services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk, **args)
    assert exc.value.details["field"] == field
    assert not SettingControl.objects.exists()
    returned.refresh_from_db()
    assert returned.status != PieceStatus.ON_HOLD


@pytest.mark.parametrize("counted", [-1, "x", None, True, 100001])
def test_a_count_is_a_whole_number_of_stones(h, returned, counted):
    plan = SettingPlan.objects.get()
    with pytest.raises(ValidationFailed) as exc:
        services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                        stones_secure=True, counts=counts(plan, g1=counted))
    assert exc.value.details["field"] == "counts[0].counted"


def test_every_group_is_counted_once(h, at_setting):
    lot = stone_lot(h)
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk, groups=[
        group(count=10, lot_id=lot.pk), group(count=2, lot_id=lot.pk, position="centre")])
    check(h, at_setting)
    back_from_setting(h, at_setting)
    plan = SettingPlan.objects.get()
    first = plan.groups.get(number=1)
    with pytest.raises(ValidationFailed) as exc:
        services.setting_control_record(actor=h.polisher_member, piece_id=at_setting.pk,
                                        stones_secure=True,
                                        counts=[{"group_id": first.pk, "counted": 10}])
    assert "2 not counted" in exc.value.message
    with pytest.raises(ValidationFailed):
        services.setting_control_record(actor=h.polisher_member, piece_id=at_setting.pk,
                                        stones_secure=True,
                                        counts=counts(plan) + [{"group_id": first.pk,
                                                                "counted": 10}])
    control = services.setting_control_record(actor=h.polisher_member, piece_id=at_setting.pk,
                                              stones_secure=True,
                                              counts={first.pk: 10,
                                                      plan.groups.get(number=2).pk: "2"})
    assert control.passed


def test_the_same_client_ref_records_once(h, returned):
    plan = SettingPlan.objects.get()
    args = {"actor": h.polisher_member, "piece_id": returned.pk, "stones_secure": True,
            "counts": counts(plan), "client_ref": "ctl-1"}
    first = services.setting_control_record(**args)
    again = services.setting_control_record(**args)
    assert again.pk == first.pk and again.replayed and SettingControl.objects.count() == 1
    other = piece_at_setting(h)
    plan_with_lot(h, other)
    check(h, other)
    back_from_setting(h, other)
    with pytest.raises(Conflict):
        services.setting_control_record(**args | {"piece_id": other.pk,
                                                  "counts": counts(SettingPlan.objects.get(
                                                      piece=other))})


def test_breakage_at_the_setter_is_booked_in_the_stone_ledger(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    check(h, at_setting)
    issue_stones_to_setter(h, at_setting)
    back_from_setting(h, at_setting)
    g = plan.groups.get()
    control = services.setting_control_record(
        actor=h.manager, piece_id=at_setting.pk, stones_secure=True, counts=counts(plan, g1=11),
        breakages=[{"group_id": g.pk, "count": 1, "reason": "Chipped while closing the grain."}])
    assert not control.passed
    entry = control.stone_entries.get()
    assert (entry.kind, entry.count, entry.carats, entry.lot_id, entry.piece_id) == (
        EntryKind.BREAKAGE, 1, D("0.010"), lot.pk, at_setting.pk)
    assert entry.from_location.workshop_id == h.setter.pk
    assert entry.to_location.kind == LocationKind.BROKEN and entry.workshop_id == h.setter.pk
    row = control.counts.get()
    assert (row.counted, row.broken, row.lost) == (11, 1, 0)


def test_a_lost_stone_and_a_breakage_beyond_the_setters_holding(h, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    check(h, at_setting)
    issue_stones_to_setter(h, at_setting)
    back_from_setting(h, at_setting)
    g = plan.groups.get()
    before = rows()
    # The setter holds 12 stones of the lot: 13 cannot have broken there.
    with pytest.raises(Conflict):
        services.setting_control_record(
            actor=h.manager, piece_id=at_setting.pk, stones_secure=True, counts=counts(plan),
            breakages=[{"group_id": g.pk, "count": 13, "reason": "Dropped"}])
    assert rows() == before
    control = services.setting_control_record(
        actor=h.manager, piece_id=at_setting.pk, stones_secure=True, counts=counts(plan),
        breakages=[{"group_id": g.pk, "count": 1, "lost": True, "carats": "0.011",
                    "reason": "Spare sprang from the tweezers."}])
    assert control.passed  # the piece has all its stones; a spare was lost
    entry = control.stone_entries.get()
    assert (entry.kind, entry.carats) == (EntryKind.LOST, D("0.011"))
    assert control.counts.get().lost == 1


def test_only_the_vault_keepers_book_stones_from_a_control(h, at_setting):
    plan, _lot = plan_with_lot(h, at_setting)
    check(h, at_setting)
    issue_stones_to_setter(h, at_setting)
    back_from_setting(h, at_setting)
    g = plan.groups.get()
    breakage = [{"group_id": g.pk, "count": 1, "reason": "Chipped."}]
    for who in (h.polisher_member, h.quality):
        with pytest.raises(PermissionDenied) as exc:
            services.setting_control_record(actor=who, piece_id=at_setting.pk,
                                            stones_secure=True, counts=counts(plan),
                                            breakages=breakage)
        assert "production manager" in exc.value.message
    assert not SettingControl.objects.exists() and not StoneEntry.objects.filter(
        kind=EntryKind.BREAKAGE).exists()


@pytest.mark.parametrize("item, field", [
    ({"group_id": 999999, "count": 1, "reason": "x"}, "breakages[0].group_id"),
    ({"count": 1, "reason": "x"}, "breakages[0].group_id"),
    ({"count": 0, "reason": "x"}, "breakages[0].count"),
    ({"count": 1, "reason": ""}, "breakages[0].reason"),
    ({"count": 1, "reason": "x", "carats": "abc"}, "breakages[0].carats"),
    ({"count": 1, "reason": "x", "lost": "perhaps"}, "breakages[0].lost"),
])
def test_bad_breakages_are_refused(h, returned, item, field):
    plan = SettingPlan.objects.get()
    if "group_id" not in item and field != "breakages[0].group_id":
        item = item | {"group_id": plan.groups.get().pk}
    with pytest.raises(ValidationFailed) as exc:
        services.setting_control_record(actor=h.manager, piece_id=returned.pk,
                                        stones_secure=True, counts=counts(plan),
                                        breakages=[item])
    assert exc.value.details["field"] == field
    assert not SettingControl.objects.exists()


def test_the_clients_stones_are_not_in_the_ledger(h, at_setting):
    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk, groups=[
        group(count=12, stone_type="diamond", shape="round", size_mm="1.30",
              supplied_by_client=True)])
    check(h, at_setting)
    back_from_setting(h, at_setting)
    plan = SettingPlan.objects.get()
    with pytest.raises(ValidationFailed) as exc:
        services.setting_control_record(
            actor=h.manager, piece_id=at_setting.pk, stones_secure=True, counts=counts(plan),
            breakages=[{"group_id": plan.groups.get().pk, "count": 1, "reason": "Chipped"}])
    assert "client" in exc.value.message


def test_photos_of_the_control_are_documents_of_the_piece(h, returned, media):
    plan = SettingPlan.objects.get()
    control = services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                              stones_secure=True, counts=counts(plan),
                                              photos=[png("a.png"), png("b.png", "red")])
    docs = list(control.photos.all())
    assert len(docs) == 2 and {d.piece_id for d in docs} == {returned.pk}
    assert {d.kind for d in docs} == {"photo"} and docs[0].uploaded_by == h.polisher_member
    services.setting_control_add_photos(actor=h.polisher_member, control_id=control.pk,
                                        photos=[png("c.png")])
    assert control.photos.count() == 3
    with pytest.raises(PermissionDenied):
        services.setting_control_add_photos(actor=h.sales, control_id=control.pk,
                                            photos=[png("d.png")])
    with pytest.raises(ValidationFailed):
        services.setting_control_add_photos(actor=h.manager, control_id=control.pk, photos=[])


def test_a_file_that_is_not_a_photo_records_no_control(h, returned, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    plan = SettingPlan.objects.get()
    page = SimpleUploadedFile("x.png", b"<html><script>alert(1)</script></html>",
                              content_type="image/png")
    with pytest.raises(ValidationFailed):
        services.setting_control_record(actor=h.polisher_member, piece_id=returned.pk,
                                        stones_secure=True, counts=counts(plan), photos=[page])
    assert not SettingControl.objects.exists()


# ---------------------------------------------------------------------------------------------
# who sees plans


def test_who_sees_a_plan(h, at_setting, other_setter):
    plan_with_lot(h, at_setting)
    visible = SettingPlan.objects.visible_to
    for who in (h.admin, h.manager, h.sales, h.designer, h.quality, h.logistics):
        assert visible(who).count() == 1
    # Coming to the setter (its setting step is at the setter) and at the caster.
    assert visible(h.setter_member).count() == 1
    assert visible(h.caster_member).count() == 1
    _ws, galli = other_setter
    for who in (galli, h.polisher_member, h.client_contact):
        assert visible(who).count() == 0
    check(h, at_setting)
    back_from_setting(h, at_setting)
    # Back at the polisher: the setter's part is done.
    assert visible(h.polisher_member).count() == 1
    assert visible(h.setter_member).count() == 0
    assert visible(h.caster_member).count() == 0
    assert visible(galli).count() == 0


def test_rows_and_status_after_a_full_walk(h):
    """The shared walk (tests.stonesetting.support) plans, checks and controls on the way."""
    piece = piece_at_setting(h)
    h.walk(piece)
    piece.refresh_from_db()
    assert piece.status == PieceStatus.DELIVERED
    plan = SettingPlan.objects.get(piece=piece)
    assert plan.status == PlanStatus.CHECKED
    control = SettingControl.objects.get(piece=piece)
    assert control.passed
    assert piece.runs.get(step=StepKind.SETTING).status == StepStatus.DONE
