"""Documents tests: files go to a temporary media folder; `world` is a launched order whose two
lines are set by different workshops, with a document of each level and visibility."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from etabli.accounts.models import Role, User
from etabli.documents.models import Document
from etabli.documents.services import document_upload
from etabli.orders.models import Order, OrderLine
from etabli.production.models import Piece
from etabli.production.services import step_run_assign
from etabli.workshops.models import StepKind, Workshop
from tests.factories import SETTER_SKILLS, HouseSetup, default_line, make_user, make_workshop

from . import files


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media) -> list[str]:
    """Every file under the media folder, relative names."""
    if not media.exists():
        return []
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())


@dataclass
class World:
    h: HouseSetup
    order: Order
    line1: OrderLine
    line2: OrderLine
    piece1: Piece  # line 1, set by h.setter
    piece2: Piece  # line 2, set by `other_setter`
    other_setter: Workshop
    other_setter_member: User
    outsider: User  # a workshop member whose workshop is on no route
    docs: dict[str, Document]

    def upload(self, name: str = "ring.jpg", data: bytes | None = None, *, actor=None,
               **kwargs) -> Document:
        kwargs.setdefault("order_id", self.order.pk)
        data = files.jpeg() if data is None else data
        return document_upload(actor=actor or self.h.sales,
                               uploaded_file=files.upload(name, data), **kwargs)


@pytest.fixture
def world(house_setup) -> World:
    h = house_setup
    other_setter = make_workshop("setter2", name="Sertissage Petit", skills=SETTER_SKILLS)
    other_member = make_user(Role.WORKSHOP, username="setter2", workshops=[other_setter])
    lonely = make_workshop("engraver", name="Gravure Blanc", skills=["engraving_hallmarking"])
    outsider = make_user(Role.WORKSHOP, username="engraver1", workshops=[lonely])
    order = h.launched_order(lines=[default_line(description="Ring"),
                                    default_line(description="Pendant", model_reference="P-1")])
    line1, line2 = order.lines.order_by("position")
    piece1 = order.pieces.get(line=line1)
    piece2 = order.pieces.get(line=line2)
    setting2 = piece2.runs.get(step=StepKind.SETTING)
    step_run_assign(actor=h.manager, run_id=setting2.pk, workshop_id=other_setter.pk)
    w = World(h=h, order=order, line1=line1, line2=line2, piece1=piece1, piece2=piece2,
              other_setter=other_setter, other_setter_member=other_member, outsider=outsider,
              docs={})
    for vis in ("house", "workshops", "client"):
        w.docs[f"order_{vis}"] = w.upload(f"order-{vis}.pdf", files.pdf(), visibility=vis)
    w.docs["line1"] = w.upload("line1.pdf", files.pdf(), line_id=line1.pk)
    w.docs["line2"] = w.upload("line2.pdf", files.pdf(), line_id=line2.pk)
    w.docs["piece1"] = w.upload("piece1.jpg", piece_id=piece1.pk, kind="reference_photo")
    w.docs["piece2"] = w.upload("piece2.jpg", piece_id=piece2.pk, kind="reference_photo")
    w.docs["piece1_house"] = w.upload("piece1-house.jpg", piece_id=piece1.pk,
                                      visibility="house")
    return w
