"""Shared fixtures. Data is built through services by the factories in `tests/factories.py`."""

from __future__ import annotations

import pytest

from tests.factories import HouseSetup


def pytest_configure(config):
    # Argon2 is deliberately slow; tests create many users.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language (English) and leaves it so.

    A request in French activates French for the thread and Django does not switch back when
    the response is done; a service called directly by the next test would then answer in
    French.
    """
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture
def house_setup(db) -> HouseSetup:
    """Three outside workshops (caster, setter, polisher), a user of every role, a client.

    Call `house_setup.launched_order(...)` for a launched order and `house_setup.walk(piece)`
    to move a piece along its route; see `HouseSetup` for the rest.
    """
    return HouseSetup.build()


@pytest.fixture
def api(house_setup):
    """`api(user)` → an ApiClient sending a fresh token of `user` (one per user per test);
    `api(None)` sends no credentials."""
    from tests.apiclient import ApiClient

    clients: dict = {}

    def as_user(user):
        key = getattr(user, "pk", None)
        if key not in clients:
            clients[key] = ApiClient(user)
        return clients[key]

    return as_user
