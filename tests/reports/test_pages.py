"""/reports/: the page with its filter form and SVG charts, CSV/XLSX exports, the monthly PDF,
who may open them, bad input and query budgets."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from tests.reports import scene

pytestmark = pytest.mark.django_db

MARCH = "start=2026-03-01&end=2026-03-31"
OTHERS = ("Fonderie Dupont", "Polissage Leroy")


def text(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def pdf_text(response) -> str:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_manager_page_exports_and_pdf(client, house_setup, django_assert_max_num_queries):
    h = house_setup
    scene.build(h)
    client.force_login(h.manager)
    with django_assert_max_num_queries(40):
        r = client.get(reverse("reports:report") + "?" + MARCH)
    assert r.status_code == 200
    page = text(r)
    html = r.content.decode()
    assert "Production reports" in page and "Reports" in page
    assert "Fonderie Dupont" in page and "45.00" in page
    assert html.count('src="data:image/svg+xml;base64,') == 5  # the five charts
    assert "<script" not in html.split("<main", 1)[-1]  # no script in the report itself
    assert 'name="start"' in html and 'value="2026-03-01"' in html
    # CSV of one table
    rows = csv_rows(client.get(reverse("reports:table_csv", args=["metal_loss"]) + "?" + MARCH))
    assert rows[0][:6] == ["Workshop", "Operation", "Jobs", "Issued g", "Loss g",
                           "Loss % of issued"]
    assert rows[1][:6] == ["Fonderie Dupont", "casting", "1", "20.000", "1.000", "5.0"]
    assert rows[1][-1] == "45.00"
    lead = csv_rows(client.get(reverse("reports:table_csv", args=["lead_time"]) + "?" + MARCH))
    assert lead[1][1:4] == ["3", "8.0", "11.2"] and lead[2][1:4] == ["3", "15.0", "21.4"]
    # XLSX of every table
    r = client.get(reverse("reports:xlsx") + "?" + MARCH)
    assert r.status_code == 200 and "spreadsheetml" in r["Content-Type"]
    wb = load_workbook(io.BytesIO(r.content))
    assert {"lead_time", "steps", "workshops", "right_first_time", "metal_loss",
            "stone_breakage", "on_time", "wip", "queue", "throughput"} <= set(wb.sheetnames)
    ws = wb["metal_loss"]
    assert [c.value for c in ws[3]][:5] == ["Fonderie Dupont", "casting", 1, 20.0, 1.0]
    assert wb["on_time"]["A3"].value == 3 and wb["on_time"]["B3"].value == 2
    one = load_workbook(io.BytesIO(client.get(
        reverse("reports:table_xlsx", args=["queue"]) + "?" + MARCH).content))
    assert one.sheetnames == ["queue"]
    # monthly PDF with the charts
    with django_assert_max_num_queries(40):
        r = client.get(reverse("reports:monthly_pdf") + "?month=2026-03")
    body = pdf_text(r)
    assert "PRODUCTION REPORT" in body.upper() and "March 2026" in body
    assert "Fonderie Dupont" in body
    assert "METAL LOSS PER WORKSHOP AND OPERATION" in body.upper()
    assert "Where pieces wait" in body  # the bottleneck chart's title, drawn into the PDF
    assert r["Content-Disposition"].startswith("attachment")


def test_workshop_member_sees_own_workshop_only(client, house_setup):
    h = house_setup
    scene.build(h)
    client.force_login(h.setter_member)
    r = client.get(reverse("reports:report") + "?" + MARCH)
    assert r.status_code == 200
    page = text(r)
    assert "Sertissage Martin" in page and "your workshop" in page
    for name in OTHERS:
        assert name not in r.content.decode()
    assert "Value" not in page and "Client" not in page
    xlsx = client.get(reverse("reports:xlsx") + "?" + MARCH)
    blob = " ".join(str(c.value) for ws in load_workbook(io.BytesIO(xlsx.content))
                    for row in ws.iter_rows() for c in row)
    assert "Sertissage Martin" in blob and not any(n in blob for n in OTHERS)
    assert "Value" not in blob and "lead_time" not in blob
    body = pdf_text(client.get(reverse("reports:monthly_pdf") + "?month=2026-03"))
    assert "Sertissage Martin" in body and not any(n in body for n in OTHERS)
    for name in ("metal_loss", "queue_workshops", "stone_breakage"):
        content = client.get(reverse("reports:table_csv", args=[name]) + "?" + MARCH).content
        assert not any(n.encode() in content for n in OTHERS)
    assert client.get(reverse("reports:report") + f"?{MARCH}&workshop_id={h.caster.pk}"
                      ).status_code == 404
    assert client.get(reverse("reports:table_csv", args=["lead_time"]) + "?" + MARCH
                      ).status_code == 404


@pytest.mark.parametrize("role", ["designer", "quality", "logistics", "client_contact"])
def test_others_get_404_and_no_nav(client, house_setup, role):
    user = getattr(house_setup, role)
    client.force_login(user)
    for url in (reverse("reports:report"), reverse("reports:xlsx"),
                reverse("reports:table_csv", args=["steps"]), reverse("reports:monthly_pdf")):
        assert client.get(url + "?" + MARCH).status_code == 404
    from etabli.reports.panels import nav_items

    assert nav_items(user) == []


@pytest.mark.parametrize("role", ["admin", "manager", "sales", "caster_member"])
def test_nav_item_and_default_period(client, house_setup, role):
    client.force_login(getattr(house_setup, role))
    r = client.get(reverse("reports:report"))
    assert r.status_code == 200
    assert f'href="{reverse("reports:report")}"' in r.content.decode()


def test_anonymous_is_sent_to_login(client):
    r = client.get(reverse("reports:report"))
    assert r.status_code == 302 and "login" in r["Location"]


def test_bad_input_gives_400_with_a_message(client, house_setup):
    client.force_login(house_setup.manager)
    r = client.get(reverse("reports:report") + "?start=2026-03-31&end=2026-03-01")
    assert r.status_code == 400 and "The period ends before it starts." in text(r)
    r = client.get(reverse("reports:report") + "?start=nope&end=2026-03-01")
    assert r.status_code == 400 and "Not a date" in text(r)
    r = client.get(reverse("reports:report") + f"?{MARCH}&step=gilding")
    assert r.status_code == 400
    assert client.get(reverse("reports:table_csv", args=["steps"])
                      + "?start=2026-03-31&end=2026-03-01").status_code == 400
    assert client.get(reverse("reports:table_csv", args=["nope"]) + "?" + MARCH
                      ).status_code == 404
    assert client.get(reverse("reports:monthly_pdf") + "?month=2026-13").status_code == 400
    assert client.get(reverse("reports:monthly_pdf") + "?month=march").status_code == 400
