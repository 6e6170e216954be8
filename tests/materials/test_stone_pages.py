"""The house's stone pages: lots, receiving a parcel, a lot's balances, allocating, issuing to
a setter, breakage, breakage rates — for every role."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from etabli.materials import services, stone_services
from etabli.materials.models import (
    AllocationStatus,
    EntryKind,
    MaterialSlip,
    SlipKind,
    StoneAllocation,
    StoneEntry,
    StoneLot,
)

pytestmark = pytest.mark.django_db

D = Decimal
KP = ("The diamonds herein invoiced have been purchased from legitimate sources not involved "
      "in funding conflict and in compliance with United Nations resolutions.")


def make_lot(h, **overrides) -> StoneLot:
    data = {"stone_type": "diamond", "shape": "round", "count": 50, "carats": "5.000",
            "size_mm": "2.0", "colour": "G", "clarity": "VS1", "supplier": "Diamants SA",
            "certificate_lab": "GIA", "certificate_number": "2141438171",
            "compliance_statement": KP, "price_per_ct": "850.00"} | overrides
    return stone_services.stone_lot_receive(actor=h.manager, **data)


def login(client, user):
    client.force_login(user)
    return client


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def ref() -> str:
    return uuid.uuid4().hex


def setting_story(h):
    """A lot, 12 stones reserved for a piece and issued to the setter, who receives them,
    breaks one, sets ten and sends one back unused; the house receives the return."""
    piece = h.launched_piece()
    lot = make_lot(h)
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=12, carats="1.200")
    slip = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                   operation="setting", allocation_ids=[alloc.pk])
    line = slip.lines.get()
    services.material_slip_receive(actor=h.setter_member, slip_id=slip.pk,
                                   lines=[{"line_id": line.pk, "count": 12, "carats": "1.200"}])
    stone_services.stone_breakage_record(actor=h.setter_member, workshop_id=h.setter.pk,
                                         lot_id=lot.pk, count=1, carats="0.100",
                                         reason="Chipped while closing the prongs")
    ret = services.material_return(
        actor=h.setter_member, issue_id=slip.pk, closes_issue=True,
        stones=[{"lot_id": lot.pk, "count": 10, "carats": "1.000", "piece_id": piece.pk},
                {"lot_id": lot.pk, "count": 1, "carats": "0.100"}])
    services.material_slip_receive(
        actor=h.manager, slip_id=ret.pk,
        lines=[{"line_id": ln.pk, "count": ln.stone_count, "carats": str(ln.carats_sent)}
               for ln in ret.lines.all()])
    return piece, lot, slip


# ---------------------------------------------------------------------------------------------
# who sees what


HOUSE_LOT_ROLES = ("admin", "manager", "sales", "logistics", "designer", "quality")


def test_lot_pages_by_role(house_setup, client):
    h = house_setup
    lot = make_lot(h)
    pages = [reverse("stones:lots"), reverse("stones:lot", args=[lot.pk]),
             reverse("stones:breakage")]
    for name in HOUSE_LOT_ROLES:
        login(client, getattr(h, name))
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, (name, url)
        assert lot.number in client.get(pages[0]).content.decode()
    for user in (h.setter_member, h.caster_member, h.client_contact):
        login(client, user)
        for url in pages + [reverse("stones:receive")]:
            assert client.get(url).status_code == 404, (user.username, url)
    client.logout()
    assert client.get(pages[0]).status_code == 302


def test_stones_in_the_nav_of_house_roles_only(house_setup, client):
    h = house_setup
    for name in HOUSE_LOT_ROLES:
        body = login(client, getattr(h, name)).get(reverse("production:pieces")).content
        assert reverse("stones:lots").encode() in body, name
    body = login(client, h.setter_member).get(reverse("workshop:queue")).content
    assert reverse("stones:lots").encode() not in body
    assert reverse("workshop_materials:overview").encode() in body


def test_only_the_vault_keepers_write(house_setup, client):
    h = house_setup
    lot = make_lot(h)
    piece = h.launched_piece()
    for user in (h.sales, h.logistics, h.designer, h.quality, h.setter_member):
        login(client, user)
        assert client.get(reverse("stones:receive")).status_code == 404
        response = client.post(reverse("stones:allocate", args=[lot.pk]),
                               {"serial": piece.serial, "count": 1, "carats": "0.100",
                                "client_ref": ref()})
        assert response.status_code == 404
        page = client.get(reverse("stones:lot", args=[lot.pk]))
        if page.status_code == 200:
            assert b"Allocate to a piece" not in page.content
    assert not StoneAllocation.objects.exists()


def test_price_per_carat_for_price_roles_only(house_setup, client):
    h = house_setup
    lot = make_lot(h)
    url = reverse("stones:lot", args=[lot.pk])
    assert b"850.00" in login(client, h.manager).get(url).content
    assert b"850.00" in login(client, h.sales).get(url).content
    for user in (h.logistics, h.designer, h.quality):
        body = login(client, user).get(url).content
        assert b"850.00" not in body and b"Price per carat" not in body


# ---------------------------------------------------------------------------------------------
# the list


def test_list_figures_and_filters(house_setup, client):
    h = house_setup
    piece = h.launched_piece()
    diamonds = make_lot(h)
    ruby = make_lot(h, stone_type="ruby", shape="oval", count=4, carats="2.400", size_mm="",
                    sieve="+6.5-7", compliance_statement="", certificate_lab="",
                    certificate_number="", colour="pigeon blood")
    stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=ruby.pk, count=4,
                                  carats="2.400")
    stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=diamonds.pk,
                                  count=12, carats="1.200")
    login(client, h.manager)
    body = client.get(reverse("stones:lots")).content.decode()
    assert diamonds.number in body and ruby.number in body
    # 50 in the vault, 12 reserved, 38 free
    assert "12 · 1.200 ct" in body and "<strong>38</strong> · 3.800 ct" in body
    body = client.get(reverse("stones:lots"), {"stone_type": "ruby"}).content.decode()
    assert ruby.number in body and diamonds.number not in body
    body = client.get(reverse("stones:lots"), {"free": "on"}).content.decode()
    assert diamonds.number in body and ruby.number not in body
    body = client.get(reverse("stones:lots"), {"certified": "yes"}).content.decode()
    assert diamonds.number in body and ruby.number not in body
    body = client.get(reverse("stones:lots"), {"q": "pigeon"}).content.decode()
    assert ruby.number in body and diamonds.number not in body
    response = client.get(reverse("stones:lots"), {"stone_type": "glass", "page": "x"})
    assert response.status_code == 200


def test_list_query_budget(house_setup, client, django_assert_max_num_queries):
    h = house_setup
    piece = h.launched_piece()
    for _ in range(3):
        lot = make_lot(h)
        stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                      count=1, carats="0.100")
    login(client, h.manager)
    client.get(reverse("stones:lots"))
    with django_assert_max_num_queries(12):
        client.get(reverse("stones:lots"))
    for _ in range(12):
        make_lot(h)
    with django_assert_max_num_queries(12):
        client.get(reverse("stones:lots"))


# ---------------------------------------------------------------------------------------------
# receive a lot


def receive_data(**overrides) -> dict:
    return {"stone_type": "diamond", "shape": "round", "count": "20", "carats": "2,000",
            "size_mm": "1.8", "colour": "F", "clarity": "VVS2", "supplier": "Diamants SA",
            "supplier_invoice": "F-2026-118", "origin": "Botswana",
            "compliance_statement": KP, "price_per_ct": "900", "client_ref": ref()} | overrides


def test_receive_a_lot(house_setup, client):
    h = house_setup
    login(client, h.manager)
    page = client.get(reverse("stones:receive"))
    assert page.status_code == 200 and b"Kimberley Process" in page.content
    data = receive_data()
    response = client.post(reverse("stones:receive"), data)
    lot = StoneLot.objects.get()
    assert response.status_code == 302 and response.url == reverse("stones:lot", args=[lot.pk])
    assert (lot.count_received, lot.carats_received, lot.price_per_ct) == (20, D("2.000"),
                                                                          D("900.00"))
    # The same form submitted twice receives one lot.
    again = client.post(reverse("stones:receive"), data)
    assert again.status_code == 302 and StoneLot.objects.count() == 1
    assert "Already recorded: nothing was done twice." in msgs(again)


@pytest.mark.parametrize(("overrides", "field_error"), [
    ({"compliance_statement": ""}, "Kimberley Process / System of Warranties"),
    ({"size_mm": "", "sieve": ""}, "size in millimetres or their sieve"),
    ({"count": "-3"}, "between 1 and"),
    ({"carats": "abc"}, "is not a weight in carats"),
    ({"carats": "1.0004"}, "3 decimals"),
    ({"certificate_lab": "GIA", "certificate_number": ""}, "both a laboratory and a number"),
    ({"stone_type": ""}, "This field is required"),
])
def test_receive_errors_are_shown_and_nothing_written(house_setup, client, overrides,
                                                      field_error):
    h = house_setup
    login(client, h.manager)
    response = client.post(reverse("stones:receive"), receive_data(**overrides))
    assert response.status_code == 400
    assert field_error in response.content.decode()
    assert not StoneLot.objects.exists()


# ---------------------------------------------------------------------------------------------
# one lot


def test_lot_balances_add_up_after_the_whole_story(house_setup, client):
    h = house_setup
    piece, lot, slip = setting_story(h)
    login(client, h.manager)
    body = client.get(reverse("stones:lot", args=[lot.pk])).content.decode()
    assert "Adds up to what was received: 50 stones, 5.000 ct." in body
    for place, figures in (("House vault", "<td>39</td><td>3.900</td>"),
                           ("In pieces", "<td>10</td><td>1.000</td>"),
                           ("Broken stones", "<td>1</td><td>0.100</td>")):
        assert f"<td>{place}</td>{figures}" in body
    assert "Chipped while closing the prongs" in body
    assert piece.serial in body and slip.number in body
    assert "Set in the piece" not in body or "Issued to the setter" not in body


def test_allocate_release(house_setup, client):
    h = house_setup
    lot = make_lot(h)
    piece = h.launched_piece()
    login(client, h.manager)
    url = reverse("stones:allocate", args=[lot.pk])
    response = client.post(url, {"serial": "P00-NOPE", "count": "2", "carats": "0.2",
                                 "client_ref": ref()})
    assert response.status_code == 400 and "No piece with serial" in response.content.decode()
    response = client.post(url, {"serial": piece.serial, "count": "51", "carats": "5.1",
                                 "client_ref": ref()})
    assert response.status_code == 400
    assert "free in the vault" in response.content.decode()
    assert not StoneAllocation.objects.exists()
    data = {"serial": piece.serial.lower(), "count": "12", "carats": "1.200",
            "client_ref": ref()}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # a second tap
    alloc = StoneAllocation.objects.get()
    assert (alloc.piece_id, alloc.count, alloc.status) == (piece.pk, 12, "reserved")
    release = reverse("stones:release", args=[lot.pk, alloc.pk])
    assert client.post(release).status_code == 302
    alloc.refresh_from_db()
    assert alloc.status == AllocationStatus.RELEASED
    response = client.post(release)
    assert "Only reserved stones can be released" in " ".join(msgs(response))
    other = make_lot(h)
    assert client.post(reverse("stones:release", args=[other.pk, alloc.pk])).status_code == 404


def test_issue_to_a_setter(house_setup, client):
    h = house_setup
    lot = make_lot(h)
    piece = h.launched_piece()
    alloc = stone_services.stone_allocate(actor=h.manager, piece_id=piece.pk, lot_id=lot.pk,
                                          count=12, carats="1.200")
    login(client, h.manager)
    url = reverse("stones:issue", args=[lot.pk])
    page = client.get(reverse("stones:lot", args=[lot.pk])).content.decode()
    assert f"{piece.serial}: 12 stones, 1.200 ct" in page
    response = client.post(url, {"workshop_id": h.setter.pk, "client_ref": ref()})
    assert response.status_code == 400
    assert "Tick the reserved stones" in response.content.decode()
    response = client.post(url, {"workshop_id": h.setter.pk, "count": "40", "carats": "4",
                                 "client_ref": ref()})
    assert response.status_code == 400
    assert "not reserved for a piece" in response.content.decode()
    assert not MaterialSlip.objects.exists()
    data = {"workshop_id": h.setter.pk, "allocation_ids": [alloc.pk], "count": "3",
            "carats": "0.300", "client_ref": ref()}
    assert client.post(url, data).status_code == 302
    again = client.post(url, data)
    assert "Already recorded: nothing was done twice." in msgs(again)
    slip = MaterialSlip.objects.get()
    assert (slip.kind, slip.workshop_id, slip.operation) == (SlipKind.ISSUE, h.setter.pk,
                                                             "setting")
    assert sorted(slip.lines.values_list("stone_count", flat=True)) == [3, 12]
    alloc.refresh_from_db()
    assert alloc.status == AllocationStatus.ISSUED


def test_house_records_a_breakage(house_setup, client):
    h = house_setup
    piece, lot, slip = setting_story(h)
    # One more stone issued loose and received by the setter.
    loose = services.material_issue(actor=h.manager, workshop_id=h.setter.pk,
                                    operation="setting",
                                    stones=[{"lot_id": lot.pk, "count": 2, "carats": "0.2"}])
    services.material_slip_receive(actor=h.setter_member, slip_id=loose.pk,
                                   lines=[{"line_id": loose.lines.get().pk, "count": 2,
                                           "carats": "0.200"}])
    login(client, h.manager)
    url = reverse("stones:record_breakage", args=[lot.pk])
    before = StoneEntry.objects.count()
    response = client.post(url, {"workshop_id": h.setter.pk, "count": "1", "carats": "0.1",
                                 "reason": "  ", "client_ref": ref()})
    assert response.status_code == 400 and StoneEntry.objects.count() == before
    response = client.post(url, {"workshop_id": h.setter.pk, "count": "5", "carats": "0.5",
                                 "reason": "Dropped", "client_ref": ref()})
    assert response.status_code == 400 and "cannot leave it" in response.content.decode()
    data = {"workshop_id": h.setter.pk, "count": "1", "carats": "0.100", "reason": "Lost down "
            "the bench peg", "lost": "on", "client_ref": ref()}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert StoneEntry.objects.filter(kind=EntryKind.LOST).count() == 1


def test_breakage_rates_page(house_setup, client):
    h = house_setup
    setting_story(h)
    login(client, h.manager)
    body = client.get(reverse("stones:breakage")).content.decode()
    assert "Sertissage Martin" in body and "8.33 %" in body
    response = client.get(reverse("stones:breakage"), {"start": "2001-01-01",
                                                       "end": "2001-12-31"})
    assert "No stones received or broken" in response.content.decode()
    response = client.get(reverse("stones:breakage"), {"start": "2030-01-01",
                                                       "end": "2001-12-31"})
    assert response.status_code == 200
    assert "before its start" in response.content.decode()
    assert "8.33 %" in response.content.decode()  # a bad period shows all time
