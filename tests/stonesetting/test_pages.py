"""The setting pages per role: the plan page (drafting, lots, checking, reopening), the control
form (on the plan page and in the workshop portal, phone-first, with the camera), the panels
on the house piece and order pages, the house's list of plans, and what clients never see."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from etabli.materials.models import StoneAllocation
from etabli.stonesetting.models import PlanStatus, SettingControl, SettingGroup, SettingPlan
from tests.stonesetting.helpers import (
    back_from_setting,
    check,
    group,
    piece_at_setting,
    plan_with_lot,
    png,
)
from tests.stonesetting.support import stone_lot

pytestmark = pytest.mark.django_db


def page(piece) -> str:
    return reverse("stonesetting:plan", args=[piece.pk])


def msgs(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def login(client, user):
    client.force_login(user)
    return client


def ref() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# the plan page per role


def test_manager_drafts_with_lots_and_checks(h, client, at_setting):
    login(client, h.manager)
    body = client.get(page(at_setting)).content.decode()
    assert "No setting plan yet" in body and "Start the setting plan" in body
    assert "12 round diamonds 1.3 mm" in body  # what the order line says
    response = client.post(reverse("stonesetting:create", args=[at_setting.pk]),
                           {"create-client_ref": ref()})
    assert response.status_code == 302
    lot = stone_lot(h, count=50, carats="0.500")
    body = client.get(page(at_setting)).content.decode()
    assert lot.number in body and "50 free" in body  # the lot select lists free stones
    data = {"add-client_ref": ref(), "add-setting_type": "bead", "add-position": "band",
            "add-count": "12", "add-lot_id": lot.pk}
    response = client.post(reverse("stonesetting:group_add", args=[at_setting.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert "Group 1 added" in " ".join(msgs(response))
    # The same form again (a double tap): nothing twice.
    again = client.post(reverse("stonesetting:group_add", args=[at_setting.pk]), data)
    assert again.status_code == 302 and SettingGroup.objects.count() == 1
    assert StoneAllocation.objects.get().count == 12
    body = client.get(page(at_setting)).content.decode()
    assert "Reserved in the vault" in body and "Every group has its stones" in body
    assert "Mark the plan checked" in body and h.client.name in body
    response = client.post(reverse("stonesetting:check", args=[at_setting.pk]), {
        "check-client_ref": ref(), "check-stones_match": "on",
        "check-preparation_checked": "on"})
    assert response.status_code == 302
    body = client.get(page(at_setting)).content.decode()
    assert "Checked by" in body and "Reopen the plan" in body


def test_refusals_show_next_to_the_field(h, client, at_setting):
    login(client, h.manager)
    lot = stone_lot(h, count=5, carats="0.050")
    client.post(reverse("stonesetting:create", args=[at_setting.pk]),
                {"create-client_ref": ref()})
    response = client.post(reverse("stonesetting:group_add", args=[at_setting.pk]), {
        "add-client_ref": ref(), "add-setting_type": "bead", "add-position": "band",
        "add-count": "6", "add-lot_id": lot.pk})
    assert response.status_code == 400
    form = response.context["add_form"]
    assert "5 stones" in " ".join(form.errors["count"])
    response = client.post(reverse("stonesetting:group_add", args=[at_setting.pk]), {
        "add-client_ref": ref(), "add-setting_type": "bead", "add-position": "band",
        "add-count": "2"})
    assert response.status_code == 400
    assert "Say which stones" in " ".join(response.context["add_form"].errors["stone_type"])
    response = client.post(reverse("stonesetting:check", args=[at_setting.pk]), {
        "check-client_ref": ref(), "check-stones_match": "on",
        "check-preparation_checked": "on"})
    assert response.status_code == 400
    assert "no stones yet" in " ".join(response.context["check_form"].non_field_errors())
    assert not SettingGroup.objects.exists() and not StoneAllocation.objects.exists()


def test_check_form_asks_for_a_note_when_the_plan_departs_from_the_budget(h, client,
                                                                         at_setting):
    plan_with_lot(h, at_setting, count=14, carats="0.140")
    login(client, h.quality)
    body = client.get(page(at_setting)).content.decode()
    assert "Differs" in body and "Mark the plan checked" in body
    assert "Add a group of stones" not in body  # quality checks, does not draft
    response = client.post(reverse("stonesetting:check", args=[at_setting.pk]), {
        "check-client_ref": ref(), "check-stones_match": "on",
        "check-preparation_checked": "on"})
    assert response.status_code == 400
    assert "14 stones" in " ".join(response.context["check_form"].errors["note"])


def test_designer_drafts_without_lots(h, client, at_setting):
    login(client, h.designer)
    client.post(reverse("stonesetting:create", args=[at_setting.pk]),
                {"create-client_ref": ref()})
    body = client.get(page(at_setting)).content.decode()
    assert "Add a group of stones" in body and "From lot" not in body
    assert "A production manager chooses the lot" in body
    assert "Mark the plan checked" not in body


def test_edit_and_remove_a_group(h, client, at_setting):
    plan, lot = plan_with_lot(h, at_setting)
    g = plan.groups.get()
    login(client, h.manager)
    response = client.post(reverse("stonesetting:group_edit", args=[at_setting.pk, g.pk]), {
        f"g{g.pk}-client_ref": ref(), f"g{g.pk}-setting_type": "pave",
        f"g{g.pk}-position": "band", f"g{g.pk}-count": "12", f"g{g.pk}-lot_id": lot.pk,
        f"g{g.pk}-stone_type": "diamond", f"g{g.pk}-shape": "round",
        f"g{g.pk}-size_mm": "1.30", f"g{g.pk}-carats": "0.120",
        f"g{g.pk}-note": "Grains by hand"})
    assert response.status_code == 302, response.content.decode()[:2000]
    g.refresh_from_db()
    assert g.setting_type == "pave" and g.note == "Grains by hand"
    response = client.post(reverse("stonesetting:group_edit", args=[at_setting.pk, g.pk]), {
        f"g{g.pk}-client_ref": ref(), f"g{g.pk}-setting_type": "pave",
        f"g{g.pk}-position": "band", f"g{g.pk}-count": "x"})
    assert response.status_code == 400
    response = client.post(reverse("stonesetting:group_remove", args=[at_setting.pk, g.pk]))
    assert response.status_code == 302 and not SettingGroup.objects.exists()
    again = client.post(reverse("stonesetting:group_remove", args=[at_setting.pk, g.pk]))
    assert "no longer on the plan" in " ".join(msgs(again))
    assert client.post(reverse("stonesetting:group_edit",
                               args=[at_setting.pk, g.pk])).status_code == 404


def test_reopen_from_the_page(h, client, at_setting):
    plan_with_lot(h, at_setting)
    check(h, at_setting)
    login(client, h.manager)
    response = client.post(reverse("stonesetting:reopen", args=[at_setting.pk]),
                           {"reopen-client_ref": ref(), "reopen-reason": ""})
    assert response.status_code == 400 and response.context["reopen_form"].errors["reason"]
    response = client.post(reverse("stonesetting:reopen", args=[at_setting.pk]),
                           {"reopen-client_ref": ref(), "reopen-reason": "New stones."})
    assert response.status_code == 302
    assert SettingPlan.objects.get().status == PlanStatus.DRAFT


@pytest.mark.parametrize("who", ["sales", "logistics"])
def test_house_readers_see_the_plan_without_forms(h, client, at_setting, who):
    plan_with_lot(h, at_setting)
    body = login(client, getattr(h, who)).get(page(at_setting)).content.decode()
    assert "Stones and how they are set" in body and "Add a group" not in body
    assert "Mark the plan checked" not in body
    assert client.post(reverse("stonesetting:check", args=[at_setting.pk]), {
        "check-client_ref": ref(), "check-stones_match": "on",
        "check-preparation_checked": "on"}).status_code == 400
    assert SettingPlan.objects.get().status == PlanStatus.DRAFT


def test_the_setter_sees_the_plan_of_a_piece_coming_to_it(h, client, at_setting,
                                                          other_setter):
    plan, lot = plan_with_lot(h, at_setting)
    body = login(client, h.setter_member).get(page(at_setting)).content.decode()
    assert 'name="viewport"' in body and 'class="portal"' in body
    assert "rowcards setting-groups" in body and lot.number in body
    assert h.client.name not in body and "price" not in body.lower()
    assert "Add a group" not in body and "Start the setting plan" not in body
    _ws, galli = other_setter
    assert login(client, galli).get(page(at_setting)).status_code == 404
    assert login(client, h.polisher_member).get(page(at_setting)).status_code == 404
    assert login(client, h.client_contact).get(page(at_setting)).status_code == 404
    for name in ("create", "check", "reopen", "control"):
        assert login(client, h.client_contact).post(
            reverse(f"stonesetting:{name}", args=[at_setting.pk])).status_code == 404


# ---------------------------------------------------------------------------------------------
# the control, on the plan page and in the portal


@pytest.fixture
def returned(h, at_setting):
    plan_with_lot(h, at_setting)
    check(h, at_setting)
    return back_from_setting(h, at_setting)


def control_data(plan, **overrides):
    data = {"control-client_ref": ref(), "control-stones_secure": "yes",
            "control-notes": "All secure."}
    for g in plan.groups.all():
        data[f"control-count_{g.pk}"] = str(g.count)
    return data | overrides


def test_portal_control_form_is_phone_first_with_the_camera(h, client, returned, media):
    login(client, h.polisher_member)
    body = client.get(reverse("workshop:piece", args=[returned.pk])).content.decode()
    assert "Control on return from the setter" in body
    assert 'accept="image/*"' in body and 'capture="environment"' in body and "multiple" in body
    assert 'inputmode="numeric"' in body and 'name="viewport"' in body
    # No start button works before the control: the gate says so.
    plan = SettingPlan.objects.get()
    data = control_data(plan) | {"next": reverse("workshop:piece", args=[returned.pk]),
                                 "control-photos": [png("a.png"), png("b.png")]}
    response = client.post(reverse("stonesetting:control", args=[returned.pk]), data)
    assert response.status_code == 302
    assert response["Location"] == reverse("workshop:piece", args=[returned.pk])
    control = SettingControl.objects.get()
    assert control.passed and control.photos.count() == 2
    assert "passed" in " ".join(msgs(response))
    body = client.get(reverse("workshop:piece", args=[returned.pk])).content.decode()
    assert "setting-control-form" not in body and "Passed" in body
    # A second tap on the same form: nothing twice.
    again = client.post(reverse("stonesetting:control", args=[returned.pk]), data)
    assert again.status_code == 302 and SettingControl.objects.count() == 1


def test_a_failed_control_from_the_portal(h, client, returned):
    plan = SettingPlan.objects.get()
    g = plan.groups.get()
    login(client, h.polisher_member)
    response = client.post(reverse("stonesetting:control", args=[returned.pk]),
                           control_data(plan, **{f"control-count_{g.pk}": "11"}))
    assert response.status_code == 302
    assert "failed" in " ".join(msgs(response))
    returned.refresh_from_db()
    assert returned.status == "on_hold"


def test_bad_control_input_is_shown_next_to_the_count(h, client, returned):
    plan = SettingPlan.objects.get()
    g = plan.groups.get()
    login(client, h.polisher_member)
    response = client.post(reverse("stonesetting:control", args=[returned.pk]),
                           control_data(plan, **{f"control-count_{g.pk}": "-3"}))
    assert response.status_code == 400
    assert response.context["control_form"].errors[f"count_{g.pk}"]
    response = client.post(reverse("stonesetting:control", args=[returned.pk]),
                           control_data(plan, **{"control-stones_secure": ""}))
    assert response.status_code == 400
    # From the portal, the refusal comes back as a message on the piece page.
    response = client.post(reverse("stonesetting:control", args=[returned.pk]),
                           control_data(plan, **{f"control-count_{g.pk}": "-3",
                                                 "next": "/workshop/"}))
    assert response.status_code == 302 and "Control not recorded" in " ".join(msgs(response))
    assert not SettingControl.objects.exists()


def test_the_manager_records_breakage_from_the_plan_page(h, client, at_setting):
    from tests.stonesetting.helpers import issue_stones_to_setter

    plan, _lot = plan_with_lot(h, at_setting)
    check(h, at_setting)
    issue_stones_to_setter(h, at_setting)
    back_from_setting(h, at_setting)
    g = plan.groups.get()
    login(client, h.manager)
    body = client.get(page(at_setting)).content.decode()
    assert "Stones broken or lost" in body
    response = client.post(reverse("stonesetting:control", args=[at_setting.pk]), control_data(
        plan, **{"control-breakage_group": g.pk, "control-breakage_count": "1",
                 "control-breakage_reason": "Spare chipped"}))
    assert response.status_code == 302
    assert SettingControl.objects.get().stone_entries.count() == 1
    # The polisher's form offers no breakage: the ledger is the vault's.
    body = client.get(page(at_setting)).content.decode()
    assert "1 broken" in body


def test_polisher_form_has_no_breakage_fields(h, client, returned):
    body = login(client, h.polisher_member).get(page(returned)).content.decode()
    assert "Record the control" in body and "Stones broken or lost" not in body


def test_setter_portal_shows_the_plan_as_cards(h, client, at_setting):
    plan_with_lot(h, at_setting)
    check(h, at_setting)
    h.advance(at_setting)  # sent to the setter
    body = login(client, h.setter_member).get(
        reverse("workshop:piece", args=[at_setting.pk])).content.decode()
    assert "setting-plan-cards" in body and "Checked by the house" in body
    assert re.search(r"<strong>12</strong> × diamond", body)
    assert h.client.name not in body


# ---------------------------------------------------------------------------------------------
# panels on shared pages, the list


def test_house_piece_and_order_panels(h, client, returned):
    login(client, h.manager)
    body = client.get(reverse("production:piece", args=[returned.pk])).content.decode()
    assert "Stone setting" in body and "its control" in body and page(returned) in body
    body = client.get(reverse("orders:detail", args=[returned.order_id])).content.decode()
    assert "setting-panel" in body and returned.serial in body


def test_clients_see_nothing_of_setting(h, client, returned):
    login(client, h.client_contact)
    for url in (reverse("production:piece", args=[returned.pk]),
                reverse("portal:order", args=[returned.order_id])):
        response = client.get(url)
        if response.status_code == 200:
            body = response.content.decode()
            assert "setting-panel" not in body and "Setting plan" not in body


def test_plans_list_for_the_house_with_a_query_budget(h, client, django_assert_max_num_queries):
    login(client, h.manager)
    piece = piece_at_setting(h)
    plan_with_lot(h, piece)
    url = reverse("stonesetting:plans")
    with django_assert_max_num_queries(12):
        body = client.get(url).content.decode()
    assert piece.serial in body
    for _i in range(3):
        other = piece_at_setting(h)
        services_plan = plan_with_lot(h, other)[0]
        assert services_plan
    with django_assert_max_num_queries(12):
        client.get(url)
    assert login(client, h.setter_member).get(url).status_code == 404
    assert login(client, h.client_contact).get(url).status_code == 404


def test_the_plan_page_query_budget_does_not_grow_with_groups(h, client, at_setting,
                                                              django_assert_max_num_queries):
    lot = stone_lot(h, count=200, carats="2.000")
    from etabli.stonesetting import services

    services.setting_plan_create(actor=h.manager, piece_id=at_setting.pk,
                                 groups=[group(count=2, lot_id=lot.pk)])
    login(client, h.manager)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(page(at_setting))
    for _i in range(4):
        services.setting_group_add(actor=h.manager, piece_id=at_setting.pk,
                                   **group(count=2, lot_id=lot.pk))
    with CaptureQueriesContext(connection) as large:
        client.get(page(at_setting))
    assert len(large.captured_queries) == len(small.captured_queries)
