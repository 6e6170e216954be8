"""Order services: intake, launch sheet, launch gate, deadline buffer, cancel, change requests."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.models import AuditEntry
from etabli.orders.models import (
    CHECKLIST_CODES,
    ChangeRequestStatus,
    ChecklistSection,
    LaunchCheckItem,
    Order,
    OrderStatus,
)
from etabli.orders.services import (
    change_request_assess,
    change_request_create,
    change_request_decide,
    launch_blockers,
    launch_item_set,
    order_cancel,
    order_create,
    order_deadline_check,
    order_launch,
    order_line_add,
    order_line_remove,
    order_line_update,
    order_update,
)
from etabli.production.models import Piece, PieceStatus, StepRun, StepStatus, TrackingEvent
from etabli.production.planning import safety_buffer_days
from etabli.production.routing import order_route_step_skip, order_route_step_update
from etabli.workshops.models import StepKind
from tests.factories import default_line, make_user

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


# ---------------------------------------------------------------------------------------------
# order_create


def test_order_create_builds_a_draft_with_sheet_and_route(house_setup):
    h = house_setup
    order = order_create(actor=h.sales, client_id=h.client.pk, client_reference="PO-77",
                         lines=[default_line(quantity=2),
                                {"description": "Custom pendant", "is_custom_design": True,
                                 "alloy": "950pt", "target_price": 0}])
    assert re.fullmatch(rf"ORD-{TODAY().year}-\d{{5}}", order.reference)
    assert order.status == OrderStatus.DRAFT
    assert order.created_by == h.sales
    assert order.currency == "EUR"
    assert order.channel == h.client.channel
    lines = list(order.lines.all())
    assert [(ln.position, ln.quantity, ln.alloy.code) for ln in lines] == [
        (1, 2, "750y"), (2, 1, "950pt")]
    assert lines[0].target_price == Decimal("1200.00")
    assert lines[1].target_price == Decimal("0.00")
    assert sorted(order.checklist.values_list("code", flat=True)) == sorted(CHECKLIST_CODES)
    assert not order.checklist.filter(checked=True).exists()
    assert list(order.route.values_list("step", flat=True)) == list(StepKind.values)
    entry = AuditEntry.objects.get(action="order.create", object_id=str(order.pk))
    assert entry.actor == h.sales
    assert entry.order_id == order.pk
    assert entry.after["status"] == "draft" and entry.after["lines"] == 2


def test_order_references_are_numbered_in_sequence(house_setup):
    first = house_setup.draft_order()
    second = house_setup.draft_order()
    n1, n2 = (int(o.reference.rsplit("-", 1)[1]) for o in (first, second))
    assert n2 == n1 + 1


def test_order_create_unknown_client(house_setup):
    with pytest.raises(NotFound, match="No client with id 999999") as exc:
        order_create(actor=house_setup.sales, client_id=999999, lines=[default_line()])
    assert exc.value.details["field"] == "client_id"
    assert exc.value.status == 404


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ({"description": ""}, "description", "Describe the piece"),
        ({"description": "   "}, "description", "Describe the piece"),
        ({"description": "x" * 241}, "description", "too long"),
        ({"quantity": 0}, "quantity", "between 1 and 500"),
        ({"quantity": 501}, "quantity", "between 1 and 500"),
        ({"quantity": True}, "quantity", "between 1 and 500"),
        ({"quantity": 2.5}, "quantity", "between 1 and 500"),
        ({"quantity": "3"}, "quantity", "between 1 and 500"),
        ({"alloy": "24k-unobtainium"}, "alloy", "Unknown alloy '24k-unobtainium'"),
        ({"target_price": "-0.01"}, "target_price", "must be a positive amount"),
        ({"target_price": "twelve"}, "target_price", "is not an amount"),
        ({"target_price": "NaN"}, "target_price", "must be a positive amount"),
        ({"model_reference": "", "is_custom_design": False}, "model_reference",
         "catalogue model reference or mark the line as a custom design"),
        ({"size": "x" * 31}, "size", "too long"),
    ],
)
def test_order_create_refuses_bad_lines(house_setup, line, field, fragment):
    lines = [default_line(), default_line(**line)]
    with pytest.raises(ValidationFailed) as exc:
        order_create(actor=house_setup.sales, client_id=house_setup.client.pk, lines=lines)
    assert fragment in exc.value.message
    assert exc.value.message.startswith("Line 2: ")
    assert exc.value.details == {"field": field, "line": 2}
    assert not Order.objects.exists()  # nothing half-written


def test_order_create_unknown_alloy_lists_known_ones(house_setup):
    with pytest.raises(ValidationFailed) as exc:
        order_create(actor=house_setup.sales, client_id=house_setup.client.pk,
                     lines=[default_line(alloy="999x")])
    assert "Known alloys:" in exc.value.message and "750y" in exc.value.message


def test_order_create_quantity_bounds_accepted(house_setup):
    order = house_setup.draft_order(lines=[default_line(quantity=1), default_line(quantity=500)])
    assert list(order.lines.values_list("quantity", flat=True)) == [1, 500]


def test_order_create_other_guards(house_setup):
    h = house_setup
    with pytest.raises(ValidationFailed, match="At most 50 lines"):
        h.draft_order(lines=[default_line()] * 51)
    with pytest.raises(ValidationFailed, match="three-letter ISO code"):
        h.draft_order(currency="EURO")
    with pytest.raises(ValidationFailed, match="Unknown channel 'telepathy'"):
        h.draft_order(channel="telepathy")


@pytest.mark.parametrize("role_attr", ["caster_member", "client_contact", "designer", "quality",
                                       "logistics"])
def test_order_create_refused_for_roles_that_do_not_take_orders(house_setup, role_attr):
    actor = getattr(house_setup, role_attr)
    with pytest.raises(PermissionDenied, match="Only sales, production managers") as exc:
        order_create(actor=actor, client_id=house_setup.client.pk, lines=[default_line()])
    assert exc.value.status == 403


@pytest.mark.parametrize("role_attr", ["sales", "manager", "admin"])
def test_order_create_allowed_for_order_roles(house_setup, role_attr):
    order = house_setup.draft_order(actor=getattr(house_setup, role_attr))
    assert order.status == OrderStatus.DRAFT


def test_inactive_sales_user_cannot_create_orders(house_setup):
    user = make_user("sales")
    user.is_active = False
    user.save()
    with pytest.raises(PermissionDenied):
        house_setup.draft_order(actor=user)


# ---------------------------------------------------------------------------------------------
# lines and the launch checklist


def test_order_line_add_update_remove(house_setup):
    h = house_setup
    order = h.draft_order()
    line = order_line_add(actor=h.sales, order_id=order.pk, description="Band", quantity=3,
                          model_reference="B-1", alloy="585w")
    assert line.position == 2
    line = order_line_update(actor=h.sales, order_id=order.pk, line_id=line.pk, quantity=4)
    assert line.quantity == 4 and line.alloy.code == "585w"
    with pytest.raises(ValidationFailed, match="between 1 and 500"):
        order_line_update(actor=h.sales, order_id=order.pk, line_id=line.pk, quantity=0)
    entry = AuditEntry.objects.get(action="order_line.update")
    assert entry.before["quantity"] == 3 and entry.after["quantity"] == 4
    order_line_remove(actor=h.sales, order_id=order.pk, line_id=line.pk)
    assert order.lines.count() == 1
    with pytest.raises(NotFound, match=f"Line {line.pk} is not part of order"):
        order_line_remove(actor=h.sales, order_id=order.pk, line_id=line.pk)


def test_checklist_check_records_who_and_when_and_uncheck_clears(house_setup):
    h = house_setup
    order = h.draft_order()
    before = timezone.now()
    item = launch_item_set(actor=h.sales, order_id=order.pk, code="quote_accepted",
                           note="Signed quote Q-12")
    assert item.checked and item.checked_by == h.sales
    assert before <= item.checked_at <= timezone.now()
    assert item.note == "Signed quote Q-12"
    assert item.section == ChecklistSection.COMMERCIAL
    check = AuditEntry.objects.get(action="launch_item.check")
    assert check.before["checked"] is False and check.after["checked"] is True
    assert check.after["checked_by"] == h.sales.pk and check.order_id == order.pk

    item = launch_item_set(actor=h.manager, order_id=order.pk, code="quote_accepted",
                           checked=False)
    assert not item.checked and item.checked_by is None and item.checked_at is None
    uncheck = AuditEntry.objects.get(action="launch_item.uncheck")
    assert uncheck.actor == h.manager
    assert uncheck.before["checked_by"] == h.sales.pk and uncheck.after["checked_by"] is None


def test_checklist_guards(house_setup):
    h = house_setup
    order = h.draft_order()
    with pytest.raises(NotFound, match="'moon_phase' is not an item of the launch checklist"):
        launch_item_set(actor=h.sales, order_id=order.pk, code="moon_phase")
    for actor in (h.caster_member, h.designer, h.client_contact):
        with pytest.raises(PermissionDenied):
            launch_item_set(actor=actor, order_id=order.pk, code="quote_accepted")
    assert not LaunchCheckItem.objects.filter(checked=True).exists()


# ---------------------------------------------------------------------------------------------
# launch gate


def _blocker_codes(order: Order) -> set[str]:
    return {b["code"] for b in launch_blockers(order)}


def test_launch_lists_every_blocker_of_a_bare_order(house_setup):
    h = house_setup
    order = h.draft_order(lines=[])
    with pytest.raises(TransitionNotAllowed) as exc:
        order_launch(actor=h.sales, order_id=order.pk)
    err = exc.value
    assert err.code == "launch_blocked" and err.status == 409
    codes = [b["code"] for b in err.details["missing"]]
    assert "no_lines" in codes
    assert "no_promised_date" in codes
    assert {c for c in codes if c.startswith("unchecked:")} == {
        f"unchecked:{c}" for c in CHECKLIST_CODES}
    # prototyping, manufacturing, setting and finishing have no workshop in the template
    assert codes.count("step_without_workshop") == 4
    assert "The order has no lines." in err.message
    assert "No workshop chosen for Manufacturing." in err.message
    assert "Commercial: 'Quote accepted' is not checked." in err.message
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT and not order.pieces.exists()


def test_launch_blocked_by_line_without_alloy(house_setup):
    h = house_setup
    order = h.qualified_order(lines=[default_line(), default_line(alloy=None)])
    assert _blocker_codes(order) == {"line_without_alloy"}
    with pytest.raises(TransitionNotAllowed, match="Line 2 has no alloy"):
        order_launch(actor=h.sales, order_id=order.pk)


@pytest.mark.parametrize("blocker", ["no_lines", "unchecked", "no_promised_date",
                                     "step_without_workshop"])
def test_launch_blocked_by_each_missing_thing_alone(house_setup, blocker):
    h = house_setup
    order = h.draft_order(lines=[] if blocker == "no_lines" else None)
    chosen = h.default_assignments()
    if blocker == "step_without_workshop":
        del chosen[StepKind.SETTING]
    for rs in order.route.filter(step__in=list(chosen)):
        order_route_step_update(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                                workshop_id=chosen[rs.step].pk)
    h.check_all(order, except_codes=["stones_confirmed"] if blocker == "unchecked" else ())
    if blocker != "no_promised_date":
        h.promise_realistic(order)
    order.refresh_from_db()
    expected = {"unchecked": "unchecked:stones_confirmed"}.get(blocker, blocker)
    assert _blocker_codes(order) == {expected}
    with pytest.raises(TransitionNotAllowed) as exc:
        order_launch(actor=h.sales, order_id=order.pk)
    assert exc.value.code == "launch_blocked"
    assert [b["code"] for b in exc.value.details["missing"]] == [expected]


def test_a_skipped_step_needs_no_workshop(house_setup):
    h = house_setup
    order = h.qualified_order(skip={StepKind.PROTOTYPING: {"reason": "simple_design"}})
    assert order.route.get(step=StepKind.PROTOTYPING).workshop is None
    assert _blocker_codes(order) == set()
    order_launch(actor=h.sales, order_id=order.pk)
    run = StepRun.objects.get(piece__order=order, step=StepKind.PROTOTYPING)
    assert run.status == StepStatus.SKIPPED and run.skip_reason == "simple_design"


@pytest.mark.parametrize("role_attr,error", [("caster_member", NotFound),
                                              ("designer", NotFound),
                                              ("client_contact", PermissionDenied),
                                              ("quality", NotFound)])
def test_launch_refused_for_other_roles(house_setup, role_attr, error):
    order = house_setup.qualified_order()
    with pytest.raises(error):
        order_launch(actor=getattr(house_setup, role_attr), order_id=order.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT


# ---------------------------------------------------------------------------------------------
# deadline and safety buffer


@pytest.mark.parametrize(("route_days", "buffer"),
                         [(0, 2), (10, 2), (20, 2), (21, 3), (27, 3), (30, 3), (31, 4),
                          (100, 10)])
def test_safety_buffer_is_ten_percent_rounded_up_at_least_two_days(route_days, buffer):
    assert safety_buffer_days(route_days) == buffer


def test_deadline_check_of_the_standard_route(house_setup):
    order = house_setup.qualified_order()
    check = order_deadline_check(order)
    # design 3 + prototyping 5 + manufacturing 10 + setting 4 + finishing 3 + delivery 2;
    # order receipt is over by the launch and does not count.
    assert check.route_days == 27
    assert check.buffer_days == 3
    assert check.planned_finish == TODAY() + dt.timedelta(days=27)
    assert check.earliest_promise == TODAY() + dt.timedelta(days=30)


def test_deadline_check_counts_changed_days_and_ignores_skipped_steps(house_setup):
    h = house_setup
    order = h.qualified_order(skip={StepKind.PROTOTYPING: {"reason": "exact_reproduction"}})
    rs = order.route.get(step=StepKind.MANUFACTURING)
    order_route_step_update(actor=h.manager, order_id=order.pk, step_id=rs.pk, planned_days=30)
    check = order_deadline_check(order)
    assert check.route_days == 3 + 30 + 4 + 3 + 2
    assert check.buffer_days == 5  # ceil(4.2)


def test_launch_refused_when_the_promise_is_inside_the_buffer(house_setup):
    h = house_setup
    order = h.qualified_order()
    earliest = TODAY() + dt.timedelta(days=30)
    order_update(actor=h.sales, order_id=order.pk, promised_date=earliest - dt.timedelta(days=1))
    with pytest.raises(TransitionNotAllowed) as exc:
        order_launch(actor=h.sales, order_id=order.pk)
    err = exc.value
    assert err.code == "deadline_unrealistic"
    assert f"earliest realistic date is {earliest:%Y-%m-%d}" in err.message
    assert "27 days plus a 3-day safety buffer" in err.message
    assert err.details["earliest_realistic_date"] == earliest.isoformat()
    assert err.details["route_days"] == 27 and err.details["buffer_days"] == 3
    assert err.details["ok"] is False
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT

    order_update(actor=h.sales, order_id=order.pk, promised_date=earliest)
    order = order_launch(actor=h.sales, order_id=order.pk)
    assert order.status == OrderStatus.LAUNCHED
    assert order.deadline_override_reason == ""


def test_launch_with_an_unrealistic_date_and_a_reason_records_the_override(house_setup):
    h = house_setup
    order = h.qualified_order()
    order_update(actor=h.sales, order_id=order.pk, promised_date=TODAY() + dt.timedelta(days=10))
    order = order_launch(actor=h.manager, order_id=order.pk,
                         override_reason="  Client's wedding; overtime agreed with the caster ")
    assert order.status == OrderStatus.LAUNCHED
    assert order.deadline_override_reason == "Client's wedding; overtime agreed with the caster"
    entry = AuditEntry.objects.get(action="order.launch", object_id=str(order.pk))
    assert entry.after["deadline_override_reason"] == order.deadline_override_reason
    assert entry.after["deadline"]["ok"] is False
    assert entry.after["deadline"]["earliest_realistic_date"] == (
        TODAY() + dt.timedelta(days=30)).isoformat()


def test_a_blank_override_reason_does_not_override(house_setup):
    h = house_setup
    order = h.qualified_order()
    order_update(actor=h.sales, order_id=order.pk, promised_date=TODAY())
    with pytest.raises(TransitionNotAllowed) as exc:
        order_launch(actor=h.sales, order_id=order.pk, override_reason="   ")
    assert exc.value.code == "deadline_unrealistic"


# ---------------------------------------------------------------------------------------------
# launch


def test_launch_creates_one_piece_per_unit_with_its_route(house_setup):
    h = house_setup
    order = h.qualified_order(lines=[default_line(quantity=2),
                                     default_line(quantity=3, description="Earrings")])
    at_before = timezone.now()
    order = order_launch(actor=h.sales, order_id=order.pk)
    assert order.status == OrderStatus.LAUNCHED
    assert order.launched_by == h.sales and order.launched_at >= at_before

    pieces = list(order.pieces.order_by("line__position", "unit_no"))
    assert len(pieces) == 5
    assert [(p.line.position, p.unit_no) for p in pieces] == [
        (1, 1), (1, 2), (2, 1), (2, 2), (2, 3)]
    serials = [p.serial for p in pieces]
    assert len(set(serials)) == 5
    assert all(re.fullmatch(r"P\d{2}-\d{6}", s) for s in serials)

    for piece in pieces:
        runs = list(piece.runs.order_by("position"))
        assert [r.step for r in runs] == list(StepKind.values)
        assert [r.status for r in runs] == [StepStatus.DONE, StepStatus.READY] + [
            StepStatus.PENDING] * 5
        assert [r.workshop for r in runs] == [h.house, h.house, h.caster, h.caster, h.setter,
                                              h.polisher, h.house]
        # planned one after the other from today
        assert runs[1].planned_start == TODAY()
        for prev, nxt in zip(runs[1:], runs[2:], strict=False):
            assert nxt.planned_start == prev.planned_due
            assert (prev.planned_due - prev.planned_start).days == prev.planned_days
        assert runs[-1].planned_due == TODAY() + dt.timedelta(days=27)
        assert piece.status == PieceStatus.READY
        assert piece.current_run == runs[1] and piece.current_step == StepKind.DESIGN
        assert piece.location == h.house and piece.transit_to is None
        assert piece.current_due == runs[1].planned_due
        kinds = list(piece.events.order_by("id").values_list("kind", "step_run__step"))
        assert kinds == [("started", "order_receipt"), ("completed", "order_receipt")]

    audit = AuditEntry.objects.get(action="order.launch", object_id=str(order.pk))
    assert audit.actor == h.sales
    assert audit.before["status"] == "draft" and audit.after["status"] == "launched"
    assert sorted(audit.after["pieces"]) == sorted(serials)
    assert AuditEntry.objects.filter(action="piece.create", order_id=order.pk).count() == 5


def test_serials_stay_unique_across_orders(house_setup):
    h = house_setup
    a = h.launched_order(quantity=2)
    b = h.launched_order(quantity=2)
    serials = list(Piece.objects.filter(order__in=[a, b]).values_list("serial", flat=True))
    assert len(serials) == len(set(serials)) == 4


def test_launching_twice_is_a_conflict(house_setup):
    h = house_setup
    order = h.launched_order()
    with pytest.raises(Conflict, match=f"Order {order.reference} is already launched"):
        order_launch(actor=h.sales, order_id=order.pk)
    assert order.pieces.count() == 1


def test_draft_only_changes_are_refused_after_launch(house_setup):
    h = house_setup
    order = h.launched_order()
    line = order.lines.get()
    calls = [
        lambda: order_update(actor=h.sales, order_id=order.pk, notes="x"),
        lambda: order_line_add(actor=h.sales, order_id=order.pk, **default_line()),
        lambda: order_line_update(actor=h.sales, order_id=order.pk, line_id=line.pk,
                                  quantity=2),
        lambda: order_line_remove(actor=h.sales, order_id=order.pk, line_id=line.pk),
        lambda: launch_item_set(actor=h.sales, order_id=order.pk, code="quote_accepted",
                                checked=False),
        lambda: order_cancel(actor=h.sales, order_id=order.pk, reason="changed mind"),
    ]
    for call in calls:
        with pytest.raises(TransitionNotAllowed, match="can no longer change; use a change "
                                                       "request") as exc:
            call()
        assert exc.value.details == {"status": "launched"}
    rs = order.route.get(step=StepKind.SETTING)
    with pytest.raises(TransitionNotAllowed, match="The order is launched"):
        order_route_step_update(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                                planned_days=9)
    with pytest.raises(TransitionNotAllowed, match="The order is launched"):
        order_route_step_skip(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                              reason="other", comment="x")
    line.refresh_from_db()
    assert line.quantity == 1


def test_order_update_guards(house_setup):
    h = house_setup
    order = h.draft_order()
    with pytest.raises(ValidationFailed, match="'status' cannot be changed here"):
        order_update(actor=h.sales, order_id=order.pk, status="launched")
    with pytest.raises(PermissionDenied):
        order_update(actor=h.client_contact, order_id=order.pk, notes="hi")
    with pytest.raises(NotFound):
        order_update(actor=h.sales, order_id=10**9, notes="hi")
    order = order_update(actor=h.sales, order_id=order.pk, notes="Rush", client_reference="A1")
    entry = AuditEntry.objects.filter(action="order.update").last()
    assert entry.before["notes"] == "" and entry.after["notes"] == "Rush"


# ---------------------------------------------------------------------------------------------
# cancel


def test_order_cancel(house_setup):
    h = house_setup
    order = h.draft_order()
    with pytest.raises(ValidationFailed, match="Say why the order is cancelled"):
        order_cancel(actor=h.sales, order_id=order.pk, reason="  ")
    with pytest.raises(PermissionDenied):
        order_cancel(actor=h.client_contact, order_id=order.pk, reason="no")
    order = order_cancel(actor=h.sales, order_id=order.pk, reason="Client withdrew")
    assert order.status == OrderStatus.CANCELLED
    assert "Cancelled: Client withdrew" in order.notes
    entry = AuditEntry.objects.get(action="order.cancel")
    assert entry.before["status"] == "draft" and entry.after["status"] == "cancelled"
    assert entry.after["reason"] == "Client withdrew"

    with pytest.raises(TransitionNotAllowed, match="is cancelled"):
        order_cancel(actor=h.sales, order_id=order.pk, reason="again")
    with pytest.raises(TransitionNotAllowed) as exc:
        order_launch(actor=h.sales, order_id=order.pk)
    assert exc.value.code == "launch_blocked"
    assert "not_draft" in [b["code"] for b in exc.value.details["missing"]]
    with pytest.raises(TransitionNotAllowed, match="is cancelled"):
        change_request_create(actor=h.sales, order_id=order.pk, description="Bigger stone")


# ---------------------------------------------------------------------------------------------
# change requests


def test_change_request_assess_and_approve_moves_plan_and_promise(house_setup):
    h = house_setup
    order = h.launched_order(quantity=2)
    promised = order.promised_date
    runs_before = {r.pk: (r.planned_start, r.planned_due, r.status)
                   for r in StepRun.objects.filter(piece__order=order)}
    due_before = {p.pk: p.current_due for p in order.pieces.all()}

    cr = change_request_create(actor=h.client_contact, order_id=order.pk,
                               description="Please make the band 2 mm wider")
    assert cr.status == ChangeRequestStatus.OPEN and cr.requested_by == h.client_contact
    cr = change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=5,
                               assessment="Wider band needs a new CAD round")
    assert cr.status == ChangeRequestStatus.ASSESSED
    assert cr.assessed_by == h.sales and cr.assessed_at is not None
    cr = change_request_decide(actor=h.manager, cr_id=cr.pk, approve=True, comment="OK")
    assert cr.status == ChangeRequestStatus.APPROVED
    assert cr.decided_by == h.manager and cr.decision_comment == "OK"

    order.refresh_from_db()
    assert order.promised_date == promised + dt.timedelta(days=5)
    five = dt.timedelta(days=5)
    for run in StepRun.objects.filter(piece__order=order):
        start, due, status = runs_before[run.pk]
        if status == StepStatus.DONE:  # order receipt: history does not move
            assert (run.planned_start, run.planned_due) == (start, due)
        else:
            assert (run.planned_start, run.planned_due) == (start + five, due + five)
    for piece in order.pieces.all():
        assert piece.current_due == due_before[piece.pk] + five
    replan = AuditEntry.objects.get(action="order.replan", order_id=order.pk)
    assert replan.before["promised_date"] == promised.isoformat()
    assert replan.after["promised_date"] == order.promised_date.isoformat()
    assert replan.after["steps_moved"] == 12  # 6 open or pending steps × 2 pieces
    decide = AuditEntry.objects.get(action="change_request.decide")
    assert decide.before["status"] == "assessed" and decide.after["status"] == "approved"


def test_change_request_with_a_new_promised_date(house_setup):
    h = house_setup
    order = h.launched_order()
    new_date = order.promised_date + dt.timedelta(days=40)
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Add engraving")
    change_request_assess(actor=h.manager, cr_id=cr.pk, impact_days=2,
                          new_promised_date=new_date)
    change_request_decide(actor=h.manager, cr_id=cr.pk, approve=True)
    order.refresh_from_db()
    assert order.promised_date == new_date


def test_change_request_on_a_draft_moves_only_the_promise(house_setup):
    h = house_setup
    order = h.draft_order(promised_date=TODAY() + dt.timedelta(days=60))
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Rose gold")
    change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=-3)
    change_request_decide(actor=h.admin, cr_id=cr.pk, approve=True)
    order.refresh_from_db()
    assert order.promised_date == TODAY() + dt.timedelta(days=57)
    assert order.status == OrderStatus.DRAFT


def test_change_request_rejected_changes_nothing(house_setup):
    h = house_setup
    order = h.launched_order()
    promised = order.promised_date
    dues = list(StepRun.objects.filter(piece__order=order).values_list("planned_due", flat=True))
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Platinum")
    cr = change_request_decide(actor=h.manager, cr_id=cr.pk, approve=False,
                               comment="Metal already cast")  # rejecting an open one is fine
    assert cr.status == ChangeRequestStatus.REJECTED
    order.refresh_from_db()
    assert order.promised_date == promised
    assert list(StepRun.objects.filter(piece__order=order)
                .values_list("planned_due", flat=True)) == dues
    assert not AuditEntry.objects.filter(action="order.replan").exists()


def test_change_request_transitions_refused(house_setup):
    h = house_setup
    order = h.launched_order()
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Longer chain")
    with pytest.raises(TransitionNotAllowed, match="Assess the impact before approving"):
        change_request_decide(actor=h.manager, cr_id=cr.pk, approve=True)
    change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=1)
    cr = change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=2)  # re-assess is fine
    assert cr.impact_days == 2
    change_request_decide(actor=h.manager, cr_id=cr.pk, approve=True)
    with pytest.raises(TransitionNotAllowed, match="This change request is approved") as exc:
        change_request_decide(actor=h.manager, cr_id=cr.pk, approve=True)
    assert exc.value.details == {"status": "approved"}
    with pytest.raises(TransitionNotAllowed, match="This change request is approved"):
        change_request_decide(actor=h.manager, cr_id=cr.pk, approve=False)
    with pytest.raises(TransitionNotAllowed, match="This change request is approved"):
        change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=3)

    rejected = change_request_create(actor=h.sales, order_id=order.pk, description="Matte")
    change_request_decide(actor=h.manager, cr_id=rejected.pk, approve=False)
    for approve in (True, False):
        with pytest.raises(TransitionNotAllowed, match="This change request is rejected"):
            change_request_decide(actor=h.manager, cr_id=rejected.pk, approve=approve)


def test_change_request_validation(house_setup):
    h = house_setup
    order = h.launched_order()
    with pytest.raises(ValidationFailed, match="Describe the change asked for"):
        change_request_create(actor=h.sales, order_id=order.pk, description=" ")
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Smaller")
    for bad in (True, 366, -366, "3", 1.5):
        with pytest.raises(ValidationFailed, match="between -365 and 365") as exc:
            change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=bad)
        assert exc.value.details == {"field": "impact_days"}
    with pytest.raises(NotFound, match="No change request with id"):
        change_request_assess(actor=h.sales, cr_id=10**9, impact_days=1)


def test_change_request_roles(house_setup):
    h = house_setup
    order = h.launched_order()
    for actor in (h.caster_member, h.designer, h.quality, h.logistics):
        with pytest.raises(PermissionDenied, match="can ask for a change"):
            change_request_create(actor=actor, order_id=order.pk, description="x")
    # another client's contact does not even see the order
    with pytest.raises(NotFound):
        change_request_create(actor=h.other_client_contact, order_id=order.pk,
                              description="x")
    cr = change_request_create(actor=h.client_contact, order_id=order.pk, description="x")
    for actor in (h.client_contact, h.designer, h.caster_member):
        with pytest.raises(PermissionDenied, match="Only sales, production managers"):
            change_request_assess(actor=actor, cr_id=cr.pk, impact_days=1)
    change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=1)
    for actor in (h.sales, h.client_contact, h.quality):
        with pytest.raises(PermissionDenied, match="Only a production manager or administrator"):
            change_request_decide(actor=actor, cr_id=cr.pk, approve=True)
    cr.refresh_from_db()
    assert cr.status == ChangeRequestStatus.ASSESSED


def test_change_request_on_delivered_order_refused(house_setup):
    h = house_setup
    order = h.launched_order()
    h.walk(order.pieces.get())
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    with pytest.raises(TransitionNotAllowed, match="is delivered"):
        change_request_create(actor=h.client_contact, order_id=order.pk, description="x")


def test_change_request_left_open_at_delivery_can_only_be_rejected(house_setup):
    h = house_setup
    order = h.launched_order()
    cr = change_request_create(actor=h.client_contact, order_id=order.pk, description="Engrave")
    change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=3)
    h.walk(order.pieces.get())
    order.refresh_from_db()
    promised = order.promised_date
    with pytest.raises(TransitionNotAllowed, match="can only be rejected"):
        change_request_decide(actor=h.manager, cr_id=cr.pk, approve=True)
    cr.refresh_from_db()
    assert cr.status == ChangeRequestStatus.ASSESSED
    change_request_decide(actor=h.manager, cr_id=cr.pk, approve=False, comment="Too late")
    order.refresh_from_db()
    assert order.promised_date == promised


def test_promised_date_in_the_past_refused(house_setup):
    h = house_setup
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    with pytest.raises(ValidationFailed, match="is in the past"):
        order_create(actor=h.sales, client_id=h.client.pk, lines=[default_line()],
                     promised_date=yesterday)
    order = h.draft_order()
    with pytest.raises(ValidationFailed, match="is in the past"):
        order_update(actor=h.sales, order_id=order.pk, promised_date=yesterday)
    with pytest.raises(ValidationFailed, match="is a date"):
        order_update(actor=h.sales, order_id=order.pk, promised_date="2030-01-01")


# ---------------------------------------------------------------------------------------------
# audit trail


def test_audit_trail_of_an_order_and_its_piece(house_setup):
    h = house_setup
    order = h.launched_order()
    piece = order.pieces.get()
    h.walk(piece, to=StepKind.PROTOTYPING, arrive=True)
    actions = list(AuditEntry.objects.filter(order_id=order.pk).values_list("action", flat=True))
    assert actions[0] == "order.create"
    assert actions.count("launch_item.check") == len(CHECKLIST_CODES)
    assert actions.count("order_route.update") == 4
    assert "order.update" in actions
    assert actions.count("order.launch") == 1 and actions.count("piece.create") == 1
    assert actions[-3:] == ["piece.complete", "piece.send", "piece.receive"]

    send = AuditEntry.objects.get(action="piece.send", piece_id=piece.pk)
    assert send.actor == h.designer
    assert send.object_type == "production.piece" and send.object_id == str(piece.pk)
    assert send.before["location"] == h.house.pk and send.before["transit_to"] is None
    assert send.after["location"] is None and send.after["transit_to"] == h.caster.pk
    assert send.before["status"] == "ready" and send.after["status"] == "in_transit"
    assert send.after["slip"].startswith("TS-")
    receive = AuditEntry.objects.get(action="piece.receive", piece_id=piece.pk)
    assert receive.actor == h.caster_member
    assert receive.after["location"] == h.caster.pk and receive.after["status"] == "received"
    complete = AuditEntry.objects.get(action="piece.complete", piece_id=piece.pk)
    assert complete.after["step"] == "design" and complete.after["next_step"] == "prototyping"
    assert TrackingEvent.objects.filter(piece=piece).count() == 6


@pytest.mark.django_db
def test_line_material_budget_is_checked_and_kept(house_setup):
    from decimal import Decimal

    from etabli.core.errors import ValidationFailed
    from tests.factories import default_line

    order = house_setup.draft_order(lines=[default_line(budget_metal_g="6.500",
                                                        budget_stone_count=12,
                                                        budget_stone_ct="0.360")])
    line = order.lines.get()
    assert (line.budget_metal_g, line.budget_stone_count, line.budget_stone_ct) == (
        Decimal("6.500"), 12, Decimal("0.360"))
    for bad in ({"budget_metal_g": "-1"}, {"budget_metal_g": "1.2345"},
                {"budget_metal_g": "lots"}, {"budget_stone_count": "-3"},
                {"budget_stone_ct": "NaN"}):
        with pytest.raises(ValidationFailed):
            house_setup.draft_order(lines=[default_line(**bad)])
