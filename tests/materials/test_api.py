"""Precious materials through the API: alloys, prices, the metal ledger, material slips,
stock-takes, casting trees and stones — every endpoint, what each role sees of it and may do
with it, bad input, repeats with the same client_ref, and query budgets on the lists."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from etabli.materials import services, stone_services
from etabli.materials.models import (
    Location,
    LocationKind,
    MaterialSlip,
    MaterialSlipLine,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    StockTake,
    StoneAllocation,
    StoneEntry,
    StoneLot,
)
from tests.apiclient import API, assert_error, error_fields, ok

pytestmark = pytest.mark.django_db

D = Decimal
COMPLIANCE = ("The diamonds herein invoiced have been purchased from legitimate sources not "
              "involved in funding conflict and in compliance with United Nations resolutions.")
SLIP_KEYS = {"id", "number", "kind", "status", "workshop", "from_location", "to_location",
             "operation", "issue_id", "casting_tree_id", "closes_issue", "sent_by", "sent_at",
             "received_by", "received_at", "weight_flagged", "settled_at", "loss_g",
             "loss_fine_g", "allowance_g", "over_allowance", "comment", "client_ref"}
HOUSE_LEDGER_ROLES = ("admin", "manager", "sales", "logistics")
BLIND_ROLES = ("designer", "quality", "client_contact")


def ledger_rows() -> tuple[int, ...]:
    """Rows a refused write must not have touched."""
    return (MaterialSlip.objects.count(), MaterialSlipLine.objects.count(),
            MetalEntry.objects.count(), StoneEntry.objects.count(),
            StoneAllocation.objects.count(), StockTake.objects.count(),
            tuple(MetalBalance.objects.order_by("pk").values_list("alloy_g", flat=True)))


def buy(h, grams: str = "200.000", alloy: str = "750y") -> None:
    services.metal_purchase(actor=h.manager, alloy=alloy, weight_g=grams)


def rings(h, n: int = 4, alloy: str = "750y"):
    order = h.launched_order(lines=[{"description": "Band", "model_reference": "B-4",
                                     "quantity": n, "alloy": alloy, "size": "52"}])
    return list(order.pieces.order_by("serial"))


def issue_metal(h, workshop=None, grams: str = "20.000", operation: str = "assembly",
                **kwargs) -> MaterialSlip:
    return services.material_issue(actor=h.manager, workshop_id=(workshop or h.caster).pk,
                                   operation=operation,
                                   metal=[{"alloy": "750y", "weight_g": grams}], **kwargs)


def receive_all(user, slip: MaterialSlip) -> MaterialSlip:
    lines = []
    for ln in slip.lines.all():
        if ln.lot_id:
            lines.append({"line_id": ln.pk, "count": ln.stone_count,
                          "carats": str(ln.carats_sent)})
        else:
            lines.append({"line_id": ln.pk, "weight_g": str(ln.weight_sent_g)})
    return services.material_slip_receive(actor=user, slip_id=slip.pk, lines=lines)


def receive_lines(slip: dict) -> list[dict]:
    """The receive body that confirms every line of a slip (from the API) as sent."""
    out = []
    for ln in slip["lines"]:
        if ln["lot_id"]:
            out.append({"line_id": ln["id"], "count": ln["stone_count"],
                        "carats": ln["carats_sent"]})
        else:
            out.append({"line_id": ln["id"], "weight_g": ln["weight_sent_g"]})
    return out


def diamond_lot(h, count: int = 50, carats: str = "5.000") -> StoneLot:
    return stone_services.stone_lot_receive(
        actor=h.manager, stone_type="diamond", shape="round", count=count, carats=carats,
        size_mm="2.0", colour="G", clarity="VS1", supplier="Diamants SA",
        supplier_invoice="F-1", price_per_ct="900", compliance_statement=COMPLIANCE)


def ids(response) -> list[int]:
    return [item["id"] for item in ok(response)["items"]]


def user(h, role: str):
    return getattr(h, role)


# ---------------------------------------------------------------------------------------------
# the done-means journey through the API


def test_journey_casting_tree_of_rings_then_stones_to_the_setter(house_setup, api):
    h = house_setup
    manager, caster, setter = api(h.manager), api(h.caster_member), api(h.setter_member)
    pieces = rings(h)
    ok(manager.post("/metal/prices", {"metal": "gold", "priced_on": timezone.localdate(),
                                      "price_per_fine_g": "60.5000"}), 201)
    bought = ok(manager.post("/metal/purchases", {"alloy": "750y", "weight_g": "200.000",
                                                  "supplier": "Affinerie"}), 201)
    assert bought["alloy_g"] == "200.000" and bought["fine_g"] == "150.000"
    assert bought["to_location"]["kind"] == "vault" and bought["kind"] == "purchase"

    # A tree of four rings in 750 yellow gold: 2.5 g of wax × 15.5 / 1.0 × 1.30.
    tree = ok(manager.post("/casting-trees", {
        "workshop_id": h.caster.pk, "alloy": "750y", "piece_ids": [p.pk for p in pieces],
        "wax_weight_g": "2.500"}), 201)
    assert tree["metal_needed_g"] == "50.375" and tree["status"] == "planned"
    assert [p["id"] for p in tree["pieces"]] == [p.pk for p in pieces]

    # Issue 50.000 g to the caster; a repeat with the same client_ref is the same slip.
    issue = ok(manager.post(f"/casting-trees/{tree['id']}/issue",
                            {"weight_g": "50.000", "client_ref": "tree-1-issue"}), 201)
    assert ok(manager.post(f"/casting-trees/{tree['id']}/issue",
                           {"weight_g": "50.000", "client_ref": "tree-1-issue"}))["id"] \
        == issue["id"]
    assert MaterialSlip.objects.filter(kind="issue").count() == 1
    assert issue["status"] == "sent" and issue["operation"] == "casting"
    assert issue["lines"][0]["weight_sent_g"] == "50.000"

    # The caster sees it coming, weighs it in, casts and returns the rings and scrap.
    assert ids(caster.get("/material-slips", {"status": "sent"})) == [issue["id"]]
    received = ok(caster.post(f"/material-slips/{issue['id']}/receive",
                              {"lines": receive_lines(issue)}))
    assert received["status"] == "received" and received["weight_flagged"] is False
    ret = ok(caster.post(f"/casting-trees/{tree['id']}/return", {
        "pieces": [{"piece_id": p.pk, "weight_g": "8.100"} for p in pieces],
        "button_g": "14.200", "scrap_g": "2.350", "client_ref": "tree-1-return"}), 201)
    assert ret["kind"] == "return" and ret["issue_id"] == issue["id"] and ret["closes_issue"]
    assert sorted(ln["kind"] for ln in ret["lines"]) == ["button"] + ["piece"] * 4 + ["scrap"]

    # The house weighs the return in: the job is settled, over its casting allowance.
    ok(manager.post(f"/material-slips/{ret['id']}/receive", {"lines": receive_lines(ret)}))
    job = ok(manager.get(f"/material-slips/{issue['id']}"))
    assert job["settled_at"] is not None
    # 50 − 4 × 8.1 − 14.2 − 2.35 = 1.05 g lost; 1.5 % of 50 g = 0.75 g allowed.
    assert (job["loss_g"], job["allowance_g"], job["over_allowance"]) == ("1.050", "0.750",
                                                                          True)
    assert job["job"]["issued_g"] == "50.000" and job["job"]["returned_pieces_g"] == "32.400"
    assert job["job"]["returned_scrap_g"] == "16.550" and job["job"]["allowance_percent"] == \
        "1.50"
    assert [r["id"] for r in job["returns"]] == [ret["id"]]
    cast = ok(manager.get(f"/casting-trees/{tree['id']}"))
    assert cast["status"] == "returned" and cast["yield_percent"] == "64.8"
    assert (cast["good_pieces_g"], cast["button_g"], cast["scrap_g"]) == ("32.400", "14.200",
                                                                         "2.350")
    assert cast["issue"]["over_allowance"] is True

    # The caster's statement: what it received, returned, lost; the job over its allowance.
    for who in (manager, caster):
        st = ok(who.get(f"/workshops/{h.caster.pk}/metal-statement"))
        (line,) = st["lines"]
        assert line["alloy"]["code"] == "750y"
        assert (line["opening_g"], line["issued_g"], line["returned_pieces_g"],
                line["returned_scrap_g"], line["loss_g"], line["closing_g"]) == (
            "0.000", "50.000", "32.400", "16.550", "1.050", "0.000")
        assert [j["id"] for j in st["jobs"]] == [issue["id"]]
        assert [j["id"] for j in st["over_allowance"]] == [issue["id"]]
        assert st["in_transit"] == []
    (loss,) = ok(manager.get("/metal/losses"))
    assert loss["workshop"]["code"] == "caster" and loss["operation"] == "casting"
    assert (loss["issued_g"], loss["loss_g"], loss["allowance_g"], loss["loss_percent"],
            loss["over_allowance_jobs"]) == ("50.000", "1.050", "0.750", "2.10", 1)
    assert ids(manager.get("/material-slips", {"over_allowance": "true"})) == [issue["id"]]

    # Balances: the vault got the scrap back, the rings are "in pieces"; gold is valued.
    body = ok(manager.get("/metal/balances"))
    rows = {r["location"]["kind"]: r for r in body["rows"]}
    assert rows["vault"]["alloy_g"] == "166.550" and rows["in_pieces"]["alloy_g"] == "32.400"
    assert rows["vault"]["value"] == str((D("124.913") * D("60.5")).quantize(D("0.01")))
    assert body["currency"] == "EUR"
    (total,) = body["totals"]
    assert total["metal"] == "gold" and total["fine_g"] == "149.213"  # 198.95 g × 0.75

    # Stones: a lot, twelve reserved for the first ring, issued to the setter.
    lot = ok(manager.post("/stone-lots", {
        "stone_type": "diamond", "shape": "round", "count": 50, "carats": "5.000",
        "size_mm": "2.0", "colour": "G", "clarity": "VS1", "supplier": "Diamants SA",
        "price_per_ct": "900", "compliance_statement": COMPLIANCE}), 201)
    assert (lot["vault_count"], lot["free_count"], lot["reserved_count"]) == (50, 50, 0)
    alloc = ok(manager.post("/stone-allocations", {"piece_id": pieces[0].pk,
                                                   "lot_id": lot["id"], "count": 12,
                                                   "carats": "1.200"}), 201)
    assert alloc["status"] == "reserved" and alloc["piece"]["serial"] == pieces[0].serial
    lot_now = ok(manager.get(f"/stone-lots/{lot['id']}"))
    assert (lot_now["free_count"], lot_now["reserved_count"], lot_now["free_carats"]) == (
        38, 12, "3.800")
    stones_out = ok(manager.post("/material-slips/issue", {
        "workshop_id": h.setter.pk, "operation": "setting", "allocation_ids": [alloc["id"]],
        "client_ref": "setting-1"}), 201)
    assert [p["id"] for p in stones_out["pieces"]] == [pieces[0].pk]
    ok(setter.post(f"/material-slips/{stones_out['id']}/receive",
                   {"lines": receive_lines(stones_out)}))
    broken = ok(setter.post("/stones/breakages", {
        "workshop_id": h.setter.pk, "lot_id": lot["id"], "count": 1, "carats": "0.100",
        "reason": "Chipped while closing the prongs", "piece_id": pieces[0].pk}), 201)
    assert broken["kind"] == "breakage" and broken["to_location"]["kind"] == "broken"
    back = ok(setter.post(f"/material-slips/{stones_out['id']}/return", {
        "closes_issue": True,
        "stones": [{"lot_id": lot["id"], "count": 10, "carats": "1.000",
                    "piece_id": pieces[0].pk},
                   {"lot_id": lot["id"], "count": 1, "carats": "0.100"}]}), 201)
    ok(manager.post(f"/material-slips/{back['id']}/receive", {"lines": receive_lines(back)}))

    final = ok(manager.get(f"/stone-lots/{lot['id']}"))
    balances = {b["location"]["kind"]: (b["count"], b["carats"]) for b in final["balances"]}
    # Every stone is somewhere: the supplier account is the other side of the purchase.
    assert balances == {"vault": (39, "3.900"), "in_pieces": (10, "1.000"),
                        "broken": (1, "0.100"), "supplier": (-50, "-5.000")}
    assert (final["vault_count"], final["reserved_count"], final["free_count"]) == (39, 0, 39)
    (rate,) = ok(manager.get("/stones/breakage-rates"))
    assert (rate["workshop_name"], rate["stone_type"], rate["received"], rate["broken"],
            rate["rate_percent"]) == ("Sertissage Martin", "diamond", 12, 1, "8.33")
    assert ok(setter.get("/stones/breakage-rates")) == [rate]
    assert ok(caster.get("/stones/breakage-rates")) == []
    (set_alloc,) = ok(manager.get("/stone-allocations", {"piece_id": pieces[0].pk}))["items"]
    # Ten of the twelve are set; one broke and one came back unused.
    assert set_alloc["count_set"] == 10


# ---------------------------------------------------------------------------------------------
# alloys and units


def test_alloy_create_and_update(house_setup, api):
    h = house_setup
    me = api(h.manager)
    body = ok(me.post("/alloys", {"code": "375W", "name": "9k white gold", "metal": "gold",
                                  "fineness_permille": 375, "colour": "white",
                                  "density_g_cm3": 13.1}), 201)
    assert body == {"code": "375w", "name": "9k white gold", "metal": "gold",
                    "fineness_permille": 375, "colour": "white", "density_g_cm3": "13.10"}
    assert_error(me.post("/alloys", {"code": "375w", "metal": "gold",
                                     "fineness_permille": 375, "density_g_cm3": "13.1"}), 409)
    assert ok(me.patch("/alloys/585w", {"density_g_cm3": "13.05"}))["density_g_cm3"] == "13.05"
    assert ok(me.patch("/alloys/585w", {"name": "White 14k"}))["name"] == "White 14k"
    assert_error(me.patch("/alloys/nope", {"name": "x"}), 404, "not_found")
    assert_error(me.patch("/alloys/585w", {"density_g_cm3": "40"}), 400, "invalid")
    assert error_fields(me.patch("/alloys/585w", {"density_g_cm3": "heavy"})) == {
        "density_g_cm3"}
    assert error_fields(me.patch("/alloys/585w", {"density_g_cm3": True})) == {"density_g_cm3"}
    assert error_fields(me.post("/alloys", {"code": "x", "metal": "tin",
                                            "fineness_permille": 2000,
                                            "density_g_cm3": 7})) == {"metal",
                                                                      "fineness_permille"}
    assert_error(me.post("/alloys", {"code": "a b", "metal": "gold", "fineness_permille": 750,
                                     "density_g_cm3": 15}), 400)
    for role in ("sales", "designer", "logistics", "caster_member", "client_contact"):
        assert_error(api(user(h, role)).post("/alloys", {
            "code": "x1", "metal": "gold", "fineness_permille": 750, "density_g_cm3": 15}),
            403, "forbidden")
        assert_error(api(user(h, role)).patch("/alloys/750y", {"density_g_cm3": 1}), 403)
    assert ok(api(h.caster_member).get("/alloys", {"limit": 100}))["count"] >= 6


def test_unit_conversions(house_setup, api):
    me = api(house_setup.caster_member)
    assert ok(me.get("/units/convert", {"value": "31.103"})) == {
        "g": "31.103", "ozt": "1.0000", "dwt": "20.000", "gr": "480.0", "ct": "155.515"}
    assert ok(me.get("/units/convert", {"value": "1", "unit": "ozt"}))["g"] == "31.103"
    assert ok(me.get("/units/convert", {"value": "1", "unit": "ct"}))["g"] == "0.200"
    assert ok(me.get("/units/convert", {"value": "1", "unit": "dwt"}))["g"] == "1.555"
    for bad in ({"value": "-1"}, {"value": "heavy"}, {"value": "1e12"}, {"value": "NaN"},
                {"value": "1", "unit": "kg"}, {}):
        assert_error(me.get("/units/convert", bad), 422, "invalid_input")
    assert_error(api(None).get("/units/convert", {"value": "1"}), 401)


# ---------------------------------------------------------------------------------------------
# prices


def test_prices_set_list_filter_and_on_a_date(house_setup, api):
    h = house_setup
    me = api(h.manager)
    today = timezone.localdate()
    week_ago = today - dt.timedelta(days=7)
    first = ok(me.post("/metal/prices", {"metal": "gold", "priced_on": week_ago,
                                         "price_per_fine_g": 58, "source": "LBMA"}), 201)
    assert first["price_per_fine_g"] == "58.0000" and first["currency"] == "EUR"
    assert first["entered_by"] == "manager" and first["source"] == "LBMA"
    ok(me.post("/metal/prices", {"metal": "gold", "priced_on": today,
                                 "price_per_fine_g": "61.25"}), 201)
    ok(me.post("/metal/prices", {"metal": "platinum", "priced_on": today,
                                 "price_per_fine_g": "29.9"}), 201)
    # Correcting a day's price replaces it.
    ok(me.post("/metal/prices", {"metal": "gold", "priced_on": today,
                                 "price_per_fine_g": "61.50"}), 201)
    body = ok(api(h.sales).get("/metal/prices"))
    assert body["count"] == 3
    assert [(p["metal"], p["priced_on"]) for p in body["items"]] == [
        ("gold", today.isoformat()), ("platinum", today.isoformat()),
        ("gold", week_ago.isoformat())]
    assert ok(me.get("/metal/prices", {"metal": "platinum"}))["count"] == 1
    assert ok(me.get("/metal/prices", {"end": week_ago}))["count"] == 1
    assert ok(me.get("/metal/prices", {"start": today, "metal": "gold"}))["items"][0][
        "price_per_fine_g"] == "61.5000"
    on = ok(me.get("/metal/prices/on", {"date": today - dt.timedelta(days=3)}))
    assert [(p["metal"], p["price_per_fine_g"]) for p in on] == [("gold", "58.0000")]
    assert {p["metal"] for p in ok(me.get("/metal/prices/on"))} == {"gold", "platinum"}
    assert ok(me.get("/metal/prices/on", {"metal": "platinum"}))[0]["price_per_fine_g"] == \
        "29.9000"
    assert ok(me.get("/metal/prices/on", {"date": "2000-01-01"})) == []

    before = MetalPrice.objects.count()
    assert_error(me.post("/metal/prices", {"metal": "gold", "priced_on": today
                                           + dt.timedelta(days=5), "price_per_fine_g": 60}),
                 400)
    assert_error(me.post("/metal/prices", {"metal": "gold", "priced_on": today,
                                           "price_per_fine_g": -1}), 400)
    assert_error(me.post("/metal/prices", {"metal": "gold", "priced_on": today,
                                           "price_per_fine_g": "1e9"}), 400)
    assert_error(me.post("/metal/prices", {"metal": "gold", "priced_on": today,
                                           "price_per_fine_g": 60, "currency": "E1"}), 400)
    assert error_fields(me.post("/metal/prices", {"metal": "tin", "priced_on": "yesterday",
                                                  "price_per_fine_g": "cheap"})) == {
        "metal", "priced_on", "price_per_fine_g"}
    assert MetalPrice.objects.count() == before
    assert_error(me.get("/metal/prices", {"start": "0001-01-01"}), 400)
    # A bare number is not read as a Unix timestamp.
    assert error_fields(me.get("/metal/prices", {"start": "0", "end": "1700000000"})) == {
        "start", "end"}
    assert error_fields(me.post("/metal/prices", {"metal": "gold", "priced_on": 0,
                                                  "price_per_fine_g": 1})) == {"priced_on"}

    for role in ("designer", "quality", "logistics", "caster_member", "client_contact"):
        who = api(user(h, role))
        assert_error(who.get("/metal/prices"), 403, "forbidden")
        assert_error(who.get("/metal/prices/on"), 403, "forbidden")
        assert_error(who.post("/metal/prices", {"metal": "gold", "priced_on": today,
                                                "price_per_fine_g": 1}), 403, "forbidden")
    # Sales see prices and may enter them (prices are commercial).
    ok(api(h.sales).post("/metal/prices", {"metal": "silver", "priced_on": today,
                                           "price_per_fine_g": "0.85"}), 201)


def _upload(client, path: str, data: dict):
    return client.client.post(API + path, data, headers=client._headers())


def test_price_import_from_a_csv_file_or_text(house_setup, api):
    h = house_setup
    me = api(h.manager)
    csv_text = ("date;metal;price_per_fine_g;currency\n"
                "2025-01-02;gold;80,10;EUR\n2025-01-03;Gold;80.40;EUR\n"
                "2025-01-03;silver;0.92;\n")
    body = ok(_upload(me, "/metal/prices/import",
                      {"file": SimpleUploadedFile("prices.csv", csv_text.encode(),
                                                  "text/csv")}))
    assert body == {"imported": 3}
    assert MetalPrice.objects.get(metal="gold", priced_on="2025-01-02").price_per_fine_g == \
        D("80.1000")
    assert ok(_upload(me, "/metal/prices/import",
                      {"text": "date,metal,price_per_fine_g\n2025-01-06,platinum,30\n",
                       "source": "Supplier quote"})) == {"imported": 1}
    assert MetalPrice.objects.get(metal="platinum").source == "Supplier quote"

    before = MetalPrice.objects.count()
    bad_line = "date,metal,price_per_fine_g\n2025-02-01,gold,81\n2025-02-02,tin,1\n"
    body = assert_error(_upload(me, "/metal/prices/import", {"text": bad_line}), 400)
    assert "Line 3" in body["message"]
    assert MetalPrice.objects.count() == before  # all rows or none
    assert_error(_upload(me, "/metal/prices/import", {"text": "a,b\n1,2\n"}), 400)
    assert_error(_upload(me, "/metal/prices/import", {"text": ""}), 400)
    assert_error(_upload(me, "/metal/prices/import", {}), 400)
    assert_error(_upload(me, "/metal/prices/import", {
        "file": SimpleUploadedFile("p.csv", b"\xff\xfe\x00\x01garbage", "text/csv")}), 400)
    assert MetalPrice.objects.count() == before
    for role in ("logistics", "caster_member", "client_contact"):
        assert_error(_upload(api(user(h, role)), "/metal/prices/import",
                             {"text": "date,metal,price_per_fine_g\n2025-01-06,gold,30\n"}),
                     403, "forbidden")


# ---------------------------------------------------------------------------------------------
# locations, purchases, balances, entries


def test_locations_per_role(house_setup, api):
    h = house_setup
    buy(h)
    issue_metal(h)  # makes the caster's location
    manager_view = ok(api(h.manager).get("/metal/locations", {"limit": 1000}))
    kinds = {loc["kind"] for loc in manager_view["items"]}
    assert {"vault", "workshop", "transit", "in_pieces", "supplier", "loss"} <= kinds
    vault = next(loc for loc in manager_view["items"] if loc["kind"] == "vault")
    assert vault["physical"] is True and vault["name"] == "House vault"
    assert ok(api(h.logistics).get("/metal/locations"))["count"] == manager_view["count"]
    caster_view = ok(api(h.caster_member).get("/metal/locations"))["items"]
    assert [(loc["kind"], loc["workshop_id"]) for loc in caster_view] == [
        ("workshop", h.caster.pk)]
    assert ok(api(h.setter_member).get("/metal/locations"))["count"] == 0
    for role in BLIND_ROLES:
        assert ok(api(user(h, role)).get("/metal/locations"))["count"] == 0
    assert ok(api(h.manager).get("/metal/locations", {"kind": "workshop"}))["count"] == 1
    assert_error(api(h.manager).get("/metal/locations", {"kind": "moon"}), 422)


def test_purchase_roles_and_bad_input(house_setup, api):
    h = house_setup
    me = api(h.manager)
    before = ledger_rows()
    for body in ({"alloy": "750y", "weight_g": -5}, {"alloy": "750y", "weight_g": 0},
                 {"alloy": "750y", "weight_g": "1e9"}, {"alloy": "750y", "weight_g": "1.2345"},
                 {"alloy": "999zz", "weight_g": 10}):
        assert_error(me.post("/metal/purchases", body), 400, "invalid")
    assert error_fields(me.post("/metal/purchases", {"alloy": "750y", "weight_g": "ten"})) == {
        "weight_g"}
    assert error_fields(me.post("/metal/purchases", {"alloy": "750y", "weight_g": True})) == {
        "weight_g"}
    assert error_fields(me.post("/metal/purchases", {"weight_g": 1})) == {"alloy"}
    assert_error(me.post("/metal/purchases", raw="[1, 2]"), 422)
    assert_error(me.post("/metal/purchases", raw="{not json"), 400)
    for role in ("sales", "logistics", "designer", "caster_member", "client_contact"):
        assert_error(api(user(h, role)).post("/metal/purchases",
                                             {"alloy": "750y", "weight_g": 10}), 403)
    assert ledger_rows() == before
    entry = ok(api(h.admin).post("/metal/purchases", {"alloy": "950pt", "weight_g": 12.5,
                                                      "reference": "INV-9"}), 201)
    assert entry["alloy"] == "950pt" and entry["alloy_g"] == "12.500"
    assert entry["fine_g"] == "11.875" and entry["comment"] == "INV-9"
    assert entry["from_location"]["kind"] == "supplier"


def test_balances_per_role_with_values_only_for_price_roles(house_setup, api):
    h = house_setup
    services.metal_price_set(actor=h.manager, metal="gold", priced_on=timezone.localdate(),
                             price_per_fine_g="60")
    buy(h, "100.000")
    slip = issue_metal(h, grams="20.000")
    receive_all(h.caster_member, slip)
    buy(h, "5.000", alloy="950pt")
    manager = ok(api(h.manager).get("/metal/balances"))
    rows = {(r["location"]["kind"], r["alloy"]["code"]): r for r in manager["rows"]}
    assert set(rows) == {("vault", "750y"), ("workshop", "750y"), ("vault", "950pt")}
    assert rows[("workshop", "750y")]["alloy_g"] == "20.000"
    assert rows[("workshop", "750y")]["value"] == "900.00"  # 15 g fine × 60
    assert rows[("workshop", "750y")]["priced_on"] == timezone.localdate().isoformat()
    assert rows[("vault", "950pt")]["value"] is None  # no platinum price
    totals = {t["metal"]: t for t in manager["totals"]}
    assert totals["gold"]["fine_g"] == "75.000" and totals["gold"]["value"] == "4500.00"
    assert totals["platinum"]["fine_g"] == "4.750" and totals["platinum"]["value"] is None
    assert totals["gold"]["fine_ozt"] == "2.4113"
    sales = ok(api(h.sales).get("/metal/balances"))
    assert sales["rows"] == manager["rows"]
    logistics = ok(api(h.logistics).get("/metal/balances"))
    assert len(logistics["rows"]) == 3 and logistics["currency"] is None
    assert all(r["value"] is None and r["priced_on"] is None for r in logistics["rows"])
    assert all(t["value"] is None for t in logistics["totals"])

    caster = ok(api(h.caster_member).get("/metal/balances"))
    assert [(r["location"]["workshop_id"], r["alloy_g"], r["value"]) for r in caster["rows"]] \
        == [(h.caster.pk, "20.000", None)]
    assert caster["currency"] is None and caster["totals"][0]["value"] is None
    assert ok(api(h.setter_member).get("/metal/balances"))["rows"] == []
    for role in BLIND_ROLES:
        assert ok(api(user(h, role)).get("/metal/balances"))["rows"] == []

    caster_loc = Location.objects.get(workshop=h.caster)
    vault = Location.objects.get(kind=LocationKind.VAULT)
    one = ok(api(h.manager).get("/metal/balances", {"location_id": caster_loc.pk}))
    assert [r["location"]["id"] for r in one["rows"]] == [caster_loc.pk]
    ok(api(h.caster_member).get("/metal/balances", {"location_id": caster_loc.pk}))
    assert_error(api(h.caster_member).get("/metal/balances", {"location_id": vault.pk}), 404)
    assert_error(api(h.setter_member).get("/metal/balances", {"location_id": caster_loc.pk}),
                 404)
    assert_error(api(h.manager).get("/metal/balances", {"location_id": 999999}), 404)
    # At a moment in the past: before anything was bought, nothing was held.
    past = ok(api(h.manager).get("/metal/balances",
                                 {"at": (timezone.now() - dt.timedelta(days=1)).isoformat()}))
    assert past["rows"] == [] and past["totals"] == []
    now = ok(api(h.manager).get("/metal/balances", {"at": timezone.now().isoformat()}))
    assert [(r["location"]["kind"], r["alloy_g"]) for r in now["rows"]] == [
        (r["location"]["kind"], r["alloy_g"]) for r in manager["rows"]]
    naive = ok(api(h.manager).get("/metal/balances", {"at": "2999-01-01T00:00:00"}))
    assert len(naive["rows"]) == 3
    accounts = ok(api(h.manager).get("/metal/balances", {"physical_only": "false"}))
    assert any(r["location"]["kind"] == "supplier" and r["alloy_g"].startswith("-")
               for r in accounts["rows"])
    assert_error(api(h.manager).get("/metal/balances", {"at": "yesterday"}), 422)
    for moment in ("0", "0.5", "1700000000"):
        assert_error(api(h.manager).get("/metal/balances", {"at": moment}), 422)
    assert_error(api(h.manager).get("/metal/balances", {"location_id": "vault"}), 422)


def test_metal_entries_filters_scope_and_pagination(house_setup, api):
    h = house_setup
    buy(h, "100.000")
    slip = issue_metal(h, grams="20.000")
    receive_all(h.caster_member, slip)
    other = issue_metal(h, workshop=h.polisher, grams="5.000", operation="polishing")
    me = api(h.manager)
    body = ok(me.get("/metal/entries"))
    assert body["count"] == MetalEntry.objects.count() == 4
    assert [e["kind"] for e in body["items"]] == ["dispatch", "receipt", "dispatch",
                                                  "purchase"]
    assert body["items"][0]["slip_number"] == other.number
    assert ids(me.get("/metal/entries", {"slip_id": slip.pk})) == list(
        MetalEntry.objects.filter(slip=slip).order_by("-occurred_at", "-id")
        .values_list("pk", flat=True))
    assert ok(me.get("/metal/entries", {"kind": "purchase"}))["count"] == 1
    assert ok(me.get("/metal/entries", {"alloy": "950pt"}))["count"] == 0
    vault = Location.objects.get(kind=LocationKind.VAULT)
    assert ok(me.get("/metal/entries", {"location_id": vault.pk}))["count"] == 3
    today = timezone.localdate()
    assert ok(me.get("/metal/entries", {"start": today, "end": today}))["count"] == 4
    assert ok(me.get("/metal/entries", {"end": today - dt.timedelta(days=1)}))["count"] == 0
    assert_error(me.get("/metal/entries", {"start": today, "end": today
                                           - dt.timedelta(days=1)}), 400)
    page = ok(me.get("/metal/entries", {"limit": 2, "offset": 1}))
    assert [e["id"] for e in page["items"]] == [e["id"] for e in body["items"][1:3]]
    assert_error(me.get("/metal/entries", {"limit": 5000}), 422)
    # The caster sees the movements of its own location only.
    caster = ok(api(h.caster_member).get("/metal/entries"))
    assert caster["count"] == 1 and caster["items"][0]["kind"] == "receipt"
    assert ok(api(h.setter_member).get("/metal/entries"))["count"] == 0
    for role in BLIND_ROLES:
        assert ok(api(user(h, role)).get("/metal/entries"))["count"] == 0


# ---------------------------------------------------------------------------------------------
# material slips


def test_issue_through_the_api_and_what_each_role_sees(house_setup, api):
    h = house_setup
    buy(h)
    piece = h.launched_piece()
    me = api(h.manager)
    slip = ok(me.post("/material-slips/issue", {
        "workshop_id": h.caster.pk, "operation": "assembly", "piece_ids": [piece.pk],
        "metal": [{"alloy": "750y", "weight_g": 12.5}], "comment": "for the clasp"}), 201)
    assert SLIP_KEYS <= set(slip) and slip["number"].startswith("MI-")
    assert slip["from_location"]["kind"] == "vault"
    assert slip["to_location"]["workshop_id"] == h.caster.pk
    assert slip["lines"][0]["weight_sent_g"] == "12.500"
    assert slip["pieces"] == [{"id": piece.pk, "serial": piece.serial}]
    assert slip["job"]["allowance_percent"] is not None or slip["job"]["issued_g"] == "0.000"
    listed = ok(me.get("/material-slips"))
    assert listed["count"] == 1 and set(listed["items"][0]) == SLIP_KEYS
    for role in HOUSE_LEDGER_ROLES + ("caster_member",):
        assert ok(api(user(h, role)).get(f"/material-slips/{slip['id']}"))["id"] == slip["id"]
        assert ids(api(user(h, role)).get("/material-slips")) == [slip["id"]]
    for role in BLIND_ROLES + ("setter_member", "polisher_member"):
        assert ok(api(user(h, role)).get("/material-slips"))["count"] == 0
        assert_error(api(user(h, role)).get(f"/material-slips/{slip['id']}"), 404,
                     "not_found")
    # Filters cannot widen a workshop member's scope.
    assert ok(api(h.setter_member).get("/material-slips",
                                       {"workshop_id": h.caster.pk}))["count"] == 0
    for role in ("sales", "logistics", "caster_member"):
        assert_error(api(user(h, role)).post("/material-slips/issue", {
            "workshop_id": h.caster.pk, "metal": [{"alloy": "750y", "weight_g": 1}]}), 403,
            "forbidden")
    for role in ("designer", "client_contact"):
        assert_error(api(user(h, role)).post("/material-slips/issue", {
            "workshop_id": h.caster.pk, "metal": [{"alloy": "750y", "weight_g": 1}]}), 403)


def test_slip_list_filters(house_setup, api):
    h = house_setup
    buy(h)
    a = issue_metal(h, grams="10.000")
    receive_all(h.caster_member, a)
    b = issue_metal(h, workshop=h.polisher, grams="10.000", operation="polishing")
    c = issue_metal(h, grams="10.000")
    services.material_slip_receive(actor=h.caster_member, slip_id=c.pk,
                                   lines=[{"line_id": c.lines.get().pk, "weight_g": "9.800"}])
    me = api(h.manager)
    assert ids(me.get("/material-slips")) == [c.pk, b.pk, a.pk]
    assert ids(me.get("/material-slips", {"status": "received"})) == [c.pk, a.pk]
    assert ids(me.get("/material-slips", {"workshop_id": h.polisher.pk})) == [b.pk]
    assert ids(me.get("/material-slips", {"flagged": "true"})) == [c.pk]
    assert ids(me.get("/material-slips", {"flagged": "false"})) == [b.pk, a.pk]
    assert ids(me.get("/material-slips", {"kind": "return"})) == []
    assert ids(me.get("/material-slips", {"q": b.number.lower()})) == [b.pk]
    assert ids(me.get("/material-slips", {"limit": 1, "offset": 1})) == [b.pk]
    assert_error(me.get("/material-slips", {"status": "lost"}), 422, "invalid_input")
    assert_error(me.get("/material-slips", {"kind": "gift"}), 422, "invalid_input")
    assert_error(me.get("/material-slips/abc"), 422)
    assert_error(me.get("/material-slips/999999"), 404, "not_found")
    flagged = ok(me.get(f"/material-slips/{c.pk}"))
    assert flagged["weight_flagged"] is True
    assert flagged["lines"][0]["weight_received_g"] == "9.800"
    assert flagged["lines"][0]["difference_flagged"] is True


def test_issue_bad_input_is_4xx_and_writes_nothing(house_setup, api):
    h = house_setup
    buy(h, "100.000")
    buy(h, "1.000", alloy="950pt")
    piece = h.launched_piece()
    lot = diamond_lot(h, count=10, carats="1.000")
    me = api(h.manager)

    def issue(**body):
        return me.post("/material-slips/issue", {"workshop_id": h.caster.pk} | body)

    before = ledger_rows()
    metal = [{"alloy": "750y", "weight_g": "10.000"}]
    for weight in (-1, 0, "0.0001", "1.2345", "60000", "1e999999"):
        assert_error(issue(metal=[{"alloy": "750y", "weight_g": weight}]), 400, "invalid")
    for weight in ("ten", None, True, "NaN", "Infinity", [], {}):
        assert error_fields(issue(metal=[{"alloy": "750y", "weight_g": weight}])) == {
            "metal.0.weight_g"}
    assert_error(issue(metal=[{"alloy": "999zz", "weight_g": 1}]), 400, "invalid")
    assert_error(issue(metal=[{"alloy": "750y", "weight_g": "100.001"}]), 409,
                 "insufficient_metal")
    assert_error(issue(), 400, "invalid")  # nothing issued
    assert_error(me.post("/material-slips/issue", {"workshop_id": 999999, "metal": metal}),
                 404)
    assert_error(me.post("/material-slips/issue", {"workshop_id": h.house.pk, "metal": metal}),
                 400)
    assert_error(issue(metal=metal, operation="juggling"), 400)
    assert_error(issue(metal=metal, piece_ids=[999999]), 404)
    assert_error(issue(metal=[{"alloy": "750y", "weight_g": 1}, {"alloy": "950pt",
                                                                   "weight_g": 1}]), 400)
    assert_error(issue(stones=[{"lot_id": 999999, "count": 1, "carats": "0.1"}]), 404)
    assert_error(issue(stones=[{"lot_id": lot.pk, "count": 11, "carats": "1.000"}]), 409,
                 "insufficient_stones")
    assert_error(issue(stones=[{"lot_id": lot.pk, "count": 1, "carats": "0.0001"}]), 400)
    assert error_fields(issue(stones=[{"lot_id": lot.pk, "count": 0, "carats": "0.1"}])) == {
        "stones.0.count"}
    assert_error(issue(allocation_ids=[999999]), 404)
    assert_error(issue(pieces=[{"piece_id": piece.pk, "weight_g": "6000"}]), 400)
    assert error_fields(issue(metal=[{"alloy": "750y", "weight_g": 1}] * 201)) == {"metal"}
    assert error_fields(issue(piece_ids=list(range(1, 202)), metal=metal)) == {"piece_ids"}
    assert error_fields(issue(metal=metal, client_ref="x" * 65)) == {"client_ref"}
    assert error_fields(me.post("/material-slips/issue", {"metal": metal})) == {"workshop_id"}
    assert_error(me.post("/material-slips/issue", {"workshop_id": h.caster.pk,
                                                   "metal": "10 g of gold"}), 422)
    assert_error(issue(metal=metal, comment="a\x00b"), 422)
    assert ledger_rows() == before


def test_repeat_with_the_same_client_ref_returns_the_same_slip(house_setup, api):
    h = house_setup
    buy(h, "100.000")
    me = api(h.manager)
    body = {"workshop_id": h.caster.pk, "operation": "assembly", "client_ref": "abc-1",
            "metal": [{"alloy": "750y", "weight_g": "10.000"}]}
    first = ok(me.post("/material-slips/issue", body), 201)
    again = ok(me.post("/material-slips/issue", body), 200)
    assert again == first
    assert MaterialSlip.objects.count() == 1
    assert MetalBalance.objects.get(location__kind="vault").alloy_g == D("90.000")
    # A client_ref of an issue cannot name another kind of slip.
    ok(api(h.caster_member).post(f"/material-slips/{first['id']}/receive",
                                 {"lines": receive_lines(first)}))
    assert_error(api(h.caster_member).post(f"/material-slips/{first['id']}/return", {
        "scrap": [{"weight_g": 1}], "client_ref": "abc-1"}), 409, "conflict")
    ret = ok(api(h.caster_member).post(f"/material-slips/{first['id']}/return", {
        "scrap": [{"weight_g": "1.000"}], "client_ref": "ret-1"}), 201)
    assert ok(api(h.caster_member).post(f"/material-slips/{first['id']}/return", {
        "scrap": [{"weight_g": "1.000"}], "client_ref": "ret-1"}), 200)["id"] == ret["id"]
    # Another workshop repeating the caster's client_ref is refused, not handed its slip.
    second = issue_metal(h, workshop=h.setter, grams="5.000", operation="setting")
    receive_all(h.setter_member, second)
    body = assert_error(api(h.setter_member).post(f"/material-slips/{second.pk}/return", {
        "scrap": [{"weight_g": 1}], "client_ref": "ret-1"}), 409, "conflict")
    assert ret["number"] not in body["message"]
    assert MaterialSlip.objects.filter(kind="return").count() == 1


def test_receive_return_cancel_settle_and_their_guards(house_setup, api):
    h = house_setup
    buy(h, "100.000")
    piece = h.launched_piece()
    manager, caster = api(h.manager), api(h.caster_member)
    slip = ok(manager.post("/material-slips/issue", {
        "workshop_id": h.caster.pk, "operation": "assembly", "piece_ids": [piece.pk],
        "metal": [{"alloy": "750y", "weight_g": "20.000"}]}), 201)
    line_id = slip["lines"][0]["id"]
    # Nothing is returned before the issue is received.
    assert_error(caster.post(f"/material-slips/{slip['id']}/return",
                             {"scrap": [{"weight_g": 1}]}), 409, "transition_not_allowed")
    # Only the caster receives an issue addressed to it; every line must be confirmed.
    for role in ("setter_member", "designer", "client_contact"):
        assert_error(api(user(h, role)).post(f"/material-slips/{slip['id']}/receive", {
            "lines": [{"line_id": line_id, "weight_g": "20"}]}), 404)
    for role in ("sales", "logistics"):
        assert_error(api(user(h, role)).post(f"/material-slips/{slip['id']}/receive", {
            "lines": [{"line_id": line_id, "weight_g": "20"}]}), 403, "forbidden")
    before = ledger_rows()
    assert_error(caster.post(f"/material-slips/{slip['id']}/receive", {"lines": []}), 400)
    assert_error(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": 999999, "weight_g": "20"}]}), 400)
    assert_error(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": line_id, "weight_g": "-1"}]}), 400)
    assert_error(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": line_id, "weight_g": "20.0001"}]}), 400)
    assert_error(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": line_id, "weight_g": "500"}]}), 400)
    assert error_fields(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": line_id, "weight_g": "twenty"}]})) == {"lines.0.weight_g"}
    assert error_fields(caster.post(f"/material-slips/{slip['id']}/receive", {})) == {"lines"}
    assert ledger_rows() == before
    # The caster cannot cancel an issue; the manager can, with a reason, while in transit.
    assert_error(caster.post(f"/material-slips/{slip['id']}/cancel", {"reason": "no"}), 403)
    assert error_fields(manager.post(f"/material-slips/{slip['id']}/cancel", {})) == {"reason"}
    received = ok(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": line_id, "weight_g": "19.990"}], "comment": "scale B"}))
    assert received["status"] == "received" and received["received_by"] == "caster1"
    assert received["weight_flagged"] is False  # 10 mg is within the 50 mg tolerance
    assert_error(caster.post(f"/material-slips/{slip['id']}/receive", {
        "lines": [{"line_id": line_id, "weight_g": "19.990"}]}), 409, "already_received")
    assert_error(manager.post(f"/material-slips/{slip['id']}/cancel", {"reason": "oops"}),
                 409, "transition_not_allowed")
    # Another workshop cannot return against the caster's issue, nor see it.
    assert_error(api(h.setter_member).post(f"/material-slips/{slip['id']}/return", {
        "scrap": [{"weight_g": 1}]}), 404)
    for bad in ({"scrap": [{"weight_g": "-2"}]}, {"scrap": [{"weight_g": "1.2345"}]},
                {"scrap": [{"weight_g": 1, "alloy": "999zz"}]}, {},
                {"pieces": [{"piece_id": 999999, "weight_g": 1}]}):
        assert 400 <= caster.post(f"/material-slips/{slip['id']}/return", bad).status_code \
            < 500
    assert error_fields(caster.post(f"/material-slips/{slip['id']}/return", {
        "scrap": [{"kind": "dust", "weight_g": 1}]})) == {"scrap.0.kind"}
    assert ledger_rows()[0] == before[0]
    ret = ok(caster.post(f"/material-slips/{slip['id']}/return", {
        "pieces": [{"piece_id": piece.pk, "weight_g": "15.000"}],
        "scrap": [{"kind": "filings", "weight_g": "4.500"}]}), 201)
    assert ret["closes_issue"] is False and ret["to_location"]["kind"] == "vault"
    # The caster cancels its own return still in transit, then sends the last one.
    cancelled = ok(caster.post(f"/material-slips/{ret['id']}/cancel", {"reason": "wrong"}))
    assert cancelled["status"] == "cancelled"
    ret = ok(caster.post(f"/material-slips/{slip['id']}/return", {
        "pieces": [{"piece_id": piece.pk, "weight_g": "15.000"}],
        "scrap": [{"kind": "filings", "weight_g": "4.500"}]}), 201)
    # The job cannot be settled with a return in transit, nor by the caster.
    assert_error(manager.post(f"/material-slips/{slip['id']}/settle"), 409)
    assert_error(caster.post(f"/material-slips/{slip['id']}/settle"), 403)
    assert_error(api(h.caster_member).post(f"/material-slips/{ret['id']}/receive",
                                           {"lines": receive_lines(ret)}), 403)
    ok(api(h.logistics).post(f"/material-slips/{ret['id']}/receive",
                             {"lines": receive_lines(ret)}))
    settled = ok(manager.post(f"/material-slips/{slip['id']}/settle"))
    # 19.990 received − 15 − 4.5 = 0.49 g lost; the assembly allowance decides the flag.
    assert settled["loss_g"] == "0.490" and settled["settled_at"] is not None
    assert_error(manager.post(f"/material-slips/{slip['id']}/settle"), 409, "already_settled")
    assert_error(manager.post(f"/material-slips/{ret['id']}/settle"), 404)
    assert_error(caster.post(f"/material-slips/{slip['id']}/return",
                             {"scrap": [{"weight_g": 1}]}), 409)


def test_refiner_send_and_settle(house_setup, api):
    h = house_setup
    buy(h, "40.000")
    me = api(h.manager)
    slip = ok(me.post("/material-slips/refiner", {
        "lines": [{"alloy": "750y", "weight_g": "40"}], "client_ref": "ref-1"}), 201)
    assert slip["kind"] == "refiner" and slip["to_location"]["kind"] == "refiner"
    assert ok(me.post("/material-slips/refiner", {
        "lines": [{"alloy": "750y", "weight_g": "40"}], "client_ref": "ref-1"}))["id"] == \
        slip["id"]
    assert_error(me.post(f"/material-slips/{slip['id']}/receive", {"lines": []}), 409)
    assert_error(me.post(f"/material-slips/{slip['id']}/refiner-settle", {
        "returned": [{"alloy": "999au", "weight_g": "31"}]}), 400)
    done = ok(me.post(f"/material-slips/{slip['id']}/refiner-settle", {
        "returned": [{"alloy": "999au", "weight_g": "29.900"}]}))
    assert done["status"] == "received" and done["loss_fine_g"] == "0.130"
    assert_error(me.post(f"/material-slips/{slip['id']}/refiner-settle", {"returned": []}),
                 409)
    assert error_fields(me.post("/material-slips/refiner", {"lines": []})) == {"lines"}
    assert_error(api(h.caster_member).post("/material-slips/refiner", {
        "lines": [{"alloy": "750y", "weight_g": "1"}]}), 403)


# ---------------------------------------------------------------------------------------------
# statements, losses and allowances


def test_workshop_statement_scope_and_period(house_setup, api):
    h = house_setup
    buy(h)
    slip = issue_metal(h, grams="20.000")
    receive_all(h.caster_member, slip)
    in_transit = issue_metal(h, grams="3.000")
    url = f"/workshops/{h.caster.pk}/metal-statement"
    for role in HOUSE_LEDGER_ROLES + ("caster_member",):
        st = ok(api(user(h, role)).get(url))
        assert st["workshop"]["code"] == "caster"
        assert st["start"] == timezone.localdate().replace(day=1).isoformat()
        assert [ln["issued_g"] for ln in st["lines"]] == ["20.000"]
        assert st["lines"][0]["closing_g"] == st["lines"][0]["closing_g"] == "20.000"
        assert st["lines"][0]["closing_fine_g"] == "15.000"
        assert [s["id"] for s in st["in_transit"]] == [in_transit.pk]
        assert st["jobs"] == []
    for role in ("setter_member", "polisher_member") + BLIND_ROLES:
        assert_error(api(user(h, role)).get(url), 404, "not_found")
    assert_error(api(h.manager).get("/workshops/999999/metal-statement"), 404)
    me = api(h.manager)
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    later = ok(me.get(url, {"start": tomorrow, "end": tomorrow}))
    assert later["lines"][0]["opening_g"] == "20.000"
    assert later["lines"][0]["issued_g"] == "0.000"
    assert_error(me.get(url, {"start": tomorrow, "end": timezone.localdate()}), 400)
    assert_error(me.get(url, {"start": "0001-01-01"}), 400)
    assert_error(me.get(url, {"end": "9999-12-31"}), 400)
    assert_error(me.get(url, {"start": "last week"}), 422)


def test_losses_per_workshop_and_operation(house_setup, api):
    h = house_setup
    buy(h)
    for workshop, member, operation in ((h.caster, h.caster_member, "assembly"),
                                        (h.polisher, h.polisher_member, "polishing")):
        slip = issue_metal(h, workshop=workshop, grams="10.000", operation=operation)
        receive_all(member, slip)
        services.material_issue_settle(actor=h.manager, issue_id=slip.pk)
    rows = ok(api(h.manager).get("/metal/losses"))
    assert [(r["workshop"]["code"], r["operation"], r["loss_g"]) for r in rows] == [
        ("caster", "assembly", "10.000"), ("polisher", "polishing", "10.000")]
    assert all(r["over_allowance_jobs"] == 1 and r["loss_percent"] == "100.00" for r in rows)
    assert [r["workshop"]["code"] for r in ok(api(h.caster_member).get("/metal/losses"))] == [
        "caster"]
    assert ok(api(h.setter_member).get("/metal/losses")) == []
    for role in BLIND_ROLES:
        assert ok(api(user(h, role)).get("/metal/losses")) == []
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    assert ok(api(h.manager).get("/metal/losses", {"start": yesterday, "end": yesterday})) == []
    assert_error(api(h.manager).get("/metal/losses", {"start": "2030-01-02",
                                                      "end": "2030-01-01"}), 400)


def test_loss_allowances_list_and_set(house_setup, api):
    h = house_setup
    me = api(h.manager)
    defaults = ok(me.get("/metal/loss-allowances"))
    assert defaults["count"] >= 1 and all(a["workshop"] is None for a in defaults["items"])
    casting = ok(me.get("/metal/loss-allowances", {"operation": "casting"}))["items"]
    assert [a["percent"] for a in casting] == ["1.50"]
    own = ok(me.put("/metal/loss-allowances", {"operation": "casting", "percent": "2.25",
                                               "workshop_id": h.caster.pk}))
    assert own["workshop"]["code"] == "caster" and own["percent"] == "2.25"
    again = ok(me.put("/metal/loss-allowances", {"operation": "casting", "percent": 2,
                                                 "workshop_id": h.caster.pk}))
    assert again["id"] == own["id"] and again["percent"] == "2.00"
    ok(me.put("/metal/loss-allowances", {"operation": "polishing", "percent": 1,
                                         "workshop_id": h.polisher.pk}))
    assert ok(me.get("/metal/loss-allowances", {"workshop_id": h.caster.pk}))["count"] == 1
    caster_view = ok(api(h.caster_member).get("/metal/loss-allowances", {"limit": 1000}))
    assert {a["workshop"]["code"] for a in caster_view["items"] if a["workshop"]} == {"caster"}
    assert caster_view["count"] == defaults["count"] + 1
    for role in BLIND_ROLES:
        assert ok(api(user(h, role)).get("/metal/loss-allowances"))["count"] == 0
    before = list(ok(me.get("/metal/loss-allowances", {"limit": 1000}))["items"])
    assert_error(me.put("/metal/loss-allowances", {"operation": "casting", "percent": 101}),
                 400)
    assert_error(me.put("/metal/loss-allowances", {"operation": "casting", "percent": -1}),
                 400)
    assert_error(me.put("/metal/loss-allowances", {"operation": "juggling", "percent": 1}),
                 400)
    assert_error(me.put("/metal/loss-allowances", {"operation": "casting", "percent": 1,
                                                   "workshop_id": 999999}), 404)
    assert error_fields(me.put("/metal/loss-allowances", {"operation": "casting",
                                                          "percent": "some"})) == {"percent"}
    for role in ("sales", "logistics", "caster_member", "client_contact"):
        assert_error(api(user(h, role)).put("/metal/loss-allowances", {
            "operation": "casting", "percent": 50, "workshop_id": h.caster.pk}), 403)
    assert ok(me.get("/metal/loss-allowances", {"limit": 1000}))["items"] == before


# ---------------------------------------------------------------------------------------------
# stock-takes


def test_stock_take_count_differences_and_post(house_setup, api):
    h = house_setup
    buy(h, "100.000")
    buy(h, "10.000", alloy="950pt")
    vault = Location.objects.get(kind=LocationKind.VAULT)
    me = api(h.manager)
    take = ok(me.post("/stock-takes", {"location_id": vault.pk,
                                       "counts": {"750y": "99.800", "950pt": 10}}), 201)
    assert take["status"] == "draft" and take["location"]["kind"] == "vault"
    lines = {ln["alloy"]: ln for ln in take["lines"]}
    assert (lines["750y"]["book_g"], lines["750y"]["counted_g"],
            lines["750y"]["difference_g"]) == ("100.000", "99.800", "-0.200")
    assert lines["950pt"]["difference_g"] == "0.000"
    assert ok(me.get(f"/stock-takes/{take['id']}")) == take
    assert ids(me.get("/stock-takes")) == [take["id"]]
    assert ids(me.get("/stock-takes", {"status": "posted"})) == []
    assert ids(me.get("/stock-takes", {"location_id": vault.pk})) == [take["id"]]
    assert_error(me.post(f"/stock-takes/{take['id']}/post", {}), 400)  # a reason is needed
    posted = ok(me.post(f"/stock-takes/{take['id']}/post",
                        {"reason": "Filings found in the sweeps tray"}))
    assert posted["status"] == "posted" and posted["posted_by"] == "manager"
    assert MetalBalance.objects.get(location=vault, alloy__code="750y").alloy_g == D("99.800")
    assert_error(me.post(f"/stock-takes/{take['id']}/post", {"reason": "again"}), 409,
                 "already_posted")

    before = ledger_rows()
    transit = Location.objects.get(kind=LocationKind.TRANSIT)
    for body in ({"location_id": transit.pk, "counts": {"750y": 1}},
                 {"location_id": vault.pk, "counts": {}},
                 {"location_id": vault.pk, "counts": {"999zz": 1}},
                 {"location_id": vault.pk, "counts": {"750y": -1}},
                 {"location_id": vault.pk, "counts": {"750y": "1.2345"}}):
        assert_error(me.post("/stock-takes", body), 400)
    assert_error(me.post("/stock-takes", {"location_id": 999999, "counts": {"750y": 1}}), 404)
    assert error_fields(me.post("/stock-takes", {"location_id": vault.pk,
                                                 "counts": {"750y": "lots"}})) == {
        "counts.750y"}
    assert error_fields(me.post("/stock-takes", {
        "location_id": vault.pk, "counts": {f"a{i}": 1 for i in range(201)}})) == {"counts"}
    for role in ("sales", "logistics", "caster_member") + BLIND_ROLES:
        assert_error(api(user(h, role)).post("/stock-takes", {
            "location_id": vault.pk, "counts": {"750y": 1}}), 403, "forbidden")
    for role in ("sales", "logistics"):
        assert ids(api(user(h, role)).get("/stock-takes")) == [take["id"]]
    for role in ("caster_member",) + BLIND_ROLES:
        assert ok(api(user(h, role)).get("/stock-takes"))["count"] == 0
        assert_error(api(user(h, role)).get(f"/stock-takes/{take['id']}"), 404)
    assert ledger_rows() == before


# ---------------------------------------------------------------------------------------------
# casting trees


def test_casting_tree_guards_scope_and_calculator(house_setup, api):
    h = house_setup
    buy(h)
    pieces = rings(h, 2)
    platinum = rings(h, 1, alloy="950pt")
    me = api(h.manager)
    calc = ok(me.get("/casting-trees/metal-needed", {"alloy": "750y", "wax_weight_g": "2.5"}))
    assert calc == {"alloy": "750y", "metal_needed_g": "50.375"}
    assert ok(me.get("/casting-trees/metal-needed", {
        "alloy": "950pt", "wax_weight_g": "1", "sprue_allowance_percent": 0}))[
        "metal_needed_g"] == "20.100"
    assert_error(me.get("/casting-trees/metal-needed", {"alloy": "nope", "wax_weight_g": 1}),
                 400)
    assert_error(me.get("/casting-trees/metal-needed", {"alloy": "750y", "wax_weight_g": -1}),
                 422)
    good = {"workshop_id": h.caster.pk, "alloy": "750y",
            "piece_ids": [p.pk for p in pieces], "wax_weight_g": "1.600"}
    before = ledger_rows()
    for bad, status in ((good | {"piece_ids": [platinum[0].pk]}, 400),
                        (good | {"wax_weight_g": "-1"}, 400),
                        (good | {"wax_weight_g": "5000"}, 400),
                        (good | {"wax_density_g_cm3": "9"}, 400),
                        (good | {"sprue_allowance_percent": "500"}, 400),
                        (good | {"alloy": "999zz"}, 400),
                        (good | {"workshop_id": h.house.pk}, 400),
                        (good | {"workshop_id": 999999}, 404),
                        (good | {"piece_ids": [999999]}, 404)):
        assert_error(me.post("/casting-trees", bad), status)
    assert error_fields(me.post("/casting-trees", good | {"piece_ids": []})) == {"piece_ids"}
    assert error_fields(me.post("/casting-trees", good | {"wax_weight_g": "wax"})) == {
        "wax_weight_g"}
    for role in ("sales", "logistics", "caster_member"):
        assert_error(api(user(h, role)).post("/casting-trees", good), 403)
    assert ledger_rows() == before
    tree = ok(me.post("/casting-trees", good), 201)
    assert tree["metal_needed_g"] == "32.240"  # 1.6 × 15.5 × 1.3
    for role in HOUSE_LEDGER_ROLES + ("caster_member",):
        assert ids(api(user(h, role)).get("/casting-trees")) == [tree["id"]]
        ok(api(user(h, role)).get(f"/casting-trees/{tree['id']}"))
    for role in ("setter_member",) + BLIND_ROLES:
        assert ok(api(user(h, role)).get("/casting-trees"))["count"] == 0
        assert_error(api(user(h, role)).get(f"/casting-trees/{tree['id']}"), 404)
    assert ids(me.get("/casting-trees", {"status": "issued"})) == []
    assert ids(me.get("/casting-trees", {"workshop_id": h.caster.pk})) == [tree["id"]]
    # Returning before the metal was issued, issuing by the caster, absurd weights.
    assert_error(api(h.caster_member).post(f"/casting-trees/{tree['id']}/return", {
        "pieces": [{"piece_id": pieces[0].pk, "weight_g": 5}]}), 409)
    assert_error(api(h.caster_member).post(f"/casting-trees/{tree['id']}/issue", {}), 403)
    assert_error(me.post(f"/casting-trees/{tree['id']}/issue", {"weight_g": "-3"}), 400)
    assert_error(me.post(f"/casting-trees/{tree['id']}/issue", {"weight_g": "500"}), 409)
    assert_error(me.post("/casting-trees/999999/issue", {}), 404)
    issued = ok(me.post(f"/casting-trees/{tree['id']}/issue", {}), 201)
    assert issued["lines"][0]["weight_sent_g"] == "32.240"
    assert_error(me.post(f"/casting-trees/{tree['id']}/issue", {}), 409)
    receive_all(h.caster_member, MaterialSlip.objects.get(pk=issued["id"]))
    assert_error(api(h.setter_member).post(f"/casting-trees/{tree['id']}/return", {
        "pieces": [{"piece_id": pieces[0].pk, "weight_g": 5}]}), 404)
    assert_error(api(h.caster_member).post(f"/casting-trees/{tree['id']}/return", {
        "pieces": [{"piece_id": platinum[0].pk, "weight_g": 5}]}), 400)
    ret = ok(api(h.caster_member).post(f"/casting-trees/{tree['id']}/return", {
        "pieces": [{"piece_id": p.pk, "weight_g": "10.000"} for p in pieces],
        "button_g": "11.000"}), 201)
    assert ret["casting_tree_id"] == tree["id"] and ret["closes_issue"] is True
    assert [s["kind"] for s in ok(me.get(f"/casting-trees/{tree['id']}"))["slips"]] == [
        "issue", "return"]


# ---------------------------------------------------------------------------------------------
# stones


def test_stone_lot_receive_guards_and_what_each_role_sees(house_setup, api):
    h = house_setup
    me = api(h.manager)
    good = {"stone_type": "ruby", "shape": "oval", "count": 8, "carats": "2.400",
            "sieve": "+6.5-7", "origin": "Mozambique", "supplier": "Gemmes SA",
            "supplier_invoice": "G-77", "price_per_ct": "1500.00",
            "certificate_lab": "GIA", "certificate_number": "2141438167"}
    lot = ok(me.post("/stone-lots", good), 201)
    assert lot["number"].startswith("LOT-") and lot["price_per_ct"] == "1500.00"
    assert {b["location"]["kind"]: (b["count"], b["carats"]) for b in lot["balances"]} == {
        "vault": (8, "2.400"), "supplier": (-8, "-2.400")}
    before = ledger_rows()
    for bad, status in ((good | {"stone_type": "diamond"}, 400),  # no compliance statement
                        (good | {"carats": "0.0001"}, 400),
                        (good | {"carats": "-1"}, 400),
                        (good | {"carats": "99999"}, 400),
                        (good | {"sieve": "", "size_mm": None}, 400),
                        (good | {"size_mm": "-2"}, 400),
                        (good | {"certificate_number": ""}, 400),
                        (good | {"price_per_ct": "0"}, 400)):
        assert_error(me.post("/stone-lots", bad), status)
    assert error_fields(me.post("/stone-lots", good | {"stone_type": "glass", "count": 0,
                                                       "carats": "heavy"})) == {
        "stone_type", "count", "carats"}
    for role in ("sales", "logistics", "designer", "setter_member", "client_contact"):
        assert_error(api(user(h, role)).post("/stone-lots", good), 403)
    assert ledger_rows() == before

    for role in ("admin", "manager", "sales"):
        seen = ok(api(user(h, role)).get(f"/stone-lots/{lot['id']}"))
        assert seen["price_per_ct"] == "1500.00" and seen["supplier"] == "Gemmes SA"
        assert seen["vault_count"] == 8
    for role in ("designer", "quality", "logistics"):
        seen = ok(api(user(h, role)).get(f"/stone-lots/{lot['id']}"))
        assert seen["price_per_ct"] is None and seen["supplier"] == "Gemmes SA"
    assert ok(api(h.designer).get(f"/stone-lots/{lot['id']}"))["vault_count"] is None
    assert ok(api(h.designer).get(f"/stone-lots/{lot['id']}"))["balances"] == []
    # A workshop sees a lot once it has been on one of its slips, without prices or supplier.
    for role in ("setter_member", "client_contact"):
        assert ok(api(user(h, role)).get("/stone-lots"))["count"] == 0
        assert_error(api(user(h, role)).get(f"/stone-lots/{lot['id']}"), 404)
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   operation="setting",
                                   stones=[{"lot_id": lot["id"], "count": 3,
                                            "carats": "0.900"}])
    receive_all(h.setter_member, slip)
    seen = ok(api(h.setter_member).get(f"/stone-lots/{lot['id']}"))
    assert (seen["price_per_ct"], seen["supplier"], seen["supplier_invoice"]) == (None, None,
                                                                                  None)
    assert seen["vault_count"] is None and seen["free_count"] is None
    assert [(b["location"]["workshop_id"], b["count"]) for b in seen["balances"]] == [
        (h.setter.pk, 3)]
    assert ids(api(h.setter_member).get("/stone-lots")) == [lot["id"]]
    assert_error(api(h.polisher_member).get(f"/stone-lots/{lot['id']}"), 404)
    entries = ok(api(h.setter_member).get(f"/stone-lots/{lot['id']}/entries"))
    assert [e["kind"] for e in entries["items"]] == ["receipt"]
    assert ok(me.get(f"/stone-lots/{lot['id']}/entries"))["count"] == 3
    # Filters.
    diamond_lot(h)
    assert ok(me.get("/stone-lots"))["count"] == 2
    assert ids(me.get("/stone-lots", {"stone_type": "ruby"})) == [lot["id"]]
    assert ids(me.get("/stone-lots", {"shape": "oval"})) == [lot["id"]]
    assert ids(me.get("/stone-lots", {"q": "gemmes"})) == [lot["id"]]
    assert ids(me.get("/stone-lots", {"q": "2141438"})) == [lot["id"]]
    assert ok(api(h.setter_member).get("/stone-lots", {"q": "gemmes"}))["count"] == 0
    assert_error(me.get("/stone-lots", {"stone_type": "glass"}), 422)
    assert_error(me.get("/stone-lots/999999"), 404)


def test_allocations_create_release_and_guards(house_setup, api):
    h = house_setup
    piece, other = h.launched_piece(), h.launched_piece()
    lot = diamond_lot(h, count=20, carats="2.000")
    me = api(h.manager)
    alloc = ok(me.post("/stone-allocations", {"piece_id": piece.pk, "lot_id": lot.pk,
                                              "count": 12, "carats": "1.200"}), 201)
    before = ledger_rows()
    body = assert_error(me.post("/stone-allocations", {"piece_id": other.pk, "lot_id": lot.pk,
                                                       "count": 9, "carats": "0.900"}), 409,
                        "insufficient_stones")
    assert body["details"]["free_count"] == 8
    assert_error(me.post("/stone-allocations", {"piece_id": other.pk, "lot_id": 999999,
                                                "count": 1, "carats": "0.1"}), 404)
    assert_error(me.post("/stone-allocations", {"piece_id": 999999, "lot_id": lot.pk,
                                                "count": 1, "carats": "0.1"}), 404)
    assert_error(me.post("/stone-allocations", {"piece_id": other.pk, "lot_id": lot.pk,
                                                "count": 1, "carats": "0.0001"}), 400)
    assert error_fields(me.post("/stone-allocations", {"piece_id": other.pk, "lot_id": lot.pk,
                                                       "count": -1, "carats": "x"})) == {
        "count", "carats"}
    for role in ("sales", "logistics", "setter_member", "designer"):
        assert_error(api(user(h, role)).post("/stone-allocations", {
            "piece_id": other.pk, "lot_id": lot.pk, "count": 1, "carats": "0.1"}), 403)
    assert_error(api(h.client_contact).post("/stone-allocations", {
        "piece_id": other.pk, "lot_id": lot.pk, "count": 1, "carats": "0.1"}), 403)
    assert ledger_rows() == before
    second = ok(me.post("/stone-allocations", {"piece_id": other.pk, "lot_id": lot.pk,
                                               "count": 8, "carats": "0.800"}), 201)
    assert ids(me.get("/stone-allocations")) == sorted([alloc["id"], second["id"]],
                                                       key=lambda i: (i != alloc["id"]))
    assert ids(me.get("/stone-allocations", {"piece_id": other.pk})) == [second["id"]]
    assert ids(me.get("/stone-allocations", {"lot_id": lot.pk, "status": "reserved"})) == \
        ids(me.get("/stone-allocations"))
    for role in ("setter_member", "client_contact"):
        assert ok(api(user(h, role)).get("/stone-allocations"))["count"] == 0
    assert_error(api(h.setter_member).post(f"/stone-allocations/{second['id']}/release"), 403)
    assert_error(api(h.sales).post(f"/stone-allocations/{second['id']}/release"), 403)
    released = ok(me.post(f"/stone-allocations/{second['id']}/release"))
    assert released["status"] == "released"
    assert_error(me.post(f"/stone-allocations/{second['id']}/release"), 409)
    assert_error(me.post("/stone-allocations/999999/release"), 404)
    assert ok(me.get(f"/stone-lots/{lot.pk}"))["free_count"] == 8
    # Reserved stones cannot be issued loose.
    assert_error(me.post("/material-slips/issue", {
        "workshop_id": h.setter.pk, "stones": [{"lot_id": lot.pk, "count": 9,
                                                "carats": "0.900"}]}), 409,
        "insufficient_stones")


def test_breakage_guards_and_rates(house_setup, api):
    h = house_setup
    lot = diamond_lot(h, count=10, carats="1.000")
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   operation="setting",
                                   stones=[{"lot_id": lot.pk, "count": 5, "carats": "0.500"}])
    receive_all(h.setter_member, slip)
    setter = api(h.setter_member)
    good = {"workshop_id": h.setter.pk, "lot_id": lot.pk, "count": 1, "carats": "0.100",
            "reason": "Cracked at the girdle"}
    before = ledger_rows()
    assert_error(setter.post("/stones/breakages", good | {"count": 6, "carats": "0.600"}), 409,
                 "insufficient_stones")
    assert_error(setter.post("/stones/breakages", good | {"lot_id": 999999}), 404)
    assert_error(setter.post("/stones/breakages", good | {"carats": "0.0001"}), 400)
    assert_error(setter.post("/stones/breakages", good | {"piece_id": 999999}), 404)
    assert error_fields(setter.post("/stones/breakages", good | {"reason": ""})) == {"reason"}
    assert_error(setter.post("/stones/breakages", good | {"workshop_id": h.caster.pk}), 404)
    assert_error(api(h.caster_member).post("/stones/breakages", good), 404)
    for role in ("sales", "logistics"):
        assert_error(api(user(h, role)).post("/stones/breakages", good), 403)
    assert ledger_rows() == before
    ok(setter.post("/stones/breakages", good), 201)
    lost = ok(api(h.manager).post("/stones/breakages", good | {"lost": True,
                                                               "reason": "Dropped"}), 201)
    assert lost["kind"] == "lost" and lost["to_location"]["kind"] == "loss"
    (rate,) = ok(api(h.manager).get("/stones/breakage-rates"))
    assert (rate["received"], rate["broken"], rate["lost"], rate["rate_percent"]) == (
        5, 1, 1, "40.00")
    today = timezone.localdate()
    assert ok(api(h.manager).get("/stones/breakage-rates", {"start": today, "end": today})) \
        == [rate]
    yesterday = today - dt.timedelta(days=1)
    assert ok(api(h.manager).get("/stones/breakage-rates",
                                 {"start": yesterday, "end": yesterday})) == []
    assert_error(api(h.manager).get("/stones/breakage-rates",
                                    {"start": today, "end": yesterday}), 400)
    for role in ("caster_member",) + BLIND_ROLES:
        assert ok(api(user(h, role)).get("/stones/breakage-rates")) == []


# ---------------------------------------------------------------------------------------------
# query budgets: lists do not grow with their rows


def _many_slips(h, n: int) -> None:
    lot = diamond_lot(h, count=100, carats="10.000")
    for i in range(n):
        piece = h.launched_piece()
        alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk,
                                              lot_id=lot.pk, count=1, carats="0.100")
        slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                       operation="setting", allocation_ids=[alloc.pk],
                                       metal=[{"alloy": "750y", "weight_g": "1.000"}])
        receive_all(h.setter_member, slip)
        tree = services.casting_tree_create(actor=h.manager, workshop_id=h.caster.pk,
                                            alloy="750y", piece_ids=[piece.pk],
                                            wax_weight_g="0.500")
        services.casting_tree_issue(actor=h.manager, tree_id=tree.pk)
        services.stock_take_create(actor=h.manager,
                                   location_id=Location.objects.get(kind="vault").pk,
                                   counts={"750y": "1.000", "950pt": "0"})
        services.metal_price_set(actor=h.manager, metal="gold",
                                 priced_on=timezone.localdate() - dt.timedelta(days=i),
                                 price_per_fine_g="60")
        stone_services.stone_lot_receive(actor=h.manager, stone_type="ruby", shape="oval",
                                         count=2, carats="1.000", sieve="+2")


LISTS = ["/material-slips", "/metal/entries", "/metal/locations", "/metal/prices",
         "/metal/loss-allowances", "/stock-takes", "/casting-trees", "/stone-lots",
         "/stone-allocations", "/alloys"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("role", ["manager", "setter_member"])
def test_list_query_count_does_not_grow_with_rows(house_setup, api, path, role,
                                                  django_assert_max_num_queries):
    h = house_setup
    buy(h, "100.000")
    who = api(user(h, role))
    if path == "/metal/prices" and role != "manager":
        return
    _many_slips(h, 1)
    with django_assert_max_num_queries(12) as small:
        ok(who.get(path))
    _many_slips(h, 6)
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = ok(who.get(path))
    if role == "manager":
        assert body["count"] >= 2 or path in ("/metal/locations",)


@pytest.mark.parametrize("path", ["/metal/balances", "/metal/losses",
                                  "/stones/breakage-rates", "/material-slips/{slip}",
                                  "/stone-lots/{lot}"])
def test_report_query_count_does_not_grow_with_rows(house_setup, api, path,
                                                    django_assert_max_num_queries):
    h = house_setup
    buy(h, "100.000")
    me = api(h.manager)
    _many_slips(h, 1)

    def url():
        slip = MaterialSlip.objects.order_by("-id").first()
        lot = StoneLot.objects.filter(stone_type="diamond").first()
        return path.format(slip=slip.pk, lot=lot.pk)

    with django_assert_max_num_queries(40) as small:
        ok(me.get(url()))
    _many_slips(h, 5)
    with django_assert_max_num_queries(len(small.captured_queries)):
        ok(me.get(url()))
