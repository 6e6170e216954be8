"""The house's materials pages: who may open which, forms that write through the services (and
write nothing when refused), the printed slip and statement, query budgets, and issue #4's
"done means" story for metal through the pages."""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from etabli.core.models import AuditEntry
from etabli.materials import services
from etabli.materials.models import (
    Alloy,
    CastingStatus,
    CastingTree,
    LossAllowance,
    MaterialSlip,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    SlipKind,
    SlipStatus,
    StockTake,
    StockTakeStatus,
)

pytestmark = pytest.mark.django_db

D = Decimal
READERS = ["admin", "manager", "sales", "logistics"]
KEEPERS = ["admin", "manager"]
WORKSHOP_MEMBERS = ["caster_member", "setter_member", "polisher_member"]
NO_ACCESS = ["designer", "quality", "client_contact", "other_client_contact"]
EVERYONE = READERS + WORKSHOP_MEMBERS + NO_ACCESS


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def as_user(client, h):
    def login(name: str):
        client.force_login(getattr(h, name))
        return client
    return login


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def text(response) -> str:
    """The page's text, tags removed and spaces squeezed, for looking for figures."""
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def pdf_text(response) -> tuple[int, str]:
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def written() -> tuple:
    """What a refused form must not change."""
    return (MaterialSlip.objects.count(), MetalEntry.objects.count(), MetalPrice.objects.count(),
            CastingTree.objects.count(), StockTake.objects.count(), AuditEntry.objects.count(),
            tuple(MetalBalance.objects.order_by("pk").values_list("alloy_g", flat=True)),
            tuple(LossAllowance.objects.order_by("pk").values_list("percent", flat=True)),
            tuple(Alloy.objects.order_by("pk").values_list("density_g_cm3", flat=True)))


def stock(h, grams="200.000", alloy="750y"):
    return services.metal_purchase(actor=h.manager, alloy=alloy, weight_g=grams)


def issued_and_received(h, grams="20.000", operation="assembly", pieces=()):
    slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                   operation=operation, piece_ids=[p.pk for p in pieces],
                                   metal=[{"alloy": "750y", "weight_g": grams}])
    services.material_slip_receive(actor=h.caster_member, slip_id=slip.pk,
                                   lines=[{"line_id": slip.lines.get().pk, "weight_g": grams}])
    return slip


def rings(h, n=4):
    order = h.launched_order(lines=[{"description": "Band", "model_reference": "B-4",
                                     "quantity": n, "alloy": "750y", "size": "52"}])
    return list(order.pieces.order_by("serial"))


# ---------------------------------------------------------------------------------------------
# who may open which page


def reader_urls(h) -> list[str]:
    return [reverse("materials:home"), reverse("materials:slips"),
            reverse("materials:casting_trees"), reverse("materials:stock_takes"),
            reverse("materials:losses"), reverse("materials:allowances"),
            reverse("materials:alloys"), reverse("materials:statement", args=[h.caster.pk]),
            reverse("materials:statement_pdf", args=[h.caster.pk])]


@pytest.mark.parametrize("role", EVERYONE)
def test_materials_pages_per_role(h, as_user, role):
    stock(h)
    slip = issued_and_received(h)
    tree = services.casting_tree_create(actor=h.manager, workshop_id=h.caster.pk, alloy="750y",
                                        piece_ids=[rings(h, 1)[0].pk], wax_weight_g="1.000")
    take = services.stock_take_create(actor=h.manager, location_id=slip.from_location_id,
                                      counts={"750y": "180.000"})
    c = as_user(role)
    urls = reader_urls(h) + [reverse("materials:slip", args=[slip.pk]),
                             reverse("materials:slip_pdf", args=[slip.pk]),
                             reverse("materials:casting_tree", args=[tree.pk]),
                             reverse("materials:stock_take", args=[take.pk])]
    for url in urls:
        r = c.get(url)
        if role in READERS:
            assert r.status_code == 200, url
        elif role in WORKSHOP_MEMBERS:
            if url.endswith(".pdf") and "slips" in url and role == "caster_member":
                assert r.status_code == 200  # its own slip, printed (no prices on it)
            elif "slips" in url and url.endswith(".pdf"):
                assert r.status_code == 404
            else:
                assert r.status_code == 302, url
                assert r["Location"].startswith("/workshop/"), url
        else:
            assert r.status_code == 404, url
    nav = c.get(reverse("home"), follow=True).context
    labels = [i["label"] for i in nav["nav_items"]] if nav and "nav_items" in nav else []
    assert ("Materials" in labels) == (role in READERS)


