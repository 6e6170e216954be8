"""Stones from the vault to a setter's bench and back, in a real browser (Debian's Chromium).

The production manager issues diamonds reserved for a piece to the setter from the lot page;
the setter, on a phone (375 × 812), opens Metal & stones, receives the slip by counting and
weighing, records a broken stone and sends back the set and unused stones; once the house has
received the return, the manager sees the lot's balance add up and the setter's breakage rate.
Screenshots of every step go under test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import re

import pytest

from etabli.materials import services, stone_services
from etabli.materials.models import AllocationStatus, MaterialSlip, SlipKind, SlipStatus

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PHONE_WIDTH = 375
KP = ("The diamonds herein invoiced have been purchased from legitimate sources not involved "
      "in funding conflict and in compliance with United Nations resolutions.")


class Person:
    """One person's page; confirmations (`data-confirm`) are accepted and remembered."""

    def __init__(self, page):
        self.page = page
        self.confirmations: list[str] = []
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog):
        self.confirmations.append(dialog.message)
        dialog.accept()

    def submit(self, locator):
        with self.page.expect_navigation():
            locator.click()
        return self.page


def _no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + 1, f"{page.url} scrolls sideways: {width}px wide"


def _success(page, text: str) -> None:
    expect(page.locator(".messages .msg-success")).to_contain_text(text)


def test_stones_issued_set_broken_and_returned(house_setup, open_as, shots):
    h = house_setup
    piece = h.launched_piece()
    lot = stone_services.stone_lot_receive(
        actor=h.manager, stone_type="diamond", shape="round", count=50, carats="5.000",
        size_mm="2.0", colour="G", clarity="VS1", supplier="Diamants SA",
        compliance_statement=KP, price_per_ct="850")
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=12, carats="1.200")

    # 1. The manager issues the reserved stones to the setter from the lot page.
    manager = Person(open_as(h.manager))
    page = manager.page
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Stones").click()
    expect(page.locator("h1")).to_have_text("Stone lots")
    expect(page.locator("table.stone-lots")).to_contain_text(lot.number)
    shots(page, "manager-lots")
    page.get_by_role("link", name=lot.number).click()
    expect(page.locator(".balance-check")).to_contain_text("Adds up to what was received")
    page.locator("details#issue > summary").click()
    issue_form = page.locator("details#issue form")
    issue_form.get_by_label("Setter").select_option(label=h.setter.name)
    issue_form.get_by_label(re.compile(rf"{re.escape(piece.serial)}: 12 stones")).check()
    shots(page, "manager-issue-form")
    manager.submit(issue_form.get_by_role("button", name="Send the slip"))
    _success(page, "sent to Sertissage Martin")
    issue = MaterialSlip.objects.get(kind=SlipKind.ISSUE)
    assert issue.operation == "setting"
    alloc.refresh_from_db()
    assert alloc.status == AllocationStatus.ISSUED
    shots(page, "manager-issued")

    # 2. The setter, on the phone, receives the slip by counting and weighing.
    setter = Person(open_as(h.setter_member, phone=True))
    page = setter.page
    page.goto("/workshop/")
    page.locator(".big-actions").get_by_role("link", name="Metal & stones").click()
    expect(page.locator("h1")).to_have_text("Metal & stones")
    incoming = page.locator(".queue-item").filter(has_text=issue.number)
    expect(incoming).to_contain_text("Receive")
    _no_horizontal_scroll(page)
    shots(page, "setter-metal-and-stones")
    incoming.click()
    expect(page.locator("h1")).to_have_text(issue.number)
    line = issue.lines.get()
    page.locator(f'input[name="receive-line_{line.pk}_count"]').fill("12")
    page.locator(f'input[name="receive-line_{line.pk}_carats"]').fill("1,200")
    _no_horizontal_scroll(page)
    shots(page, "setter-receive-form")
    setter.submit(page.get_by_role("button", name="Confirm what arrived"))
    _success(page, f"Slip {issue.number} received.")
    assert setter.confirmations[-1] == f"Confirm what arrived on slip {issue.number}?"
    issue.refresh_from_db()
    assert issue.status == SlipStatus.RECEIVED and not issue.weight_flagged
    shots(page, "setter-received")

    # 3. A stone breaks while the prongs are closed.
    page.get_by_role("link", name="← Metal & stones").click()
    expect(page.locator(".held")).to_contain_text("12 stones · 1.200 ct")
    page.locator(f"details#breakage-{h.setter.pk} > summary").click()
    form = page.locator(f"details#breakage-{h.setter.pk} form")
    form.get_by_label("Which stones").select_option(str(lot.pk))
    form.get_by_label("Number of stones").fill("1")
    form.get_by_label("Carats").fill("0.100")
    form.get_by_label("What happened").fill("Chipped while closing the prongs")
    form.get_by_label("In which piece").select_option(label=piece.serial)
    _no_horizontal_scroll(page)
    shots(page, "setter-breakage-form")
    setter.submit(form.get_by_role("button", name="Record the breakage"))
    _success(page, "1 stone recorded as broken.")
    expect(page.locator(".held")).to_contain_text("11 stones · 1.100 ct")
    shots(page, "setter-after-breakage")

    # 4. Ten set in the piece, one unused: the last return.
    page.locator(".queue-item").filter(has_text=issue.number).click()
    page.locator(f'input[name="return-set_{piece.pk}_{lot.pk}_count"]').fill("10")
    page.locator(f'input[name="return-set_{piece.pk}_{lot.pk}_carats"]').fill("1.000")
    page.locator(f'input[name="return-unused_{lot.pk}_count"]').fill("1")
    page.locator(f'input[name="return-unused_{lot.pk}_carats"]').fill("0.100")
    page.get_by_label("This is the last return for this slip").check()
    _no_horizontal_scroll(page)
    shots(page, "setter-return-form")
    setter.submit(page.get_by_role("button", name="Send the return"))
    ret = MaterialSlip.objects.get(kind=SlipKind.RETURN)
    _success(page, f"Return slip {ret.number} sent to the house.")
    expect(page.locator("h1")).to_have_text(ret.number)
    expect(page.locator("main")).not_to_contain_text("850")
    _no_horizontal_scroll(page)
    shots(page, "setter-return-sent")

    # The house receives the return (its slip pages are another story).
    services.material_slip_receive(
        actor=h.manager, slip_id=ret.pk,
        lines=[{"line_id": ln.pk, "count": ln.stone_count, "carats": str(ln.carats_sent)}
               for ln in ret.lines.all()])

    # 5. The manager sees the lot's balance and the breakage rate.
    page = manager.page
    page.goto(f"/stones/{lot.pk}/")
    balances = page.locator("table.balances")
    expect(balances.locator("tr", has_text="House vault")).to_contain_text("39")
    expect(balances.locator("tr", has_text="In pieces")).to_contain_text("10")
    expect(balances.locator("tr", has_text="Broken stones")).to_contain_text("1")
    expect(page.locator(".balance-check")).to_contain_text(
        "Adds up to what was received: 50 stones, 5.000 ct.")
    expect(page.locator("table.movements")).to_contain_text("Chipped while closing the prongs")
    shots(page, "manager-lot-balance")
    page.get_by_role("link", name="← Stone lots").click()
    page.get_by_role("link", name="Breakage rates").click()
    row = page.locator("table.breakage tbody tr", has_text="Sertissage Martin")
    expect(row).to_contain_text("Diamond")
    expect(row).to_contain_text("8.33 %")
    shots(page, "manager-breakage-rates")
