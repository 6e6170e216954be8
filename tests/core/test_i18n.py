"""English and French: the French catalogue is complete and compiled, and pages, service
refusals and API errors speak the user's language."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

import etabli
from etabli.core.errors import Conflict, TransitionNotAllowed
from etabli.orders.services import order_launch
from etabli.production.state import refusal
from tests.apiclient import API, ApiClient, assert_error

LOCALE = Path(etabli.__file__).parent / "locale" / "fr" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def _po_entries(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr (str or list), flags."""
    entries: list[dict] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        entry: dict = {"flags": set(), "msgctxt": None, "msgid_plural": None, "obsolete": False}
        key = None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry["obsolete"] = True
            elif line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):  # continuation of the previous string
                if isinstance(key, tuple):
                    entry["msgstr"][key[1]] += ast.literal_eval(line)
                else:
                    entry[key] += ast.literal_eval(line)
            else:
                match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (".*")$',
                                 line)
                assert match, f"cannot read this line of {path.name}: {line!r}"
                value = ast.literal_eval(match.group(3))
                if match.group(2) is not None:
                    entry.setdefault("msgstr", [])
                    entry["msgstr"].append(value)
                    key = ("msgstr", int(match.group(2)))
                else:
                    key = match.group(1)
                    entry[key] = value
        entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def catalogue() -> list[dict]:
    entries = _po_entries(LOCALE / "django.po")
    header, messages = entries[0], entries[1:]
    assert header["msgid"] == "" and "Language: fr" in header["msgstr"]
    assert "fuzzy" not in header["flags"]
    return [e for e in messages if not e["obsolete"]]


def test_french_catalogue_has_no_untranslated_or_fuzzy_entry(catalogue):
    assert len(catalogue) > 800
    fuzzy = [e["msgid"] for e in catalogue if "fuzzy" in e["flags"]]
    assert not fuzzy
    empty = [e["msgid"] for e in catalogue
             if (e["msgstr"] == "" if isinstance(e["msgstr"], str) else not all(e["msgstr"]))]
    assert not empty


def test_french_translations_keep_placeholders_and_html(catalogue):
    for e in catalogue:
        forms = e["msgstr"] if isinstance(e["msgstr"], list) else [e["msgstr"]]
        source = e["msgid_plural"] or e["msgid"]
        for translated in forms[-1:]:
            assert sorted(PLACEHOLDER.findall(translated)) == \
                sorted(PLACEHOLDER.findall(source)), (e["msgid"], translated)
            assert re.findall(r"<[^>]+>", translated) == re.findall(r"<[^>]+>", source), \
                e["msgid"]


def test_compiled_catalogue_matches_the_po_file(catalogue):
    """django.mo is committed with django.po: every entry of the .po is in the .mo."""
    assert (LOCALE / "django.mo").exists()
    with translation.override("fr"):
        for e in catalogue:
            if e["msgid_plural"]:
                got = [translation.npgettext(e["msgctxt"], e["msgid"], e["msgid_plural"], n)
                       if e["msgctxt"] else
                       translation.ngettext(e["msgid"], e["msgid_plural"], n) for n in (1, 2)]
                assert got == e["msgstr"][:2], e["msgid"]
            elif e["msgctxt"]:
                assert translation.pgettext(e["msgctxt"], e["msgid"]) == e["msgstr"]
            else:
                assert translation.gettext(e["msgid"]) == e["msgstr"], e["msgid"]


@pytest.mark.parametrize(("english", "french"), [
    ("Orders", "Commandes"),
    ("Job bag", "Sachet de fabrication"),
    ("Launch sheet %(ref)s", "Fiche de lancement %(ref)s"),
    ("Setting", "Sertissage"),
    ("Safety buffer", "Marge de sécurité"),
    ("18k yellow gold (750)", "Or jaune 18 carats (750)"),
    ("Plating (rhodium)", "Rhodiage"),
    ("Order %(ref)s is already launched.", "La commande %(ref)s est déjà lancée."),
])
def test_known_strings_are_french(english, french):
    with translation.override("fr"):
        assert translation.gettext(english).replace("\u00a0", " ") == french
    assert translation.gettext(english) == english


def test_refusals_follow_the_active_language():
    assert refusal("received", "ready") == \
        "The piece has not been sent: there is nothing to receive."
    with translation.override("fr"):
        assert refusal("received", "ready") == \
            "La pièce n’a pas été envoyée\u00a0: il n’y a rien à réceptionner."