def test_pages_need_a_log_in(client, h):
    for url in reader_urls(h) + [reverse("materials:prices"), reverse("materials:slip_new")]:
        r = client.get(url)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], url


@pytest.mark.parametrize("role", READERS)
def test_keeper_pages_only_for_the_vaults_keepers(h, as_user, role):
    c = as_user(role)
    for name in ("purchase", "slip_new", "casting_new", "stock_take_new"):
        r = c.get(reverse(f"materials:{name}"))
        assert r.status_code == (200 if role in KEEPERS else 404), name
    home = c.get(reverse("materials:home"))
    assert (reverse("materials:slip_new") in home.content.decode()) == (role in KEEPERS)


@pytest.mark.parametrize("role", READERS)
def test_prices_and_values_only_for_price_roles(h, as_user, role):
    stock(h)
    services.metal_price_set(actor=h.admin, metal="gold", priced_on=timezone.localdate(),
                             price_per_fine_g="100.00")
    c = as_user(role)
    r = c.get(reverse("materials:prices"))
    home = c.get(reverse("materials:home"))
    page = text(home)
    if role == "logistics":
        assert r.status_code == 404
        assert "Value" not in page and "15000.00" not in page and "100.0000" not in page
        assert c.post(reverse("materials:prices"), {"metal": "gold", "priced_on": "2026-01-02",
                                                    "price_per_fine_g": "1"}).status_code == 404
    else:
        assert r.status_code == 200
        # 200 g of 750 = 150 g fine at 100 a fine gram
        assert "15000.00 EUR" in page


# ---------------------------------------------------------------------------------------------
# home: balances at any date


def test_home_shows_balances_per_place_with_fine_and_troy_ounces(h, as_user):
    stock(h)
    issued_and_received(h, "20.000")
    r = as_user("manager").get(reverse("materials:home"))
    page = text(r)
    assert "House vault" in page and "Fonderie Dupont" in page
    assert "180.000" in page and "135.000" in page  # vault: alloy g, fine g
    assert "20.000" in page and "15.000" in page    # the caster
    assert "4.340" in page  # 135 g fine = 4.340 oz t
    assert 'title="5.7871 oz t · 115.743 dwt · 2777.8 gr"' in r.content.decode()  # 180 g
    assert reverse("materials:statement", args=[h.caster.pk]) in r.content.decode()


