"""Order pages: the list, the intake wizard (the launch sheet in five steps), the order page,
change requests — what each role can see and do, and bad input on every form."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from etabli.clients.models import Client
from etabli.core.models import AuditEntry
from etabli.documents.models import Document
from etabli.orders.models import (
    CHECKLIST_CODES,
    ChangeRequest,
    ChangeRequestStatus,
    LaunchCheckItem,
    Order,
    OrderLine,
    OrderStatus,
)
from etabli.orders.services import change_request_assess, change_request_create
from etabli.production.models import OrderRouteStep, Piece
from etabli.workshops.models import StepKind
from tests.design.support import written_acceptance
from tests.documents import files as sample_files

pytestmark = pytest.mark.django_db

PNG = sample_files.png(size=(4, 4))  # uploads are decoded: a real image
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"

ORDER_ROLES = ["admin", "manager", "sales"]
STAFF_READERS = ["designer", "quality", "logistics"]
NO_ORDER_PAGES = ["caster_member", "setter_member", "polisher_member", "client_contact",
                  "other_client_contact"]
ALL_ROLES = ORDER_ROLES + STAFF_READERS + NO_ORDER_PAGES
STEP_CODES = ["client", "lines", "documents", "route", "checklist"]


# ---------------------------------------------------------------------------------------------
# helpers


def today() -> dt.date:
    return timezone.localdate()


def as_user(client, user):
    client.force_login(user)
    return client


def edit_url(order, step: str) -> str:
    return reverse("orders:edit", args=[order.pk, step])


def detail_url(order) -> str:
    return reverse("orders:detail", args=[order.pk])


def text(response) -> str:
    return html.unescape(response.content.decode())


def plain(response) -> str:
    """The page's text without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text(response)))


def field_errors(response, field_id: str) -> list[str]:
    """The error messages shown next to the field whose label points at `field_id`."""
    body = response.content.decode()
    out = []
    for block in re.findall(r'<div class="field has-error">(.*?)</div>', body, re.S):
        if f'for="{field_id}"' in block:
            out += [html.unescape(m) for m in re.findall(r'<p class="error" role="alert">(.*?)</p>',
                                                           block, re.S)]
    return out


def page_errors(response) -> list[str]:
    """Non-field errors shown at the top of a form."""
    body = response.content.decode()
    boxes = re.findall(r'<div class="error-box" role="alert">(.*?)</div>', body, re.S)
    return [html.unescape(m) for box in boxes for m in re.findall(r"<p>(.*?)</p>", box, re.S)]


def messages_of(response) -> list[str]:
    body = response.content.decode()
    return [html.unescape(re.sub(r"<[^>]+>", "", m))
            for m in re.findall(r'<li class="msg-[a-z]+">(.*?)</li>', body, re.S)]


def counts() -> tuple[int, ...]:
    """Rows a refused write must not have touched."""
    return (Order.objects.count(), OrderLine.objects.count(), Client.objects.count(),
            Document.objects.count(), Piece.objects.count(), ChangeRequest.objects.count(),
            LaunchCheckItem.objects.filter(checked=True).count(),
            OrderRouteStep.objects.filter(skipped=True).count(), AuditEntry.objects.count())


def line_post(**overrides) -> dict:
    return {"action": "add", "description": "Solitaire ring, 1 ct", "model_reference": "R-100",
            "quantity": "1", "size": "52", "alloy": "750y", "stones": "1 diamond 1 ct",
            "customisations": "", "specifications": "", "target_price": "1200.00"} | overrides


def start_post(h, **overrides) -> dict:
    return {"client": str(h.client.pk), "client_reference": "PO-77",
            "promised_date": (today() + dt.timedelta(days=90)).isoformat(),
            "route_template": "standard", "notes": "",
            "new_client_kind": "b2b", "new_client_channel": "direct"} | overrides


def route_step(order, step: str) -> OrderRouteStep:
    return order.route.get(step=step)


def user_of(h, role: str):
    return getattr(h, role)


# ---------------------------------------------------------------------------------------------
# every page × every role


@pytest.mark.parametrize("role", ALL_ROLES)
def test_orders_list_by_role(house_setup, client, role):
    h = house_setup
    order = h.draft_order(client_reference="PO-VISIBLE")
    response = as_user(client, user_of(h, role)).get(reverse("orders:list"))
    if role in NO_ORDER_PAGES:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    body = text(response)
    # Drafts have no pieces: only house-wide roles see them.
    assert (order.reference in body) is (role in ORDER_ROLES)
    assert ("New order" in body) is (role in ORDER_ROLES)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_new_order_page_by_role(house_setup, client, role):
    h = house_setup
    response = as_user(client, user_of(h, role)).get(reverse("orders:new"))
    assert response.status_code == (200 if role in ORDER_ROLES else 404)


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("step", STEP_CODES)
def test_intake_steps_by_role(house_setup, client, role, step):
    h = house_setup
    order = h.draft_order()
    response = as_user(client, user_of(h, role)).get(edit_url(order, step))
    assert response.status_code == (200 if role in ORDER_ROLES else 404)


