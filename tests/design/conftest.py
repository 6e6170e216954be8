"""Design tests: files go to a temporary media folder; small builders for lines at design."""

from __future__ import annotations

import pytest

from etabli.production.models import Piece
from etabli.workshops.models import StepKind
from tests.factories import default_line


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def custom_line(**overrides) -> dict:
    """A custom engagement ring with a material budget (per piece)."""
    return default_line(description="Bespoke engagement ring", model_reference="",
                        is_custom_design=True, size="52", alloy="750y",
                        budget_metal_g="5.000", budget_stone_count=3,
                        budget_stone_ct="1.200") | overrides


@pytest.fixture
def at_design(house_setup) -> Piece:
    """A launched custom ring at the house's design step, started by the designer."""
    from etabli.production.services import piece_start

    h = house_setup
    piece = h.launched_piece(lines=[custom_line()])
    piece_start(actor=h.designer, piece_id=piece.pk)
    piece.refresh_from_db()
    assert piece.current_step == StepKind.DESIGN
    return piece