def test_home_as_of_a_date(h, as_user):
    entry = stock(h)
    c = as_user("manager")
    before = (entry.occurred_at - dt.timedelta(minutes=5)).astimezone(
        timezone.get_current_timezone()).strftime("%Y-%m-%dT%H:%M")
    r = c.get(reverse("materials:home"), {"at": before})
    assert r.status_code == 200
    assert "No metal anywhere at this date." in text(r)
    later = (timezone.localtime() + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    assert "200.000" in text(c.get(reverse("materials:home"), {"at": later}))
    bad = c.get(reverse("materials:home"), {"at": "yesterday"})
    assert bad.status_code == 200 and "200.000" in text(bad)


# ---------------------------------------------------------------------------------------------
# prices, purchases, allowances, alloys


def test_price_entered_and_imported(h, as_user):
    c = as_user("manager")
    r = c.post(reverse("materials:prices"), {"metal": "gold", "priced_on": "2026-01-05",
                                             "price_per_fine_g": "118.40", "currency": "",
                                             "source": "LBMA"})
    assert r.status_code == 302
    assert MetalPrice.objects.get(metal="gold").price_per_fine_g == D("118.4000")
    csv = b"date,metal,price_per_fine_g\n2026-01-06,gold,119.00\n2026-01-06,silver,1.05\n"
    r = c.post(reverse("materials:prices_import"),
               {"file": SimpleUploadedFile("prices.csv", csv, "text/csv")})
    assert r.status_code == 302
    assert MetalPrice.objects.count() == 3
    page = text(c.get(reverse("materials:prices")))
    assert "119.0000 EUR" in page and "1.0500 EUR" in page


def test_price_import_is_all_or_nothing_with_the_line_shown(h, as_user):
    c = as_user("manager")
    before = written()
    csv = b"date,metal,price_per_fine_g\n2026-01-06,gold,119.00\n2026-01-07,gold,abc\n"
    r = c.post(reverse("materials:prices_import"),
               {"file": SimpleUploadedFile("prices.csv", csv, "text/csv")})
    assert r.status_code == 200
    assert "Line 3: &#x27;abc&#x27; is not a price." in r.content.decode()
    assert written() == before
    r = c.post(reverse("materials:prices_import"),
               {"file": SimpleUploadedFile("p.csv", b"\xff\xfe\x00bad", "text/csv")})
    assert "not a text (UTF-8) CSV file" in r.content.decode()
    r = c.post(reverse("materials:prices"), {"metal": "gold", "priced_on": "2999-01-01",
                                             "price_per_fine_g": "100"})
    assert "A price cannot be dated in the future." in r.content.decode()
    assert written() == before


def test_purchase_into_the_vault_and_sent_twice_records_once(h, as_user):
    c = as_user("manager")
    body = {"client_ref": uuid.uuid4().hex, "alloy": "750y", "weight_g": "100.000",
            "supplier": "Affinerie SA", "reference": "INV-1"}
    r = c.post(reverse("materials:purchase"), body)
    assert r.status_code == 302
    r = c.post(reverse("materials:purchase"), body)
    assert r.status_code == 302
    assert any("Already recorded" in m for m in msgs(r))
    assert MetalEntry.objects.count() == 1
    page = text(c.get(reverse("materials:purchase")))
    assert "100.000" in page and "Affinerie SA · INV-1" in page


@pytest.mark.parametrize("data, field_error", [
    ({"alloy": "750y", "weight_g": "-1"}, "A weight must be more than 0 g."),
    ({"alloy": "750y", "weight_g": "1.0001"}, "Ensure that there are no more than 3 decimal"),
    ({"alloy": "nope", "weight_g": "10"}, "Select a valid choice."),
    ({"alloy": "750y", "weight_g": "60000"}, "is more than the 50000 g one line may carry"),
])
def test_purchase_errors_are_shown_and_write_nothing(h, as_user, data, field_error):
    c = as_user("manager")
    before = written()
    r = c.post(reverse("materials:purchase"), {"client_ref": uuid.uuid4().hex} | data)
    assert r.status_code == 200
    assert field_error in r.content.decode()
    assert any(m.startswith("Not recorded") for m in msgs(r))
    assert written() == before


def test_allowances_and_alloy_density_are_editable(h, as_user):
    c = as_user("manager")
    r = c.post(reverse("materials:allowances"), {"operation": "polishing", "percent": "2.5",
                                                 "workshop_id": h.polisher.pk})
    assert r.status_code == 302
    assert LossAllowance.objects.get(workshop=h.polisher, operation="polishing").percent == \
        D("2.50")
    before = written()
    r = c.post(reverse("materials:allowances"), {"operation": "polishing", "percent": "101"})
    assert "An allowance is between 0 and 100 %." in r.content.decode()
    assert written() == before
    r = c.post(reverse("materials:alloys"), {"code": "750y", "name": "750 yellow gold",
                                             "colour": "yellow", "density_g_cm3": "15.60"})
    assert r.status_code == 302
    assert Alloy.objects.get(code="750y").density_g_cm3 == D("15.60")
    before = written()
    r = c.post(reverse("materials:alloys"), {"code": "750y", "name": "750 yellow gold",
                                             "colour": "yellow", "density_g_cm3": "40"})
    assert "A metal&#x27;s density is between 1 and 25 g/cm³." in r.content.decode()
    assert written() == before
    # Readers who do not keep the vault see the tables, not the forms, and cannot post.
    lc = as_user("logistics")
    assert "Set an allowance" not in lc.get(reverse("materials:allowances")).content.decode()
    assert lc.post(reverse("materials:allowances"), {"operation": "polishing",
                                                     "percent": "1"}).status_code == 404


# ---------------------------------------------------------------------------------------------
# slips


def issue_body(h, **extra) -> dict:
    return {"client_ref": uuid.uuid4().hex, "workshop_id": h.caster.pk, "operation": "assembly",
            "alloy": "750y", "weight_g_1": "20.000", "weight_g_2": "", "weight_g_3": "",
            "serials": "", "comment": ""} | extra


def test_issue_slip_through_the_page_for_given_pieces(h, as_user):
    stock(h)
    piece = rings(h, 1)[0]
    c = as_user("manager")
    body = issue_body(h, weight_g_2="5.500", serials=piece.serial.lower())
    r = c.post(reverse("materials:slip_new"), body)
    assert r.status_code == 302
    slip = MaterialSlip.objects.get()
    assert r["Location"] == reverse("materials:slip", args=[slip.pk])
    assert list(slip.pieces.all()) == [piece]
    assert sorted(slip.lines.values_list("weight_sent_g", flat=True)) == [D("5.500"),
                                                                          D("20.000")]
    # The same form again: still one slip.
    r = c.post(reverse("materials:slip_new"), body)
    assert MaterialSlip.objects.count() == 1
    page = text(c.get(reverse("materials:slip", args=[slip.pk])))
    assert slip.number in page and piece.serial in page and "In transit" not in page
    assert "Sent" in page and "Cancel the slip" in page


@pytest.mark.parametrize("extra, message", [
    ({"weight_g_1": "-1"}, "A weight must be more than 0 g."),
    ({"weight_g_1": "0"}, "A weight must be more than 0 g."),
    ({"weight_g_1": "500"}, "House vault holds 200.000 g of 18k yellow gold (750)"),
    ({"weight_g_2": "1.5555"}, "Ensure that there are no more than 3 decimal places."),
    ({"serials": "NOPE-1"}, "No piece with serial NOPE-1."),
    ({"workshop_id": "999999"}, "Select a valid choice."),
    ({"alloy": "925ag"}, "House vault holds"),
])
def test_issue_errors_are_shown_next_to_the_field_and_write_nothing(h, as_user, extra, message):
    stock(h)
    c = as_user("manager")
    before = written()
    r = c.post(reverse("materials:slip_new"), issue_body(h, **extra))
    assert r.status_code == 200
    content = r.content.decode().replace("&#x27;", "'")
    assert message in content
    assert written() == before


def test_issue_refused_for_roles_that_do_not_keep_the_vault(h, as_user):
    stock(h)
    before = written()
    for role in ("sales", "logistics"):
        assert as_user(role).post(reverse("materials:slip_new"),
                                  issue_body(h)).status_code == 404
    r = as_user("caster_member").post(reverse("materials:slip_new"), issue_body(h))
    assert r.status_code == 302 and r["Location"].startswith("/workshop/")
    assert written() == before


def test_slip_list_filters(h, as_user):
    stock(h)
    a = issued_and_received(h, "10.000")
    b = services.material_issue(actor=h.manager, workshop_id=h.polisher.pk,
                                operation="polishing",
                                metal=[{"alloy": "750y", "weight_g": "5.000"}])
    services.material_slip_receive(actor=h.polisher_member, slip_id=b.pk,
                                   lines=[{"line_id": b.lines.get().pk, "weight_g": "4.800"}])
    c = as_user("logistics")
    page = text(c.get(reverse("materials:slips")))
    assert a.number in page and b.number in page
    page = text(c.get(reverse("materials:slips"), {"flagged": "on"}))
    assert b.number in page and a.number not in page
    page = text(c.get(reverse("materials:slips"), {"workshop_id": h.caster.pk}))
    assert a.number in page and b.number not in page
    page = text(c.get(reverse("materials:slips"), {"status": "sent"}))
    assert "No slip matches these filters." in page
    r = c.get(reverse("materials:slips"), {"workshop_id": "abc", "kind": "issue"})
    assert r.status_code == 200 and a.number in text(r)


def test_slip_pdf_has_its_number_weights_and_a_qr_code(h, as_user):
    stock(h)
    slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                   operation="casting",
                                   metal=[{"alloy": "750y", "weight_g": "50.000"}])
    r = as_user("manager").get(reverse("materials:slip_pdf", args=[slip.pk]))
    pages, content = pdf_text(r)
    assert pages == 1
    assert slip.number in content and "50.000 g" in content
    assert "Fonderie Dupont" in content and "House vault" in content
    reader = PdfReader(io.BytesIO(r.content))
    assert reader.pages[0].images or "/XObject" in str(reader.pages[0].get("/Resources")) \
        or "scan the code" in content
    # A workshop member prints only its own slips.
    assert as_user("caster_member").get(
        reverse("materials:slip_pdf", args=[slip.pk])).status_code == 200
    assert as_user("setter_member").get(
        reverse("materials:slip_pdf", args=[slip.pk])).status_code == 404


