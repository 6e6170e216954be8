"""The documents API: list (filters, pagination, query budget), one document with its versions,
upload, new version, sharing — per role, with bad input answered by a clear 4xx."""

from __future__ import annotations

from django.urls import reverse

from etabli.core.models import AuditEntry
from etabli.documents.models import Document
from tests.apiclient import API, assert_error, error_fields, ok

from . import files


def upload(client, data: dict, path: str = "/documents"):
    """A multipart POST (the API client sends JSON)."""
    return client.client.post(API + path, data, headers=client._headers())


def bad_fields(response) -> set[str]:
    """The fields a 422 names, without the part of the request they came in (form, file)."""
    return {f.rsplit(".", 1)[-1] for f in error_fields(response)}


def names(body) -> set[str]:
    return {d["name"] for d in body["items"]}


# ---------------------------------------------------------------------------------------------
# list


def test_list_per_role(world, api):
    h, w = world.h, world
    everything = {d.original_name for d in w.docs.values()}
    for user in (h.admin, h.sales, h.designer, h.quality, h.logistics):
        body = ok(api(user).get("/documents"))
        assert names(body) == everything and body["count"] == len(everything)
    assert names(ok(api(h.setter_member).get("/documents"))) == {
        "order-workshops.pdf", "order-client.pdf", "line1.pdf", "piece1.jpg"}
    assert names(ok(api(w.other_setter_member).get("/documents"))) == {
        "order-workshops.pdf", "order-client.pdf", "line2.pdf", "piece2.jpg"}
    assert ok(api(w.outsider).get("/documents"))["count"] == 0
    assert names(ok(api(h.client_contact).get("/documents"))) == {"order-client.pdf"}
    assert ok(api(h.other_client_contact).get("/documents"))["count"] == 0
    assert_error(api(None).get("/documents"), 401)


def test_list_filters_and_versions(world, api):
    h, w = world.h, world
    c = api(h.sales)
    v1 = w.docs["piece1"]
    ok(upload(c, {"file": files.upload("piece1-v2.jpg", files.jpeg())},
              f"/documents/{v1.pk}/versions"), 201)
    assert names(ok(c.get("/documents", {"piece_id": w.piece1.pk}))) == {
        "piece1-v2.jpg", "piece1-house.jpg"}
    assert names(ok(c.get("/documents", {"piece_id": w.piece1.pk, "current_only": "false"}))) \
        == {"piece1.jpg", "piece1-v2.jpg", "piece1-house.jpg"}
    # a line's documents with its pieces'
    assert names(ok(c.get("/documents", {"line_id": w.line2.pk}))) == {"line2.pdf",
                                                                       "piece2.jpg"}
    assert names(ok(c.get("/documents", {"order_id": w.order.pk, "kind": "reference_photo"}))) \
        == {"piece1-v2.jpg", "piece2.jpg"}
    assert ok(c.get("/documents", {"order_id": 999_999}))["count"] == 0
    page = ok(c.get("/documents", {"limit": 2, "offset": 1}))
    assert len(page["items"]) == 2 and page["count"] == 8
    assert "kind" in error_fields(c.get("/documents", {"kind": "selfie"}))
    assert "order_id" in error_fields(c.get("/documents", {"order_id": "one"}))
    assert error_fields(c.get("/documents", {"limit": 0}))


def test_list_query_count_does_not_grow(world, api, django_assert_max_num_queries):
    h, w = world.h, world
    for user in (h.sales, h.setter_member, h.client_contact):
        c = api(user)
        c.get("/documents")
        with django_assert_max_num_queries(6):
            c.get("/documents")
    for i in range(6):
        doc = w.upload(f"extra{i}.jpg", piece_id=w.piece1.pk, visibility="client")
        ok(upload(api(h.sales), {"file": files.upload(f"extra{i}-v2.jpg", files.jpeg())},
                  f"/documents/{doc.pk}/versions"), 201)
    for user in (h.sales, h.setter_member, h.client_contact):
        with django_assert_max_num_queries(6):
            body = ok(api(user).get("/documents"))
        assert body["count"] >= 6


# ---------------------------------------------------------------------------------------------
# one document


