"""Stone setting on a phone (375 × 812), in a real browser (Debian's Chromium).

The setter opens the setting plan of a piece coming to the bench; the polisher, who receives
the piece back from setting, records its control from the workshop portal: every stone
counted, stones secure, a photo from the camera. Neither page scrolls sideways. Screenshots go
under test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import io

import pytest

from etabli.stonesetting.models import SettingControl

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PHONE_WIDTH = 375


def _no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + 1, f"{page.url} scrolls sideways: {width}px wide"


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "#334455").save(buffer, format="PNG")
    return buffer.getvalue()


def test_setter_reads_the_plan_and_the_polisher_records_the_control(house_setup, open_as,
                                                                     shots):
    from tests.stonesetting.helpers import (
        back_from_setting,
        check,
        piece_at_setting,
        plan_with_lot,
    )

    h = house_setup
    piece = piece_at_setting(h)
    plan, lot = plan_with_lot(h, piece)
    check(h, piece)
    h.advance(piece)  # on its way to the setter

    setter = open_as(h.setter_member, phone=True)
    setter.goto(f"/workshop/pieces/{piece.pk}/")
    expect(setter.locator(".setting-plan-cards")).to_contain_text("12")
    shots(setter, "setter-portal-plan")
    _no_horizontal_scroll(setter)
    setter.get_by_role("link", name="Open the setting plan").click()
    expect(setter.locator("table.setting-groups")).to_contain_text(lot.number)
    shots(setter, "setter-plan-page")
    _no_horizontal_scroll(setter)

    back_from_setting(h, piece)
    polisher = open_as(h.polisher_member, phone=True)
    polisher.on("dialog", lambda dialog: dialog.accept())
    polisher.goto(f"/workshop/pieces/{piece.pk}/")
    form = polisher.locator("form.setting-control-form")
    expect(form).to_be_visible()
    _no_horizontal_scroll(polisher)
    group = plan.groups.get()
    form.locator(f"#id_control-count_{group.pk}").fill("12")
    form.get_by_label("Yes, all secure").check()
    form.locator("input[type=file]").set_input_files(
        [{"name": "stones.png", "mimeType": "image/png", "buffer": _png()}])
    shots(polisher, "polisher-control-form")
    with polisher.expect_navigation():
        form.get_by_role("button", name="Record the control").click()
    expect(polisher.locator(".messages")).to_contain_text("passed")
    shots(polisher, "polisher-control-recorded")
    _no_horizontal_scroll(polisher)
    control = SettingControl.objects.get()
    assert control.passed and control.photos.count() == 1