def test_cancel_needs_a_reason_and_gives_the_metal_back(h, as_user):
    stock(h)
    slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                   metal=[{"alloy": "750y", "weight_g": "30.000"}])
    c = as_user("manager")
    before = written()
    r = c.post(reverse("materials:slip_cancel", args=[slip.pk]), {"reason": ""})
    assert r.status_code == 200 and "This field is required." in r.content.decode()
    assert written() == before
    r = c.post(reverse("materials:slip_cancel", args=[slip.pk]), {"reason": "Wrong caster"})
    assert r.status_code == 302
    slip.refresh_from_db()
    assert slip.status == SlipStatus.CANCELLED
    vault = MetalBalance.objects.get(location__kind="vault")
    assert vault.alloy_g == D("200.000")
    r = c.post(reverse("materials:slip_cancel", args=[slip.pk]), {"reason": "Again"})
    assert r.status_code == 302 and any("Already recorded" in m for m in msgs(r))
    assert as_user("logistics").get(reverse("materials:slip", args=[slip.pk])).status_code == 200


def test_receive_at_the_house_needs_every_line_weighed(h, as_user):
    stock(h)
    piece = rings(h, 1)[0]
    issue = issued_and_received(h, "20.000", pieces=[piece])
    ret = services.material_return(actor=h.caster_member, issue_id=issue.pk,
                                   pieces=[{"piece_id": piece.pk, "weight_g": "12.000"}],
                                   scrap=[{"kind": "filings", "weight_g": "7.000"}])
    lines = {ln.kind: ln for ln in ret.lines.all()}
    c = as_user("logistics")
    page = c.get(reverse("materials:slip", args=[ret.pk])).content.decode()
    # Prefilled empty: whoever receives must weigh.
    assert f'name="line_{lines["piece"].pk}"' in page
    assert re.search(rf'name="line_{lines["piece"].pk}"[^>]*value=', page) is None
    before = written()
    r = c.post(reverse("materials:slip_receive", args=[ret.pk]),
               {f"line_{lines['piece'].pk}": "12.000"})
    assert r.status_code == 200 and "This field is required." in r.content.decode()
    r = c.post(reverse("materials:slip_receive", args=[ret.pk]),
               {f"line_{lines['piece'].pk}": "12.000", f"line_{lines['filings'].pk}": "500"})
    assert "is more than the" in r.content.decode()
    assert written() == before
    r = c.post(reverse("materials:slip_receive", args=[ret.pk]),
               {f"line_{lines['piece'].pk}": "12.000", f"line_{lines['filings'].pk}": "6.900"})
    assert r.status_code == 302
    ret.refresh_from_db()
    assert ret.status == SlipStatus.RECEIVED and ret.weight_flagged
    page = text(c.get(reverse("materials:slip", args=[ret.pk])))
    assert "-0.100 g" in page and "beyond tolerance" in page
    r = c.post(reverse("materials:slip_receive", args=[ret.pk]),
               {f"line_{lines['piece'].pk}": "12.000", f"line_{lines['filings'].pk}": "6.900"})
    assert r.status_code == 302 and any("Already recorded" in m for m in msgs(r))
    # Sales may read the slip but not receive it.
    sales_page = as_user("sales").get(reverse("materials:slip", args=[ret.pk]))
    assert "Receive at the house" not in sales_page.content.decode()