def test_get_a_document_with_its_versions(world, api):
    h, w = world.h, world
    v1 = w.docs["order_client"]
    v2 = ok(upload(api(h.sales), {"file": files.upload("v2.pdf", files.pdf("two")),
                                  "visibility": "house"}, f"/documents/{v1.pk}/versions"), 201)
    body = ok(api(h.manager).get(f"/documents/{v2['id']}"))
    assert (body["version"], body["is_current"], body["replaces_id"], body["family"]) == (
        2, True, v1.pk, v1.family)
    assert [v["version"] for v in body["versions"]] == [2, 1]
    assert body["download_url"] == reverse("document", args=[Document.objects.get(
        pk=v2["id"]).token])
    assert body["thumbnail_url"] is None and body["uploaded_by"] == "sales"
    assert body["visibility"] == "house" and body["kind"] == "other"
    # the client sees version 1 only, and not who attached it
    client_view = ok(api(h.client_contact).get(f"/documents/{v1.pk}"))
    assert [v["version"] for v in client_view["versions"]] == [1]
    assert client_view["is_current"] is False and client_view["uploaded_by"] is None
    assert_error(api(h.client_contact).get(f"/documents/{v2['id']}"), 404, "not_found")
    photo = ok(api(h.setter_member).get(f"/documents/{w.docs['piece1'].pk}"))
    assert photo["thumbnail_url"] == reverse("document_thumb", args=[w.docs["piece1"].token])
    assert photo["uploaded_by"] is None
    for user, doc in ((w.outsider, "order_workshops"), (w.other_setter_member, "piece1"),
                      (h.setter_member, "order_house"), (h.other_client_contact, "order_client")):
        assert_error(api(user).get(f"/documents/{w.docs[doc].pk}"), 404, "not_found")
    assert_error(api(h.sales).get("/documents/999999"), 404)
    assert_error(api(h.sales).get("/documents/abc"), 422)


# ---------------------------------------------------------------------------------------------
# upload


def test_upload_per_role(world, api):
    h, w = world.h, world
    body = ok(upload(api(h.sales), {"file": files.upload("spec.xlsx", files.xlsx()),
                                    "order_id": w.order.pk, "line_id": w.line2.pk,
                                    "kind": "material_spec", "visibility": "workshops"}), 201)
    assert (body["order_id"], body["line_id"], body["piece_id"], body["version"]) == (
        w.order.pk, w.line2.pk, None, 1)
    assert body["content_type"] == ("application/vnd.openxmlformats-officedocument."
                                    "spreadsheetml.sheet")
    assert body["versions"][0]["id"] == body["id"]
    assert AuditEntry.objects.filter(action="document.upload", object_id=str(body["id"])).exists()
    # the line alone says which order
    body = ok(upload(api(h.designer), {"file": files.upload("ring.stl", files.stl_binary()),
                                       "line_id": w.line1.pk, "kind": "cad"}), 201)
    assert body["order_id"] == w.order.pk and body["content_type"] == "model/stl"
    # a designer's file must be a design file; quality and logistics attach to pieces only
    assert_error(upload(api(h.designer), {"file": files.upload("c.pdf", files.pdf()),
                                          "order_id": w.order.pk, "kind": "certificate"}), 403)
    for user in (h.quality, h.logistics):
        assert_error(upload(api(user), {"file": files.upload("c.pdf", files.pdf()),
                                        "order_id": w.order.pk}), 403, "forbidden")
    # a workshop attaches to a piece at its bench only; another workshop's piece is unknown
    piece = h.walk(w.piece1, to="prototyping", arrive=True)
    body = ok(upload(api(h.caster_member), {"file": files.upload("wax.jpg", files.jpeg()),
                                            "piece_id": piece.pk, "kind": "photo",
                                            "visibility": "client"}), 201)
    assert body["visibility"] == "workshops" and body["thumbnail_url"]
    assert body["line_id"] == w.line1.pk
    assert_error(upload(api(h.setter_member), {"file": files.upload("w.jpg", files.jpeg()),
                                               "piece_id": piece.pk}), 404)
    assert_error(upload(api(w.outsider), {"file": files.upload("w.jpg", files.jpeg()),
                                          "order_id": w.order.pk}), 403)
    for user in (h.client_contact, h.other_client_contact):
        assert_error(upload(api(user), {"file": files.upload("w.jpg", files.jpeg()),
                                        "order_id": w.order.pk}), 403)
    assert_error(upload(api(None), {"file": files.upload("w.jpg", files.jpeg()),
                                    "order_id": w.order.pk}), 401)


