"""One custom ring from its brief to a closed order, through the steps' own pages, in a real
browser (Debian's Chromium).

The house is set up with the test factories (people, workshops, a stone parcel in the vault, a
launched order for a custom engagement ring in 18k yellow gold, size 52). Then every step is
done by the person who does it, on the pages they use:

- the designer writes the brief, sends round 1 (a render and an STL mesh made here), the client
  asks for changes in the portal, round 2 (a new render, version 2 of the mesh) is approved;
- the caster, on a phone, makes and fit-tests the prototype, then casts the ring;
- the production manager drafts and checks the setting plan; the setter sets the stone; the
  polisher controls the setting on arrival (with a photo) and records the finishing work;
- the quality inspector finds the ring too heavy, signs the failed sheet (the ring stops), records
  the root cause and corrective action and sends it back to finishing; the redone finishing is
  inspected again, passes and is signed; the sheet prints as a PDF;
- logistics receives, packs, ships (tracking number) and delivers; sales issues the invoice;
- the client accepts the delivery in the portal and the order closes.

Screenshots of the key moments go to test-artifacts/steps-journey/. After the setup, the test
drives the application through its pages only; the database is read to check what they did.
"""

from __future__ import annotations

import io
import re
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SHOTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "steps-journey"
PHONE_WIDTH = 375
MILLIGRAM = Decimal("0.001")


# ---------------------------------------------------------------------------------------------
# files made at test time


def render_png(colour: str) -> bytes:
    """A small render of the ring (PNG, made with Pillow)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((28, 12, 68, 52), outline=colour, width=6)
    draw.ellipse((42, 4, 54, 16), fill="#e8f4ff", outline="#777777")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def ring_stl(outer_radius_mm: float, height_mm: float) -> bytes:
    """A closed ring mesh (binary STL, made with trimesh): size 52, 16.6 mm inside."""
    import trimesh

    ring = trimesh.creation.annulus(r_min=8.3, r_max=outer_radius_mm, height=height_mm)
    assert ring.is_watertight
    return ring.export(file_type="stl")


def photo_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "#d4af37").save(buffer, format="JPEG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# people at their pages


class Shots:
    """Numbered screenshots of the whole journey, in one folder."""

    def __init__(self):
        shutil.rmtree(SHOTS_DIR, ignore_errors=True)
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, page, label: str) -> None:
        self.count += 1
        name = f"{self.count:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', label)}.png"
        page.screenshot(path=str(SHOTS_DIR / name), full_page=True)


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

    def says(self, text: str | re.Pattern, kind: str = "success") -> None:
        expect(self.page.locator(f".messages .msg-{kind}")).to_contain_text(text)

    def pdf(self, href: str) -> bytes:
        """Fetch a PDF link with this person's session: it must answer a PDF."""
        response = self.page.request.get(href)
        assert response.status == 200, (href, response.status)
        assert response.headers["content-type"] == "application/pdf", response.headers
        body = response.body()
        assert body.startswith(b"%PDF"), href
        return body


@pytest.fixture
def person(open_as, request):
    people: list[Person] = []
    failed_before = request.session.testsfailed

    def _person(user, *, phone: bool = False) -> Person:
        people.append(Person(open_as(user, phone=phone)))
        return people[-1]

    yield _person
    if request.session.testsfailed > failed_before:  # what each person saw when it failed
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(people):
            p.page.screenshot(path=str(SHOTS_DIR / f"failed-{i}.png"), full_page=True)


