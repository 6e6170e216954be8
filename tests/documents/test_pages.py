"""Documents in the pages: serving (safe headers, each role's access), thumbnails, a document's
page with its versions, a new version and sharing from the pages, the order's documents."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from etabli.core.models import AuditEntry
from etabli.documents.models import Document
from etabli.documents.services import document_new_version

from . import files

CSP = "default-src 'none'; sandbox"


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def text(response) -> str:
    return html.unescape(response.content.decode())


def field_errors(response, field_id: str) -> list[str]:
    page = response.content.decode()
    out = []
    for block in re.findall(r'<div class="field has-error">(.*?)</div>', page, re.S):
        if f'for="{field_id}"' in block:
            out += [html.unescape(m) for m in
                    re.findall(r'<p class="error" role="alert">(.*?)</p>', block, re.S)]
    return out


def doc_url(doc, name="document") -> str:
    return reverse(name, args=[doc.token])


# ---------------------------------------------------------------------------------------------
# serving


def test_files_are_served_safely(world):
    w = world
    c = login(w.h.sales)
    photo = w.docs["piece1"]
    response = c.get(doc_url(photo))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["Content-Disposition"].startswith("inline")
    assert body(response) == photo.file.open("rb").read()
    assert c.get(doc_url(photo) + "?download=1")["Content-Disposition"].startswith("attachment")
    pdf = c.get(doc_url(w.docs["line1"]))
    assert pdf["Content-Type"] == "application/pdf" and pdf["Content-Disposition"].startswith(
        "inline")
    # Chrome's PDF viewer does not start in a sandboxed document: no sandbox for a PDF shown
    # in the browser, still no content of its own; downloaded, it keeps the sandbox.
    assert pdf["Content-Security-Policy"] == "default-src 'none'"
    assert pdf["X-Content-Type-Options"] == "nosniff"
    assert c.get(doc_url(w.docs["line1"]) + "?download=1")["Content-Security-Policy"] == CSP
    # files a browser could misread are always downloads
    for name, data in (("ring.stl", files.stl_binary()), ("prices.xlsx", files.xlsx()),
                       ("ring.obj", files.obj()), ("ring.3dm", files.rhino_3dm())):
        doc = w.upload(name, data, kind="cad")
        response = c.get(doc_url(doc))
        assert response["Content-Disposition"].startswith("attachment"), name
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == CSP
        assert body(response) == data


def test_the_download_name_is_the_cleaned_name(world):
    doc = world.upload("../../etc/evil\r\nSet-Cookie: x=1.png", files.png())
    response = login(world.h.sales).get(doc_url(doc) + "?download=1")
    assert "\n" not in response["Content-Disposition"] and "\r" not in response[
        "Content-Disposition"]
    assert 'filename="evilSet-Cookie: x=1.png"' in response["Content-Disposition"]


def test_each_role_gets_only_its_documents(world):
    h, w = world.h, world
    expected = {
        h.admin: set(w.docs), h.designer: set(w.docs), h.quality: set(w.docs),
        h.logistics: set(w.docs),
        h.setter_member: {"order_workshops", "order_client", "line1", "piece1"},
        w.other_setter_member: {"order_workshops", "order_client", "line2", "piece2"},
        w.outsider: set(),
        h.client_contact: {"order_client"},
        h.other_client_contact: set(),
    }
    for user, keys in expected.items():
        c = login(user)
        for key, doc in w.docs.items():
            for name in ("document", "document_info"):
                status = c.get(doc_url(doc, name)).status_code
                assert status == (200 if key in keys else 404), (user.username, key, name)


def test_anonymous_visitors_are_sent_to_log_in(world):
    response = Client().get(doc_url(world.docs["order_client"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Client().get(doc_url(world.docs["piece1"], "document_thumb")).status_code == 302


def test_a_file_missing_from_storage_is_a_404_not_a_crash(world):
    doc = world.docs["line1"]
    doc.file.storage.delete(doc.file.name)
    assert login(world.h.sales).get(doc_url(doc)).status_code == 404


# ---------------------------------------------------------------------------------------------
# thumbnails


def test_thumbnails_are_served_with_the_same_checks(world):
    h, w = world.h, world
    photo = w.upload("big.jpg", files.jpeg(size=(2000, 1000), gps=True), piece_id=w.piece1.pk)
    response = login(h.setter_member).get(doc_url(photo, "document_thumb"))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    data = body(response)
    assert Image.open(io.BytesIO(data)).size == (320, 160)
    assert b"PhoneMaker" not in data
    for user in (w.other_setter_member, w.outsider, h.client_contact):
        assert login(user).get(doc_url(photo, "document_thumb")).status_code == 404
    # not an image: no thumbnail
    assert login(h.sales).get(doc_url(w.docs["line1"], "document_thumb")).status_code == 404


def test_an_image_stored_before_thumbnails_is_its_own_thumbnail(world):
    photo = world.docs["piece1"]
    Document.objects.filter(pk=photo.pk).update(thumbnail="")
    response = login(world.h.sales).get(doc_url(photo, "document_thumb"))
    assert response.status_code == 200 and body(response) == files.jpeg()


# ---------------------------------------------------------------------------------------------
# a document's page, new versions and sharing from the pages


def test_document_page_shows_versions_and_the_forms_to_house_staff(world):
    h, w = world.h, world
    v1 = w.docs["line1"]
    v2 = document_new_version(actor=h.sales, document_id=v1.pk,
                              uploaded_file=files.upload("sheet-v2.pdf", files.pdf("two")))
    page = text(login(h.sales).get(doc_url(v2, "document_info")))
    assert "sheet-v2.pdf" in page and "Version 1" in page and "Version 2" in page
    assert "Upload a new version" in page and "Who may see this version" in page
    assert doc_url(v1) + "?download=1" in page
    old = text(login(h.sales).get(doc_url(v1, "document_info")))
    assert "A newer version of this document exists." in old
    assert "Upload a new version" not in old  # only the current version is revised
    # a workshop sees the versions it may see, no forms, no names of the house's people
    setter = text(login(h.setter_member).get(doc_url(v2, "document_info")))
    assert "Version 1" in setter and "Upload a new version" not in setter
    assert "Who may see this version" not in setter and "sales" not in setter
    # quality may share but not revise an order's sheet
    quality = text(login(h.quality).get(doc_url(v2, "document_info")))
    assert "Who may see this version" in quality and "Upload a new version" not in quality


def test_new_version_from_the_page(world, _media):
    h, w = world.h, world
    v1 = w.docs["line1"]
    c = login(h.sales)
    url = doc_url(v1, "document_new_version")
    response = c.post(url, {"file": files.upload("v2.pdf", files.pdf("two")),
                            "next": reverse("orders:detail", args=[w.order.pk]) + "#documents"})
    assert response.status_code == 302
    assert response["Location"] == reverse("orders:detail", args=[w.order.pk]) + "#documents"
    v2 = Document.objects.get(family=v1.family, version=2)
    assert v2.visibility == v1.visibility and v2.is_current
    # a refused file is shown next to the field; nothing is written
    before = Document.objects.count()
    response = c.post(doc_url(v2, "document_new_version"),
                      {"file": files.upload("evil.pdf", b"<html><script>x</script></html>")})
    assert response.status_code == 400
    assert "Web pages and SVG images cannot be uploaded." in field_errors(response, "id_file")
    # an older version: the page says which one is current
    response = c.post(url, {"file": files.upload("v3.pdf", files.pdf("three"))})
    assert response.status_code == 400 and "newer version (version 2)" in text(response)
    # an open redirect is not followed
    response = c.post(doc_url(v2, "document_new_version"),
                      {"file": files.upload("v3.pdf", files.pdf("three")),
                       "next": "https://evil.example/"})
    v3 = Document.objects.get(family=v1.family, version=3)
    assert response["Location"] == doc_url(v3, "document_info")
    assert Document.objects.count() == before + 1


def test_new_version_refused_to_those_who_may_not(world):
    h, w = world.h, world
    for user, status in ((h.quality, 400), (h.setter_member, 400), (w.outsider, 404),
                         (h.other_client_contact, 404)):
        doc = w.docs["line1"] if user != h.client_contact else w.docs["order_client"]
        response = login(user).post(doc_url(doc, "document_new_version"),
                                    {"file": files.upload("v.pdf", files.pdf())})
        assert response.status_code == status, user.username
    assert Document.objects.filter(version=2).count() == 0
    assert login(h.sales).get(doc_url(w.docs["line1"], "document_new_version")).status_code \
        == 405


def test_sharing_from_the_page(world):
    h, w = world.h, world
    doc = w.docs["piece1_house"]
    c = login(h.manager)
    response = c.post(doc_url(doc, "document_visibility"), {"visibility": "client"})
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.visibility == "client"
    assert AuditEntry.objects.filter(action="document.visibility", object_id=str(doc.pk),
                                     actor=h.manager).exists()
    assert login(h.client_contact).get(doc_url(doc)).status_code == 200
    response = c.post(doc_url(doc, "document_visibility"), {"visibility": "public"})
    assert response.status_code == 400 and field_errors(response, "id_visibility")
    # a workshop member who sees it may not change it
    response = login(h.setter_member).post(doc_url(doc, "document_visibility"),
                                           {"visibility": "house"})
    assert response.status_code == 400
    assert "Only the house's staff decide who sees a document." in text(response)
    doc.refresh_from_db()
    assert doc.visibility == "client"


# ---------------------------------------------------------------------------------------------
# the order's and the piece's pages


def test_order_page_lists_current_versions_with_thumbnails(world):
    h, w = world.h, world
    photo = w.docs["piece1"]
    v2 = document_new_version(actor=h.sales, document_id=photo.pk,
                              uploaded_file=files.upload("piece1-v2.jpg", files.jpeg()))
    page = login(h.sales).get(reverse("orders:detail", args=[w.order.pk])).content.decode()
    # thumbnails in the list, never the full images
    assert f'src="{doc_url(v2, "document_thumb")}"' in page
    assert f'src="{doc_url(v2)}"' not in page
    assert "piece1-v2.jpg" in page and "v2</span>" in page
    assert "1 earlier version" in page and doc_url(photo) + "?download=1" in page
    assert f'action="{doc_url(v2, "document_new_version")}"' in page
    assert f'action="{doc_url(photo, "document_new_version")}"' not in page
    # the line choice of the upload form
    assert f'<option value="{w.line1.pk}">1. Ring</option>' in page
    # the order's history names the new version
    assert "New version of a document" in page


def test_upload_to_a_line_from_the_order_page(world):
    h, w = world.h, world
    c = login(h.sales)
    url = reverse("orders:documents", args=[w.order.pk])
    response = c.post(url, {"kind": "technical_sheet", "visibility": "workshops",
                            "line": str(w.line2.pk),
                            "files": files.upload("pendant.pdf", files.pdf())})
    assert response.status_code == 302
    doc = Document.objects.get(original_name="pendant.pdf")
    assert (doc.line_id, doc.kind) == (w.line2.pk, "technical_sheet")
    other_line = h.launched_order().lines.get()
    response = c.post(url, {"kind": "other", "visibility": "workshops",
                            "line": str(other_line.pk),
                            "files": files.upload("x.pdf", files.pdf())})
    assert response.status_code == 200 and field_errors(response, "id_line")
    assert not Document.objects.filter(original_name="x.pdf").exists()


def test_a_refused_file_in_a_batch_leaves_no_file_behind(world, _media):
    from .conftest import stored_files

    h, w = world.h, world
    before = stored_files(_media)
    response = login(h.sales).post(reverse("orders:documents", args=[w.order.pk]), {
        "kind": "photo", "visibility": "house",
        "files": [files.upload("ok.jpg", files.jpeg()),
                  files.upload("bad.jpg", files.jpeg() + b"<script>x</script>")]})
    assert response.status_code == 200
    assert stored_files(_media) == before


def test_order_page_query_count_does_not_grow_with_documents(world, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    h, w = world.h, world
    c = login(h.sales)
    url = reverse("orders:detail", args=[w.order.pk])
    c.get(url)
    with CaptureQueriesContext(connection) as small:
        c.get(url)
    for i in range(4):
        doc = w.upload(f"more{i}.jpg", piece_id=w.piece2.pk)
        document_new_version(actor=h.sales, document_id=doc.pk,
                             uploaded_file=files.upload(f"more{i}-v2.jpg", files.jpeg()))
    with CaptureQueriesContext(connection) as large:
        c.get(url)
    assert len(large) == len(small)


def test_piece_pages_show_the_newest_versions_with_thumbnails(world):
    h, w = world.h, world
    photo = w.docs["piece1"]
    v2 = document_new_version(actor=h.sales, document_id=photo.pk,
                              uploaded_file=files.upload("piece1-v2.jpg", files.jpeg()))
    page = login(h.manager).get(reverse("production:piece", args=[w.piece1.pk])).content.decode()
    assert "piece1-v2.jpg" in page and f'src="{doc_url(v2, "document_thumb")}"' in page
    assert "piece1.jpg<" not in page  # the replaced version is on the document's page
    assert doc_url(v2, "document_info") in page
    # the other line's documents are not this piece's
    assert "line2.pdf" not in page and "line1.pdf" in page


@pytest.mark.parametrize("role", ["client_contact"])
def test_client_portal_lists_the_newest_shared_version(world, role):
    h, w = world.h, world
    v1 = w.docs["order_client"]
    document_new_version(actor=h.sales, document_id=v1.pk,
                         uploaded_file=files.upload("v2.pdf", files.pdf("two")))
    page = login(getattr(h, role)).get(reverse("portal:order", args=[w.order.pk]))
    content = page.content.decode()
    assert "v2.pdf" in content and "order-client.pdf" not in content


def test_admin_lists_documents_read_only(world):
    c = login(world.h.admin)
    response = c.get(reverse("admin:documents_document_changelist"))
    assert response.status_code == 200 and "piece1.jpg" in response.content.decode()
    doc = world.docs["piece1"]
    assert c.get(reverse("admin:documents_document_change", args=[doc.pk])).status_code == 200
    assert c.post(reverse("admin:documents_document_delete", args=[doc.pk]),
                  {"post": "yes"}).status_code == 403
    assert Document.objects.filter(pk=doc.pk).exists()
