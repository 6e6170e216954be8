"""Fixtures for delivery's tests: pieces waiting at the house for their delivery step."""

from __future__ import annotations

import pytest

from etabli.orders.models import OrderStatus
from etabli.workshops.models import StepKind


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def h(house_setup):
    return house_setup


def at_delivery(h, order=None, **kwargs):
    """The pieces of a launched order (one piece unless `quantity` or `lines` say otherwise),
    each walked to its delivery step and brought to the house (READY there, or RECEIVED)."""
    order = order or h.launched_order(**kwargs)
    pieces = list(order.pieces.order_by("serial"))
    for piece in pieces:
        h.walk(piece, to=StepKind.DELIVERY, arrive=True)
        piece.refresh_from_db()
    return order, pieces


def delivered(h, **kwargs):
    """A delivered order (every piece through a delivered shipment), not yet received."""
    order = h.launched_order(**kwargs)
    for piece in order.pieces.all():
        h.walk(piece)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    return order


@pytest.fixture
def ready(h):
    """An order of two pieces, both waiting at the house to be shipped."""
    return at_delivery(h, quantity=2)
