"""The dashboard, its board and the late list, read the fast way: what they show is what a
plain reading of every piece in production says, and their queries do not grow with the pieces
(nor with the filters)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from etabli.production import selectors, views
from etabli.production.forms import QuickSelect
from etabli.production.models import ACTIVE_PIECE_STATUSES, Piece, PieceStatus
from etabli.production.services import order_plan_shift, piece_hold
from etabli.workshops.models import StepKind
from tests.production.test_pages import S, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def as_user(client, h):
    def login(name: str):
        client.force_login(getattr(h, name))
        return client
    return login


def _spread(h) -> dict:
    """Pieces in several cells, some late, one held, one in transit, one without workshop."""
    late_order = h.launched_order(quantity=5)
    order_plan_shift(order=late_order, days=-30)
    h.launched_order(quantity=4)
    held = at(h, StepKind.SETTING, S.RECEIVED)
    piece_hold(actor=h.manager, piece_id=held.pk, reason="capacity")
    travelling = at(h, StepKind.SETTING, S.IN_TRANSIT)
    at(h, StepKind.FINISHING, S.IN_PROGRESS)
    nowhere = h.launched_piece()
    # A piece whose current step has no workshop: the board's "No workshop" cell.
    Piece.objects.filter(pk=nowhere.pk).update(current_workshop=None)
    h.walk(h.launched_piece(), to=None)  # delivered: never on the board
    return {"held": held, "travelling": travelling, "nowhere": nowhere}


def _expected_cells(limit: int) -> dict:
    """Every cell's first pieces, by reading every piece in production in Python."""
    cells: dict[tuple, list] = {}
    for p in Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES):
        cells.setdefault((p.current_step, p.current_workshop_id), []).append(p)
    return {k: [p.serial for p in sorted(v, key=lambda p: (p.current_due is None,
                                                           p.current_due, p.serial))][:limit]
            for k, v in cells.items()}


def test_board_cells_are_the_first_pieces_of_every_cell(h, monkeypatch):
    made = _spread(h)
    monkeypatch.setattr(views, "BOARD_CELL_LIMIT", 2)  # so that cells have "more"
    data = views._dashboard_data(h.manager, selectors.PieceFilters(), {})
    expected = _expected_cells(2)
    active = Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES)
    shown = {}
    for col in data["columns"]:
        assert col["n"] == active.filter(current_step=col["step"]).count()
        for cell in col["cells"]:
            key = (col["step"], cell["pieces"][0].current_workshop_id)
            shown[key] = [p.serial for p in cell["pieces"]]
            n = active.filter(current_step=key[0], current_workshop_id=key[1]).count()
            assert (cell["n"], cell["more"]) == (n, n - len(cell["pieces"]))
    assert shown == expected
    assert any(len(v) == 2 and k[1] is not None for k, v in shown.items())
    no_workshop = [c for col in data["columns"] for c in col["cells"]
                   if c["pieces"][0].pk == made["nowhere"].pk]
    assert no_workshop and no_workshop[0]["workshop"] == "No workshop"
    today = timezone.localdate()
    assert data["totals"] == {
        "n": active.count(), "late": active.filter(current_due__lt=today).count(),
        "at_risk": active.filter(current_due__gte=today,
                                 current_due__lte=today + dt.timedelta(days=2)).count(),
        "held": 1, "week": active.filter(current_due__gte=today,
                                         current_due__lte=today + dt.timedelta(days=6)).count()}


def test_board_chips_say_late_held_and_in_transit(h, as_user):
    made = _spread(h)
    body = as_user("manager").get(reverse("production:dashboard_board"),
                                  headers={"HX-Request": "true"}).content.decode()

    def chip(piece):
        start = (f'<span class="chip"><a href="/pieces/{piece.pk}/" class="serial">'
                 f'{piece.serial}</a>')
        match = re.search(re.escape(start) + r".*?</span>\n</li>", body, re.S)
        assert match, piece.serial
        return match.group(0)

    assert "badge on_hold" in chip(made["held"]) and made["held"].order.reference \
        in chip(made["held"])
    assert "badge in_transit" in chip(made["travelling"])
    late = Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES,
                                current_due__lt=timezone.localdate()).first()
    assert 'class="due is-late"' in chip(late) and "badge late" in chip(late)
    # The held panel says why, since when; the events link to the pieces.
    assert "Capacity exceeded" in body
    assert re.search(r'<a href="/pieces/\d+/">[^<]+</a>', body)


def _queries(client, url, **extra) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, **extra).status_code == 200
    return len(ctx.captured_queries)


# See test_pages.test_dashboard_and_list_query_counts_do_not_grow for what they are.
BUDGETS = {"dashboard": 15, "dashboard_board": 11, "pieces": 8}


@pytest.mark.parametrize("query", ["", "?step=setting", "?late=true", "?status=on_hold",
                                   "?client_id={client}", "?workshop_id={setter}"])
def test_query_counts_do_not_grow_with_pieces_nor_filters(h, as_user, query):
    c = as_user("manager")
    query = query.format(client=h.client.pk, setter=h.setter.pk)
    # Something to show under every filter (with nothing to show, a page asks less).
    late = h.launched_piece()
    order_plan_shift(order=late.order, days=-30)
    held = at(h, StepKind.SETTING, S.RECEIVED)
    piece_hold(actor=h.manager, piece_id=held.pk, reason="capacity")
    urls = {name: reverse(f"production:{name}") + query for name in BUDGETS}
    small = {name: _queries(c, url) for name, url in urls.items()}
    _spread(h)
    h.launched_order(quantity=10, client=h.other_client)
    large = {name: _queries(c, url) for name, url in urls.items()}
    assert large == small
    for name, count in large.items():
        assert count <= BUDGETS[name], (name, count)


def test_late_list_rows(h, as_user):
    made = _spread(h)
    body = as_user("manager").get(reverse("production:pieces"), {"late": "true"}) \
        .content.decode()
    late = Piece.objects.filter(status__in=ACTIVE_PIECE_STATUSES,
                                current_due__lt=timezone.localdate())
    assert f"{late.count()} pieces" in body
    for p in late:
        assert f'<a href="/pieces/{p.pk}/"><strong>{p.serial}</strong></a>' in body
    assert made["held"].serial not in body
    body = as_user("manager").get(reverse("production:pieces"),
                                  {"status": PieceStatus.IN_TRANSIT}).content.decode()
    row = body[body.index(made["travelling"].serial):]
    row = row[:row.index("</tr>")]
    assert f"→</span> {h.setter.name}" in row and "In transit" in row and "Setting" in row


@pytest.mark.parametrize("value", [None, "", "2", 2, "9"])
def test_quick_select_is_djangos_select(value):
    choices = [("", "All"), (1, "Alpha & Co"), (2, '<b>"Zed"</b>'), (3, "Ça brille")]
    attrs = {"id": "id_client_id", "aria-describedby": "x_help", "required": True,
             "disabled": False}
    assert QuickSelect(choices=choices).render("client_id", value, attrs=attrs) \
        == forms.Select(choices=choices).render("client_id", value, attrs=attrs)
    grouped = [("Group", [(1, "a"), (2, "b")]), (3, "c")]
    assert QuickSelect(choices=grouped).render("w", 2) \
        == forms.Select(choices=grouped).render("w", 2)
