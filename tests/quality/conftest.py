"""Pieces ready to be inspected, and small helpers for the quality tests."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from etabli.production.models import Piece, StepStatus
from etabli.quality import services
from tests.quality.support import passing_measurements

D = Decimal


def piece_in_finishing(h, **order_kwargs) -> Piece:
    """A launched piece walked to its finishing step (at the polisher) and started there."""
    piece = h.launched_piece(**order_kwargs)
    h.walk(piece, to="finishing", arrive=True)
    h.advance(piece)
    piece.refresh_from_db()
    assert h.open_run(piece).status == StepStatus.IN_PROGRESS
    return piece


def open_inspection(h, piece, actor=None, **measurements):
    """An inspection of `piece`, measured (passing unless `measurements` say otherwise)."""
    actor = actor or h.quality
    ins = services.inspection_create(actor=actor, piece_id=piece.pk)
    services.inspection_measure(actor=actor, inspection_id=ins.pk,
                                **passing_measurements(ins, **measurements))
    ins.refresh_from_db()
    return ins


def png(name: str = "photo.png", colour: str = "red") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def finishing_piece(house_setup) -> Piece:
    return piece_in_finishing(house_setup)


@pytest.fixture
def plain_piece(house_setup) -> Piece:
    """A piece without stones (no stones asked, setting skipped), in finishing."""
    return piece_in_finishing(house_setup, skip={"setting": {
        "reason": "other", "comment": "Plain band: no stones."}})
