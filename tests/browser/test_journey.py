"""The whole life of one order, through the pages only, in a real browser (Debian's Chromium).

Sales takes and qualifies the order and prints its job bags; the production manager follows it
on the dashboard (which updates by itself); three workshop members, each on their own phone,
receive, work and send the piece on by typing its job bag code; logistics delivers it; the
client confirms reception. A screenshot of every step is saved under
test-artifacts/screenshots/<test>/.

After `house_setup`, test 1 drives the application through its pages alone: the database is
only read, to check what the pages did.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.utils import timezone
from pypdf import PdfReader

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LIVE_TIMEOUT_MS = 15_000  # the dashboard polls every 5 s
PHONE_WIDTH = 375

# The smallest valid PNG (1×1 pixel): a reference photo attached at intake.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201c5d8f1a50000000049454e44ae426082")


class Person:
    """One person's browser page; confirmations (`data-confirm`) are accepted and remembered."""

    def __init__(self, page):
        self.page = page
        self.confirmations: list[str] = []
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog):
        self.confirmations.append(dialog.message)
        dialog.accept()

    def submit(self, locator):
        """Click a submit button and wait for the page it leads to."""
        with self.page.expect_navigation():
            locator.click()
        return self.page


@pytest.fixture
def person(open_as):
    def _person(user, *, phone: bool = False) -> Person:
        return Person(open_as(user, phone=phone))

    return _person


def _no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + 1, f"{page.url} scrolls sideways: {width}px wide"


# ---------------------------------------------------------------------------------------------
# the house's piece page


def _house_action(p: Person, label: str) -> None:
    """Open the action `label` on the house's piece page (a <details>) and submit it."""
    page = p.page
    summary = page.locator("details.action > summary").filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    expect(summary).to_have_count(1)
    details = summary.locator("xpath=..")
    if details.get_attribute("open") is None:
        summary.click()
    p.submit(details.get_by_role("button", name=label, exact=True))
    expect(page.locator(".messages .msg-success")).to_be_visible()


# ---------------------------------------------------------------------------------------------
# the workshop portal


def _scan(p: Person, serial: str) -> None:
    """From the queue, type the job bag's serial on the scan page and open the piece."""
    page = p.page
    page.goto("/workshop/")
    page.get_by_role("link", name="Scan a job bag").click()
    expect(page).to_have_url(re.compile(r"/workshop/scan/$"))
    page.get_by_label("Serial or job bag link").fill(serial)
    p.submit(page.get_by_role("button", name="Open the piece"))
    expect(page).to_have_url(re.compile(r"/workshop/pieces/\d+/$"))
    expect(page.locator("h1")).to_have_text(serial)


def _workshop_action(p: Person, name: str | re.Pattern, done: str) -> None:
    """Tap one of the big buttons of the portal's piece page; `done` is the success message."""
    p.submit(p.page.locator("section.big-actions").get_by_role("button", name=name))
    expect(p.page.locator(".messages .msg-success")).to_contain_text(done)


def _work_at_workshop(p: Person, shots, serial: str, who: str, step: str, next_name: str,
                      after_receive=None, *, h=None, piece=None):
    """Receive, start, complete and send on, as one workshop member on their phone.

    With `h` and `piece`, each step's own rules are met before the buttons are tapped (a
    checked setting plan, a passing control, finishing records, a signed inspection), the
    way `HouseSetup.advance` does; the pages for those: test_steps_journey.
    """
    from tests import gate_support

    def gate(hook):
        if h is not None:
            piece.refresh_from_db()
            hook(h, piece, h.open_run(piece))

    page = p.page
    page.goto("/workshop/")
    incoming = page.locator("section.queue-section").filter(has=page.locator("#q-incoming"))
    expect(incoming.locator(".queue-item")).to_contain_text(serial)
    shots(page, f"{who}-queue-incoming")
    _scan(p, serial)
    shots(page, f"{who}-scanned")
    _workshop_action(p, "Receive", f"{serial} received.")
    shots(page, f"{who}-received")
    if after_receive is not None:
        after_receive()
    gate(gate_support.before_start)
    _workshop_action(p, re.compile(rf"^Start: {re.escape(step)}"), f"{serial} started.")
    gate(gate_support.before_complete)
    _workshop_action(p, re.compile(rf"^Complete: {re.escape(step)}"), "step completed")
    shots(page, f"{who}-completed")
    gate(gate_support.before_send)
    _scan(p, serial)  # later, at the dispatch table: the job bag again
    _workshop_action(p, f"Send to {next_name}", f"{serial} sent to {next_name}")
    expect(page).to_have_url(re.compile(r"/workshop/$"))
    expect(page.locator(".queue-item", has_text=serial)).to_have_count(0)
    shots(page, f"{who}-sent-on")
    assert len(p.confirmations) >= 3, p.confirmations  # receive, complete, send were confirmed
    assert any("arrived" in c for c in p.confirmations), p.confirmations


