"""A database too busy to answer (SQLite locked by many writers) is a 503 the client may retry,
never a 500."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client

from etabli.production import selectors

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("message", [
    "database is locked",  # SQLite, past its busy timeout
    "deadlock detected\nDETAIL:  Process 1 waits for ShareLock on transaction 2",  # PostgreSQL
])
def test_a_locked_database_is_a_503_to_retry_on_the_api_and_the_pages(house_setup, monkeypatch,
                                                                     message):
    def locked(*args, **kwargs):
        raise OperationalError(message)

    monkeypatch.setattr(selectors, "piece_list", locked)
    c = Client(raise_request_exception=False)
    c.force_login(house_setup.manager)
    api = c.get("/api/v1/pieces")
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert api.json()["code"] == "busy" and "try again" in api.json()["message"]
    page = c.get("/pieces/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "Nothing was saved" in page.content.decode()


def test_other_database_errors_are_not_hidden(house_setup, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("no such table: production_piece")

    monkeypatch.setattr(selectors, "piece_list", broken)
    c = Client(raise_request_exception=False)
    c.force_login(house_setup.manager)
    assert c.get("/api/v1/pieces").status_code == 500
