"""Orders API: intake, launch sheet, route before launch, launch, change requests, audit,
and what each role sees of an order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import reset_queries
from django.utils import timezone

from etabli.core.models import AuditEntry
from etabli.orders.models import CHECKLIST_CODES, ChangeRequest, Order, OrderLine, OrderStatus
from etabli.production.models import Piece, StepRun, TrackingEvent
from etabli.workshops.models import StepKind
from tests.apiclient import assert_error, error_fields, ok, qualify_order
from tests.factories import default_line

pytestmark = pytest.mark.django_db

ORDER_KEYS = {"id", "reference", "client", "client_reference", "channel", "status",
              "status_label", "promised_date", "currency", "notes", "route_template",
              "created_at", "launched_at", "delivered_at", "deadline_override_reason",
              "reception_confirmed_at", "reception_note"}
DETAIL_KEYS = ORDER_KEYS | {"lines", "checklist", "route", "deadline", "launch_blockers",
                            "pieces"}
LIST_KEYS = ORDER_KEYS | {"line_count", "piece_count"}
LINE_KEYS = {"id", "position", "description", "model_reference", "is_custom_design",
             "quantity", "size", "alloy", "stones", "customisations", "specifications",
             "references", "target_price", "budget_metal_g", "budget_stone_count",
             "budget_stone_ct"}


def payload(h, **overrides) -> dict:
    return {"client_id": h.client.pk, "client_reference": "PO-77",
            "lines": [default_line()]} | overrides


def counts() -> tuple[int, ...]:
    """Rows that a refused write must not have touched."""
    return (Order.objects.count(), OrderLine.objects.count(), Piece.objects.count(),
            StepRun.objects.count(), TrackingEvent.objects.count(),
            ChangeRequest.objects.count(), AuditEntry.objects.count())


def future(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


# ---------------------------------------------------------------------------------------------
# intake


def test_create_order(house_setup, api):
    h = house_setup
    body = ok(api(h.sales).post("/orders", payload(h, notes="Gift box", lines=[
        default_line(), default_line(description="Band", model_reference="", quantity=2,
                                     is_custom_design=True, alloy="950pt",
                                     target_price="899.5")])), 201)
    assert set(body) == DETAIL_KEYS
    assert body["status"] == "draft" and body["status_label"] == "Being qualified"
    assert body["reference"].startswith("ORD-")
    assert body["client"] == {"id": h.client.pk, "code": "bijouterie-roux",
                              "name": "Bijouterie Roux"}
    assert body["client_reference"] == "PO-77" and body["notes"] == "Gift box"
    assert body["currency"] == "EUR" and body["channel"] == "direct"
    assert body["route_template"] == "standard"
    assert body["launched_at"] is None and body["pieces"] == []
    assert [set(line) for line in body["lines"]] == [LINE_KEYS, LINE_KEYS]
    assert [(ln["position"], ln["alloy"], ln["quantity"], Decimal(ln["target_price"]))
            for ln in body["lines"]] == [(1, "750y", 1, Decimal("1200.00")),
                                         (2, "950pt", 2, Decimal("899.50"))]
    assert [c["code"] for c in body["checklist"]] == CHECKLIST_CODES
    assert not any(c["checked"] for c in body["checklist"])
    assert {c["section"] for c in body["checklist"]} == {"feasibility", "information",
                                                         "commercial"}
    assert [s["step"] for s in body["route"]] == list(StepKind.values)
    house_steps = {s["step"] for s in body["route"] if s["workshop"]}
    assert house_steps == {"order_receipt", "design", "delivery"}
    assert body["deadline"]["ok"] is False and body["deadline"]["promised_date"] is None
    blockers = {b["code"] for b in body["launch_blockers"]}
    assert {"no_promised_date", "step_without_workshop", "unchecked:quote_accepted"} <= blockers
    entry = AuditEntry.objects.get(action="order.create")
    assert entry.actor_id == h.sales.pk and entry.order_id == body["id"]
    assert entry.after["lines"] == 2


def test_order_list_shape_order_and_pagination(house_setup, api):
    h = house_setup
    made = [h.draft_order() for _ in range(4)]
    launched = h.launched_order(quantity=2)
    me = api(h.sales)
    body = ok(me.get("/orders"))
    assert body["count"] == 5
    assert set(body["items"][0]) == LIST_KEYS
    ids = [o["id"] for o in body["items"]]
    assert ids == [launched.pk] + [o.pk for o in reversed(made)]  # newest first
    first = body["items"][0]
    assert (first["status"], first["line_count"], first["piece_count"]) == ("launched", 1, 2)
    page = ok(me.get("/orders", {"limit": 2, "offset": 2}))
    assert page["count"] == 5 and [o["id"] for o in page["items"]] == ids[2:4]
    assert ok(me.get("/orders", {"limit": 2, "offset": 2})) == page


def test_order_list_filters(house_setup, api):
    h = house_setup
    mine = h.draft_order(client_reference="PO-ROUX")
    other = h.draft_order(client=h.other_client)
    launched = h.launched_order()
    serial = launched.pieces.get().serial
    me = api(h.manager)

    def ids(**params):
        return {o["id"] for o in ok(me.get("/orders", params))["items"]}

    assert ids(status="launched") == {launched.pk}
    assert ids(status="draft") == {mine.pk, other.pk}
    assert ids(client_id=h.other_client.pk) == {other.pk}
    assert ids(q="po-roux") == {mine.pk}
    assert ids(q="Maison") == {other.pk}
    assert ids(q=serial) == {launched.pk}
    assert ids(q=mine.reference) == {mine.pk}
    assert_error(me.get("/orders", {"status": "lost"}), 422, "invalid_input")
    assert_error(me.get("/orders", {"client_id": "roux"}), 422, "invalid_input")


def test_get_and_update_order(house_setup, api):
    h = house_setup
    order = h.draft_order()
    me = api(h.sales)
    body = ok(me.get(f"/orders/{order.pk}"))
    assert set(body) == DETAIL_KEYS and body["reference"] == order.reference
    promised = future(60)
    body = ok(me.patch(f"/orders/{order.pk}", {"promised_date": promised,
                                               "client_reference": "PO-9", "notes": "Rush"}))
    assert (body["promised_date"], body["client_reference"], body["notes"]) == \
        (promised, "PO-9", "Rush")
    assert body["deadline"]["promised_date"] == promised
    entry = AuditEntry.objects.get(action="order.update")
    assert entry.before["promised_date"] is None and entry.after["promised_date"] == promised
    assert entry.before["client_reference"] == "" and entry.after["client_reference"] == "PO-9"


def test_alloys(house_setup, api):
    body = ok(api(house_setup.caster_member).get("/alloys", {"limit": 100}))
    assert body["count"] >= 5
    assert set(body["items"][0]) == {"code", "name", "metal", "fineness_permille", "colour",
                                     "density_g_cm3"}
    yellow = next(a for a in body["items"] if a["code"] == "750y")
    assert yellow["fineness_permille"] == 750 and yellow["metal"] == "gold"
    assert Decimal(str(yellow["density_g_cm3"])) > 0


# ---------------------------------------------------------------------------------------------
# lines, checklist, deadline


def test_lines_add_change_remove(house_setup, api):
    h = house_setup
    order = h.draft_order()
    me = api(h.sales)
    line = ok(me.post(f"/orders/{order.pk}/lines", {
        "description": "Chain", "model_reference": "C-2", "quantity": 3, "alloy": "585w",
        "target_price": "150"}), 201)
    assert set(line) == LINE_KEYS
    assert (line["position"], line["quantity"], line["alloy"]) == (2, 3, "585w")
    assert Decimal(line["target_price"]) == Decimal("150.00")
    changed = ok(me.patch(f"/orders/{order.pk}/lines/{line['id']}", {"quantity": 4,
                                                                     "size": "45 cm"}))
    assert (changed["quantity"], changed["size"], changed["alloy"]) == (4, "45 cm", "585w")
    entry = AuditEntry.objects.get(action="order_line.update")
    assert (entry.before["quantity"], entry.after["quantity"]) == (3, 4)
    response = me.delete(f"/orders/{order.pk}/lines/{line['id']}")
    assert response.status_code == 204 and response.content == b""
    assert order.lines.count() == 1
    assert AuditEntry.objects.filter(action="order_line.remove").count() == 1
    assert_error(me.delete(f"/orders/{order.pk}/lines/{line['id']}"), 404, "not_found")


def test_line_of_another_order_is_404(house_setup, api):
    h = house_setup
    order, other = h.draft_order(), h.draft_order()
    line_id = other.lines.get().pk
    me = api(h.sales)
    before = counts()
    assert_error(me.patch(f"/orders/{order.pk}/lines/{line_id}", {"quantity": 2}),
                 404, "not_found")
    assert_error(me.delete(f"/orders/{order.pk}/lines/{line_id}"), 404, "not_found")
    assert_error(me.patch(f"/orders/{order.pk}/lines/999999", {"quantity": 2}), 404)
    assert counts() == before
    assert other.lines.get().quantity == 1


def test_checklist_check_and_uncheck(house_setup, api):
    h = house_setup
    order = h.draft_order()
    me = api(h.sales)
    item = ok(me.put(f"/orders/{order.pk}/checklist/quote_accepted",
                     {"checked": True, "note": "Quote Q-12 signed"}))
    assert set(item) == {"code", "section", "label", "checked", "checked_by", "checked_at",
                         "note"}
    assert (item["checked"], item["checked_by"], item["note"]) == \
        (True, "sales", "Quote Q-12 signed")
    assert item["section"] == "commercial" and item["label"] == "Quote accepted"
    assert item["checked_at"] is not None
    item = ok(me.put(f"/orders/{order.pk}/checklist/quote_accepted", {"checked": False}))
    assert (item["checked"], item["checked_by"], item["checked_at"]) == (False, None, None)
    actions = list(AuditEntry.objects.filter(order_id=order.pk, action__startswith="launch_item")
                   .values_list("action", flat=True))
    assert actions == ["launch_item.check", "launch_item.uncheck"]


def test_deadline_check(house_setup, api):
    h = house_setup
    order = h.draft_order()
    me = api(h.sales)
    check = ok(me.get(f"/orders/{order.pk}/deadline-check"))
    assert set(check) == {"route_days", "buffer_days", "planned_finish",
                          "earliest_realistic_date", "promised_date", "ok"}
    route_days = sum(rs.planned_days for rs in order.route.exclude(step="order_receipt"))
    assert check["route_days"] == route_days
    today = timezone.localdate()
    assert check["planned_finish"] == (today + dt.timedelta(days=route_days)).isoformat()
    earliest = dt.date.fromisoformat(check["earliest_realistic_date"])
    assert earliest == today + dt.timedelta(days=route_days + check["buffer_days"])
    assert check["ok"] is False
    ok(me.patch(f"/orders/{order.pk}", {"promised_date": earliest.isoformat()}))
    assert ok(me.get(f"/orders/{order.pk}/deadline-check"))["ok"] is True


# ---------------------------------------------------------------------------------------------
# route before launch


def test_route_assign_skip_add_reorder(house_setup, api):
    h = house_setup
    order = h.draft_order()
    me = api(h.manager)
    route = {s["step"]: s for s in ok(me.get(f"/orders/{order.pk}"))["route"]}
    step = ok(me.patch(f"/orders/{order.pk}/route/{route['manufacturing']['id']}",
                       {"workshop_id": h.caster.pk, "planned_days": 8,
                        "operations": ["casting"]}))
    assert step["workshop"] == {"id": h.caster.pk, "code": "caster", "name": "Fonderie Dupont"}
    assert (step["planned_days"], step["operations"]) == (8, ["casting"])
    entry = AuditEntry.objects.get(action="order_route.update")
    assert entry.before["workshop"] is None and entry.after["workshop"] == h.caster.pk

    skipped = ok(me.post(f"/orders/{order.pk}/route/{route['prototyping']['id']}/skip",
                         {"reason": "exact_reproduction", "comment": "Model R-100"}))
    assert skipped["skipped"] is True and skipped["skip_reason"] == "exact_reproduction"
    unskipped = ok(me.delete(f"/orders/{order.pk}/route/{route['prototyping']['id']}/skip"))
    assert unskipped["skipped"] is False and unskipped["skip_reason"] == ""

    added = ok(me.post(f"/orders/{order.pk}/route", {
        "step": "finishing", "after_step_id": route["setting"]["id"], "planned_days": 2,
        "workshop_id": h.polisher.pk, "operations": ["engraving_hallmarking"]}), 201)
    assert (added["step"], added["position"]) == ("finishing", route["setting"]["position"] + 1)
    steps = ok(me.get(f"/orders/{order.pk}"))["route"]
    ids = [s["id"] for s in steps]
    # Swap the two finishing steps.
    i = ids.index(added["id"])
    new_order = ids[:i] + [ids[i + 1], ids[i]] + ids[i + 2:]
    reordered = ok(me.put(f"/orders/{order.pk}/route/order", {"step_ids": new_order}))
    assert [s["id"] for s in reordered] == new_order
    assert [s["position"] for s in reordered] == list(range(1, len(new_order) + 1))


def test_route_refusals(house_setup, api):
    h = house_setup
    order = h.draft_order()
    route = {rs.step: rs for rs in order.route.all()}
    me, designer = api(h.manager), api(h.designer)
    url = f"/orders/{order.pk}/route"
    before = counts()
    assert_error(me.patch(f"{url}/{route['setting'].pk}", raw="{bad"), 400, "bad_request")
    assert_error(me.patch(f"{url}/999999", {"planned_days": 2}), 404, "not_found")
    assert_error(me.patch(f"{url}/{route['setting'].pk}", {"workshop_id": 999999}),
                 404, "not_found")
    # The caster does not set stones.
    assert_error(me.patch(f"{url}/{route['setting'].pk}", {"workshop_id": h.caster.pk}),
                 400, "invalid")
    assert "planned_days" in error_fields(me.patch(f"{url}/{route['setting'].pk}",
                                                   {"planned_days": 0}))
    assert "workshop_id" in error_fields(me.patch(f"{url}/{route['setting'].pk}",
                                                  {"workshop_id": "caster"}))
    assert "reason" in error_fields(me.post(f"{url}/{route['prototyping'].pk}/skip",
                                            {"reason": "lazy"}))
    assert "reason" in error_fields(me.post(f"{url}/{route['prototyping'].pk}/skip", {}))
    # Prototyping is skipped only for the three accepted reasons.
    assert_error(me.post(f"{url}/{route['prototyping'].pk}/skip",
                         {"reason": "other", "comment": "no time"}), 400, "invalid")
    assert_error(me.post(f"{url}/{route['delivery'].pk}/skip",
                         {"reason": "other", "comment": "x"}), 400, "invalid")
    assert "step" in error_fields(me.post(url, {"step": "juggling", "after_step_id": 1}))
    assert "after_step_id" in error_fields(me.post(url, {"step": "setting"}))
    assert_error(me.post(url, {"step": "setting", "after_step_id": 999999}), 404, "not_found")
    assert_error(me.post(url, {"step": "setting", "after_step_id": route["design"].pk,
                               "workshop_id": 999999}), 404, "not_found")
    assert_error(me.put(f"{url}/order", {"step_ids": [route["design"].pk]}), 400, "invalid")
    assert "step_ids" in error_fields(me.put(f"{url}/order", {"step_ids": "all"}))
    # Before launch a designer does not see the order at all.
    assert_error(designer.patch(f"{url}/{route['setting'].pk}", {"workshop_id": h.setter.pk}),
                 404, "not_found")
    assert counts() == before
    assert [rs.workshop_id for rs in order.route.order_by("position")] == \
        [route[s].workshop_id for s in StepKind.values]


# ---------------------------------------------------------------------------------------------
# launch


def test_launch(house_setup, api):
    h = house_setup
    order = h.draft_order(lines=[default_line(quantity=2)])
    qualify_order(h, order.pk)
    body = ok(api(h.sales).post(f"/orders/{order.pk}/launch", {}))
    assert body["status"] == "launched" and body["launched_at"] is not None
    assert body["launch_blockers"] == []
    assert len(body["pieces"]) == 2
    piece = body["pieces"][0]
    assert piece["status"] == "ready" and piece["current_step"] == "design"
    assert piece["location"]["code"] == "house"
    assert AuditEntry.objects.filter(action="order.launch", order_id=order.pk).count() == 1


def test_launch_with_blockers_is_409_and_writes_nothing(house_setup, api):
    h = house_setup
    order = h.draft_order(lines=[default_line(alloy=None)])
    me = api(h.sales)
    before = counts()
    body = assert_error(me.post(f"/orders/{order.pk}/launch", {}), 409, "launch_blocked")
    missing = {b["code"] for b in body["details"]["missing"]}
    assert {"line_without_alloy", "no_promised_date", "step_without_workshop",
            "unchecked:technically_achievable", "unchecked:deadline_confirmed"} <= missing
    assert all(b["message"] for b in body["details"]["missing"])
    assert counts() == before
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DRAFT


def test_launch_with_a_too_early_date_then_an_override(house_setup, api):
    h = house_setup
    order = h.draft_order()
    qualify_order(h, order.pk)
    me = api(h.sales)
    ok(me.patch(f"/orders/{order.pk}", {"promised_date": future(3)}))
    before = counts()
    body = assert_error(me.post(f"/orders/{order.pk}/launch", {}), 409, "deadline_unrealistic")
    earliest = body["details"]["earliest_realistic_date"]
    assert dt.date.fromisoformat(earliest) > timezone.localdate() + dt.timedelta(days=3)
    assert body["details"]["ok"] is False and body["details"]["promised_date"] == future(3)
    assert earliest in body["message"]
    # A blank reason is no reason.
    assert_error(me.post(f"/orders/{order.pk}/launch", {"override_reason": "   "}), 409,
                 "deadline_unrealistic")
    assert counts() == before

    reason = "Client's wedding; casting on the express line"
    body = ok(me.post(f"/orders/{order.pk}/launch", {"override_reason": reason}))
    assert body["status"] == "launched" and body["deadline_override_reason"] == reason
    entry = AuditEntry.objects.get(action="order.launch", order_id=order.pk)
    assert entry.before["deadline_override_reason"] == ""
    assert entry.after["deadline_override_reason"] == reason
    assert entry.after["deadline"]["ok"] is False


def test_launch_twice_is_a_conflict(house_setup, api):
    h = house_setup
    order = h.launched_order()
    me = api(h.sales)
    before = counts()
    body = assert_error(me.post(f"/orders/{order.pk}/launch", {}), 409, "conflict")
    assert body["details"]["status"] == "launched"
    assert counts() == before


def test_launch_bad_input_and_roles(house_setup, api):
    h = house_setup
    order = h.qualified_order()
    sales = api(h.sales)
    outsiders = [api(u) for u in (h.designer, h.caster_member, h.other_client_contact)]
    client = api(h.client_contact)
    before = counts()
    assert_error(sales.post(f"/orders/{order.pk}/launch", raw="{bad"), 400, "bad_request")
    assert "override_reason" in error_fields(sales.post(f"/orders/{order.pk}/launch",
                                                        {"override_reason": 5}))
    assert_error(sales.post("/orders/999999/launch", {}), 404, "not_found")
    for outsider in outsiders:  # they do not see the draft at all
        assert_error(outsider.post(f"/orders/{order.pk}/launch", {}), 404, "not_found")
    # The client sees the order but may not launch it.
    assert_error(client.post(f"/orders/{order.pk}/launch", {}), 403, "forbidden")
    assert counts() == before
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DRAFT


def test_draft_only_changes_after_launch_are_409(house_setup, api):
    h = house_setup
    order = h.launched_order()
    line_id = order.lines.get().pk
    route_id = order.route.get(step="setting").pk
    me = api(h.sales)
    before = counts()
    for response in (
        me.patch(f"/orders/{order.pk}", {"notes": "late"}),
        me.post(f"/orders/{order.pk}/lines", default_line()),
        me.patch(f"/orders/{order.pk}/lines/{line_id}", {"quantity": 3}),
        me.delete(f"/orders/{order.pk}/lines/{line_id}"),
        me.put(f"/orders/{order.pk}/checklist/quote_accepted", {"checked": False}),
        me.patch(f"/orders/{order.pk}/route/{route_id}", {"planned_days": 9}),
        me.post(f"/orders/{order.pk}/cancel", {"reason": "changed mind"}),
    ):
        body = assert_error(response, 409, "transition_not_allowed")
        assert body["details"]["status"] == "launched"
    assert counts() == before


def test_cancel(house_setup, api):
    h = house_setup
    order = h.draft_order()
    me = api(h.sales)
    assert "reason" in error_fields(me.post(f"/orders/{order.pk}/cancel", {}))
    assert "reason" in error_fields(me.post(f"/orders/{order.pk}/cancel", {"reason": ""}))
    body = ok(me.post(f"/orders/{order.pk}/cancel", {"reason": "Client withdrew"}))
    assert set(body) == ORDER_KEYS
    assert body["status"] == "cancelled" and "Client withdrew" in body["notes"]
    assert_error(me.post(f"/orders/{order.pk}/cancel", {"reason": "again"}), 409,
                 "transition_not_allowed")
    assert_error(me.post(f"/orders/{order.pk}/launch", {}), 409, "launch_blocked")


# ---------------------------------------------------------------------------------------------
# bad input on order intake


def test_create_order_bad_input_writes_nothing(house_setup, api):
    h = house_setup
    me = api(h.sales)
    before = counts()
    assert_error(me.post("/orders", raw="{bad"), 400, "bad_request")
    assert_error(me.post("/orders", raw="[1, 2"), 400, "bad_request")
    assert "client_id" in error_fields(me.post("/orders", {"lines": []}))
    assert "client_id" in error_fields(me.post("/orders", payload(h, client_id="roux")))
    assert "promised_date" in error_fields(me.post("/orders", payload(h,
                                                                      promised_date="soon")))
    assert "currency" in error_fields(me.post("/orders", payload(h, currency="EURO")))
    fields = error_fields(me.post("/orders", payload(h, lines=[{"quantity": "many"}])))
    assert {"lines.0.quantity", "lines.0.description"} <= fields
    assert "lines.0.quantity" in error_fields(me.post("/orders", payload(
        h, lines=[default_line(quantity=0)])))
    assert "lines.0.target_price" in error_fields(me.post("/orders", payload(
        h, lines=[default_line(target_price="-1")])))
    assert "lines" in error_fields(me.post("/orders", payload(h, lines={"a": 1})))
    # Well-formed, but names things that are not there (or not acceptable).
    body = assert_error(me.post("/orders", payload(h, client_id=999999)), 404, "not_found")
    assert body["details"]["field"] == "client_id"
    assert_error(me.post("/orders", payload(h, route_template="nope")), 404, "not_found")
    body = assert_error(me.post("/orders", payload(h, lines=[default_line(alloy="24k")])),
                        400, "invalid")
    assert body["details"] == {"field": "alloy", "line": 1}
    assert_error(me.post("/orders", payload(h, promised_date="2001-01-01")), 400, "invalid")
    assert_error(me.post("/orders", payload(h, channel="telepathy")), 400, "invalid")
    assert counts() == before


def test_line_and_checklist_bad_input(house_setup, api):
    h = house_setup
    order = h.draft_order()
    line_id = order.lines.get().pk
    me = api(h.sales)
    before = counts()
    assert_error(me.post(f"/orders/{order.pk}/lines", raw="{bad"), 400, "bad_request")
    assert "description" in error_fields(me.post(f"/orders/{order.pk}/lines", {}))
    assert "quantity" in error_fields(me.post(f"/orders/{order.pk}/lines",
                                              default_line(quantity="two")))
    assert "quantity" in error_fields(me.patch(f"/orders/{order.pk}/lines/{line_id}",
                                               {"quantity": 501}))
    assert_error(me.patch(f"/orders/{order.pk}/lines/{line_id}", {"alloy": "24k"}), 400,
                 "invalid")
    assert_error(me.post("/orders/999999/lines", default_line()), 404, "not_found")
    assert_error(me.put(f"/orders/{order.pk}/checklist/quote_accepted", raw="{bad"), 400,
                 "bad_request")
    assert "checked" in error_fields(me.put(f"/orders/{order.pk}/checklist/quote_accepted",
                                            {"checked": "maybe"}))
    body = assert_error(me.put(f"/orders/{order.pk}/checklist/moon_phase", {}), 404,
                        "not_found")
    assert body["details"] == {"field": "code"}
    assert_error(me.put("/orders/999999/checklist/quote_accepted", {}), 404, "not_found")
    assert "promised_date" in error_fields(me.patch(f"/orders/{order.pk}",
                                                    {"promised_date": 20300101}))
    assert_error(me.patch("/orders/999999", {"notes": "x"}), 404, "not_found")
    assert_error(me.get("/orders/999999/deadline-check"), 404, "not_found")
    assert counts() == before


def test_body_over_5_mb_is_413_json(house_setup, api):
    h = house_setup
    me = api(h.sales)
    before = counts()
    big = payload(h, notes="x" * (5 * 1024 * 1024 + 1))
    assert_error(me.post("/orders", big), 413, "too_large")
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# change requests


def test_change_request_flow(house_setup, api):
    h = house_setup
    order = h.launched_order()
    promised = order.promised_date
    client, sales, manager = api(h.client_contact), api(h.sales), api(h.manager)
    cr = ok(client.post(f"/orders/{order.pk}/change-requests",
                        {"description": "Engrave 'A & L' inside the band"}), 201)
    assert set(cr) == {"id", "order_id", "description", "status", "requested_by",
                       "requested_at", "impact_days", "new_promised_date", "assessment",
                       "decided_at", "decision_comment"}
    assert (cr["status"], cr["requested_by"], cr["order_id"]) == ("open", "roux1", order.pk)
    listed = ok(client.get(f"/orders/{order.pk}/change-requests"))
    assert listed["count"] == 1 and listed["items"][0]["id"] == cr["id"]

    assessed = ok(sales.post(f"/change-requests/{cr['id']}/assess",
                             {"impact_days": 3, "assessment": "One more day at the polisher"}))
    assert (assessed["status"], assessed["impact_days"]) == ("assessed", 3)
    decided = ok(manager.post(f"/change-requests/{cr['id']}/decide",
                              {"approve": True, "comment": "Go"}))
    assert decided["status"] == "approved" and decided["decided_at"] is not None
    order.refresh_from_db()
    assert order.promised_date == promised + dt.timedelta(days=3)
    replan = AuditEntry.objects.get(action="order.replan", order_id=order.pk)
    assert replan.before["promised_date"] == promised.isoformat()
    assert replan.after["promised_date"] == order.promised_date.isoformat()
    assert_error(manager.post(f"/change-requests/{cr['id']}/decide", {"approve": False}),
                 409, "transition_not_allowed")


def test_change_request_refusals(house_setup, api):
    h = house_setup
    order = h.launched_order()
    cr = ok(api(h.sales).post(f"/orders/{order.pk}/change-requests",
                              {"description": "Bigger stone"}), 201)
    sales, manager = api(h.sales), api(h.manager)
    caster, other_client = api(h.caster_member), api(h.other_client_contact)
    before = counts()
    # Approving before assessing is a transition the table does not allow.
    assert_error(manager.post(f"/change-requests/{cr['id']}/decide", {"approve": True}), 409,
                 "transition_not_allowed")
    assert_error(sales.post(f"/change-requests/{cr['id']}/decide", {"approve": False}), 403,
                 "forbidden")
    for outsider in (caster, other_client):
        assert_error(outsider.post(f"/change-requests/{cr['id']}/assess", {"impact_days": 1}),
                     403, "forbidden")
        assert_error(outsider.get(f"/orders/{order.pk}/change-requests"), 404, "not_found")
    assert_error(other_client.post(f"/orders/{order.pk}/change-requests",
                                   {"description": "Mine now"}), 404, "not_found")
    assert_error(caster.post(f"/orders/{order.pk}/change-requests", {"description": "x"}),
                 403, "forbidden")
    assert_error(sales.post("/change-requests/999999/assess", {"impact_days": 1}), 404,
                 "not_found")
    assert_error(manager.post("/change-requests/999999/decide", {"approve": True}), 404,
                 "not_found")
    assert_error(sales.post("/orders/999999/change-requests", {"description": "x"}), 404)
    assert_error(sales.post(f"/change-requests/{cr['id']}/assess", raw="{bad"), 400,
                 "bad_request")
    assert "impact_days" in error_fields(sales.post(f"/change-requests/{cr['id']}/assess",
                                                    {"impact_days": 1000}))
    assert "impact_days" in error_fields(sales.post(f"/change-requests/{cr['id']}/assess",
                                                    {"impact_days": "a week"}))
    assert "impact_days" in error_fields(sales.post(f"/change-requests/{cr['id']}/assess", {}))
    assert "approve" in error_fields(manager.post(f"/change-requests/{cr['id']}/decide", {}))
    assert "description" in error_fields(sales.post(f"/orders/{order.pk}/change-requests",
                                                    {"description": ""}))
    assert_error(sales.post(f"/orders/{order.pk}/change-requests", raw="{bad"), 400,
                 "bad_request")
    assert counts() == before
    assert ChangeRequest.objects.get(pk=cr["id"]).status == "open"


# ---------------------------------------------------------------------------------------------
# audit


def test_order_audit_for_house_wide_roles(house_setup, api):
    h = house_setup
    order = h.launched_order()
    for user in (h.admin, h.manager, h.sales):
        body = ok(api(user).get(f"/orders/{order.pk}/audit", {"limit": 100}))
        assert body["count"] == AuditEntry.objects.filter(order_id=order.pk).count()
        entries = body["items"]
        assert set(entries[0]) == {"id", "at", "actor", "action", "object_type", "object_id",
                                   "object_repr", "before", "after"}
        assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
        assert entries[0]["action"] == "order.create" and entries[0]["actor"] == "sales"
        launch = next(e for e in entries if e["action"] == "order.launch")
        assert launch["before"]["status"] == "draft" and launch["after"]["status"] == "launched"
        check = next(e for e in entries if e["action"] == "launch_item.check")
        assert check["before"]["checked"] is False and check["after"]["checked"] is True


def test_order_audit_is_404_for_everyone_else(house_setup, api):
    h = house_setup
    order = h.launched_order()  # its piece waits for design: designer and logistics see it
    assert ok(api(h.designer).get(f"/orders/{order.pk}"))["id"] == order.pk
    for user in (h.designer, h.logistics, h.quality, h.client_contact, h.caster_member):
        assert_error(api(user).get(f"/orders/{order.pk}/audit"), 404, "not_found")
    assert_error(api(h.admin).get("/orders/999999/audit"), 404, "not_found")


# ---------------------------------------------------------------------------------------------
# what each role sees


def test_sales_sees_prices_and_clients(house_setup, api):
    h = house_setup
    order = h.launched_order()
    body = ok(api(h.sales).get(f"/orders/{order.pk}"))
    assert Decimal(body["lines"][0]["target_price"]) == Decimal("1200.00")
    assert body["client"]["name"] == "Bijouterie Roux"
    piece = body["pieces"][0]
    assert Decimal(piece["target_price"]) == Decimal("1200.00") and piece["currency"] == "EUR"
    assert piece["client"]["code"] == "bijouterie-roux"
    assert piece["promised_date"] == order.promised_date.isoformat()
    assert all(s["workshop"] for s in body["route"])


def test_workshops_see_no_orders(house_setup, api):
    h = house_setup
    order = h.launched_order()
    h.walk(order.pieces.get(), to=StepKind.MANUFACTURING, arrive=True)
    me = api(h.caster_member)  # the piece is at the caster, yet the order is not theirs
    assert ok(me.get("/orders")) == {"items": [], "count": 0}
    for path in (f"/orders/{order.pk}", f"/orders/{order.pk}/deadline-check",
                 f"/orders/{order.pk}/change-requests", f"/orders/{order.pk}/audit"):
        assert_error(me.get(path), 404, "not_found")
    before = counts()
    assert_error(me.post("/orders", payload(h)), 403, "forbidden")
    assert counts() == before


def test_client_sees_own_orders_without_prices_or_workshops(house_setup, api):
    h = house_setup
    mine = h.launched_order()
    theirs = h.launched_order(client=h.other_client)
    draft = h.draft_order()
    me = api(h.client_contact)
    listed = ok(me.get("/orders"))
    assert {o["id"] for o in listed["items"]} == {mine.pk, draft.pk}
    assert_error(me.get(f"/orders/{theirs.pk}"), 404, "not_found")
    assert_error(me.get(f"/orders/{theirs.pk}/deadline-check"), 404, "not_found")
    assert ok(me.get("/orders", {"client_id": h.other_client.pk}))["count"] == 0
    body = ok(me.get(f"/orders/{mine.pk}"))
    assert body["client"]["code"] == "bijouterie-roux"
    assert body["lines"][0]["target_price"] is None
    assert all(s["workshop"] is None for s in body["route"])
    piece = body["pieces"][0]
    assert piece["current_workshop"] is None and piece["location"] is None
    assert piece["transit_to"] is None
    assert piece["target_price"] is None and piece["currency"] is None
    assert piece["client"]["code"] == "bijouterie-roux"
    assert piece["promised_date"] == mine.promised_date.isoformat()


@pytest.mark.parametrize("role,step,sees", [
    ("designer", StepKind.DESIGN, True),
    ("designer", StepKind.MANUFACTURING, False),
    ("quality", StepKind.FINISHING, True),
    ("quality", StepKind.SETTING, False),
    ("logistics", StepKind.DELIVERY, True),
    ("logistics", StepKind.SETTING, False),
])
def test_house_roles_see_the_orders_of_pieces_at_their_step(house_setup, api, role, step,
                                                              sees):
    h = house_setup
    order = h.launched_order()
    h.walk(order.pieces.get(), to=step, arrive=True)
    other = h.draft_order()  # a draft has no piece: only house-wide roles see it
    me = api(getattr(h, role))
    listed = {o["id"] for o in ok(me.get("/orders"))["items"]}
    assert listed == ({order.pk} if sees else set())
    assert other.pk not in listed
    response = me.get(f"/orders/{order.pk}")
    if sees:
        body = ok(response)
        assert body["lines"][0]["target_price"] is None  # no prices outside sales
        assert body["client"]["code"] == "bijouterie-roux"
        assert len(body["pieces"]) == 1
    else:
        assert_error(response, 404, "not_found")


# ---------------------------------------------------------------------------------------------
# query budget


@pytest.mark.parametrize("role", ["manager", "client_contact", "designer"])
def test_order_list_query_count_does_not_grow_with_rows(house_setup, api,
                                                        django_assert_max_num_queries, role):
    h = house_setup
    me = api(getattr(h, role))
    ok(me.get("/orders"))  # warm up (the token's last-used stamp is written once a minute)
    for _ in range(3):
        h.launched_order(quantity=2)
    reset_queries()
    with django_assert_max_num_queries(4) as small:  # token, count, page (+ savepoints)
        assert ok(me.get("/orders"))["count"] == 3
    budget = len(small.captured_queries)
    for _ in range(9):
        h.launched_order(quantity=2)
    reset_queries()  # the query log keeps 9000 entries: room for the measurement
    with django_assert_max_num_queries(budget):
        body = ok(me.get("/orders", {"limit": 100}))
    assert body["count"] == 12 and len(body["items"]) == 12
