"""Alerts, notifications and reports, as a new user would meet them, in a real browser.

1. A piece's step at the caster goes overdue. The production manager has the dashboard open
   (never reloaded); a detection pass runs (what the worker's `alerts.detect` job does every
   minute) and the alert appears on the open dashboard by itself. On a second tab the manager
   subscribes a webhook on the webhooks page, opens the alert from /alerts/, acknowledges it and
   resolves it with a comment (the dashboard drops it by itself); the header's inbox count shows
   the notification, and opening it from /inbox/ marks it read. The delivery job sends the
   e-mail to a real SMTP server (aiosmtpd) and posts the signed webhook to a real receiver.
2. Reports: the manager filters /reports/ by a workshop, sees the tables and the SVG charts,
   downloads the XLSX export and the monthly PDF; a caster's member, on a phone, sees only the
   caster's alerts and figures.

Screenshots of every step go under test-artifacts/screenshots/<test>/.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import re

import pytest
from django.utils import timezone
from pypdf import PdfReader

from tests.notifications.conftest import receiver, smtp_server, with_email  # noqa: F401

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LIVE_TIMEOUT_MS = 15_000  # the dashboard polls every 5 s
PHONE_WIDTH = 375


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


def _success(page, text: str) -> None:
    expect(page.locator(".messages .msg-success")).to_contain_text(text)


def _overdue_at(h, to: str, days_late: int = 3):
    """A launched piece brought to the step `to` at its workshop, that step now `days_late`
    days past its planned due date (the rows are moved into the past, as time would)."""
    from etabli.production.models import Piece, StepRun

    piece = h.launched_piece()
    h.walk(piece, to=to, arrive=True)
    piece.refresh_from_db()
    run = h.open_run(piece)
    assert run is not None and run.step == to
    past = timezone.localdate() - dt.timedelta(days=days_late)
    StepRun.objects.filter(pk=run.pk).update(planned_due=past)
    Piece.objects.filter(pk=piece.pk).update(current_due=past)
    piece.refresh_from_db()
    return piece


def _unread(user) -> int:
    from etabli.notifications.selectors import unread_count

    return unread_count(user)


# ---------------------------------------------------------------------------------------------
# 1. an overdue step: dashboard, alert page, inbox, e-mail, webhook


def test_an_overdue_step_alerts_the_manager_everywhere(house_setup, person, shots, live_server,
                                                       smtp_server, receiver,  # noqa: F811
                                                       settings):
    from etabli.alerts.detection import run_detection
    from etabli.alerts.models import Alert, AlertKind, AlertStatus
    from etabli.notifications import jobs as notification_jobs
    from etabli.notifications.models import (
        DeliveryStatus,
        Event,
        Notification,
        OutgoingEmail,
        WebhookDelivery,
        WebhookSubscription,
    )

    h = house_setup
    settings.ETABLI_PUBLIC_URL = live_server.url
    manager_user = with_email(h.manager)
    piece = _overdue_at(h, "manufacturing")  # at the caster, 3 days late
    serial = piece.serial
    title = f"{AlertKind.STEP_OVERDUE.label}: {serial}"

    # --- the manager's dashboard: kept open (never reloaded) -------------------------------
    manager = person(h.manager)
    dash = manager.page
    expect(dash).to_have_url(re.compile(r"/dashboard/$"))
    live_alerts = dash.locator("#dashboard-live .alerts-dashboard")
    expect(live_alerts).to_contain_text("No open alert.")
    dash.evaluate("window.__sameDocument = 'yes'")
    shots(dash, "manager-dashboard-no-alert")

    # --- on a second tab, the manager subscribes an integration to the events ---------------
    desk = Person(dash.context.new_page())
    page = desk.page
    page.goto("/inbox/")
    page.locator(".actions").get_by_role("link", name="Webhooks").click()
    expect(page).to_have_url(re.compile(r"/inbox/webhooks/$"))
    expect(page.locator("main")).to_contain_text("No webhook yet.")
    page.get_by_label("Name").fill("Workshop board")
    page.get_by_label("URL").fill(receiver.url)
    expect(page.locator("input[name=events][value=alert_opened]")).to_be_checked()
    page.get_by_label("Secret").fill(receiver.secret)
    shots(page, "manager-new-webhook")
    desk.submit(page.get_by_role("button", name="Add"))
    _success(page, "Webhook Workshop board added.")
    expect(page).to_have_url(re.compile(r"/inbox/webhooks/\d+/$"))
    sub = WebhookSubscription.objects.get()
    assert sub.url == receiver.url and sub.secret == receiver.secret
    assert Event.ALERT_OPENED in sub.events and sub.active

    # --- the worker's detection pass (the `alerts.detect` job, every minute) ----------------
    summary = run_detection()
    assert summary["opened"] >= 1, summary
    alert = Alert.objects.get(kind=AlertKind.STEP_OVERDUE, piece=piece)
    assert alert.status == AlertStatus.OPEN and alert.workshop_id == h.caster.pk
    assert alert.assigned_role == "production_manager"
    assert alert.params["days"] == 3

    # The open dashboard shows it by itself.
    item = live_alerts.locator("li", has_text=title)
    expect(item).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(item).to_contain_text("3 days late")
    expect(item).to_contain_text(h.caster.name)
    assert dash.evaluate("window.__sameDocument") == "yes"
    shots(dash, "manager-dashboard-alert-appeared")

    # --- the manager opens it from /alerts/, acknowledges, resolves -------------------------
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page).to_have_url(re.compile(r"/alerts/$"))
    # The header's inbox count shows the notification (the manager owns step-overdue alerts).
    unread_before = _unread(manager_user)
    assert unread_before >= 1
    note = Notification.objects.get(recipient=manager_user, kind=Event.ALERT_OPENED,
                                    alert_id=alert.pk)
    assert note.read_at is None
    expect(page.locator("#inbox-link .unread-count")).to_have_text(str(unread_before))
    row = page.locator("table tbody tr", has_text=title)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Open")
    expect(row).to_contain_text("Production manager")  # the role's name, not its code
    shots(page, "manager-alert-list")
    row.get_by_role("link", name=title).click()
    expect(page).to_have_url(re.compile(rf"/alerts/{alert.pk}/$"))
    expect(page.locator("h1")).to_have_text(title)
    card = page.locator("main section.card").first
    expect(card).to_contain_text("3 days late")
    expect(card.locator("strong").first).to_have_text("Open")
    desk.submit(card.get_by_role("button", name="Acknowledge"))
    _success(page, "Alert acknowledged.")
    expect(page).to_have_url(re.compile(rf"/alerts/{alert.pk}/$"))
    expect(card.locator("strong").first).to_have_text("Acknowledged")
    expect(card.get_by_role("button", name="Acknowledge")).to_have_count(0)
    shots(page, "manager-alert-acknowledged")
    comment = "Caster is short of a bench; asked them to finish it first thing tomorrow."
    card.get_by_placeholder("How was it resolved?").fill(comment)
    desk.submit(card.get_by_role("button", name="Resolve"))
    _success(page, "Alert resolved.")
    expect(card.locator("strong").first).to_have_text("Resolved")
    expect(card.locator("dl.facts")).to_contain_text(comment)
    expect(card.get_by_role("button", name="Resolve")).to_have_count(0)
    shots(page, "manager-alert-resolved")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and not alert.auto_resolved
    assert alert.acknowledged_by_id == h.manager.pk and alert.resolved_by_id == h.manager.pk
    assert alert.resolution == comment

    # The open dashboard drops it by itself; the next pass does not open it again.
    expect(live_alerts.locator("li", has_text=title)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    assert dash.evaluate("window.__sameDocument") == "yes"
    shots(dash, "manager-dashboard-alert-gone")
    run_detection()
    assert not Alert.objects.not_resolved().filter(kind=AlertKind.STEP_OVERDUE,
                                                   piece=piece).exists()

    # --- the inbox: the notification, opened, is read ---------------------------------------
    page.locator("#inbox-link").click()
    expect(page).to_have_url(re.compile(r"/inbox/$"))
    entry = page.locator(f"#notification-{note.pk}")
    expect(entry).to_have_class(re.compile(r"\bunread\b"))
    expect(entry).to_contain_text(title)
    expect(entry).to_contain_text(f"{serial}: Manufacturing at {h.caster.name} was due")
    shots(page, "manager-inbox-unread")
    desk.submit(entry.get_by_role("button", name=re.compile(re.escape(title))))
    expect(page).to_have_url(re.compile(rf"/alerts/{alert.pk}/$"))
    note.refresh_from_db()
    assert note.read_at is not None
    unread_after = _unread(manager_user)
    assert unread_after == unread_before - 1
    badge = page.locator("#inbox-link .unread-count")
    if unread_after:
        expect(badge).to_have_text(str(unread_after))
    else:
        expect(badge).to_have_count(0)
    page.goto("/inbox/")
    expect(entry).not_to_have_class(re.compile(r"\bunread\b"))
    expect(entry.locator("p.muted")).to_contain_text("· read")
    shots(page, "manager-inbox-read")

    # --- the delivery job (`notifications.deliver`): a real SMTP server, a real receiver -----
    notification_jobs.deliver.call()
    messages = smtp_server.to(manager_user.email)
    about = [m for m in messages if title in m["Subject"]]
    assert len(about) == 1, [m["Subject"] for m in messages]
    text = about[0].get_body().get_content()
    assert f"/alerts/{alert.pk}/" in text
    mail = OutgoingEmail.objects.get(notification=note)
    assert mail.status == DeliveryStatus.SENT and mail.to_address == manager_user.email

    posts = [r for r in receiver.received if r.json.get("event") == Event.ALERT_OPENED
             and r.json["data"]["alert_id"] == alert.pk]
    assert len(posts) == 1, [r.json for r in receiver.received]
    post = posts[0]
    headers = {k.lower(): v for k, v in post.headers.items()}
    signed = headers["x-etabli-timestamp"].encode() + b"." + post.body
    expected = "sha256=" + hmac.new(receiver.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-etabli-signature"], expected)
    assert post.signature_ok
    data = json.loads(post.body)["data"]
    assert data["kind"] == AlertKind.STEP_OVERDUE and data["piece"] == serial
    assert data["workshop"] == h.caster.code
    delivery = WebhookDelivery.objects.get(subscription=sub, payload__data__alert_id=alert.pk)
    assert delivery.status == DeliveryStatus.SENT

    # The webhook's page shows the delivery went out.
    page.goto(f"/inbox/webhooks/{sub.pk}/")
    delivered = page.locator("table tbody tr", has_text=str(delivery.uid))
    expect(delivered).to_contain_text("alert_opened")
    expect(delivered.locator(".badge")).to_have_text("Sent")
    expect(delivered).to_contain_text("HTTP 200")
    shots(page, "manager-webhook-delivered")
    page.close()


# ---------------------------------------------------------------------------------------------
# 2. reports, and a workshop that sees only its own


def _svg_charts(page) -> list[str]:
    images = page.locator(".report-charts figure img")
    expect(images.first).to_be_visible()
    svgs = []
    for i in range(images.count()):
        src = images.nth(i).get_attribute("src")
        assert src.startswith("data:image/svg+xml;base64,"), src[:60]
        svg = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
        assert "<svg" in svg
        svgs.append(svg)
    return svgs


def test_reports_and_a_workshop_sees_only_its_own(house_setup, person, shots):
    from openpyxl import load_workbook

    from etabli.alerts.detection import run_detection
    from etabli.alerts.models import Alert, AlertKind
    from etabli.core.printing import house

    h = house_setup
    at_caster = _overdue_at(h, "manufacturing")  # overdue at the caster
    at_setter = _overdue_at(h, "setting")  # manufactured by the caster, overdue at the setter
    run_detection()
    assert Alert.objects.filter(kind=AlertKind.STEP_OVERDUE, workshop=h.caster).count() == 1
    assert Alert.objects.filter(kind=AlertKind.STEP_OVERDUE, workshop=h.setter).count() == 1
    others = (h.setter.name, h.polisher.name)

    # --- the manager's reports, filtered by the caster --------------------------------------
    manager = person(h.manager)
    page = manager.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page).to_have_url(re.compile(r"/reports/$"))
    expect(page.locator("h1")).to_have_text("Production reports")
    first = timezone.localdate().replace(day=1)
    page.get_by_label("From", exact=True).fill(first.isoformat())
    page.get_by_label("Workshop", exact=True).select_option(label=h.caster.name)
    manager.submit(page.get_by_role("button", name="Show"))
    expect(page).to_have_url(re.compile(rf"workshop_id={h.caster.pk}"))
    expect(page.get_by_label("Workshop", exact=True)).to_have_value(str(h.caster.pk))
    workshops = page.locator("section.report-table[aria-labelledby=t-workshops]")
    expect(workshops.locator("tbody tr")).to_have_count(1)
    expect(workshops.locator("tbody tr")).to_contain_text(h.caster.name)
    steps = page.locator("section.report-table[aria-labelledby=t-steps]")
    expect(steps.locator("tbody tr", has_text="Manufacturing")).to_be_visible()
    figures = "\n".join(page.locator("section.report-table").all_inner_texts())
    assert page.locator("section.report-table").count() >= 3
    for name in others:
        assert name not in figures
    svgs = _svg_charts(page)
    assert any(h.caster.name in svg for svg in svgs)
    shots(page, "manager-reports-caster")

    # The XLSX export of every table.
    with page.expect_download() as info:
        page.get_by_role("link", name="Export all tables (XLSX)").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    with open(download.path(), "rb") as fh:
        book = load_workbook(io.BytesIO(fh.read()), read_only=True)
    assert "workshops" in book.sheetnames and "steps" in book.sheetnames
    rows = list(book["workshops"].iter_rows(values_only=True))
    assert rows[0][0] == "Time per workshop (days)"
    assert [r[0] for r in rows[2:]] == [h.caster.name], rows
    assert sum(book[name].max_row > 2 for name in book.sheetnames) >= 2

    # The monthly report, as PDF, for this month.
    month_label = f"Monthly report for {first:%B %Y} (PDF)"
    with page.expect_download() as info:
        page.get_by_role("link", name=month_label).click()
    pdf = info.value
    assert pdf.suggested_filename == f"production-report-{first:%Y-%m}.pdf"
    with open(pdf.path(), "rb") as fh:
        body = fh.read()
    assert body.startswith(b"%PDF")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert house()["name"] in text
    # (the headings are upper case on paper)
    assert "production report" in text.lower()
    assert "time per workshop (days)" in text.lower()
    assert h.caster.name in text

    # --- a caster's member, on a phone: only the caster's alerts and figures ----------------
    caster = person(h.caster_member, phone=True)
    page = caster.page
    page.goto("/alerts/")
    expect(page.locator("h1")).to_have_text("Alerts")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(f"{AlertKind.STEP_OVERDUE.label}: {at_caster.serial}")
    expect(rows).to_contain_text(h.caster.name)
    main = page.locator("main")
    expect(main).not_to_contain_text(at_setter.serial)
    for name in others:
        expect(main).not_to_contain_text(name)
    _no_horizontal_scroll(page)
    shots(page, "caster-alerts-375")

    page.goto("/reports/")
    expect(page.locator("h1")).to_have_text("Production reports")
    expect(main).to_contain_text("These are your workshop's figures.")
    options = page.locator("#f-workshop option")
    assert options.all_inner_texts() == ["All", h.caster.name]
    workshops = page.locator("section.report-table[aria-labelledby=t-workshops]")
    expect(workshops.locator("tbody tr")).to_have_count(1)
    expect(workshops.locator("tbody tr")).to_contain_text(h.caster.name)
    for name in others:
        expect(main).not_to_contain_text(name)
    for svg in _svg_charts(page):
        for name in others:
            assert name not in svg
    _no_horizontal_scroll(page)
    shots(page, "caster-reports-375")
    # Another workshop's figures are not reachable by asking for them.
    response = page.goto(f"/reports/?workshop_id={h.setter.pk}")
    assert response.status in (400, 404), response.status
    for name in others:
        expect(page.locator("body")).not_to_contain_text(name)