def pdf_text(body: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH + 1, f"{page.url} scrolls sideways: {width}px wide"


def open_details(container, summary_text: str | re.Pattern):
    """Open the <details> whose summary says `summary_text` (if closed); return it."""
    summary = container.locator("summary").filter(has_text=summary_text).first
    details = summary.locator("xpath=..")
    if details.get_attribute("open") is None:
        summary.click()
    return details


def house_action(p: Person, label: str, *, ok: bool = True) -> None:
    """Open the action `label` on the house's piece page and submit it."""
    page = p.page
    summary = page.locator("details.action > summary").filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    expect(summary).to_have_count(1)
    details = summary.locator("xpath=..")
    if details.get_attribute("open") is None:
        summary.click()
    p.submit(details.get_by_role("button", name=label, exact=True))
    if ok:
        expect(page.locator(".messages .msg-success")).to_be_visible()


def workshop_action(p: Person, name: str | re.Pattern, done: str | None = None) -> None:
    """Tap one of the big buttons of the workshop portal's piece page."""
    p.submit(p.page.locator("section.big-actions").get_by_role("button", name=name))
    if done is not None:
        p.says(done)


def open_at_workshop(p: Person, serial: str) -> None:
    """From the queue, open the piece (the member taps it in their queue)."""
    page = p.page
    page.goto("/workshop/")
    item = page.locator("a.queue-item", has_text=serial)
    expect(item).to_have_count(1)
    with page.expect_navigation():
        item.click()
    expect(page.locator("h1")).to_have_text(serial)


def exactly(label: str) -> re.Pattern:
    """A field's label, whole (a required field's label ends with an asterisk)."""
    return re.compile(rf"^{re.escape(label)}( \*)?$")


# ---------------------------------------------------------------------------------------------
# the journey


def test_custom_ring_from_brief_to_closed_order(house_setup, person, live_server):
    from etabli.design.models import DesignApproval, Prototype
    from etabli.orders.models import OrderStatus
    from etabli.production.models import PieceStatus, StepStatus
    from etabli.quality.models import Inspection, Nonconformity, Verdict
    from etabli.shipping.models import Shipment, ShipmentStatus
    from etabli.stonesetting.models import SettingControl, SettingPlan
    from tests.stonesetting.support import stone_lot

    h = house_setup
    shots = Shots()

    # --- the house, with the test factories -------------------------------------------------
    lot = stone_lot(h, count=5, carats="1.500", size_mm="4.30")
    order = h.launched_order(client_reference="BR-ENG-01", lines=[{
        "description": "Engagement ring, custom design", "model_reference": "",
        "is_custom_design": True, "quantity": 1, "alloy": "750y", "size": "52",
        "stones": "1 round diamond 0.30 ct, G VS1, four-prong centre setting",
        "customisations": "Engraving inside the band: 'Toujours'",
        "target_price": "3200.00"}])
    line = order.lines.get()
    piece = order.pieces.get()
    serial = piece.serial
    assert piece.current_run.step == "design"

    # ===========================================================================================
    # 1. design: brief, round 1, the client asks for changes, round 2, the client approves

    designer = person(h.designer)
    page = designer.page
    page.goto(f"/pieces/{piece.pk}/")
    house_action(designer, "Start the step")
    page.goto("/design/")
    at_design = page.locator("section").filter(
        has=page.locator("h2", has_text="At the design step"))
    at_design.get_by_role("link", name=re.compile(re.escape(line.description))).click()
    expect(page).to_have_url(re.compile(rf"/design/lines/{line.pk}/$"))
    expect(page.locator("h1")).to_contain_text(line.description)
    expect(page.locator("h1 .badge")).to_be_visible()

    brief = page.locator("section", has=page.locator("h2#brief"))
    brief.get_by_label("Client's intent").fill(
        "An engagement ring for a June proposal: a single diamond held high, a fine band.")
    brief.get_by_label("Technical constraints").fill(
        "Size 52, worn every day: prongs strong enough, band at least 1.5 mm thick.")
    brief.get_by_label("Aesthetic constraints").fill("Classic, no halo, bright polish.")
    brief.get_by_label("Metal budget (g per piece)").fill("3.600")
    brief.get_by_label("Stones (per piece)").fill("1")
    brief.get_by_label("Stone weight (ct per piece)").fill("0.300")
    designer.submit(brief.get_by_role("button", name="Save the brief"))
    designer.says("The brief is saved.")
    line.refresh_from_db()
    assert line.budget_metal_g == Decimal("3.600") and line.budget_stone_count == 1

    def start_round(n: int, note: str) -> None:
        new_round = open_details(page.locator("section", has=page.locator("h2#h-rounds")),
                                 f"Start round {n}")
        new_round.get_by_label("Note for the client").fill(note)
        designer.submit(new_round.get_by_role("button", name="Start the round"))
        designer.says(f"Round {n} started: add its renders and CAD files.")

    def add_file(n: int, name: str, mime: str, body: bytes, kind: str,
                 replaces: str | None = None) -> None:
        card = page.locator("article.card", has=page.locator("h3", has_text=f"Round {n}"))
        form = open_details(card, "Add a render or a CAD file")
        form.get_by_label(exactly("File")).set_input_files(
            {"name": name, "mimeType": mime, "buffer": body})
        form.get_by_label("Kind").select_option(kind)
        if replaces is not None:
            form.get_by_label("New version of").select_option(label=replaces)
        designer.submit(form.get_by_role("button", name="Add the file"))
        designer.says(f"{name} is added to round {n}.")

    def send_round(n: int) -> None:
        card = page.locator("article.card", has=page.locator("h3", has_text=f"Round {n}"))
        designer.submit(card.get_by_role("button", name="Send to the client"))
        designer.says(f"Round {n} is sent to the client.")
        assert "Send this round to the client?" in designer.confirmations

    start_round(1, "Round 1: a classic four-prong solitaire on a 2 mm band.")
    add_file(1, "solitaire-r1.png", "image/png", render_png("#c9a227"), "render")
    add_file(1, "ring.stl", "model/stl", ring_stl(10.0, 2.6), "cad")
    round1 = page.locator("article.card", has=page.locator("h3", has_text="Round 1"))
    # The mesh gives the round its metal weight in the line's alloy, shown against the budget.
    expect(round1).to_contain_text("Metal weight from the CAD mesh, in the line's alloy.")
    expect(round1.locator(".design-budget")).to_contain_text("over budget")
    expect(round1.locator("img.thumb")).to_have_count(1)
    shots(page, "designer-round-1-ready")
    send_round(1)
    expect(round1.locator("h3 .badge")).to_have_text("Sent to the client")

    # Before the client decides, the piece cannot leave design.
    page.goto(f"/pieces/{piece.pk}/")
    house_action(designer, "Complete the step", ok=False)
    designer.says("is waiting for the client's decision", kind="error")

    # --- the client, on a phone: asks for changes -------------------------------------------
    client = person(h.client_contact, phone=True)
    cpage = client.page
    expect(cpage).to_have_url(re.compile(r"/portal/$"))
    cpage.get_by_role("link", name=re.compile(re.escape(order.reference))).click()
    designs = cpage.locator("section", has=cpage.locator("h2", has_text="Your designs"))
    expect(designs).to_contain_text("A design is waiting for your decision.")
    designs.get_by_role("link", name="See the design and decide").click()
    expect(cpage.locator(".lead")).to_contain_text("Design proposal 1")
    expect(cpage.locator(".lead")).to_contain_text("waiting for your decision")
    expect(cpage.locator(".photos img")).to_have_count(1)
    expect(cpage.locator("main")).not_to_contain_text("ring.stl")  # CAD is for the workshops
    no_sideways_scroll(cpage)
    shots(cpage, "client-round-1")
    cpage.get_by_label("Your comments").fill("Lovely, but a slimmer band please, and a little "
                                            "lower.")
    client.submit(cpage.get_by_role("button", name="Ask for changes"))
    client.says("your comments on round 1 are sent to the designer")
    expect(cpage.locator(".lead")).to_contain_text("changes asked")
    expect(cpage.locator("main")).to_contain_text("a slimmer band please")
    shots(cpage, "client-changes-asked")

    # --- the designer: round 2 -------------------------------------------------------------
    page.goto("/design/")
    changes = page.locator("section").filter(
        has=page.locator("h2", has_text="Changes requested"))
    expect(changes).to_contain_text("a slimmer band please")
    changes.get_by_role("link", name=re.compile(re.escape(line.description))).click()
    expect(page.locator("h1 .badge")).to_have_text(re.compile("hanges"))
    start_round(2, "Round 2: a slimmer, lower band, as you asked.")
    add_file(2, "solitaire-r2.png", "image/png", render_png("#b8901c"), "render")
    add_file(2, "ring.stl", "model/stl", ring_stl(9.8, 2.5), "cad", replaces="ring.stl (v1)")
    round2 = page.locator("article.card", has=page.locator("h3", has_text="Round 2"))
    expect(round2).to_contain_text("version 2")
    expect(round2.locator(".design-budget")).to_contain_text("within budget")
    send_round(2)
    expect(page.locator("dl.facts")).to_contain_text("2 / 3")  # rounds sent / the limit
    shots(page, "designer-round-2-sent")

    # --- the client approves round 2 -------------------------------------------------------
    cpage.goto(f"/portal/{order.pk}/")
    designs.get_by_role("link", name="See the design and decide").click()
    expect(cpage.locator(".lead")).to_contain_text("Design proposal 2")
    # The design against the budget, before deciding: the slimmer band is within it.
    expect(cpage.locator(".design-budget")).to_contain_text("within budget")
    cpage.get_by_label("Your comments").fill("Perfect, go ahead.")
    client.submit(cpage.get_by_role("button", name="Approve the design"))
    assert any("Approve this design?" in c for c in client.confirmations)
    client.says("you approved the design (round 2)")
    contact_name = h.client_contact.get_full_name() or h.client_contact.username
    expect(cpage.locator(".confirmed")).to_contain_text(f"Approved by {contact_name} on")
    shots(cpage, "client-approved")

    approval = DesignApproval.objects.get(line=line)
    assert approval.round_number == 2 and approval.approved_by_id == h.client_contact.pk
    assert {f["name"] for f in approval.files} == {"solitaire-r2.png", "ring.stl"}

    # The designer sees the formal record: who, which round, which files.
    page.goto(f"/design/lines/{line.pk}/")
    expect(page.locator("p.confirmed").first).to_contain_text(
        f"Round 2 approved by {contact_name} on")
    record = round2.locator(".confirmed")
    expect(record).to_contain_text("Approval record")
    expect(record).to_contain_text("round 2")
    expect(record).to_contain_text("ring.stl")
    expect(record).to_contain_text("version 2")
    shots(page, "designer-approval-record")

    # The piece leaves design.
    page.goto(f"/pieces/{piece.pk}/")
    house_action(designer, "Complete the step")
    manager = person(h.manager)
    mpage = manager.page
    mpage.goto(f"/pieces/{piece.pk}/")
    house_action(manager, f"Send to {h.caster.name}")

    # ===========================================================================================
    # 2. the prototype and the casting, at the caster's, on a phone

    caster = person(h.caster_member, phone=True)
    wpage = caster.page
    open_at_workshop(caster, serial)
    workshop_action(caster, "Receive", f"{serial} received.")
    workshop_action(caster, re.compile(r"^Start: Prototyping"), f"{serial} started.")
    proto = wpage.locator("section", has=wpage.locator("h2", has_text="Prototype"))
    expect(proto).to_contain_text("A ring, size 52: record the fit test.")
    proto.get_by_label("How it was made").select_option("wax_print")
    proto.get_by_label("Fit test").select_option("yes")
    proto.get_by_label("Fit notes").fill("Slides over the knuckle on a size 52 gauge.")
    no_sideways_scroll(wpage)
    shots(wpage, "caster-prototype-form")
    caster.submit(proto.get_by_role("button", name="Record the prototype"))
    caster.says(f"The prototype of {serial} is recorded as approved.")
    expect(proto).to_contain_text("Wax 3D print")
    expect(proto).to_contain_text("fits")
    prototype = Prototype.objects.get(piece=piece)
    assert prototype.method == "wax_print" and prototype.fit_ok is True
    assert prototype.result == "approved"
    workshop_action(caster, re.compile(r"^Complete: Prototyping"), "step completed")

    # Casting at the same workshop: start, complete with the cast's weight.
    workshop_action(caster, re.compile(r"^Start: Manufacturing"), f"{serial} started.")
    complete = wpage.locator("section.big-actions form.action-complete")
    complete.get_by_label("Weight when done (g)").fill("3.520")
    workshop_action(caster, re.compile(r"^Complete: Manufacturing"), "step completed")
    shots(wpage, "caster-cast")

    # The ring cannot go to the setter before its setting plan is checked.
    workshop_action(caster, f"Send to {h.setter.name}")
    expect(wpage.locator("main")).to_contain_text("has no setting plan")
    shots(wpage, "caster-send-refused")

    # ===========================================================================================
    # 3. setting: the plan, checked by the house; the setter; the control on arrival

    mpage.goto(f"/pieces/{piece.pk}/")
    mpage.locator("section.setting-panel").get_by_role(
        "link", name="Draft the setting plan").click()
    expect(mpage).to_have_url(re.compile(rf"/setting/pieces/{piece.pk}/$"))
    manager.submit(mpage.get_by_role("button", name="Start the setting plan"))
    manager.says(f"Setting plan started for {serial}: add its stones.")
    add = mpage.locator("details#add")
    add.get_by_label(exactly("Setting")).select_option("prong")
    add.get_by_label("Position on the piece").select_option("centre")
    add.get_by_label("Number of stones").fill("1")
    add.get_by_label("From lot").select_option(str(lot.pk))
    add.get_by_label("Carats (whole group)").fill("0.300")
    add.get_by_label("Note for the setter").fill("Four prongs, table 1 mm above the band.")
    manager.submit(add.get_by_role("button", name="Add the group"))
    manager.says("Group 1 added")
    expect(mpage.locator("main")).to_contain_text("4.30 mm")  # the lot's size
    check = mpage.locator("section", has=mpage.locator("h2", has_text="Check before the setter"))
    check.get_by_label("The stones match the order").check()
    check.get_by_label("Preparation checked").check()
    check.get_by_label("Note").fill("Seats cut and prongs raised on the cast.")
    manager.submit(check.get_by_role("button", name="Mark the plan checked"))
    manager.says(f"Setting plan of {serial} checked: the piece may go to the setter.")
    expect(check).to_contain_text("Checked by")
    shots(mpage, "manager-setting-plan-checked")
    assert SettingPlan.objects.get(piece=piece).status == "checked"

    open_at_workshop(caster, serial)
    workshop_action(caster, f"Send to {h.setter.name}", f"{serial} sent to {h.setter.name}")

    setter = person(h.setter_member, phone=True)
    spage = setter.page
    open_at_workshop(setter, serial)
    workshop_action(setter, "Receive", f"{serial} received.")
    plan_panel = spage.locator("section.setting-panel")
    expect(plan_panel).to_contain_text("Checked by the house")
    expect(plan_panel).to_contain_text("Prong (claw)")
    workshop_action(setter, re.compile(r"^Start: Setting"), f"{serial} started.")
    workshop_action(setter, re.compile(r"^Complete: Setting"), "step completed")
    no_sideways_scroll(spage)
    shots(spage, "setter-set")
    open_at_workshop(setter, serial)
    workshop_action(setter, f"Send to {h.polisher.name}", f"{serial} sent to {h.polisher.name}")

    # The polisher receives it and controls the setting before any work: with a photo.
    polisher = person(h.polisher_member, phone=True)
    ppage = polisher.page
    open_at_workshop(polisher, serial)
    workshop_action(polisher, "Receive", f"{serial} received.")
    control = ppage.locator("section.setting-panel")
    expect(control.locator("h2")).to_have_text("Control on return from the setter")
    control.get_by_label(re.compile(r"^Group 1: .* stones counted")).fill("1")
    control.get_by_label("Yes, all secure").check()
    control.get_by_label("Photos").set_input_files(
        {"name": "setting-control.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg()})
    control.get_by_label("Notes").fill("Centre stone tight, prongs even.")
    no_sideways_scroll(ppage)
    shots(ppage, "polisher-setting-control")
    polisher.submit(control.get_by_role("button", name="Record the control"))
    polisher.says(f"Control recorded for {serial}: passed.")
    setting_control = SettingControl.objects.get(setting_run__piece=piece)
    assert setting_control.passed

    # ===========================================================================================
    # 4. finishing at the polisher's, then quality: a failed inspection and its rework

    def record_finishing(comment: str) -> None:
        panel = ppage.locator("section.finishing-panel")
        expect(panel).to_be_visible()

        def record(label: str, fill) -> None:
            details = panel.locator("details.action").filter(
                has=ppage.locator("summary", has_text=label))
            fill(details)
            polisher.submit(details.get_by_role("button", name=re.compile(r"^Record: ")))
            polisher.says(f"{serial}: {label} recorded.")

        record("Polishing", lambda d: d.get_by_label("Bright (high polish)").check())

        def engraving(d):
            expect(d.get_by_label("Text engraved")).to_have_value("Toujours")

        record("Engraving", engraving)

        def hallmark(d):
            expect(d.get_by_label("Fineness mark")).to_have_value("750")
            d.get_by_label("Marks struck").check()
            d.get_by_label("Maker's mark").fill("EB ◇")

        record("Hallmarking", hallmark)

        def cleaning(d):
            d.get_by_label("Ultrasonic bath", exact=True).check()
            open_details(d, "Add a comment").get_by_label("Comment").fill(comment)

        record("Final cleaning", cleaning)
        expect(panel).to_contain_text("Every operation is recorded")
        no_sideways_scroll(ppage)

    workshop_action(polisher, re.compile(r"^Start: Finishing"), f"{serial} started.")
    record_finishing("First finish.")
    shots(ppage, "polisher-finishing-recorded")
    # The step does not end before quality has signed a passing inspection.
    workshop_action(polisher, re.compile(r"^Complete: Finishing"))
    expect(ppage.locator("main")).to_contain_text("needs a signed passing inspection")

    quality = person(h.quality)
    qpage = quality.page

    def inspect(weight_factor: Decimal) -> tuple[Decimal, Decimal]:
        """Open the inspection from the queue, measure; return (theoretical, measured)."""
        qpage.goto("/quality/")
        waiting = qpage.locator("section", has=qpage.locator("h2#waiting-h"))
        row = waiting.locator("tr", has_text=serial)
        expect(row).to_have_count(1)
        quality.submit(row.get_by_role("button", name="Inspect"))
        expect(qpage).to_have_url(re.compile(r"/quality/inspections/\d+/$"))
        form = qpage.locator("form.qc-form")
        theoretical = Decimal(form.get_by_label("Theoretical weight (g)").input_value())
        assert theoretical > 0  # from the approved round's mesh, in 18k yellow gold
        measured = (theoretical * weight_factor).quantize(MILLIGRAM, ROUND_HALF_UP)
        form.get_by_label("Measured weight (g)").fill(str(measured))
        form.locator("[name='dimensions.0.name']").fill("Band width")
        form.locator("[name='dimensions.0.target_mm']").fill("1.800")
        form.locator("[name='dimensions.0.measured_mm']").fill("1.850")
        form.get_by_label("Fineness test").select_option("xrf")
        form.get_by_label("Fineness reading (‰)").fill("751.2")
        form.get_by_label("Visible defects under the loupe").fill("0")
        form.get_by_label("Stones: mechanical test").select_option("yes")
        form.get_by_label("Loose stones").fill("0")
        form.get_by_label("Clasps and hinges").select_option("na")
        quality.submit(form.get_by_role("button", name="Save the measurements"))
        quality.says("Measurements saved.")
        return theoretical, measured

    def sign() -> None:
        aside = qpage.locator("aside.qc-side")
        aside.get_by_label(re.compile("I inspected this piece myself")).check()
        quality.submit(aside.get_by_role("button", name="Sign the inspection"))

    # First inspection: 5 % too heavy (the tolerance is ±2 %).
    theoretical, heavy = inspect(Decimal("1.05"))
    expect(qpage.locator("#verdict")).to_contain_text("Fail")
    expect(qpage.locator("#verdict")).to_contain_text("deviation 5.00 %")
    shots(qpage, "quality-inspection-fails")
    sign()
    assert any("Sign this inspection?" in c for c in quality.confirmations)
    quality.says(re.compile(rf"signed: {re.escape(serial)} failed\. It is on hold"),
                 kind="warning")
    expect(qpage).to_have_url(re.compile(r"/quality/nonconformities/\d+/$"))
    nc_page = qpage.url
    expect(qpage.locator("main")).to_contain_text("The piece was put on hold (quality stop).")
    failed = qpage.locator("section", has=qpage.locator("h2#failed-h"))
    expect(failed).to_contain_text("Weight")
    expect(failed).to_contain_text(str(heavy))
    first = Inspection.objects.get(piece=piece, verdict=Verdict.FAIL)
    assert first.signed_by_id == h.quality.pk and first.signed_at is not None
    piece.refresh_from_db()
    assert piece.status == PieceStatus.ON_HOLD

    # The sheet of the failed inspection prints.
    sheet = quality.pdf(qpage.get_by_role("link", name="Inspection sheet (PDF)").get_attribute(
        "href"))
    text = pdf_text(sheet)
    assert first.reference in text and serial in text

    cause = qpage.locator("section", has=qpage.locator("h2#cause-h"))
    cause.get_by_label("Root cause").select_option("polishing")
    cause.get_by_label("Corrective action").fill(
        "Polish the excess metal off the shank, weigh again before returning it.")
    quality.submit(cause.get_by_role("button", name="Record"))
    quality.says("Root cause and corrective action recorded.")
    rework = qpage.locator("section", has=qpage.locator("h2#rework-h"))
    target = rework.locator("option", has_text="(this step again)")
    expect(target).to_have_count(1)
    rework.get_by_label("Step that redoes the work").select_option(target.get_attribute("value"))
    rework.get_by_label("Instructions for the workshop").fill("Bring it within 2 %.")
    shots(qpage, "quality-nonconformity")
    quality.submit(rework.get_by_role("button", name="Send back for rework"))
    quality.says(f"{serial} is sent back for rework")
    expect(qpage.locator("h1 .badge")).to_have_text("In rework")
    nc = Nonconformity.objects.get(piece=piece)
    assert nc.root_cause == "polishing" and nc.status == "in_rework"
    piece.refresh_from_db()
    assert piece.rework_count == 1
    # The polisher redoes the finishing step (a new run at the same workshop).
    redo = piece.current_run
    assert redo.step == "finishing" and redo.attempt == 2 and redo.status == StepStatus.READY

    # --- the polisher redoes the work -------------------------------------------------------
    open_at_workshop(polisher, serial)
    expect(ppage.locator("main")).to_contain_text("Bring it within 2 %")
    workshop_action(polisher, re.compile(r"^Start: Finishing"), f"{serial} started.")
    record_finishing("Shank polished down after QC.")
    shots(ppage, "polisher-rework-recorded")

    # --- second inspection: 1 % over, within tolerance ------------------------------------
    theoretical2, measured = inspect(Decimal("1.01"))
    assert theoretical2 == theoretical
    expect(qpage.locator("#verdict")).to_contain_text("Pass")
    expect(qpage.locator("#verdict")).to_contain_text(re.compile(r"deviation 1\.0\d %"))
    photos = qpage.locator("section", has=qpage.locator("h2#photos-h"))
    photos.get_by_label("When").select_option("after")
    photos.get_by_label(exactly("Photo")).set_input_files(
        {"name": "after-finishing.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg()})
    quality.submit(photos.get_by_role("button", name="Add the photo"))
    quality.says("Photo added.")
    expect(photos.locator("figure")).to_contain_text("After finishing")
    sign()
    quality.says(f"signed: {serial} passed inspection.")
    expect(qpage.locator("h1")).to_contain_text("Signed")
    expect(qpage.locator("aside.qc-side")).to_contain_text(
        h.quality.get_full_name() or h.quality.username)
    shots(qpage, "quality-inspection-passes")
    second = Inspection.objects.get(piece=piece, verdict=Verdict.PASS)
    assert second.signed_by_id == h.quality.pk and second.run_id == redo.pk
    sheet = quality.pdf(qpage.get_by_role("link", name="Inspection sheet (PDF)").get_attribute(
        "href"))
    assert second.reference in pdf_text(sheet)
    qpage.goto(nc_page)
    expect(qpage.locator("h1 .badge")).to_have_text("Closed")

    # The polisher completes finishing and sends the ring to the house.
    open_at_workshop(polisher, serial)
    workshop_action(polisher, re.compile(r"^Complete: Finishing"), "step completed")
    open_at_workshop(polisher, serial)
    workshop_action(polisher, f"Send to {h.house.name}", f"{serial} sent to {h.house.name}")

    # ===========================================================================================
    # 5. delivery: logistics packs, ships and delivers; sales issues the invoice

    logistics = person(h.logistics)
    lpage = logistics.page
    lpage.goto(f"/pieces/{piece.pk}/")
    house_action(logistics, "Receive")
    lpage.get_by_role("link", name="Prepare a shipment").first.click()
    expect(lpage).to_have_url(re.compile(rf"/delivery/orders/{order.pk}/new/$"))
    expect(lpage.get_by_label(re.compile(re.escape(serial)))).to_be_checked()
    lpage.get_by_label("Method").select_option("courier")
    lpage.get_by_label("Carrier").fill("Ferrari Group")
    logistics.submit(lpage.get_by_role("button", name="Prepare the shipment"))
    logistics.says(re.compile(r"Shipment .+ prepared\."))
    shipment = Shipment.objects.get(order=order)
    pack = lpage.locator("section", has=lpage.locator("h2#h-pack"))
    pack.get_by_label(f"Case for {serial}").select_option("ring_box")
    pack.get_by_label("Protection").select_option("foam_insert")
    pack.get_by_label("Neutral outer packaging").check()
    logistics.submit(pack.get_by_role("button", name="Record the packaging"))
    logistics.says("Packaging recorded.")
    expect(lpage.locator("section", has=lpage.locator("h2#h-pieces"))).to_contain_text(
        "Ring box")
    ship = lpage.locator("section", has=lpage.locator("h2#h-ship"))
    ship.get_by_label("Tracking number").fill("FG20250611FR")
    logistics.submit(ship.get_by_role("button", name="Ship"))
    logistics.says(f"Shipment {shipment.number} shipped.")
    expect(lpage.locator(".tracking")).to_have_text("FG20250611FR")
    shots(lpage, "logistics-shipped")
    deliver = lpage.locator("section", has=lpage.locator("h2#h-deliver"))
    deliver.get_by_label("Signed for by").fill("J. Roux")
    logistics.submit(deliver.get_by_role("button", name="Record the delivery"))
    logistics.says(f"Shipment {shipment.number} delivered.")
    expect(lpage.locator("h1 .badge")).to_have_text("Delivered")
    slip = logistics.pdf(lpage.get_by_role("link", name="Delivery slip (PDF)").get_attribute(
        "href"))
    slip_text = pdf_text(slip)
    assert shipment.number in slip_text and serial in slip_text
    shots(lpage, "logistics-delivered")
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert shipment.tracking_number == "FG20250611FR"
    piece.refresh_from_db()
    assert piece.status == PieceStatus.DELIVERED

    sales = person(h.sales)
    page = sales.page
    page.goto(f"/delivery/orders/{order.pk}/invoice/")
    sales.submit(page.get_by_role("button", name="Prepare the invoice"))
    sales.says("Draft invoice prepared.")
    sales.submit(page.get_by_role("button", name="Issue the invoice"))
    sales.says(re.compile(r"Invoice .+ issued\."))
    invoice = sales.pdf(page.get_by_role("link", name="The invoice (PDF)").get_attribute("href"))
    invoice_text = pdf_text(invoice)
    assert order.reference in invoice_text
    assert "System of Warranties" in invoice_text  # the ring carries a diamond
    shots(page, "sales-invoice-issued")

    # ===========================================================================================
    # 6. the client accepts the delivery: the order closes

    cpage.goto(f"/portal/{order.pk}/")
    delivery = cpage.locator("section.portal-delivery")
    expect(delivery).to_contain_text("FG20250611FR")
    papers = delivery.locator("h3", has_text="Your documents").locator(
        "xpath=following-sibling::ul[1]").get_by_role("link")
    expect(papers).to_have_text([f"Delivery slip {shipment.number}", re.compile(r"^Invoice "),
                                 "Certificates (stones and warranty)", "Care instructions"])
    for link in papers.all():
        client.pdf(link.get_attribute("href"))
    expect(cpage.get_by_label("Everything is here and as ordered")).to_be_checked()
    cpage.get_by_label("Anything to tell us about the delivery?").fill(
        "The ring is perfect, thank you.")
    shots(cpage, "client-before-reception")
    client.submit(cpage.get_by_role("button", name="Confirm reception"))
    client.says(f"reception of order {order.reference} is confirmed")
    expect(cpage.locator(".lead")).to_have_text("Delivered — reception confirmed")
    expect(cpage.locator(".confirmed").last).to_contain_text(
        "Received, conformity validated")
    no_sideways_scroll(cpage)
    shots(cpage, "client-reception-confirmed")

    # The house sees the order closed, and the ring as not right first time.
    mpage.goto(f"/orders/{order.pk}/")
    expect(mpage.locator("h1")).to_contain_text("Closed")
    mpage.goto(f"/pieces/{piece.pk}/")
    expect(mpage.locator("h1")).to_contain_text("Rework ×1")
    inspections = mpage.locator("section.quality-panel")
    expect(inspections).to_contain_text(first.reference)
    expect(inspections).to_contain_text(second.reference)
    shots(mpage, "manager-piece-after")

    order.refresh_from_db()
    piece.refresh_from_db()
    assert order.status == OrderStatus.CLOSED and order.closed_at is not None
    assert order.reception_confirmed_by_id == h.client_contact.pk
    assert piece.status == PieceStatus.DELIVERED
    assert piece.rework_count == 1  # not right first time