def test_settle_from_the_issue_page(h, as_user):
    stock(h)
    issue = issued_and_received(h, "20.000", operation="polishing")
    ret = services.material_return(actor=h.caster_member, issue_id=issue.pk,
                                   scrap=[{"kind": "scrap", "weight_g": "19.000"}])
    services.material_slip_receive(actor=h.manager, slip_id=ret.pk,
                                   lines=[{"line_id": ret.lines.get().pk, "weight_g": "19.000"}])
    c = as_user("manager")
    page = text(c.get(reverse("materials:slip", args=[issue.pk])))
    assert "Still at the workshop" in page and "1.000 g" in page and "Settle the job" in page
    r = c.post(reverse("materials:slip_settle", args=[issue.pk]))
    assert r.status_code == 302
    issue.refresh_from_db()
    assert issue.loss_g == D("1.000") and issue.settled_at
    r = c.post(reverse("materials:slip_settle", args=[issue.pk]))
    assert any("Already recorded" in m for m in msgs(r))
    assert as_user("logistics").post(
        reverse("materials:slip_settle", args=[issue.pk])).status_code == 302
    assert MaterialSlip.objects.get(pk=issue.pk).loss_g == D("1.000")


def test_workshop_member_scanning_a_slip_goes_to_their_portal(h, as_user):
    stock(h)
    slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk,
                                   metal=[{"alloy": "750y", "weight_g": "1.000"}])
    r = as_user("caster_member").get(reverse("materials:slip", args=[slip.pk]))
    assert r.status_code == 302
    assert r["Location"] == reverse("workshop_materials:slip", args=[slip.pk])
    r = as_user("setter_member").get(reverse("materials:slip", args=[slip.pk]))
    assert r.status_code == 302 and str(slip.pk) not in r["Location"]