# ---------------------------------------------------------------------------------------------
# 1. the journey


def test_one_order_from_intake_to_reception(house_setup, person, shots, live_server):
    from etabli.orders.models import Order, OrderStatus
    from etabli.production.models import EventKind, PieceStatus, TrackingEvent

    h = house_setup
    today = timezone.localdate()

    # --- sales, at a desk: a new order for Bijouterie Roux --------------------------------
    sales = person(h.sales)
    page = sales.page
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    page.goto("/orders/")
    page.locator("main").get_by_role("link", name="New order").click()
    expect(page).to_have_url(re.compile(r"/orders/new/$"))
    page.get_by_label("Client", exact=True).select_option(label=h.client.name)
    page.get_by_label("Client's reference").fill("BR-2207")
    # Promised a little too soon: the deadline check will say so.
    page.get_by_label("Promised date").fill((today + dt.timedelta(days=3)).isoformat())
    shots(page, "sales-new-order")
    sales.submit(page.get_by_role("button", name="Create the order and add lines"))
    expect(page).to_have_url(re.compile(r"/orders/\d+/edit/lines/$"))
    order_id = int(re.search(r"/orders/(\d+)/", page.url).group(1))

    page.get_by_label("Description").fill("Solitaire ring, 1 ct")
    page.get_by_label("Catalogue model").fill("R-100")
    page.get_by_label("Quantity").fill("1")
    page.get_by_label("Size").fill("52")
    page.get_by_label("Alloy").select_option("750y")
    page.get_by_label("Stones", exact=True).fill("1 diamond 1.00 ct, G VS1, 6-claw setting")
    sales.submit(page.get_by_role("button", name="Add the line"))
    expect(page.locator(".messages")).to_contain_text("Line saved.")
    expect(page.locator("table")).to_contain_text("Solitaire ring, 1 ct")
    shots(page, "sales-line-added")

    page.locator(".step-nav").get_by_role("link", name="Next step").click()
    expect(page).to_have_url(re.compile(r"/edit/documents/$"))
    page.get_by_label("Files").set_input_files(
        {"name": "ring-sketch.png", "mimeType": "image/png", "buffer": PNG_1PX})
    sales.submit(page.get_by_role("button", name="Upload"))
    expect(page.locator(".messages")).to_contain_text("1 document attached.")
    shots(page, "sales-document-attached")

    # Before the sheet is complete, the launch is disabled and says what is missing.
    page.goto(f"/orders/{order_id}/edit/checklist/")
    launch = page.get_by_role("button", name="Launch production")
    expect(launch).to_be_disabled()
    missing = page.locator("#missing")
    expect(missing).to_contain_text("Some steps of the route have no workshop.")
    expect(missing).to_contain_text("“Quote accepted” is not checked.")
    shots(page, "sales-launch-disabled")

    # The route: an exact reproduction of a catalogue model needs no prototype.
    page.goto(f"/orders/{order_id}/edit/route/")
    steps = page.locator("ol.route-steps > li")

    def step_card(label: str):
        return steps.filter(has=page.locator("h3", has_text=label))

    card = step_card("Prototyping")
    card.locator("summary", has_text="Skip this step").click()
    card.get_by_label("Why skip it").select_option("exact_reproduction")
    card.get_by_label("Comment").fill("Catalogue model R-100, made many times.")
    sales.submit(card.get_by_role("button", name="Skip the step"))
    expect(step_card("Prototyping").locator(".badge.skipped")).to_be_visible()
    for label, workshop in (("Manufacturing", h.caster), ("Setting", h.setter),
                            ("Finishing", h.polisher)):
        card = step_card(label)
        card.get_by_label("Workshop").select_option(label=workshop.name)
        sales.submit(card.get_by_role("button", name="Save", exact=True))
        expect(page.locator(".messages")).to_contain_text("saved.")
    expect(page.locator("ol.route-steps .badge.bad")).to_have_count(0)
    shots(page, "sales-route")

    # The checklist, every item.
    page.goto(f"/orders/{order_id}/edit/checklist/")
    boxes = page.locator("form.checklist input[type=checkbox]")
    assert boxes.count() == 12
    for i in range(boxes.count()):
        boxes.nth(i).check()
    sales.submit(page.get_by_role("button", name="Save the checklist"))
    expect(page.locator(".messages")).to_contain_text("12 items of the checklist saved.")
    expect(page.locator("#missing")).to_have_count(0)

    # The promised date is too early: take the earliest realistic date the page shows.
    panel = page.locator(".launch-panel")
    expect(panel).to_contain_text("too early")
    facts = panel.locator("dl.deadline")
    shown = facts.locator("dt:text-is('Earliest realistic date') + dd").inner_text().strip()
    earliest = dt.datetime.strptime(shown, "%d %b %Y").date()
    assert earliest > today + dt.timedelta(days=3)
    shots(page, "sales-deadline-too-early")
    sales.submit(panel.get_by_role("button", name=f"Move the promised date to {shown}"))
    expect(page.locator(".messages")).to_contain_text(
        f"The promised date is now {earliest.isoformat()}.")
    expect(panel.locator(".badge.ok", has_text="Ready to launch")).to_be_visible()
    shots(page, "sales-ready-to-launch")

    sales.submit(panel.get_by_role("button", name="Launch production"))
    assert any("Launch production?" in c for c in sales.confirmations)
    expect(page).to_have_url(re.compile(rf"/orders/{order_id}/(#.*)?$"))
    expect(page.locator(".messages")).to_contain_text("is launched: 1 piece is in production")
    order = Order.objects.get(pk=order_id)
    assert order.status == OrderStatus.LAUNCHED and order.promised_date == earliest
    piece = order.pieces.get()
    serial = piece.serial
    expect(page.locator("#pieces-title + .table-wrap")).to_contain_text(serial)
    shots(page, "sales-launched")

    # The job bags, all of the order's at once: a PDF.
    print_link = page.get_by_role("link", name="Print job bags")
    expect(print_link).to_be_visible()
    pdf = page.request.get(print_link.get_attribute("href"))
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    label = PdfReader(io.BytesIO(pdf.body())).pages[0].extract_text()
    assert serial in label and order.reference in label and "BR-2207" in label

    # --- the production manager's dashboard: kept open (never reloaded) to the end ----------
    manager = person(h.manager)
    dash = manager.page
    expect(dash).to_have_url(re.compile(r"/dashboard/$"))
    live = dash.locator("#dashboard-live")
    design_col = live.locator("section.col").filter(has=dash.locator("h3", has_text="Design"))
    expect(design_col).to_contain_text(serial)
    dash.evaluate("window.__sameDocument = 'yes'")
    shots(dash, "manager-dashboard")

    # --- the house's own step: design, by the designer -------------------------------------
    designer = person(h.designer)
    page = designer.page
    page.goto(f"/pieces/{piece.pk}/")
    expect(page.locator("h1")).to_contain_text(serial)
    _house_action(designer, "Start the step")
    # The client approves the design round (the pages for that: test_steps_journey).
    from tests.design.support import approve_design

    approve_design(h, piece.line)
    _house_action(designer, "Complete the step")
    shots(page, "designer-design-done")

    # The manager, on a second tab, sends the piece to the caster.
    desk = manager.page.context.new_page()
    desk_person = Person(desk)
    desk.goto(f"/pieces/{piece.pk}/")
    _house_action(desk_person, f"Send to {h.caster.name}")
    shots(desk, "manager-sent-to-caster")
    desk.close()

    # --- three workshops, each on a phone ---------------------------------------------------
    caster = person(h.caster_member, phone=True)
    received = live.locator(".events li").filter(
        has=dash.locator(".badge", has_text=re.compile(r"^Received$")))
    expect(received).to_have_count(0)
    manufacturing_col = live.locator("section.col").filter(
        has=dash.locator("h3", has_text="Manufacturing"))
    # The send, made on another tab, has already reached the board by itself.
    expect(manufacturing_col.locator(".chip", has_text=serial)).to_contain_text(
        "In transit", timeout=LIVE_TIMEOUT_MS)

    def dashboard_caught_up():
        # The manager's page, untouched since it was opened, shows the receipt by itself.
        expect(received).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
        expect(received).to_contain_text(serial)
        chip = manufacturing_col.locator(".chip", has_text=serial)
        expect(chip).to_be_visible()
        expect(chip).not_to_contain_text("In transit", timeout=LIVE_TIMEOUT_MS)
        assert dash.evaluate("window.__sameDocument") == "yes"
        shots(dash, "manager-dashboard-updated")

    _work_at_workshop(caster, shots, serial, "caster", "Manufacturing", h.setter.name,
                      after_receive=dashboard_caught_up, h=h, piece=piece)

    setter = person(h.setter_member, phone=True)
    _work_at_workshop(setter, shots, serial, "setter", "Setting", h.polisher.name,
                      h=h, piece=piece)
    polisher = person(h.polisher_member, phone=True)
    _work_at_workshop(polisher, shots, serial, "polisher", "Finishing & QC", h.house.name,
                      h=h, piece=piece)

    # --- delivery, at the house, by logistics ----------------------------------------------
    logistics = person(h.logistics)
    page = logistics.page
    page.goto(f"/pieces/{piece.pk}/")
    _house_action(logistics, "Receive")
    _house_action(logistics, "Start the step")
    # The piece leaves on a shipment: prepared, packed, shipped with its tracking number; its
    # delivery ends the step.
    page.goto("/delivery/")
    page.get_by_role("link", name="Prepare a shipment").click()
    page.get_by_label("Carrier").fill("Ferrari Group")
    logistics.submit(page.get_by_role("button", name="Prepare the shipment"))
    page.get_by_label(f"Case for {serial}").select_option("ring_box")
    page.get_by_label("Protection").select_option("foam_insert")
    logistics.submit(page.get_by_role("button", name="Record the packaging"))
    shipping = page.locator("section", has=page.locator("#h-ship"))
    shipping.get_by_label("Tracking number").fill("FG 0012 3456 78")
    logistics.submit(shipping.get_by_role("button", name="Ship", exact=True))
    page.get_by_label("Signed for by").fill("Mme Roux")
    logistics.submit(page.get_by_role("button", name="Record the delivery"))
    expect(page.locator(".messages .msg-success")).to_contain_text("delivered")
    page.goto(f"/pieces/{piece.pk}/")
    expect(page.locator("h1 .badge")).to_have_text("Delivered")
    shots(page, "logistics-delivered")

    expect(received).to_have_count(4, timeout=LIVE_TIMEOUT_MS)
    expect(live.locator(".board")).not_to_contain_text(serial)
    assert dash.evaluate("window.__sameDocument") == "yes"
    shots(dash, "manager-dashboard-after-delivery")

    # --- the client confirms reception -----------------------------------------------------
    client = person(h.client_contact, phone=True)
    page = client.page
    expect(page).to_have_url(re.compile(r"/portal/$"))
    page.get_by_role("link", name=re.compile(re.escape(order.reference))).click()
    expect(page.locator(".lead")).to_have_text("Delivered")
    page.get_by_label("Anything to tell us about the delivery?").fill("Arrived safely, thanks.")
    shots(page, "client-before-confirming")
    client.submit(page.get_by_role("button", name="Confirm reception"))
    expect(page.locator(".confirmed")).to_contain_text("Reception confirmed by")
    _no_horizontal_scroll(page)
    shots(page, "client-confirmed")

    # --- what the pages did ----------------------------------------------------------------
    order.refresh_from_db()
    piece.refresh_from_db()
    assert order.status == OrderStatus.CLOSED  # delivered and accepted
    assert order.reception_confirmed_at is not None
    assert order.reception_confirmed_by_id == h.client_contact.pk
    assert order.reception_note == "Arrived safely, thanks."
    assert piece.status == PieceStatus.DELIVERED
    events = list(TrackingEvent.objects.filter(piece=piece).select_related("step_run")
                  .order_by("id"))
    # The launch records the order receipt; then every step the piece went through was
    # started and completed where it was done, and every journey sent and received once:
    # house → caster → setter → polisher → house.
    S, R, ST, C = (EventKind.SENT, EventKind.RECEIVED, EventKind.STARTED,
                   EventKind.COMPLETED)
    assert [(e.step_run.step, e.kind) for e in events] == [
        ("order_receipt", ST), ("order_receipt", C),
        ("design", ST), ("design", C),
        ("manufacturing", S), ("manufacturing", R), ("manufacturing", ST),
        ("manufacturing", C),
        ("setting", S), ("setting", R), ("setting", ST), ("setting", C),
        ("finishing", S), ("finishing", R), ("finishing", ST), ("finishing", C),
        ("delivery", S), ("delivery", R), ("delivery", ST), ("delivery", C),
    ], [(e.step_run.step, e.kind) for e in events]
    by_actor = {e.actor_id for e in events if e.kind == EventKind.RECEIVED}
    assert by_actor == {h.caster_member.pk, h.setter_member.pk, h.polisher_member.pk,
                        h.logistics.pk}


