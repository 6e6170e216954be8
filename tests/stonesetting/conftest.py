"""Fixtures for the stone setting tests (helpers are in `helpers.py`)."""

from __future__ import annotations

import pytest

from etabli.accounts.models import Role
from etabli.production.models import Piece
from tests.factories import make_user, make_workshop
from tests.stonesetting.helpers import piece_at_setting


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def other_setter(h):
    """A second setting workshop and its member (who must never see the first one's work)."""
    ws = make_workshop("setter2", name="Incastonatura Galli", skills=["setting"])
    return ws, make_user(Role.WORKSHOP, username="galli1", workshops=[ws])


@pytest.fixture
def at_setting(h) -> Piece:
    return piece_at_setting(h)

