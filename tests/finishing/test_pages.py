"""Finishing pages: the panels on the workshop's and the house's piece pages, the operation
forms behind them, waivers, the assay office's step, and the hallmark exemptions page."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from etabli.finishing.models import FinishingRecord, HallmarkExemption
from etabli.production.models import PieceStatus, StepStatus
from tests.finishing.builders import (
    ALL_OPERATIONS,
    assay_office,
    finishing_piece,
    open_run,
    weigh,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def h(house_setup):
    return house_setup


@pytest.fixture
def piece(h):
    return finishing_piece(h, operations=ALL_OPERATIONS)


def login(client, user):
    client.force_login(user)
    return client


def page(client, user, url, status=200):
    response = login(client, user).get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode() if status == 200 else response


def record_url(piece, op):
    return reverse("finishing:record", args=[piece.pk, op])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def post_record(client, user, piece, op, data, ref="ref-1", nxt=None):
    body = {f"{op}-{k}": v for k, v in data.items()} | {f"{op}-client_ref": ref}
    if nxt:
        body["next"] = nxt
    return login(client, user).post(record_url(piece, op), body)


# ---------------------------------------------------------------------------------------------
# the workshop's piece page


def test_the_workshop_panel_lists_the_operations_with_a_form_each(client, h, piece):
    html = page(client, h.polisher_member, reverse("workshop:piece", args=[piece.pk]))
    assert "Finishing work" in html
    for op, label in (("polishing", "Polishing"), ("plating", "Rhodium plating"),
                      ("engraving", "Engraving"), ("serial_engraving", "Serial number"),
                      ("hallmarking", "Hallmarking"), ("cleaning", "Final cleaning")):
        assert label in html
        assert f'action="{record_url(piece, op)}"' in html
    assert '<span class="count" title="still to record">6</span>' in html
    assert "Hallmark required" in html  # not weighed: judged required
    assert f'value="{piece.serial}"' in html  # the serial engraving's default
    assert 'inputmode="decimal"' in html  # the plating thickness on a phone keyboard
    assert "inspection" not in html.lower().split("finishing work")[1].split("</section>")[0]


def test_the_workshop_panel_before_the_step_starts(client, h):
    p = finishing_piece(h, started=False)
    html = page(client, h.polisher_member, reverse("workshop:piece", args=[p.pk]))
    assert "Start the step to record each operation" in html
    assert "finishing-form" not in html


def test_the_panel_is_only_where_the_finishing_is_done(client, h):
    p = h.walk(h.launched_piece(), to="setting", arrive=True)
    html = page(client, h.setter_member, reverse("workshop:piece", args=[p.pk]))
    assert "Finishing work" not in html


def test_recording_from_the_panel_comes_back_to_the_piece(client, h, piece):
    back = reverse("workshop:piece", args=[piece.pk])
    response = post_record(client, h.polisher_member, piece, "polishing",
                           {"finish": "satin"}, nxt=back)
    assert response.status_code == 302 and response["Location"] == back
    assert "Polishing recorded" in " ".join(messages_of(response))
    assert FinishingRecord.objects.get().finish == "satin"
    again = post_record(client, h.polisher_member, piece, "polishing", {"finish": "satin"},
                        nxt=back)
    assert "Already recorded" in " ".join(messages_of(again))
    html = page(client, h.polisher_member, back)
    assert "✓ Polishing" in html and "Satin" in html
    assert f'action="{record_url(piece, "polishing")}"' not in html


def test_a_refusal_is_shown_next_to_its_field(client, h, piece):
    response = post_record(client, h.polisher_member, piece, "plating",
                           {"thickness_um": "0.25"})
    html = response.content.decode()
    assert response.status_code == 200
    field = html.split('id="id_plating-thickness_um"')[1].split("</div>")[0]
    assert "only for white metal" in field
    assert not FinishingRecord.objects.exists()
    response = post_record(client, h.polisher_member, piece, "engraving",
                           {"text": "x" * 41, "position": "back"})
    assert response.status_code == 200 and "at most 40 characters" in response.content.decode()


def test_an_outside_next_is_ignored(client, h, piece):
    response = post_record(client, h.polisher_member, piece, "cleaning", {"method": "steam"},
                           nxt="https://evil.example/")
    assert response["Location"] == reverse("workshop:piece", args=[piece.pk])


def test_a_refused_hallmark_holds_the_piece(client, h, piece):
    response = post_record(client, h.polisher_member, piece, "hallmarking",
                           {"status": "refused", "reason": "Touchstone 740"})
    assert response.status_code == 302
    assert "on hold" in " ".join(messages_of(response))
    piece.refresh_from_db()
    assert piece.status == PieceStatus.ON_HOLD


def test_the_record_page_on_its_own(client, h, piece):
    html = page(client, h.polisher_member, record_url(piece, "hallmarking"))
    assert "Hallmark required" in html and 'value="750"' in html and "readonly" in html
    assert 'class="portal"' in html
    page(client, h.polisher_member, record_url(piece, "varnishing"), 404)


@pytest.mark.parametrize("who", ["setter_member", "client_contact", "designer"])
def test_record_pages_outside_scope_are_404(client, h, piece, who):
    page(client, getattr(h, who), record_url(piece, "polishing"), 404)
    response = post_record(client, getattr(h, who), piece, "polishing", {"finish": "bright"})
    assert response.status_code == 404
    assert not FinishingRecord.objects.exists()


def test_sales_sees_the_refusal_on_the_form(client, h, piece):
    response = post_record(client, h.sales, piece, "polishing", {"finish": "bright"})
    assert response.status_code == 200
    assert "cannot record finishing work" in response.content.decode()


def test_once_all_is_recorded_the_step_completes(client, h):
    p = finishing_piece(h, operations=["polishing", "cleaning"])
    post_record(client, h.polisher_member, p, "polishing", {"finish": "bright"}, ref="a")
    html = page(client, h.polisher_member, reverse("workshop:piece", args=[p.pk]))
    assert "Every operation is recorded" not in html
    post_record(client, h.polisher_member, p, "cleaning", {"method": "hand"}, ref="b")
    html = page(client, h.polisher_member, reverse("workshop:piece", args=[p.pk]))
    assert "Every operation is recorded" in html


# ---------------------------------------------------------------------------------------------
# the house's piece page


def test_the_manager_sees_records_requirement_waiver_and_assay_button(client, h):
    assay_office(h)
    p = finishing_piece(h, operations=["polishing", "plating", "cleaning"])
    post_record(client, h.polisher_member, p, "polishing", {"finish": "brushed"})
    html = page(client, h.manager, reverse("production:piece", args=[p.pk]))
    assert 'id="h-finishing"' in html
    assert "Brushed" in html and "Polissage Leroy" in html
    assert "Hallmark required" in html and "No step of the route hallmarks" in html
    assert reverse("finishing:assay_step", args=[p.pk]) in html
    assert reverse("finishing:waive", args=[p.pk]) in html
    assert f'action="{record_url(p, "plating")}"' in html  # the manager may record too


@pytest.mark.parametrize("who", ["sales", "quality"])
def test_other_house_staff_read_the_panel(client, h, piece, who):
    post_record(client, h.polisher_member, piece, "cleaning", {"method": "steam"})
    html = page(client, getattr(h, who), reverse("production:piece", args=[piece.pk]))
    assert 'id="h-finishing"' in html and "Ultrasonic" not in html and "Steam" in html
    assert "finishing:waive" not in html and "/waive/" not in html
    assert "/assay-step/" not in html and "finishing-form" not in html


def test_no_panel_before_finishing(client, h):
    p = h.walk(h.launched_piece(), to="setting")
    html = page(client, h.manager, reverse("production:piece", args=[p.pk]))
    assert 'id="h-finishing"' not in html


def test_clients_do_not_get_the_panel(client, h, piece):
    response = login(client, h.client_contact).get(reverse("production:piece",
                                                           args=[piece.pk]))
    assert 'id="h-finishing"' not in response.content.decode()


def test_an_exempt_piece_says_so(client, h, piece):
    weigh(h, piece, "2.500")
    html = page(client, h.manager, reverse("production:piece", args=[piece.pk]))
    assert "Exempt from the guarantee mark" in html and "2.500 g" in html
    assert "/assay-step/" not in html


def test_house_piece_page_query_budget(client, h, piece, django_assert_max_num_queries):
    url = reverse("production:piece", args=[piece.pk])
    login(client, h.manager).get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    budget = len(few)  # read now: the log it reads from moves on
    for op, data in (("polishing", {"finish": "bright"}), ("cleaning", {"method": "steam"}),
                     ("serial_engraving", {"text": ""}),
                     ("engraving", {"text": "A", "position": "back"})):
        post_record(client, h.polisher_member, piece, op, data, ref=op)
    login(client, h.manager)
    with django_assert_max_num_queries(budget):
        client.get(url)


# ---------------------------------------------------------------------------------------------
# waivers and the assay office


def test_the_manager_waives_plating(client, h, piece):
    url = reverse("finishing:waive", args=[piece.pk])
    html = page(client, h.manager, url)
    assert '<option value="plating">Rhodium plating</option>' in html
    ref = re.search(r'name="client_ref" value="([0-9a-f]+)"', html).group(1)
    response = client.post(url, {"operation": "plating", "reason": "", "client_ref": ref})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = client.post(url, {"operation": "plating", "reason": "Yellow gold",
                                 "client_ref": ref})
    assert response.status_code == 302
    assert FinishingRecord.objects.get().status == "waived"
    for who in (h.polisher_member, h.sales, h.quality):
        page(client, who, url, 404)


def test_the_manager_adds_the_assay_office(client, h):
    office, _member = assay_office(h)
    p = finishing_piece(h, operations=["polishing"])
    url = reverse("finishing:assay_step", args=[p.pk])
    assert login(client, h.sales).post(url, {}).status_code == 404
    response = login(client, h.manager).post(url, {"workshop_id": office.pk})
    assert response.status_code == 302
    assert "Bureau de garantie added" in " ".join(messages_of(response))
    assert p.runs.filter(operations=["hallmarking"], workshop=office).exists()
    response = client.post(url, {"workshop_id": office.pk})
    assert "already has a hallmarking step" in " ".join(messages_of(response))
    assert client.get(url).status_code == 405


# ---------------------------------------------------------------------------------------------
# hallmark exemptions


HALLMARKS = "/finishing/hallmarks/"


@pytest.mark.parametrize("who", ["admin", "manager", "sales", "designer", "quality",
                                 "logistics"])
def test_house_staff_see_the_exemptions_and_the_menu_entry(client, h, who):
    html = page(client, getattr(h, who), HALLMARKS)
    assert "Hallmark exemptions" in html and "in force" in html
    assert "7.78" in html and "30 g" in html and "524 bis" in html
    assert f'href="{HALLMARKS}"' in html  # the nav entry
    manages = who in ("admin", "manager")
    assert ('name="action" value="create"' in html) is manages


@pytest.mark.parametrize("who", ["polisher_member", "client_contact"])
def test_workshops_and_clients_do_not(client, h, who):
    page(client, getattr(h, who), HALLMARKS, 404)
    html = page(client, getattr(h, who), "/workshop/" if who == "polisher_member"
                else "/portal/")
    assert HALLMARKS not in html


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(HALLMARKS)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_manager_edits_adds_and_removes(client, h):
    fr_gold = HallmarkExemption.objects.get(country="FR", metal="gold")
    login(client, h.manager)
    response = client.post(HALLMARKS, {"action": "update", "exemption_id": fr_gold.pk,
                                       f"x{fr_gold.pk}-under_weight_g": "0",
                                       f"x{fr_gold.pk}-legal_reference": "CGI"})
    assert response.status_code == 200
    assert "more than 0 g" in response.content.decode()
    response = client.post(HALLMARKS, {"action": "update", "exemption_id": fr_gold.pk,
                                       f"x{fr_gold.pk}-under_weight_g": "2,5",
                                       f"x{fr_gold.pk}-legal_reference": "CGI"})
    assert response.status_code == 302
    fr_gold.refresh_from_db()
    assert str(fr_gold.under_weight_g) == "2.500" and fr_gold.legal_reference == "CGI"
    response = client.post(HALLMARKS, {"action": "create", "new-country": "CH",
                                       "new-metal": "gold", "new-under_weight_g": "1",
                                       "new-legal_reference": ""})
    assert response.status_code == 302
    response = client.post(HALLMARKS, {"action": "create", "new-country": "CH",
                                       "new-metal": "gold", "new-under_weight_g": "1"})
    assert response.status_code == 200 and "already has an exemption" in \
        response.content.decode()
    ch = HallmarkExemption.objects.get(country="CH")
    response = client.post(HALLMARKS, {"action": "delete", "exemption_id": ch.pk})
    assert response.status_code == 302 and not HallmarkExemption.objects.filter(
        country="CH").exists()
    response = client.post(HALLMARKS, {"action": "delete", "exemption_id": ch.pk})
    assert "No hallmark exemption" in " ".join(messages_of(response))
    assert client.post(HALLMARKS, {"action": "delete", "exemption_id": "x"}).status_code \
        == 404
    assert client.post(HALLMARKS, {"action": "burn"}).status_code == 404


def test_only_production_posts_to_the_exemptions_page(client, h):
    row = HallmarkExemption.objects.get(country="FR", metal="gold")
    response = login(client, h.sales).post(HALLMARKS, {"action": "delete",
                                                       "exemption_id": row.pk})
    assert response.status_code == 404
    assert HallmarkExemption.objects.filter(pk=row.pk).exists()


def test_exemptions_page_query_budget(client, h, django_assert_max_num_queries):
    login(client, h.manager).get(HALLMARKS)
    with CaptureQueriesContext(connection) as few:
        client.get(HALLMARKS)
    budget = len(few)  # read now: the log it reads from moves on
    for metal in ("gold", "silver", "platinum", "palladium"):
        HallmarkExemption.objects.create(country="CH", metal=metal, under_weight_g=1)
    with django_assert_max_num_queries(budget):
        client.get(HALLMARKS)


def test_a_step_not_started_shows_no_forms_to_the_manager(client, h):
    p = finishing_piece(h, operations=["polishing"], started=False)
    assert open_run(p).status == StepStatus.RECEIVED
    html = page(client, h.manager, reverse("production:piece", args=[p.pk]))
    assert "finishing-form" not in html and "Not recorded yet" in html