def test_upload_bad_input(world, api, settings, _media):
    from .conftest import stored_files

    h, w = world.h, world
    c = api(h.sales)
    before = (Document.objects.count(), stored_files(_media))
    order = {"order_id": w.order.pk}
    assert "file" in bad_fields(upload(c, order))
    assert "kind" in bad_fields(upload(c, order | {"file": files.upload("a.jpg", files.jpeg()),
                                                     "kind": "selfie"}))
    assert "visibility" in bad_fields(upload(c, order | {
        "file": files.upload("a.jpg", files.jpeg()), "visibility": "public"}))
    assert "order_id" in bad_fields(upload(c, {"file": files.upload("a.jpg", files.jpeg()),
                                                 "order_id": "first"}))
    body = assert_error(upload(c, {"file": files.upload("a.jpg", files.jpeg())}), 400)
    assert body["details"]["field"] == "order_id"
    assert_error(upload(c, {"file": files.upload("a.jpg", files.jpeg()), "order_id": 999_999}),
                 404)
    other_line = h.launched_order().lines.get()
    assert_error(upload(c, order | {"file": files.upload("a.jpg", files.jpeg()),
                                    "line_id": other_line.pk}), 404)
    assert_error(upload(c, order | {"file": files.upload("a.jpg", files.jpeg()),
                                    "piece_id": w.piece1.pk, "line_id": w.line2.pk}), 400)
    attacks = [
        ("evil.svg", b'<svg onload="alert(1)"/>', "active_content"),
        ("page.html", b"<!doctype html><script>alert(1)</script>", "active_content"),
        ("photo.jpg", files.jpeg() + b"<script>alert(1)</script>", "active_content"),
        ("photo.jpg", b"\xff\xd8\xff" + b"fake", "invalid_image"),
        ("sheet.pdf", files.pdf().replace(b"/Type /Catalog", b"/Type /Catalog /JS (x)"),
         "active_content"),
        ("book.xlsx", files.docx_like(), "not_xlsx"),
        ("ring.stl", files.stl_binary(3)[:-20], "invalid_stl"),
        ("../../etc/passwd", b"root:x:0:0::/root:/bin/sh\n", "unsupported_type"),
        ("empty.jpg", b"", None),
    ]
    for name, data, code in attacks:
        response = upload(c, order | {"file": files.upload(name, data)})
        if code is None:  # an empty file is refused by the form parsing or by us
            assert response.status_code in (400, 422), response.content
            continue
        assert assert_error(response, 400, code)["details"]["field"] == "file", name
    settings.ETABLI_MAX_UPLOAD_MB = 1
    body = assert_error(upload(c, order | {"file": files.upload(
        "big.stl", files.stl_binary(21_000))}), 413, "too_large")
    assert "the limit is 1 MB" in body["message"]
    # a NUL in a form field is refused before anything is read
    assert_error(upload(c, {"file": files.upload("a.jpg", files.jpeg()),
                            "order_id": w.order.pk, "kind": "photo\x00"}), 422)
    assert (Document.objects.count(), stored_files(_media)) == before


# ---------------------------------------------------------------------------------------------
# new versions


def test_new_version_per_role(world, api):
    h, w = world.h, world
    v1 = w.docs["line1"]
    path = f"/documents/{v1.pk}/versions"
    new = {"file": files.upload("v2.pdf", files.pdf("two"))}
    for user, status in ((h.designer, 403), (h.quality, 403), (h.setter_member, 403),
                         (w.outsider, 404), (h.client_contact, 404)):
        assert_error(upload(api(user), {"file": files.upload("v.pdf", files.pdf())}, path),
                     status)
    body = ok(upload(api(h.manager), new, path), 201)
    assert (body["version"], body["replaces_id"], body["visibility"], body["line_id"]) == (
        2, v1.pk, v1.visibility, w.line1.pk)
    assert [v["version"] for v in body["versions"]] == [2, 1]
    body = assert_error(upload(api(h.manager), {"file": files.upload("v.pdf", files.pdf())},
                               path), 409, "conflict")
    assert body["details"]["current_id"] == Document.objects.get(family=v1.family,
                                                                 version=2).pk
    v2 = f"/documents/{body['details']['current_id']}/versions"
    assert "visibility" in bad_fields(upload(api(h.manager), {
        "file": files.upload("v.pdf", files.pdf()), "visibility": "all"}, v2))
    assert_error(upload(api(h.manager), {"file": files.upload("v.svg", b"<svg/>")}, v2), 400)
    assert "file" in bad_fields(upload(api(h.manager), {}, v2))
    assert_error(upload(api(h.manager), {"file": files.upload("v.pdf", files.pdf())},
                        "/documents/999999/versions"), 404)
    assert Document.objects.filter(family=v1.family).count() == 2


# ---------------------------------------------------------------------------------------------
# sharing


def test_patch_visibility_per_role(world, api):
    h, w = world.h, world
    doc = w.docs["piece1_house"]
    path = f"/documents/{doc.pk}"
    assert_error(api(h.setter_member).patch(path, {"visibility": "client"}), 404)
    body = ok(api(h.sales).patch(path, {"visibility": "workshops"}))
    assert body["visibility"] == "workshops"
    assert AuditEntry.objects.filter(action="document.visibility", object_id=str(doc.pk)).count() \
        == 1
    # now the setter sees it but may not change it
    assert_error(api(h.setter_member).patch(path, {"visibility": "client"}), 403, "forbidden")
    assert_error(api(h.client_contact).patch(f"/documents/{w.docs['order_client'].pk}",
                                             {"visibility": "house"}), 403)
    assert "visibility" in error_fields(api(h.sales).patch(path, {"visibility": "public"}))
    assert "visibility" in error_fields(api(h.sales).patch(path, {}))
    assert_error(api(h.sales).patch(path, {"visibility": "client\x00"}), 422)
    assert_error(api(h.sales).patch(path, raw="not json"), 400)
    assert_error(api(h.sales).patch("/documents/999999", {"visibility": "client"}), 404)
    doc.refresh_from_db()
    assert doc.visibility == "workshops"


def test_openapi_lists_the_documents_endpoints(db, client):
    paths = client.get(API + "/openapi.json").json()["paths"]
    assert {"/api/v1/documents", "/api/v1/documents/{document_id}",
            "/api/v1/documents/{document_id}/versions"} <= set(paths)
    assert paths["/api/v1/documents"]["get"]["tags"] == ["Documents"]