# ---------------------------------------------------------------------------------------------
# 2. a workshop sees only its own pieces


def test_workshop_member_cannot_reach_another_workshops_piece(house_setup, person, shots):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to="manufacturing", arrive=True)  # at the caster
    piece.refresh_from_db()
    assert piece.location_id == h.caster.pk

    setter = person(h.setter_member, phone=True)
    page = setter.page
    for url in (f"/pieces/{piece.pk}/", f"/workshop/pieces/{piece.pk}/",
                f"/pieces/{piece.pk}/job-bag.pdf", f"/p/{piece.serial}/"):
        response = page.goto(url)
        assert response.status == 404, url
        expect(page.locator("body")).not_to_contain_text(piece.order.reference)
    shots(page, "setter-404")
    pdf = page.request.get(f"/pieces/{piece.pk}/job-bag.pdf")
    assert pdf.status == 404
    assert page.request.get(f"/orders/{piece.order_id}/job-bags.pdf").status == 404

    page.goto("/workshop/scan/")
    page.get_by_label("Serial or job bag link").fill(piece.serial)
    setter.submit(page.get_by_role("button", name="Open the piece"))
    expect(page).to_have_url(re.compile(r"/workshop/find/"))
    error = page.locator(".field .error")
    expect(error).to_contain_text(f"No piece with serial “{piece.serial}” is at your workshop")
    shots(page, "setter-scan-not-found")

    page.goto("/workshop/")
    expect(page.locator("h1")).to_contain_text("My queue")
    expect(page.locator("main")).not_to_contain_text(piece.serial)
    expect(page.locator(".queue-item")).to_have_count(0)
    shots(page, "setter-queue-empty")

    # The caster, on the other hand, has it.
    caster = person(h.caster_member, phone=True)
    caster.page.goto("/workshop/")
    expect(caster.page.locator(".queue-item")).to_contain_text(piece.serial)


