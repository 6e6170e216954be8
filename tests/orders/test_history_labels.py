"""The order page's history names every action in words, never as a stored code."""

from __future__ import annotations

import pytest

from etabli.core.models import AuditEntry
from etabli.orders.services import order_confirm_reception
from etabli.orders.views import AUDIT_ACTIONS

pytestmark = pytest.mark.django_db


def test_every_action_of_a_walked_order_has_a_label(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    h.walk(piece)  # brief to delivery: design, setting plan, finishing, inspection, shipment
    order_confirm_reception(actor=h.client_contact, order_id=piece.order_id,
                            note="All good.")
    actions = set(AuditEntry.objects.filter(order_id=piece.order_id)
                  .values_list("action", flat=True))
    assert {"design.round.approve", "quality.inspection.sign", "finishing.record",
            "shipment.deliver", "order.close"} <= actions
    assert actions - set(AUDIT_ACTIONS) == set()

    client.force_login(h.manager)
    page = client.get(f"/orders/{piece.order_id}/").content.decode()
    for code in ("design.round.approve", "shipment.deliver", "quality.inspection.sign"):
        assert code not in page
    assert str(AUDIT_ACTIONS["shipment.deliver"]) in page
