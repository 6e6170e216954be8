"""The finishing panel on a phone (375 × 812) at the polisher's bench, and the house's side, in
Debian's Chromium. Screenshots go under test-artifacts/screenshots/<test>/."""

from __future__ import annotations

import pytest

from etabli.finishing.models import FinishingRecord
from tests.finishing.builders import assay_office, finishing_piece

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PHONE_WIDTH = 375


def _no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + 1, f"{page.url} scrolls sideways: {width}px wide"


def test_the_polisher_records_the_finishing_on_a_phone(house_setup, open_as, shots):
    h = house_setup
    assay_office(h)
    piece = finishing_piece(h, operations=["polishing", "plating", "serial_engraving",
                                           "hallmarking", "cleaning"], alloy="750w")
    page = open_as(h.polisher_member, phone=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/workshop/pieces/{piece.pk}/")
    panel = page.locator("section.finishing-panel")
    expect(panel).to_contain_text("Finishing work")
    expect(panel).to_contain_text("Hallmark required")
    _no_horizontal_scroll(page)
    shots(page, "panel-375")

    polish = panel.locator("form[action$='/record/polishing/']")
    polish.get_by_label("Satin").check()
    with page.expect_navigation():
        polish.get_by_role("button").click()
    expect(page.locator(".messages")).to_contain_text("Polishing recorded")
    plating = page.locator("form[action$='/record/plating/']")
    plating.get_by_label("Rhodium thickness (µm)").fill("1.5")
    with page.expect_navigation():
        plating.get_by_role("button").click()
    expect(page.locator(".field.has-error")).to_contain_text("0.05 to 1.00 µm")
    _no_horizontal_scroll(page)
    shots(page, "plating-refused-375")
    page.get_by_label("Rhodium thickness (µm)").fill("0,25")
    with page.expect_navigation():
        page.get_by_role("button", name="Record: Rhodium plating").click()
    expect(page.locator(".messages")).to_contain_text("Rhodium plating recorded")
    page.locator("section.finishing-panel summary", has_text="Hallmarking").click()
    marks = page.locator("form[action$='/record/hallmarking/']")
    marks.get_by_label("Maker's mark").fill("ME ◇")
    with page.expect_navigation():
        marks.get_by_role("button").click()
    expect(page.locator("section.finishing-panel")).to_contain_text("fineness 750")
    _no_horizontal_scroll(page)
    shots(page, "three-recorded-375")
    assert dict(FinishingRecord.objects.values_list("operation", "status")) == {
        "polishing": "done", "plating": "done", "hallmarking": "done"}

    manager = open_as(h.manager, phone=True)
    manager.goto(f"/pieces/{piece.pk}/")
    expect(manager.locator("section.finishing-panel")).to_contain_text("Satin")
    _no_horizontal_scroll(manager)
    shots(manager, "house-panel-375")
    manager.goto("/finishing/hallmarks/")
    expect(manager.locator("h1")).to_have_text("Hallmark exemptions")
    _no_horizontal_scroll(manager)
    shots(manager, "hallmarks-375")
