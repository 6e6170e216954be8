"""A small JSON client for /api/v1/ used by the API tests.

`ApiClient(user)` makes an API token for `user` through the accounts service and sends it as
`Authorization: Bearer …` on every request; `ApiClient(None)` sends no credentials.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client

from etabli.accounts.models import User
from etabli.accounts.services import token_create

API = "/api/v1"


class ApiClient:
    def __init__(self, user: User | None = None, *, key: str | None = None) -> None:
        self.user = user
        if key is None and user is not None:
            _token, key = token_create(actor=user, user=user, name="tests")
        self.key = key
        self.client = Client()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get(self, path: str, params: dict[str, Any] | None = None):
        return self.client.get(API + path, params or {}, headers=self._headers())

    def _send(self, method: str, path: str, data: Any = None, raw: str | bytes | None = None):
        body = raw if raw is not None else json.dumps({} if data is None else data,
                                                      cls=DjangoJSONEncoder)
        return getattr(self.client, method)(API + path, body, content_type="application/json",
                                            headers=self._headers())

    def post(self, path: str, data: Any = None, *, raw: str | bytes | None = None):
        return self._send("post", path, data, raw)

    def put(self, path: str, data: Any = None, *, raw: str | bytes | None = None):
        return self._send("put", path, data, raw)

    def patch(self, path: str, data: Any = None, *, raw: str | bytes | None = None):
        return self._send("patch", path, data, raw)

    def delete(self, path: str):
        return self.client.delete(API + path, headers=self._headers())


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is a JSON error `{code, message, details}` with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.content[:2000])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body


def ok(response, status: int = 200) -> Any:
    """The JSON body of a successful response, after checking its status."""
    assert response.status_code == status, (response.status_code, response.content[:2000])
    return response.json() if response.content else None


def error_fields(response) -> set[str]:
    """Field names named by a 422 invalid_input error."""
    body = assert_error(response, 422, "invalid_input")
    return {e["field"] for e in body["details"]["errors"]}


def qualify_order(h, order_id: int, *, assignments: dict | None = None,
                  promise_extra_days: int = 0) -> dict:
    """Qualify a draft order through the API, as the people who would do it: the production
    manager assigns the route's workshops, sales ticks the launch sheet and sets the promise
    to the earliest realistic date (plus `promise_extra_days`). Returns the order detail."""
    import datetime as dt

    from etabli.orders.models import CHECKLIST_CODES

    manager, sales = ApiClient(h.manager), ApiClient(h.sales)
    chosen = {step: ws.pk for step, ws in h.default_assignments().items()}
    chosen |= {step: ws.pk for step, ws in (assignments or {}).items()}
    detail = ok(sales.get(f"/orders/{order_id}"))
    for rs in detail["route"]:
        if rs["workshop"] is None and not rs["skipped"] and rs["step"] in chosen:
            ok(manager.patch(f"/orders/{order_id}/route/{rs['id']}",
                             {"workshop_id": chosen[rs["step"]]}))
    for code in CHECKLIST_CODES:
        ok(sales.put(f"/orders/{order_id}/checklist/{code}", {"checked": True}))
    earliest = ok(sales.get(f"/orders/{order_id}/deadline-check"))["earliest_realistic_date"]
    promised = dt.date.fromisoformat(earliest) + dt.timedelta(days=promise_extra_days)
    return ok(sales.patch(f"/orders/{order_id}", {"promised_date": promised.isoformat()}))
