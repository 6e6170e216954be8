"""Établi's icon: linked from every page, and /favicon.ico leads to it (no 404 per visit)."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def test_pages_link_the_icon_and_favicon_ico_leads_to_it(house_setup):
    c = Client()
    login = c.get("/accounts/login/")
    assert '<link rel="icon" type="image/svg+xml" href="/static/core/favicon.svg">' in \
        login.content.decode()
    answer = c.get("/favicon.ico")
    assert answer.status_code == 301 and answer["Location"] == "/static/core/favicon.svg"
    icon = finders.find("core/favicon.svg")
    assert icon and open(icon, encoding="utf-8").read().startswith("<svg")