# ---------------------------------------------------------------------------------------------
# stock-takes


def test_stock_take_count_differences_and_post(h, as_user):
    stock(h)
    c = as_user("manager")
    choose = c.get(reverse("materials:stock_take_new"))
    assert "Place counted" in choose.content.decode()
    vault = MetalBalance.objects.get(location__kind="vault").location
    page = c.get(reverse("materials:stock_take_new"), {"location_id": vault.pk})
    assert "200.000" in text(page)  # the book beside the count
    ref = uuid.uuid4().hex
    before = written()
    r = c.post(reverse("materials:stock_take_new"), {"location_id": vault.pk,
                                                     "client_ref": ref})
    assert "Enter at least one counted weight." in r.content.decode()
    r = c.post(reverse("materials:stock_take_new"), {"location_id": vault.pk,
                                                     "client_ref": ref, "count_750y": "-2"})
    assert "A weight must be more than 0 g." in r.content.decode()
    assert written() == before
    body = {"location_id": vault.pk, "client_ref": ref, "count_750y": "199.250"}
    r = c.post(reverse("materials:stock_take_new"), body)
    take = StockTake.objects.get()
    assert r["Location"] == reverse("materials:stock_take", args=[take.pk])
    c.post(reverse("materials:stock_take_new"), body)
    assert StockTake.objects.count() == 1
    page = text(c.get(reverse("materials:stock_take", args=[take.pk])))
    assert "-0.750" in page
    r = c.post(reverse("materials:stock_take_post", args=[take.pk]), {"reason": ""})
    assert "Say why the count differs from the book." in r.content.decode()
    assert StockTake.objects.get().status == StockTakeStatus.DRAFT
    r = c.post(reverse("materials:stock_take_post", args=[take.pk]),
               {"reason": "Filings lost in the drain"})
    assert r.status_code == 302
    assert StockTake.objects.get().status == StockTakeStatus.POSTED
    assert MetalBalance.objects.get(location=vault).alloy_g == D("199.250")
    r = c.post(reverse("materials:stock_take_post", args=[take.pk]), {"reason": "again"})
    assert any("Already recorded" in m for m in msgs(r))
    assert MetalBalance.objects.get(location=vault).alloy_g == D("199.250")