def test_service_refusal_in_french_keeps_code_and_details(house_setup):
    order = house_setup.launched_order()
    with translation.override("fr"), pytest.raises(Conflict) as exc:
        order_launch(actor=house_setup.manager, order_id=order.pk)
    assert exc.value.message == f"La commande {order.reference} est déjà lancée."
    assert exc.value.code == "conflict" and exc.value.details == {"status": "launched"}
    with pytest.raises(Conflict, match=f"Order {order.reference} is already launched."):
        order_launch(actor=house_setup.manager, order_id=order.pk)


@pytest.mark.django_db
def test_api_error_in_french_with_accept_language(house_setup):
    api = ApiClient(house_setup.manager)
    missing = "/orders/999999"
    english = assert_error(api.get(missing), 404, "not_found")
    assert english["message"] == "No order with id 999999."
    response = api.client.get(API + missing, headers=api._headers() | {
        "Accept-Language": "fr-FR,fr;q=0.9"})
    french = assert_error(response, 404, "not_found")
    assert french["message"] == "Aucune commande avec l’identifiant 999999."
    assert response["Content-Language"] == "fr"


@pytest.mark.django_db
def test_api_answers_in_the_token_owners_language(house_setup):
    """A user who chose French hears service refusals in French, token or no token."""
    manager = house_setup.manager
    manager.language = "fr"
    manager.save()
    order = house_setup.draft_order()
    body = assert_error(ApiClient(manager).post(f"/orders/{order.pk}/launch"), 409,
                        "launch_blocked")
    assert body["message"].startswith(f"La commande {order.reference} ne peut pas encore être "
                                      "lancée\u00a0:")
    codes = [m["code"] for m in body["details"]["missing"]]
    assert "no_promised_date" in codes and "unchecked:quote_accepted" in codes
    by_code = {m["code"]: m["message"] for m in body["details"]["missing"]}
    assert by_code["no_promised_date"] == "Pas de date promise."
    assert by_code["unchecked:quote_accepted"] == \
        "Commercial\u00a0: «\u00a0Devis accepté\u00a0» n’est pas coché."
    # A workshop-state refusal (a lazily translated table) comes out in French too.
    piece = house_setup.launched_piece()
    body = assert_error(ApiClient(manager).post(f"/pieces/{piece.pk}/receive", {}), 409,
                        "transition_not_allowed")
    assert body["message"] == "La pièce n’a pas été envoyée\u00a0: il n’y a rien à réceptionner."
    # An explicit Accept-Language wins over the profile.
    api = ApiClient(manager)
    response = api.client.post(API + f"/orders/{order.pk}/launch", "{}",
                               content_type="application/json",
                               headers=api._headers() | {"Accept-Language": "en"})
    assert assert_error(response, 409)["message"].startswith(
        f"Order {order.reference} cannot be launched yet:")
    # The next request of an English user is English again.
    body = assert_error(ApiClient(house_setup.sales).post(f"/orders/{order.pk}/launch"), 409)
    assert body["message"].startswith(f"Order {order.reference} cannot be launched yet:")


@pytest.mark.django_db
def test_page_for_a_french_user_is_in_french(house_setup):
    manager = house_setup.manager
    manager.language = "fr"
    manager.save()
    house_setup.launched_order()
    client = Client()
    client.force_login(manager)
    response = client.get(reverse("production:dashboard"))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert "Où en est chaque pièce" in page and "Tableau de bord" in page
    assert "Where is every piece" not in page
    # The language selector switches back to English for this user.
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    page = client.get(reverse("production:dashboard")).content.decode()
    assert '<html lang="en">' in page and "Where is every piece" in page


@pytest.mark.django_db
def test_service_refusal_shown_on_a_french_page(house_setup):
    """A refusal raised by a service reaches the page in the user's language."""
    sales = house_setup.sales
    sales.language = "fr"
    sales.save()
    order = house_setup.draft_order()
    client = Client()
    client.force_login(sales)
    page = client.get(reverse("orders:edit", args=[order.pk, "checklist"])).content.decode()
    assert "Avant le lancement, complétez" in page
    assert "Pas de date promise." in page


def test_transition_error_messages_are_plain_strings():
    """Lazily translated messages become plain text when the error is raised."""
    exc = TransitionNotAllowed(translation.gettext_lazy("The piece is not on hold."))
    assert type(exc.message) is str and str(exc) == "The piece is not on hold."