def test_unknown_step_and_unknown_order_are_404(house_setup, client):
    h = house_setup
    order = h.draft_order()
    as_user(client, h.sales)
    assert client.get(edit_url(order, "nonsense")).status_code == 404
    assert client.get(reverse("orders:edit", args=[999999, "lines"])).status_code == 404
    assert client.get(reverse("orders:detail", args=[999999])).status_code == 404


def test_pages_need_a_login(house_setup, client):
    order = house_setup.draft_order()
    for url in (reverse("orders:list"), reverse("orders:new"), detail_url(order),
                edit_url(order, "lines")):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ALL_ROLES)
def test_order_page_of_a_draft_by_role(house_setup, client, role):
    h = house_setup
    order = h.draft_order()
    response = as_user(client, user_of(h, role)).get(detail_url(order))
    # A draft has no piece yet: only the roles that take orders see it.
    assert response.status_code == (200 if role in ORDER_ROLES else 404)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_order_page_of_a_launched_order_by_role(house_setup, client, role):
    h = house_setup
    piece = h.launched_piece()  # waiting for design, at the house
    order = piece.order
    response = as_user(client, user_of(h, role)).get(detail_url(order))
    # The designer follows pieces at design; logistics those ready to leave the house.
    visible = role in ORDER_ROLES or role in ("designer", "logistics")
    assert response.status_code == (200 if visible else 404)
    if not visible:
        return
    body = text(response)
    assert piece.serial in body
    assert reverse("production:piece", args=[piece.pk]) in body
    assert ("1200.00" in body) is (role in ORDER_ROLES)  # prices only for price roles
    assert ("History" in body) is (role in ORDER_ROLES)  # audit only for house-wide roles
    assert ("Print job bags" in body) is (role in ORDER_ROLES)
    assert ("Ask for a change" in body) is (role in ORDER_ROLES)
    assert "Cancel this order" not in body  # launched orders cannot be cancelled