# ---------------------------------------------------------------------------------------------
# casting trees


def test_casting_tree_form_computes_metal_needed_and_refuses_bad_input(h, as_user):
    pieces = rings(h, 2)
    c = as_user("manager")
    body = {"client_ref": uuid.uuid4().hex, "workshop_id": h.caster.pk, "alloy": "750y",
            "serials": " ".join(p.serial for p in pieces), "wax_weight_g": "2.500",
            "wax_density_g_cm3": "1.000", "sprue_allowance_percent": "30", "comment": ""}
    before = written()
    r = c.post(reverse("materials:casting_new"), body | {"preview": "1"})
    assert r.status_code == 200 and "Metal needed: 50.375 g" in text(r)
    for bad, message in (({"serials": "X-1"}, "No piece with serial X-1."),
                         ({"wax_density_g_cm3": "5"}, "between 0.5 and 2 g/cm³"),
                         ({"alloy": "950pt"}, "a tree is cast in one alloy"),
                         ({"wax_weight_g": "abc"}, "Enter a number.")):
        r = c.post(reverse("materials:casting_new"), body | bad)
        assert r.status_code == 200 and message in r.content.decode(), bad
    assert written() == before
    r = c.post(reverse("materials:casting_new"), body)
    tree = CastingTree.objects.get()
    assert r["Location"] == reverse("materials:casting_tree", args=[tree.pk])
    c.post(reverse("materials:casting_new"), body)
    assert CastingTree.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# query budgets


def test_list_pages_keep_their_query_budget(h, as_user, django_assert_max_num_queries):
    stock(h, "1000.000")
    for _i in range(3):
        issued_and_received(h, "5.000")
    pieces = rings(h, 3)
    for p in pieces:
        services.casting_tree_create(actor=h.manager, workshop_id=h.caster.pk, alloy="750y",
                                     piece_ids=[p.pk], wax_weight_g="1.000")
    vault = MetalBalance.objects.get(location__kind="vault").location
    services.stock_take_create(actor=h.manager, location_id=vault.pk, counts={"750y": "985"})
    c = as_user("manager")
    budgets = {"materials:slips": 12, "materials:casting_trees": 10,
               "materials:stock_takes": 10, "materials:home": 22, "materials:losses": 12}
    counts = {}
    for name, budget in budgets.items():
        c.get(reverse(name))
        with django_assert_max_num_queries(budget) as ctx:
            assert c.get(reverse(name)).status_code == 200
        counts[name] = len(ctx.captured_queries)
    # More rows, same number of queries.
    for _i in range(3):
        issued_and_received(h, "5.000")
    for name in ("materials:slips", "materials:casting_trees", "materials:stock_takes"):
        with django_assert_max_num_queries(counts[name]):
            c.get(reverse(name))


# ---------------------------------------------------------------------------------------------
# issue #4, done means: 50 g of 750 yellow gold to the caster for a tree of rings


