"""The refiner page: scrap sent from the vault and the refiner's statement booked back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from etabli.materials import services
from etabli.materials.models import MaterialSlip, MetalBalance, SlipKind, SlipStatus

pytestmark = pytest.mark.django_db


def test_send_scrap_and_book_the_refiners_statement(client, house_setup):
    h = house_setup
    services.metal_purchase(actor=h.manager, alloy="750y", weight_g="40")
    client.force_login(h.manager)
    url = reverse("materials:refiner")
    page = client.get(url)
    assert page.status_code == 200
    form = {"client_ref": "ref-1", "alloy_1": "750y", "weight_g_1": "40.000"}
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302  # sent twice: one slip
    (slip,) = MaterialSlip.objects.filter(kind=SlipKind.REFINER)
    # More fine metal back than was sent is refused, nothing written.
    response = client.post(url, {"action": "settle", "slip_id": slip.pk, "alloy": "999au",
                                 "weight_g": "35.000"})
    assert response.status_code == 200
    assert "more fine metal" in response.content.decode()
    slip.refresh_from_db()
    assert slip.status == SlipStatus.SENT
    response = client.post(url, {"action": "settle", "slip_id": slip.pk, "alloy": "999au",
                                 "weight_g": "29.900"}, follow=True)
    assert "0.130" in response.content.decode()
    slip.refresh_from_db()
    assert slip.status == SlipStatus.RECEIVED and slip.loss_fine_g == Decimal("0.130")
    assert MetalBalance.objects.get(location__kind="vault", alloy__code="999au").alloy_g == \
        Decimal("29.900")


@pytest.mark.parametrize("role", ["sales", "logistics"])
def test_readers_see_the_page_without_the_forms(client, house_setup, role):
    client.force_login(getattr(house_setup, role))
    url = reverse("materials:refiner")
    page = client.get(url)
    assert page.status_code == 200 and "weight_g_1" not in page.content.decode()
    assert client.post(url, {"alloy_1": "750y", "weight_g_1": "1"}).status_code == 404


@pytest.mark.parametrize("role", ["designer", "client_contact"])
def test_others_get_nothing(client, house_setup, role):
    client.force_login(getattr(house_setup, role))
    assert client.get(reverse("materials:refiner")).status_code == 404


def test_workshop_member_goes_to_the_portal(client, house_setup):
    client.force_login(house_setup.caster_member)
    assert client.get(reverse("materials:refiner")).status_code == 302
