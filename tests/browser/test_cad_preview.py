"""CAD → weight in a real browser: sales uploads a ring's STL from the order page, sees its
weight in 750 yellow gold and 950 platinum and the ring drawn in 3D (three.js, WebGL through
Chromium's software renderer); without WebGL the page says so in plain words."""

from __future__ import annotations

import pytest
import trimesh

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, _chromium  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def ring_stl() -> bytes:
    band = trimesh.creation.annulus(r_min=8.5, r_max=10.5, height=2.5, sections=96)
    return band.export(file_type="stl")


def _watch_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg):
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    return errors


def _upload_ring(page, order_id: int) -> None:
    page.goto(f"/orders/{order_id}/")
    page.get_by_role("link", name="Upload a CAD file (STL, OBJ) and weigh it").click()
    page.wait_for_load_state()
    page.set_input_files("input[type=file]", {"name": "band-53.stl",
                                              "mimeType": "application/octet-stream",
                                              "buffer": ring_stl()})
    with page.expect_navigation():
        page.get_by_role("button", name="Upload and analyse").click()


def _distinct_colours(page) -> int:
    """How many colours the viewer's canvas shows (one means nothing was drawn)."""
    return page.evaluate("""() => {
        const src = document.querySelector('[data-mesh-viewer] canvas');
        const copy = document.createElement('canvas');
        copy.width = 64; copy.height = 48;
        const ctx = copy.getContext('2d');
        ctx.drawImage(src, 0, 0, 64, 48);
        const data = ctx.getImageData(0, 0, 64, 48).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4) {
            seen.add((data[i] >> 3) + ',' + (data[i + 1] >> 3) + ',' + (data[i + 2] >> 3));
        }
        return seen.size;
    }""")


def test_upload_a_ring_and_see_it_in_3d_with_its_weights(house_setup, open_as, shots):
    h = house_setup
    order = h.launched_order()
    page = open_as(h.sales)
    errors = _watch_errors(page)
    _upload_ring(page, order.pk)

    expect(page.locator("h1")).to_contain_text("band-53.stl")
    expect(page.get_by_text("The mesh is closed: its volume can be weighed.")).to_be_visible()
    gold = page.locator("tr[data-alloy='750y']")
    platinum = page.locator("tr[data-alloy='950pt']")
    expect(gold).to_contain_text("18k yellow gold (750)")
    expect(platinum).to_contain_text("Platinum 950")
    # ≈ 298.3 mm³ of metal: 4.62 g of 750 yellow gold, 6.00 g of platinum 950.
    expect(gold).to_contain_text(" g")
    gold_g = float(gold.locator("td").nth(2).inner_text().split()[0])
    platinum_g = float(platinum.locator("td").nth(2).inner_text().split()[0])
    assert 4.5 < gold_g < 4.7 and 5.9 < platinum_g < 6.1

    viewer = page.locator("[data-mesh-viewer]")
    expect(viewer).to_have_attribute("data-state", "ready", timeout=20_000)
    canvas = viewer.locator("canvas")
    expect(canvas).to_have_count(1)
    box = canvas.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    page.wait_for_timeout(300)
    assert _distinct_colours(page) > 4, "the canvas is blank"
    # Turning the model redraws it, without errors.
    canvas.hover()
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 30)
    page.mouse.up()
    shots(page, "ring-in-3d")
    assert errors == [], errors


def test_without_webgl_the_page_says_so(house_setup, browser, live_server, shots):
    """A browser without WebGL gets the weights and a plain sentence instead of the 3D view."""
    from etabli.materials import cad_services
    from tests.materials.test_cad import upload

    h = house_setup
    piece = h.launched_piece()
    analysis = cad_services.cad_upload(actor=h.sales, order_id=piece.order_id,
                                       uploaded_file=upload("band.stl", ring_stl()))
    h.sales.set_password("pw-for-browser-1")
    h.sales.save(update_fields=["password"])

    plain = browser.browser_type.launch(executable_path=_chromium(), headless=True,
                                        args=[*CHROMIUM_ARGS, "--disable-webgl",
                                              "--disable-3d-apis"])
    try:
        context = plain.new_context(viewport=DESKTOP, locale="en-GB",
                                    base_url=live_server.url)
        page = context.new_page()
        errors = _watch_errors(page)
        page.goto("/accounts/login/")
        page.fill("#id_username", h.sales.username)
        page.fill("#id_password", "pw-for-browser-1")
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.goto(f"/cad/{analysis.document_id}/")
        viewer = page.locator("[data-mesh-viewer]")
        expect(viewer).to_have_attribute("data-state", "no-webgl", timeout=20_000)
        expect(viewer).to_contain_text("WebGL is not available")
        expect(page.locator("tr[data-alloy='750y']")).to_be_visible()
        shots(page, "no-webgl")
        assert errors == [], errors
        context.close()
    finally:
        plain.close()
