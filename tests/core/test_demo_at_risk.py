"""The demo's late orders are promised without slack, so the first detection pass shows orders
at risk beside their overdue steps (what a production manager looks at first)."""

from __future__ import annotations

import pytest

from etabli.alerts.models import Alert, AlertKind
from etabli.core.demo import build_demo
from etabli.orders.models import Order

pytestmark = pytest.mark.django_db


def test_the_demo_has_orders_at_risk():
    build_demo(7)
    at_risk = Alert.objects.filter(kind=AlertKind.ORDER_AT_RISK, status="open")
    assert at_risk.count() >= 3
    for alert in at_risk:
        order = Order.objects.get(pk=alert.order_id)
        assert alert.params["order"] == order.reference
        assert alert.params["promised"] == order.promised_date.isoformat()
        assert alert.params["finish"] > alert.params["promised"] or alert.params["buffer"] > 0
    # Each at-risk order has a piece whose step is overdue (the cause the demo set up).
    overdue_orders = set(Alert.objects.filter(kind=AlertKind.STEP_OVERDUE, status="open")
                         .values_list("order_id", flat=True))
    assert overdue_orders & set(at_risk.values_list("order_id", flat=True))
