"""The technical sheet of a piece once the design and stone-setting steps have done their work:
the approved design round with its render, the setting plan's stone groups; what the house
reads on it and what a workshop reads (no prices, no client, no approver's name)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from etabli.materials.cad_services import piece_theoretical_weight_set
from etabli.workshops.models import StepKind
from tests.core.test_printing import (
    A4_PT,
    flat,
    image_count,
    no_network,  # noqa: F401  (autouse: printing stays offline)
    page_size_pt,
    pdf_text,
)
from tests.factories import default_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def as_user(client, h):
    def login(name: str):
        client.force_login(getattr(h, name))
        return client
    return login


STONE_LINE = default_line(
    description="Solitaire ring, 0.5 ct", stones="1 diamond 0.50 ct, round, G VS1",
    customisations="Engraved ‘Toujours’ inside", budget_metal_g="4.800",
    budget_stone_count=1, budget_stone_ct="0.500", target_price="3100.00")


def at_setter(h, **launch):
    """A piece received at the setter: its design approved (round 1, with a render) and its
    checked setting plan."""
    piece = h.launched_piece(lines=[STONE_LINE], client_reference="PO-2024", **launch)
    h.walk(piece, to=StepKind.SETTING, arrive=True)
    piece.refresh_from_db()
    return piece


def test_piece_technical_sheet_for_the_house(h, as_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    piece = at_setter(h)
    piece_theoretical_weight_set(actor=h.manager, piece_id=piece.pk, weight_g="4.520")
    response = as_user("manager").get(reverse("production:piece_technical_sheet",
                                              args=[piece.pk]))
    assert page_size_pt(response) == A4_PT
    text = flat(pdf_text(response))
    for expected in (
            "TECHNICAL SHEET", piece.serial, piece.order.reference, "Unit 1 of 1",
            "Solitaire ring, 0.5 ct", "R-100", "52", "Bijouterie Roux", "PO-2024", "3100.00",
            # the metal
            "18k yellow gold (750)", "750‰", "15.50 g/cm³", "4.520 g · 3.390 g fine",
            "4.800 g of metal per piece", "3.600 g fine", "1 stone", "0.500 ct",
            # the stones, with the setting plan
            "1 diamond 0.50 ct, round, G VS1", "Centre", "Prong (claw)", "Diamond",
            "Round brilliant",
            # the approved design
            "Round 1", "roux1",
            # the route and the finishing
            "Polishing", "Engraving and hallmarking", "Cleaning", "Engraved ‘Toujours’ inside"):
        assert expected in text, expected
    assert image_count(response) >= 1  # the approved render's thumbnail, embedded


def test_a_workshops_technical_sheet_has_no_prices_and_no_client(h, as_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    piece = at_setter(h)
    response = as_user("setter_member").get(reverse("production:piece_technical_sheet",
                                                    args=[piece.pk]))
    text = flat(pdf_text(response))
    assert piece.serial in text and "Prong (claw)" in text and "Round 1" in text
    assert "18k yellow gold (750)" in text and "Engraved ‘Toujours’ inside" in text
    for secret in ("Bijouterie Roux", "PO-2024", "3100.00", "roux1"):
        assert secret not in text, secret
    assert image_count(response) >= 1  # the render is shared with the workshops
