"""The client portal's pages: my orders in plain words, one order, documents, reception."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from etabli.core.models import AuditEntry
from etabli.documents.services import document_upload
from etabli.orders.models import OrderStatus
from etabli.workshops.models import StepKind
from tests.apiclient import assert_error, error_fields, ok
from tests.documents import files as sample_files

pytestmark = pytest.mark.django_db

WORKSHOP_NAMES = ("Fonderie Dupont", "Sertissage Martin", "Polissage Leroy")
PDF = sample_files.pdf()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def as_user(client, user):
    client.force_login(user)
    return client


def delivered_order(h, **kwargs):
    order = h.launched_order(**kwargs)
    for piece in order.pieces.all():
        h.walk(piece)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return order


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def share(h, order, visibility, name):
    return document_upload(actor=h.sales, order_id=order.pk,
                           uploaded_file=SimpleUploadedFile(name, PDF),
                           kind="certificate", visibility=visibility)


# ---------------------------------------------------------------------------------------------
# who sees what


def test_other_roles_get_404(house_setup, client):
    h = house_setup
    order = h.launched_order()
    urls = [reverse("portal:orders"), reverse("portal:order", args=[order.pk])]
    for user in (h.admin, h.manager, h.sales, h.designer, h.quality, h.logistics,
                 h.caster_member):
        as_user(client, user)
        for url in urls:
            assert client.get(url).status_code == 404, (user.role, url)
        assert client.post(reverse("portal:confirm_reception", args=[order.pk])) \
            .status_code == 404


def test_anonymous_is_sent_to_log_in(house_setup, client):
    response = client.get(reverse("portal:orders"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_client_sees_only_their_orders(house_setup, client):
    h = house_setup
    mine = h.launched_order(client_reference="PO-ROUX-7")
    draft = h.draft_order()
    theirs = h.launched_order(client=h.other_client)
    response = as_user(client, h.client_contact).get(reverse("portal:orders"))
    html = response.content.decode()
    assert mine.reference in html and draft.reference in html and "PO-ROUX-7" in html
    assert theirs.reference not in html and "Maison Blanc" not in html
    assert "Order received — being confirmed" in html  # the draft, in plain words
    assert client.get(reverse("portal:order", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("portal:order", args=[999999])).status_code == 404

    html = as_user(client, h.other_client_contact).get(reverse("portal:orders")).content.decode()
    assert theirs.reference in html and mine.reference not in html


def test_empty_state(house_setup, client):
    html = as_user(client, house_setup.client_contact).get(reverse("portal:orders")) \
        .content.decode()
    assert "You have no orders with us yet." in html


def test_status_in_plain_words_without_workshops_or_prices(house_setup, client):
    h = house_setup
    order = h.launched_order(quantity=2)
    first, second = order.pieces.order_by("serial")
    h.walk(first, to=StepKind.FINISHING)
    h.walk(second, to=StepKind.SETTING, arrive=True)
    as_user(client, h.client_contact)
    html = client.get(reverse("portal:orders")).content.decode()
    # The order is as far as its least advanced piece.
    assert "Being made — setting stones" in html
    detail = client.get(reverse("portal:order", args=[order.pk]))
    html = detail.content.decode()
    assert detail.status_code == 200
    assert "Being made — setting stones" in html
    assert 'class="steps"' in html and 'aria-current="step"' in html
    assert "Stone setting" in html and "Finishing and checks" in html
    for name in WORKSHOP_NAMES:
        assert name not in html
    assert "1200" not in html and "1 200" not in html
    # No internal events: no slips, no weights, no internal people.
    assert "TS-" not in html and "caster1" not in html and "designer" not in html
    bars = {p.serial: p.bar for line in detail.context["lines"] for p in line.client_pieces}
    states = {b["label"]: b["state"] for b in bars[first.serial]}
    assert states["Design"] == "done" and states["Finishing and checks"] == "current"
    assert states["Delivery"] == "pending"


def test_on_its_way_then_delivered(house_setup, client):
    h = house_setup
    order = h.launched_order()
    piece = order.pieces.get()
    h.walk(piece, to=StepKind.DELIVERY, arrive=True)
    h.advance(piece)  # logistics starts the delivery: it has left
    as_user(client, h.client_contact)
    assert "On its way to you" in client.get(reverse("portal:orders")).content.decode()
    h.advance(piece)
    html = client.get(reverse("portal:order", args=[order.pk])).content.decode()
    assert "Delivered" in html and "Confirm reception" in html


def test_workshop_names_only_when_the_house_allows(house_setup, client, settings):
    h = house_setup
    order = h.launched_order()
    h.walk(order.pieces.get(), to=StepKind.SETTING, arrive=True)
    as_user(client, h.client_contact)
    url = reverse("portal:order", args=[order.pk])
    assert "Sertissage Martin" not in client.get(url).content.decode()
    settings.ETABLI_CLIENT_SEES_WORKSHOPS = True
    assert "Sertissage Martin" in client.get(url).content.decode()


def test_documents_shared_only_when_meant_for_the_client(house_setup, client):
    h = house_setup
    order = h.launched_order()
    shared = share(h, order, "client", "certificate-gia.pdf")
    share(h, order, "workshops", "setting-plan.pdf")
    house_only = share(h, order, "house", "cost-sheet.pdf")
    as_user(client, h.client_contact)
    html = client.get(reverse("portal:order", args=[order.pk])).content.decode()
    assert "certificate-gia.pdf" in html and f"/documents/{shared.token}/" in html
    assert "setting-plan.pdf" not in html and "cost-sheet.pdf" not in html
    assert client.get(reverse("document", args=[shared.token])).status_code == 200
    assert client.get(reverse("document", args=[house_only.token])).status_code == 404
    as_user(client, h.other_client_contact)
    assert client.get(reverse("document", args=[shared.token])).status_code == 404


def test_list_query_budget(house_setup, client, django_assert_max_num_queries):
    h = house_setup
    for _ in range(3):
        h.launched_order(quantity=2)
    as_user(client, h.client_contact)
    client.get(reverse("portal:orders"))
    with django_assert_max_num_queries(6):
        response = client.get(reverse("portal:orders"))
    assert len(response.context["rows"]) == 3


def test_detail_query_budget(house_setup, client, django_assert_max_num_queries):
    h = house_setup
    order = h.launched_order(lines=[{"description": "Ring", "model_reference": "R-1",
                                     "alloy": "750y", "quantity": 3},
                                    {"description": "Pendant", "model_reference": "P-1",
                                     "alloy": "750y", "quantity": 2}])
    as_user(client, h.client_contact)
    url = reverse("portal:order", args=[order.pk])
    client.get(url)
    # 7 for the page itself, then a fixed few for the step panels (the design rounds waiting
    # for the client, shipments and reception): none of it may grow with the number of pieces.
    with django_assert_max_num_queries(14):
        client.get(url)


# ---------------------------------------------------------------------------------------------
# confirmation of reception


def test_reception_cannot_be_confirmed_before_delivery(house_setup, client):
    h = house_setup
    order = h.launched_order()
    as_user(client, h.client_contact)
    html = client.get(reverse("portal:order", args=[order.pk])).content.decode()
    assert "Confirm reception" not in html
    response = client.post(reverse("portal:confirm_reception", args=[order.pk]), {"note": "?"})
    assert response.status_code == 200
    assert "once every piece has been delivered" in response.content.decode()
    order.refresh_from_db()
    assert order.reception_confirmed_at is None
    assert not AuditEntry.objects.filter(action="order.confirm_reception").exists()


def test_client_confirms_reception_once(house_setup, client):
    h = house_setup
    order = delivered_order(h)
    as_user(client, h.client_contact)
    url = reverse("portal:order", args=[order.pk])
    html = client.get(url).content.decode()
    assert "Confirm reception" in html and "data-confirm=" in html

    response = client.post(reverse("portal:confirm_reception", args=[order.pk]),
                           {"note": "Parcel intact, thank you"})
    assert response.status_code == 302 and response["Location"] == url
    assert any("is confirmed" in m for m in msgs(response))
    order.refresh_from_db()
    assert order.reception_confirmed_by == h.client_contact
    assert order.reception_confirmed_at is not None
    assert order.reception_note == "Parcel intact, thank you"
    entry = AuditEntry.objects.get(action="order.confirm_reception")
    assert entry.actor == h.client_contact and entry.order_id == order.pk
    assert entry.before["reception_confirmed_at"] is None
    assert entry.after["reception_note"] == "Parcel intact, thank you"

    html = client.get(url).content.decode()
    assert "Reception confirmed by roux1" in html and "Parcel intact" in html
    assert 'action="/portal/' not in html  # no second button
    assert "Delivered — reception confirmed" in client.get(reverse("portal:orders")) \
        .content.decode()

    again = client.post(reverse("portal:confirm_reception", args=[order.pk]), {"note": ""})
    assert again.status_code == 200 and "already confirmed" in again.content.decode()
    assert AuditEntry.objects.filter(action="order.confirm_reception").count() == 1


def test_bad_note_and_other_clients_order(house_setup, client):
    h = house_setup
    order = delivered_order(h)
    as_user(client, h.client_contact)
    response = client.post(reverse("portal:confirm_reception", args=[order.pk]),
                           {"note": "x" * 4001})
    assert response.status_code == 200
    assert response.context["form"].errors["note"]
    order.refresh_from_db()
    assert order.reception_confirmed_at is None

    as_user(client, h.other_client_contact)
    response = client.post(reverse("portal:confirm_reception", args=[order.pk]))
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.reception_confirmed_at is None


# ---------------------------------------------------------------------------------------------
# the same through the API


def test_api_confirm_reception(house_setup, api):
    h = house_setup
    launched = h.launched_order()
    assert_error(api(h.client_contact).post(f"/orders/{launched.pk}/confirm-reception", {}),
                 409, "transition_not_allowed")

    order = delivered_order(h)
    path = f"/orders/{order.pk}/confirm-reception"
    assert_error(api(h.other_client_contact).post(path, {}), 404, "not_found")
    assert_error(api(h.caster_member).post(path, {}), 403, "forbidden")
    assert error_fields(api(h.client_contact).post(path, {"note": "x" * 4001})) == {"note"}
    body = ok(api(h.client_contact).post(path, {"note": "All good"}))
    assert body["reception_note"] == "All good" and body["reception_confirmed_at"]
    assert_error(api(h.client_contact).post(path, {}), 409, "conflict")
    detail = ok(api(h.sales).get(f"/orders/{order.pk}"))
    assert detail["reception_note"] == "All good"

    # The house may confirm on the client's behalf, saying how the client told them.
    other = delivered_order(h)
    assert_error(api(h.sales).post(f"/orders/{other.pk}/confirm-reception", {}), 400)
    body = ok(api(h.sales).post(f"/orders/{other.pk}/confirm-reception", {"note": "By phone"}))
    assert body["reception_confirmed_at"] and body["reception_note"] == "By phone"