def test_done_means_casting_tree_of_rings_through_the_pages(h, as_user):
    pieces = rings(h, 4)
    c = as_user("manager")
    r = c.post(reverse("materials:purchase"), {"client_ref": uuid.uuid4().hex, "alloy": "750y",
                                               "weight_g": "200.000", "supplier": "Affineur"})
    assert r.status_code == 302
    r = c.post(reverse("materials:casting_new"), {
        "client_ref": uuid.uuid4().hex, "workshop_id": h.caster.pk, "alloy": "750y",
        "serials": ", ".join(p.serial for p in pieces), "wax_weight_g": "2.500",
        "wax_density_g_cm3": "1", "sprue_allowance_percent": "30", "comment": "Rings B-4"})
    tree = CastingTree.objects.get()
    assert tree.metal_needed_g == D("50.375")
    page = text(c.get(reverse("materials:casting_tree", args=[tree.pk])))
    assert "50.375 g" in page and all(p.serial in page for p in pieces)
    r = c.post(reverse("materials:casting_issue", args=[tree.pk]),
               {"client_ref": uuid.uuid4().hex, "weight_g": "50.000"})
    assert r.status_code == 302
    issue = MaterialSlip.objects.get(kind=SlipKind.ISSUE)
    assert issue.casting_tree_id == tree.pk and issue.operation == "casting"
    pdf = c.get(reverse("materials:slip_pdf", args=[issue.pk]))
    _pages, content = pdf_text(pdf)
    assert issue.number in content and "50.000 g" in content and tree.number in content

    # The caster's side (its portal is another page): receive, cast, return.
    services.material_slip_receive(actor=h.caster_member, slip_id=issue.pk,
                                   lines=[{"line_id": issue.lines.get().pk,
                                           "weight_g": "50.000"}])
    ret = services.casting_tree_return(
        actor=h.caster_member, tree_id=tree.pk,
        pieces=[{"piece_id": p.pk, "weight_g": "8.100"} for p in pieces],
        button_g="14.200", scrap_g="2.350")

    # Back at the house: weigh every line of the return and confirm it.
    tree_page = text(c.get(reverse("materials:casting_tree", args=[tree.pk])))
    assert ret.number in tree_page and "to receive" in tree_page
    form = {f"line_{ln.pk}": str(ln.weight_sent_g) for ln in ret.lines.all()}
    r = c.post(reverse("materials:slip_receive", args=[ret.pk]), form)
    assert r.status_code == 302, text(r)[:2000]
    tree.refresh_from_db()
    assert tree.status == CastingStatus.RETURNED

    # The loss against the allowance, on the issue and on the tree.
    page = text(c.get(reverse("materials:slip", args=[issue.pk])))
    assert "Loss 1.050 g" in page and "Allowance 0.750 g" in page
    assert "Loss over the allowance." in page
    tree_page = text(c.get(reverse("materials:casting_tree", args=[tree.pk])))
    assert "64.8 %" in tree_page and "32.400 g" in tree_page and "14.200 g" in tree_page
    assert "Loss 1.050 g against an allowance of 0.750 g." in tree_page

    # The caster's statement for the month, on screen and printed.
    st = c.get(reverse("materials:statement", args=[h.caster.pk]))
    page = text(st)
    for figure in ("50.000", "32.400", "16.550", "1.050", "0.000", "37.500"):
        assert figure in page, figure
    assert issue.number in page and "Over allowance" in page
    _pages, content = pdf_text(c.get(reverse("materials:statement_pdf", args=[h.caster.pk])))
    assert "Fonderie Dupont" in content and "1.050" in content and issue.number in content

    # Flagged on the materials home, on the losses page and on the dashboard.
    home = text(c.get(reverse("materials:home")))
    assert "Jobs over their loss allowance" in home and issue.number in home
    losses = text(c.get(reverse("materials:losses")))
    assert "Fonderie Dupont" in losses and "1.050 g" in losses and "2.10 %" in losses
    dash = text(c.get(reverse("production:dashboard")))
    assert "Jobs over their loss allowance" in dash and issue.number in dash
    # …but not on the dashboard of a role that does not keep the vault.
    assert "Jobs over their loss allowance" not in text(
        as_user("sales").get(reverse("production:dashboard")))


def test_slip_pages_name_the_operation_in_the_readers_language(as_user, h):
    from django.utils import translation

    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="10")
    slip = services.material_issue(actor=h.manager, workshop_id=h.caster.pk, operation="casting",
                                   metal=[{"alloy": "750y", "weight_g": "5"}])
    with translation.override("fr"):
        casting_fr = translation.gettext("Casting")
    assert casting_fr != "Casting"
    h.manager.language = "fr"
    h.manager.save(update_fields=["language"])
    client = as_user("manager")
    for url in (reverse("materials:slips"), reverse("materials:slip", args=[slip.pk])):
        assert casting_fr in client.get(url).content.decode()