# ---------------------------------------------------------------------------------------------
# 3. phone width, and French


def _french(text: str) -> str:
    from django.utils import translation

    with translation.override("fr"):
        return translation.gettext(text)


def test_pages_at_phone_width_and_in_french(house_setup, person, shots):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to="manufacturing", arrive=True)  # on the caster's bench, to start

    caster = person(h.caster_member, phone=True)
    page = caster.page
    assert page.viewport_size["width"] == PHONE_WIDTH
    expect(page).to_have_url(re.compile(r"/workshop/$"))
    expect(page.locator(".queue-item")).to_contain_text(piece.serial)
    _no_horizontal_scroll(page)
    shots(page, "queue-375")
    page.locator(".queue-item", has_text=piece.serial).click()
    expect(page).to_have_url(re.compile(rf"/workshop/pieces/{piece.pk}/$"))
    _no_horizontal_scroll(page)
    shots(page, "piece-375")
    page.goto("/workshop/scan/")
    _no_horizontal_scroll(page)
    shots(page, "scan-375")

    # The house's pages on a phone too (the order page's history has long unbroken names).
    manager = person(h.manager, phone=True)
    for url in ("/dashboard/", f"/orders/{piece.order_id}/", f"/pieces/{piece.pk}/"):
        manager.page.goto(url)
        _no_horizontal_scroll(manager.page)
    shots(manager.page, "house-piece-375")

    # Big touch targets: the main action is at least 44 px tall.
    page.goto(f"/workshop/pieces/{piece.pk}/")
    button = page.locator("section.big-actions button").first
    assert button.bounding_box()["height"] >= 44

    # Switch to French with the language selector in the top bar.
    expect(page.locator("html")).to_have_attribute("lang", "en")
    with page.expect_navigation():
        page.get_by_label("Language").select_option("fr")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_url(re.compile(rf"/workshop/pieces/{piece.pk}/$"))
    h.caster_member.refresh_from_db()
    assert h.caster_member.language == "fr"
    # The French catalogue is written separately: where it translates these words, the page
    # must show them in French; until it exists, only the page's language is checked.
    for english in ("My queue", "The piece"):
        french = _french(english)
        if french != english:
            expect(page.locator("main")).to_contain_text(french)
    _no_horizontal_scroll(page)
    shots(page, "piece-375-fr")
    page.goto("/workshop/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    french = _french("My queue")
    if french != "My queue":
        expect(page.locator("h1")).to_contain_text(french)
    _no_horizontal_scroll(page)
    shots(page, "queue-375-fr")