def test_quality_sees_the_order_when_a_piece_is_in_finishing(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    as_user(client, h.quality)
    assert client.get(detail_url(piece.order)).status_code == 404
    h.walk(piece, to=StepKind.FINISHING)
    response = client.get(detail_url(piece.order))
    assert response.status_code == 200
    assert piece.serial in text(response)
    list_page = text(client.get(reverse("orders:list")))
    assert piece.order.reference in list_page


@pytest.mark.parametrize("role", STAFF_READERS + NO_ORDER_PAGES)
def test_other_roles_cannot_write(house_setup, client, role):
    h = house_setup
    order = h.launched_order()
    draft = h.draft_order()
    as_user(client, user_of(h, role))
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Engrave it")
    before = counts()
    posts = [
        (reverse("orders:new"), start_post(h)),
        (edit_url(draft, "lines"), line_post()),
        (reverse("orders:cancel", args=[draft.pk]), {"reason": "no"}),
        (reverse("orders:documents", args=[order.pk]),
         {"kind": "photo", "visibility": "house", "files": SimpleUploadedFile("a.png", PNG)}),
        (reverse("orders:change_request_new", args=[order.pk]), {"description": "x"}),
        (reverse("orders:change_request_assess", args=[order.pk, cr.pk]),
         {f"cr{cr.pk}-impact_days": "3"}),
        (reverse("orders:change_request_decide", args=[order.pk, cr.pk]),
         {"decision": "reject"}),
        (edit_url(draft, "checklist"), {"action": "launch", "override_reason": "x"}),
        (edit_url(draft, "route"), {"action": "unskip",
                                    "step_id": route_step(draft, StepKind.SETTING).pk}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert counts() == before


def test_sales_sees_no_decision_buttons_but_the_manager_does(house_setup, client):
    h = house_setup
    order = h.launched_order()
    cr = change_request_create(actor=h.sales, order_id=order.pk, description="Engrave it")
    change_request_assess(actor=h.sales, cr_id=cr.pk, impact_days=2)
    body = text(as_user(client, h.sales).get(detail_url(order)))
    assert "Record the impact" in body and 'value="approve"' not in body
    response = client.post(reverse("orders:change_request_decide", args=[order.pk, cr.pk]),
                           {"decision": "approve"})
    assert response.status_code == 404
    cr.refresh_from_db()
    assert cr.status == ChangeRequestStatus.ASSESSED
    body = text(as_user(client, h.manager).get(detail_url(order)))
    assert 'value="approve"' in body and 'value="reject"' in body


# ---------------------------------------------------------------------------------------------
# the list


def test_list_search_and_filters(house_setup, client):
    h = house_setup
    launched = h.launched_order(client_reference="PO-SEARCH-1")
    serial = launched.pieces.first().serial
    other = h.draft_order(client=h.other_client, client_reference="BL-2")
    as_user(client, h.sales)
    url = reverse("orders:list")

    def refs(params):
        body = text(client.get(url, params))
        return {o.reference for o in (launched, other) if o.reference in body}

    assert refs({}) == {launched.reference, other.reference}
    assert refs({"q": serial}) == {launched.reference}
    assert refs({"q": "Maison"}) == {other.reference}
    assert refs({"q": "PO-SEARCH"}) == {launched.reference}
    assert refs({"q": launched.reference}) == {launched.reference}
    assert refs({"status": "draft"}) == {other.reference}
    assert refs({"status": "launched"}) == {launched.reference}
    assert refs({"client": h.client.pk}) == {launched.reference}
    assert refs({"q": "nothing-like-this"}) == set()
    assert "No order matches this search." in text(client.get(url, {"q": "nothing-like-this"}))
    # A bad filter value is pointed out, never a 500; the other filters still apply.
    response = client.get(url, {"status": "bogus", "client": "abc", "page": "x"})
    assert response.status_code == 200
    assert field_errors(response, "id_status") and field_errors(response, "id_client")


def test_list_shows_badges_promised_date_piece_count_and_late(house_setup, client):
    h = house_setup
    order = h.launched_order(quantity=3)
    Piece.objects.filter(order=order).update(current_due=today() - dt.timedelta(days=1))
    response = as_user(client, h.manager).get(reverse("orders:list"))
    body = text(response)
    row = re.search(rf"<tr[^>]*>\s*<td[^>]*><a[^>]*><strong>{order.reference}</strong>.*?</tr>",
                    body, re.S).group(0)
    assert 'class="is-late"' in body
    assert "badge launched" in row and "In production" in row
    assert "badge late" in row
    assert order.promised_date.strftime("%Y").lower() in row
    assert re.search(r'<td data-label="Pieces">3</td>', row)


def test_list_empty_state(house_setup, client):
    body = text(as_user(client, house_setup.sales).get(reverse("orders:list")))
    assert "No orders yet." in body and "Take the first order" in body


def test_list_pagination(house_setup, client):
    h = house_setup
    for _i in range(27):
        h.draft_order()
    as_user(client, h.sales)
    first = text(client.get(reverse("orders:list")))
    assert "27 orders" in first and "Page 1 of 2" in first and 'rel="next"' in first
    second = text(client.get(reverse("orders:list"), {"page": 2}))
    assert "Page 2 of 2" in second and second.count('<tr>') + second.count(
        '<tr class="is-late">') == 3  # the header row and two orders


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("orders:list")).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_count_does_not_grow_with_the_orders(house_setup, client):
    h = house_setup
    h.launched_order(quantity=2)
    h.draft_order()
    as_user(client, h.manager)
    few = _list_queries(client)
    for _i in range(6):
        h.launched_order(quantity=2)
        h.draft_order(client=h.other_client)
    many = _list_queries(client)
    assert many == few
    assert many <= 10


# ---------------------------------------------------------------------------------------------
# the intake wizard, end to end through the pages


def test_intake_end_to_end(house_setup, client):
    h = house_setup
    as_user(client, h.sales)
    too_early = today() + dt.timedelta(days=10)

    # 1. client, reference, date, route
    response = client.post(reverse("orders:new"), start_post(
        h, promised_date=too_early.isoformat(), notes="Engagement ring"))
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == edit_url(order, "lines")
    assert (order.client, order.client_reference, order.promised_date, order.status) == (
        h.client, "PO-77", too_early, OrderStatus.DRAFT)
    assert order.checklist.count() == len(CHECKLIST_CODES)

    # 2. lines: add two, change one, remove one
    assert client.post(edit_url(order, "lines"), line_post()).status_code == 302
    assert client.post(edit_url(order, "lines"), line_post(
        description="Wedding band", model_reference="", is_custom_design="on", quantity="2",
        alloy="950pt", target_price="")).status_code == 302
    ring, band = order.lines.order_by("position")
    page = text(client.get(edit_url(order, "lines"), {"line": band.pk}))
    assert "Change line 2" in page and 'value="Wedding band"' in page
    response = client.post(edit_url(order, "lines"), line_post(
        action="update", line_id=str(band.pk), description="Wedding band, brushed",
        model_reference="", is_custom_design="on", quantity="3", alloy="950pt",
        target_price=""))
    assert response.status_code == 302
    band.refresh_from_db()
    assert (band.description, band.quantity, band.is_custom_design, band.target_price) == (
        "Wedding band, brushed", 3, True, None)
    assert client.post(edit_url(order, "lines"), {"action": "remove",
                                                   "line_id": str(band.pk)}).status_code == 302
    assert list(order.lines.values_list("description", flat=True)) == ["Solitaire ring, 1 ct"]
    ring.refresh_from_db()
    assert ring.alloy.code == "750y" and str(ring.target_price) == "1200.00"

    # 3. documents: a photo and a PDF at once; SVG and HTML refused with a clear message
    response = client.post(edit_url(order, "documents"), {
        "kind": "reference_photo", "visibility": "workshops",
        "files": [SimpleUploadedFile("ring.png", PNG, "image/png"),
                  SimpleUploadedFile("spec.pdf", PDF, "application/pdf")]})
    assert response.status_code == 302
    assert sorted(order.documents.values_list("original_name", "content_type")) == [
        ("ring.png", "image/png"), ("spec.pdf", "application/pdf")]
    for name, data in (("sketch.svg", SVG), ("page.html", HTML), ("evil.png", SVG)):
        before = counts()
        response = client.post(edit_url(order, "documents"), {
            "kind": "other", "visibility": "house",
            "files": [SimpleUploadedFile("ok.png", PNG, "image/png"),
                      SimpleUploadedFile(name, data, "image/svg+xml")]})
        assert response.status_code == 200
        errors = field_errors(response, "id_files")
        assert errors and name in errors[0]
        assert "Web pages and SVG images cannot be uploaded." in errors[0]
        assert counts() == before  # not even the good file of the batch
    page = text(client.get(edit_url(order, "documents")))
    assert "ring.png" in page and "spec.pdf" in page

    # 4. route: only workshops that do the work are offered; assign, skip prototyping
    page = text(client.get(edit_url(order, "route")))
    setting = route_step(order, StepKind.SETTING)
    block = page[page.index(f'id="step-{setting.pk}"'):]
    block = block[:block.index("</li>")]
    assert h.setter.name in block and h.caster.name not in block
    for step, workshop in ((StepKind.MANUFACTURING, h.caster), (StepKind.SETTING, h.setter),
                           (StepKind.FINISHING, h.polisher)):
        rs = route_step(order, step)
        response = client.post(edit_url(order, "route"), {
            "action": "update", "step_id": rs.pk, f"s{rs.pk}-workshop": workshop.pk,
            f"s{rs.pk}-planned_days": rs.planned_days})
        assert response.status_code == 302, field_errors(response, f"id_s{rs.pk}-workshop")
        rs.refresh_from_db()
        assert rs.workshop == workshop
    proto = route_step(order, StepKind.PROTOTYPING)
    response = client.post(edit_url(order, "route"), {
        "action": "skip", "step_id": proto.pk, f"k{proto.pk}-reason": "exact_reproduction",
        f"k{proto.pk}-comment": "Same as R-100"})
    assert response.status_code == 302
    proto.refresh_from_db()
    assert proto.skipped and proto.skip_reason == "exact_reproduction"

    # 5. checklist: launch disabled with the list of what is missing
    page = client.get(edit_url(order, "checklist"))
    body = text(page)
    assert re.search(r'<button type="submit" class="primary" disabled', body)
    assert "Before launching, complete:" in body
    assert "Feasibility: “Technically achievable” is not checked." in body
    assert "Commercial: “Deadline confirmed with the client” is not checked." in body
    # launching anyway through a crafted post is refused, nothing changes
    before = counts()
    response = client.post(edit_url(order, "checklist"), {"action": "launch"})
    assert response.status_code == 200 and "cannot be launched yet" in " ".join(
        page_errors(response))
    assert counts() == before
    data = {"action": "checklist"} | {code: "on" for code in CHECKLIST_CODES}
    data["quote_accepted_note"] = "Quote Q-12 signed"
    response = client.post(edit_url(order, "checklist"), data)
    assert response.status_code == 302
    assert order.checklist.filter(checked=True, checked_by=h.sales).count() == 12
    assert order.checklist.get(code="quote_accepted").note == "Quote Q-12 signed"

    # the promised date is too early: the page shows the earliest realistic date
    body = plain(client.get(edit_url(order, "checklist")))
    earliest = order_earliest(order)
    assert "Before launching" not in body
    assert f"earliest realistic date is {earliest:%-d %b %Y}" in body
    assert "Launch anyway" in body
    before = counts()
    response = client.post(edit_url(order, "checklist"), {"action": "launch"})
    assert response.status_code == 200
    assert "is too early" in " ".join(field_errors(response, "id_override_reason"))
    assert counts() == before
    order.refresh_from_db()
    assert order.status == OrderStatus.DRAFT

    # launch anyway, with a reason
    response = client.post(edit_url(order, "checklist"), {
        "action": "launch", "override_reason": "Client's wedding: the house accepts the risk"})
    assert response.status_code == 302 and response["Location"] == detail_url(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.LAUNCHED
    assert order.deadline_override_reason == "Client's wedding: the house accepts the risk"
    assert order.pieces.count() == 1

    # the order page, with the success message and the job bags link
    response = client.get(detail_url(order))
    body = text(response)
    assert any("is launched" in m for m in messages_of(response))
    assert body.count(reverse("production:order_job_bags", args=[order.pk])) >= 2
    piece = order.pieces.get()
    assert piece.serial in body and 'class="gantt"' in body
    assert "Client's wedding" in body
    # a launched order's sheet can no longer be edited
    response = client.get(edit_url(order, "lines"))
    assert response.status_code == 302 and response["Location"] == detail_url(order)
    assert client.post(edit_url(order, "lines"), line_post()).status_code == 302
    assert order.lines.count() == 1


def order_earliest(order) -> dt.date:
    from etabli.orders.services import order_deadline_check

    order.refresh_from_db()
    return order_deadline_check(order).earliest_promise


def test_launch_after_moving_the_date_to_the_earliest(house_setup, client):
    h = house_setup
    order = h.qualified_order()
    from etabli.orders.services import order_update

    order_update(actor=h.sales, order_id=order.pk, promised_date=today() + dt.timedelta(days=3))
    as_user(client, h.sales)
    body = text(client.get(edit_url(order, "checklist")))
    assert "Move the promised date to" in body
    response = client.post(edit_url(order, "checklist"), {"action": "earliest_date"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.promised_date == order_earliest(order)
    body = text(client.get(edit_url(order, "checklist")))
    assert "Ready to launch" in body and "Launch anyway" not in body
    response = client.post(edit_url(order, "checklist"), {"action": "launch"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.LAUNCHED and order.deadline_override_reason == ""


def test_new_order_with_a_new_client(house_setup, client):
    h = house_setup
    as_user(client, h.sales)
    response = client.post(reverse("orders:new"), start_post(
        h, client="", new_client_name="Atelier Neuf", new_client_email="hello@neuf.example"))
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.client.name == "Atelier Neuf" and order.client.code == "atelier-neuf"
    assert order.client.email == "hello@neuf.example"


def test_new_client_with_a_taken_code_writes_nothing(house_setup, client):
    h = house_setup
    as_user(client, h.sales)
    before = counts()
    response = client.post(reverse("orders:new"), start_post(
        h, client="", new_client_name="Roux again", new_client_code="bijouterie-roux"))
    assert response.status_code == 200
    assert "already exists" in " ".join(field_errors(response, "id_new_client_code"))
    assert counts() == before


def test_new_client_is_not_kept_when_the_order_is_refused(house_setup, client):
    h = house_setup
    as_user(client, h.sales)
    before = counts()
    past = (today() - dt.timedelta(days=3)).isoformat()
    response = client.post(reverse("orders:new"), start_post(
        h, client="", new_client_name="Atelier Neuf", promised_date=past))
    assert response.status_code == 200
    assert "is in the past" in " ".join(field_errors(response, "id_promised_date"))
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# bad input on each form: the error is next to the field, nothing is written


@pytest.mark.parametrize("data, field, message", [
    ({"client": ""}, "id_client", "Choose the client"),
    ({"new_client_name": "Both"}, "id_client", "not both"),
    ({"client": "999999"}, "id_client", "valid choice"),
    ({"promised_date": "soon"}, "id_promised_date", "Enter a date"),
    ({"promised_date": "2025-02-31"}, "id_promised_date", "Enter a date"),
    ({"promised_date": "2001-01-01"}, "id_promised_date", "is in the past"),
    ({"route_template": "nope"}, "id_route_template", "valid choice"),
])
def test_new_order_bad_input(house_setup, client, data, field, message):
    h = house_setup
    as_user(client, h.sales)
    before = counts()
    response = client.post(reverse("orders:new"), start_post(h, **data))
    assert response.status_code == 200
    assert message in " ".join(field_errors(response, field))
    assert counts() == before


def test_client_step_bad_date_and_good_change(house_setup, client):
    h = house_setup
    order = h.draft_order()
    as_user(client, h.sales)
    url = edit_url(order, "client")
    body = text(client.get(url))
    assert h.client.name in body and 'name="client"' not in body  # the client is fixed
    before = counts()
    data = {"client_reference": "PO-9", "promised_date": "31/13/2030",
            "route_template": "standard", "notes": ""}
    response = client.post(url, data)
    assert "Enter a date" in " ".join(field_errors(response, "id_promised_date"))
    response = client.post(url, data | {"promised_date": "2000-05-01"})
    assert "is in the past" in " ".join(field_errors(response, "id_promised_date"))
    response = client.post(url, data | {"client_reference": "x" * 61,
                                        "promised_date": ""})
    assert field_errors(response, "id_client_reference")
    assert counts() == before
    new_date = today() + dt.timedelta(days=60)
    response = client.post(url, data | {"promised_date": new_date.isoformat()})
    assert response.status_code == 302 and response["Location"] == edit_url(order, "lines")
    order.refresh_from_db()
    assert (order.client_reference, order.promised_date) == ("PO-9", new_date)


@pytest.mark.parametrize("data, field, message", [
    ({"description": ""}, "id_description", "Describe the piece"),
    ({"description": "   "}, "id_description", "Describe the piece"),
    ({"quantity": "0"}, "id_quantity", "between 1 and 500"),
    ({"quantity": "501"}, "id_quantity", "between 1 and 500"),
    ({"quantity": "two"}, "id_quantity", "between 1 and 500"),
    ({"alloy": "unobtainium"}, "id_alloy", "Choose one of the alloys"),
    ({"target_price": "-5"}, "id_target_price", "cannot be negative"),
    ({"target_price": "lots"}, "id_target_price", "Enter an amount"),
    ({"model_reference": "", "is_custom_design": ""}, "id_model_reference",
     "custom design"),
])
@pytest.mark.parametrize("action", ["add", "update"])
def test_line_bad_input(house_setup, client, data, field, message, action):
    h = house_setup
    order = h.draft_order()
    line = order.lines.get()
    as_user(client, h.sales)
    before = counts()
    post = line_post(action=action, **data)
    if action == "update":
        post["line_id"] = str(line.pk)
    response = client.post(edit_url(order, "lines"), post)
    assert response.status_code == 200
    assert message in " ".join(field_errors(response, field)), field_errors(response, field)
    assert counts() == before
    line.refresh_from_db()
    assert line.description == "Solitaire ring, 1 ct" and line.quantity == 1


def test_line_of_another_order_is_404(house_setup, client):
    h = house_setup
    order, other = h.draft_order(), h.draft_order()
    other_line = other.lines.get()
    as_user(client, h.sales)
    before = counts()
    assert client.get(edit_url(order, "lines"), {"line": other_line.pk}).status_code == 404
    assert client.post(edit_url(order, "lines"), line_post(
        action="update", line_id=str(other_line.pk))).status_code == 404
    response = client.post(edit_url(order, "lines"), {"action": "remove",
                                                       "line_id": str(other_line.pk)})
    assert response.status_code == 302
    assert counts() == before


def test_document_upload_needs_a_file(house_setup, client):
    h = house_setup
    order = h.draft_order()
    as_user(client, h.sales)
    before = counts()
    response = client.post(edit_url(order, "documents"), {"kind": "photo",
                                                          "visibility": "house"})
    assert "Choose at least one file." in field_errors(response, "id_files")
    response = client.post(edit_url(order, "documents"), {
        "kind": "photo", "visibility": "house",
        "files": SimpleUploadedFile("notes.txt", b"just some text", "text/plain")})
    assert "This file type is not accepted" in " ".join(field_errors(response, "id_files"))
    response = client.post(edit_url(order, "documents"), {
        "kind": "nope", "visibility": "house", "files": SimpleUploadedFile("a.png", PNG)})
    assert field_errors(response, "id_kind")
    assert counts() == before
    response = client.post(edit_url(order, "documents"), {
        "kind": "cad", "visibility": "workshops",
        "files": SimpleUploadedFile("ring.stl", sample_files.stl_binary(1))})
    assert response.status_code == 302
    assert order.documents.get().content_type == "model/stl"


def test_route_bad_input(house_setup, client):
    h = house_setup
    order = h.draft_order()
    as_user(client, h.manager)
    url = edit_url(order, "route")
    proto = route_step(order, StepKind.PROTOTYPING)
    setting = route_step(order, StepKind.SETTING)
    receipt = route_step(order, StepKind.ORDER_RECEIPT)
    before = counts()
    # the prototype may be skipped only for the three accepted reasons
    response = client.post(url, {"action": "skip", "step_id": proto.pk,
                                 f"k{proto.pk}-reason": "other",
                                 f"k{proto.pk}-comment": "No time"})
    assert response.status_code == 200
    assert "Choose one of the reasons" in " ".join(field_errors(response, f"id_k{proto.pk}-reason"))
    body = text(client.get(url))
    proto_block = body[body.index(f'id="step-{proto.pk}"'):]
    proto_block = proto_block[:proto_block.index("</li>")]
    assert 'value="other"' not in proto_block
    # the client's acceptance of the risk needs the signed document, not only a reference
    response = client.post(url, {"action": "skip", "step_id": proto.pk,
                                 f"k{proto.pk}-reason": "client_risk_acceptance",
                                 f"k{proto.pk}-reference": "WAIVER-7"})
    assert "written acceptance" in " ".join(field_errors(response, f"id_k{proto.pk}-document"))
    # another step needs a comment to be skipped
    response = client.post(url, {"action": "skip", "step_id": setting.pk,
                                 f"k{setting.pk}-reason": "other"})
    assert "Say why" in " ".join(field_errors(response, f"id_k{setting.pk}-comment"))
    # a workshop that does not do the work, planned days out of range
    response = client.post(url, {"action": "update", "step_id": setting.pk,
                                 f"s{setting.pk}-workshop": h.caster.pk,
                                 f"s{setting.pk}-planned_days": "4"})
    assert field_errors(response, f"id_s{setting.pk}-workshop")
    response = client.post(url, {"action": "update", "step_id": setting.pk,
                                 f"s{setting.pk}-workshop": h.setter.pk,
                                 f"s{setting.pk}-planned_days": "0"})
    assert "between 1 and 120" in " ".join(field_errors(response,
                                                        f"id_s{setting.pk}-planned_days"))
    # saving without choosing a workshop (and nothing else changed) says so
    response = client.post(url, {"action": "update", "step_id": setting.pk,
                                 f"s{setting.pk}-workshop": "",
                                 f"s{setting.pk}-planned_days": str(setting.planned_days)})
    assert "Choose the workshop" in " ".join(field_errors(response, f"id_s{setting.pk}-workshop"))
    # order receipt and delivery cannot be skipped (no form; a crafted post is refused)
    assert f'name="k{receipt.pk}-reason"' not in text(client.get(url))
    response = client.post(url, {"action": "skip", "step_id": receipt.pk,
                                 f"k{receipt.pk}-reason": "simple_design"})
    assert response.status_code == 200
    assert "cannot be skipped" in " ".join(messages_of(response))
    assert counts() == before
    # a step of another order is not found
    other = h.draft_order()
    response = client.post(url, {"action": "update",
                                 "step_id": route_step(other, StepKind.SETTING).pk})
    assert response.status_code == 404
    # a good skip with the client's signed acceptance (a document of the order), then undo it
    waiver = written_acceptance(h, order)
    body = text(client.get(url))
    assert f'<option value="{waiver.pk}">{waiver.original_name}</option>' in body
    response = client.post(url, {"action": "skip", "step_id": proto.pk,
                                 f"k{proto.pk}-reason": "client_risk_acceptance",
                                 f"k{proto.pk}-reference": "WAIVER-7",
                                 f"k{proto.pk}-document": waiver.pk})
    assert response.status_code == 302
    proto.refresh_from_db()
    assert proto.skipped and proto.skip_reference == "WAIVER-7"
    assert proto.skip_document == waiver
    assert waiver.original_name in text(client.get(url))
    assert client.post(url, {"action": "unskip", "step_id": proto.pk}).status_code == 302
    proto.refresh_from_db()
    assert not proto.skipped


def test_checklist_unchecking_and_long_note(house_setup, client):
    h = house_setup
    order = h.draft_order()
    h.check_all(order)
    as_user(client, h.sales)
    before = counts()
    data = {"action": "checklist"} | {code: "on" for code in CHECKLIST_CODES}
    data["size_confirmed_note"] = "x" * 2001
    response = client.post(edit_url(order, "checklist"), data)
    assert response.status_code == 200
    assert "2000 characters" in response.content.decode()
    assert counts() == before
    data = {"action": "checklist"} | {code: "on" for code in CHECKLIST_CODES[1:]}
    assert client.post(edit_url(order, "checklist"), data).status_code == 302
    item = order.checklist.get(code=CHECKLIST_CODES[0])
    assert not item.checked and item.checked_by is None
    body = text(client.get(edit_url(order, "checklist")))
    assert "Checked by" in body and "disabled" in body


def test_cancel_a_draft(house_setup, client):
    h = house_setup
    order = h.draft_order()
    as_user(client, h.sales)
    url = reverse("orders:cancel", args=[order.pk])
    assert "data-confirm" in text(client.get(detail_url(order)))
    before = counts()
    response = client.post(url, {"reason": ""})
    assert response.status_code == 200
    assert "Say why the order is cancelled." in field_errors(response, "id_reason")
    assert counts() == before
    response = client.post(url, {"reason": "Client changed their mind"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    response = client.get(detail_url(order))
    assert "Cancel this order" not in text(response)
    # a second cancel says why it is refused, and changes nothing
    response = client.post(url, {"reason": "again"}, follow=True)
    assert any("cancelled" in m.lower() for m in messages_of(response))


def test_detail_upload_and_document_list(house_setup, client):
    h = house_setup
    order = h.launched_order()
    as_user(client, h.sales)
    url = reverse("orders:documents", args=[order.pk])
    jpeg = SimpleUploadedFile("box.jpg", sample_files.jpeg(size=(8, 8)))
    response = client.post(url, {"kind": "photo", "visibility": "client", "files": jpeg})
    assert response.status_code == 302
    doc = order.documents.get()
    before = counts()
    response = client.post(url, {"kind": "photo", "visibility": "client",
                                 "files": SimpleUploadedFile("x.svg", SVG)})
    assert response.status_code == 200
    assert "SVG" in " ".join(field_errors(response, "id_files"))
    assert counts() == before
    body = text(client.get(detail_url(order)))
    assert "box.jpg" in body and reverse("document", args=[doc.token]) in body


# ---------------------------------------------------------------------------------------------
# change requests through the pages


def test_change_request_flow(house_setup, client):
    h = house_setup
    order = h.launched_order()
    promised = order.promised_date
    piece = order.pieces.get()
    due_before = piece.runs.order_by("-position").first().planned_due
    as_user(client, h.sales)
    new_url = reverse("orders:change_request_new", args=[order.pk])

    before = counts()
    response = client.post(new_url, {"description": ""})
    assert "Describe the change asked for." in field_errors(response, "id_description")
    assert counts() == before
    assert client.post(new_url, {"description": "Add an engraving inside"}).status_code == 302
    cr = order.change_requests.get()
    assert cr.status == ChangeRequestStatus.OPEN

    assess_url = reverse("orders:change_request_assess", args=[order.pk, cr.pk])
    before = counts()
    response = client.post(assess_url, {f"cr{cr.pk}-impact_days": "999"})
    assert "between -365 and 365" in " ".join(field_errors(response, f"id_cr{cr.pk}-impact_days"))
    response = client.post(assess_url, {f"cr{cr.pk}-impact_days": "3",
                                        f"cr{cr.pk}-new_promised_date": "someday"})
    assert field_errors(response, f"id_cr{cr.pk}-new_promised_date")
    assert counts() == before
    response = client.post(assess_url, {f"cr{cr.pk}-impact_days": "3",
                                        f"cr{cr.pk}-assessment": "One more day at the engraver"})
    assert response.status_code == 302
    cr.refresh_from_db()
    assert cr.status == ChangeRequestStatus.ASSESSED and cr.impact_days == 3

    # the order page shows the impact on the dates
    body = text(as_user(client, h.manager).get(detail_url(order)))
    expected = promised + dt.timedelta(days=3)
    assert "the plan moves by 3 days" in body
    assert f"{expected:%-d %b %Y}" in body
    decide_url = reverse("orders:change_request_decide", args=[order.pk, cr.pk])
    assert client.post(decide_url, {"decision": "maybe"}).status_code == 404
    response = client.post(decide_url, {"decision": "approve", f"d{cr.pk}-comment": "OK"})
    assert response.status_code == 302
    cr.refresh_from_db()
    order.refresh_from_db()
    assert cr.status == ChangeRequestStatus.APPROVED and cr.decision_comment == "OK"
    assert order.promised_date == expected
    assert piece.runs.order_by("-position").first().planned_due == due_before + dt.timedelta(
        days=3)
    body = text(client.get(detail_url(order)))
    assert "Approved" in body and "Plan moved" in body  # and in the history

    # a second request, rejected while still open
    client.post(new_url, {"description": "Change the stone"})
    cr2 = order.change_requests.order_by("-id").first()
    body = text(client.get(detail_url(order)))
    block = body[body.index(f'id="cr-{cr2.pk}"'):]
    block = block[:block.index("</article>")]
    assert 'value="approve"' not in block and 'value="reject"' in block
    response = client.post(reverse("orders:change_request_decide", args=[order.pk, cr2.pk]),
                           {"decision": "reject"})
    assert response.status_code == 302
    cr2.refresh_from_db()
    assert cr2.status == ChangeRequestStatus.REJECTED
    # a decided request can no longer be decided: a message, nothing changes
    response = client.post(reverse("orders:change_request_decide", args=[order.pk, cr2.pk]),
                           {"decision": "approve"}, follow=True)
    assert any("rejected" in m.lower() for m in messages_of(response))
    cr2.refresh_from_db()
    assert cr2.status == ChangeRequestStatus.REJECTED


def test_change_request_of_another_order_is_404(house_setup, client):
    h = house_setup
    order, other = h.launched_order(), h.launched_order()
    cr = change_request_create(actor=h.sales, order_id=other.pk, description="x")
    as_user(client, h.manager)
    url = reverse("orders:change_request_assess", args=[order.pk, cr.pk])
    assert client.post(url, {f"cr{cr.pk}-impact_days": "1"}).status_code == 404


# ---------------------------------------------------------------------------------------------
# the order page


def test_order_page_history_is_readable(house_setup, client):
    h = house_setup
    order = h.draft_order(client_reference="PO-1")
    from etabli.orders.services import order_update

    order_update(actor=h.sales, order_id=order.pk, client_reference="PO-2")
    rs = route_step(order, StepKind.SETTING)
    from etabli.production.routing import order_route_step_update

    order_route_step_update(actor=h.manager, order_id=order.pk, step_id=rs.pk,
                            workshop_id=h.setter.pk)
    body = text(as_user(client, h.admin).get(detail_url(order)))
    history = body[body.index('id="history"'):]
    assert "Order created" in history and "Order changed" in history
    assert "<del>PO-1</del> → <ins>PO-2</ins>" in history
    assert "Route step changed" in history and h.setter.name in history
    assert h.sales.username in history and h.manager.username in history


def test_order_page_gantt_has_planned_and_actual_bars(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece, to=StepKind.MANUFACTURING)
    body = text(as_user(client, h.manager).get(detail_url(piece.order)))
    assert body.count('class="bar planned"') == piece.runs.exclude(status="skipped").count()
    assert 'class="bar actual' in body and 'class="today"' in body
    assert re.search(r'class="bar planned" style="left:\d+\.\d\d%;width:\d+\.\d\d%"', body)


def test_order_page_in_french_keeps_css_numbers(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    h.sales.language = "fr"
    h.sales.save()
    body = text(as_user(client, h.sales).get(detail_url(piece.order)))
    assert not re.search(r"left:\d+,\d", body)
