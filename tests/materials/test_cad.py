"""CAD → weight: meshes read by trimesh (binary and ASCII STL, OBJ), volume × density in each
alloy, the line's budget, theoretical weights, and what each role may see and do."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
import trimesh
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from etabli.core.errors import NotFound, PermissionDenied, TransitionNotAllowed, ValidationFailed
from etabli.core.models import AuditEntry
from etabli.documents.models import Document, DocumentKind, Visibility
from etabli.documents.services import document_upload
from etabli.materials import cad, cad_services
from etabli.materials.models import MeshAnalysis
from etabli.materials.services import metal_price_set
from etabli.orders.models import OrderLine
from etabli.production.models import Piece
from tests.apiclient import API, assert_error, ok
from tests.documents import files as sample_files
from tests.factories import default_line, make_user, make_workshop

pytestmark = pytest.mark.django_db
D = Decimal


# ---------------------------------------------------------------------------------------------
# meshes, made with trimesh


def _bytes(data) -> bytes:
    return data.encode() if isinstance(data, str) else data


def box(size_mm: float = 10, file_type: str = "stl") -> bytes:
    return _bytes(trimesh.creation.box(extents=(size_mm,) * 3).export(file_type=file_type))


def ring(file_type: str = "stl") -> bytes:
    """A plain band: inner Ø 17 mm (size 53), 2 mm thick, 2.5 mm wide."""
    band = trimesh.creation.annulus(r_min=8.5, r_max=10.5, height=2.5, sections=96)
    return _bytes(band.export(file_type=file_type))


def open_box() -> bytes:
    b = trimesh.creation.box(extents=(10, 10, 10))
    return _bytes(trimesh.Trimesh(b.vertices, b.faces[:-1], process=False).export(file_type="stl"))


def nan_box() -> bytes:
    b = trimesh.creation.box(extents=(10, 10, 10))
    vertices = b.vertices.copy()
    vertices[0, 0] = np.nan
    return _bytes(trimesh.Trimesh(vertices, b.faces, process=False).export(file_type="stl"))


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media) -> list:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


@pytest.fixture
def piece(house_setup):
    """A launched one-piece order's piece, waiting for design (the designer sees it)."""
    return house_setup.launched_piece()


def _estimate(report, code):
    return next(e for e in report.estimates if e.alloy.code == code)


# ---------------------------------------------------------------------------------------------
# reading meshes


@pytest.mark.parametrize("file_type, fmt", [("stl", "stl_binary"), ("stl_ascii", "stl_ascii"),
                                            ("obj", "obj")])
def test_a_10mm_cube_is_1000_mm3_in_every_format(file_type, fmt):
    facts = cad.analyse_mesh(box(10, file_type))
    assert facts.format == fmt
    assert facts.is_watertight and facts.problem == ""
    assert facts.volume_mm3 == D("1000.000")
    assert (facts.size_x_mm, facts.size_y_mm, facts.size_z_mm) == (D("10.000"),) * 3
    assert facts.triangle_count == 12


def test_a_ring_has_the_volume_of_its_band():
    facts = cad.analyse_mesh(ring())
    exact = D(str(np.pi * (10.5**2 - 8.5**2) * 2.5))  # 298.45 mm³ for a true circle
    assert facts.is_watertight
    assert abs(facts.volume_mm3 - exact) / exact < D("0.005")
    assert facts.size_x_mm == D("21.000") and facts.size_z_mm == D("2.500")


def test_an_open_mesh_is_measured_but_not_weighed():
    facts = cad.analyse_mesh(open_box())
    assert not facts.is_watertight and facts.volume_mm3 is None
    assert "not closed" in facts.problem


def test_an_inside_out_mesh_still_has_its_volume():
    b = trimesh.creation.box(extents=(10, 10, 10))
    data = trimesh.Trimesh(b.vertices, b.faces[:, ::-1]).export(file_type="stl")
    assert cad.analyse_mesh(data).volume_mm3 == D("1000.000")


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"this is not a mesh at all " * 40, "not a mesh"),
    (bytes(range(256)) * 8, "not a mesh"),
    (b"solid empty\nendsolid empty\n", "no triangles"),
    (b"\x00" * 80 + b"\x00\x00\x00\x00", "no triangles"),
    (b"# an OBJ with points only\nv 0 0 0\nv 1 0 0\nv 0 1 0\n", "no triangles"),
    (b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "not numbers"),
    (None, "not numbers"),  # a binary STL with a NaN corner
    (box(10_000), "too large"),
    (box(0.01), "too small"),
])
def test_what_is_not_a_weighable_mesh_is_refused_clearly(data, words):
    with pytest.raises(cad.MeshInvalid) as exc:
        cad.analyse_mesh(nan_box() if data is None else data)
    assert exc.value.status == 400 and exc.value.code == "invalid_mesh"
    assert words in exc.value.message


def test_a_mesh_in_centimetres_is_flagged_by_its_size():
    facts = cad.analyse_mesh(box(1.5))  # a 15 mm piece exported in cm
    assert facts.is_watertight
    assert "exported" in cad.units_warning(facts)
    assert cad.units_warning(cad.analyse_mesh(box(10))) == ""


# ---------------------------------------------------------------------------------------------
# upload and analysis (services)


@pytest.mark.parametrize("name, maker", [("cube.stl", lambda: box(10)),
                                         ("cube-ascii.stl", lambda: box(10, "stl_ascii")),
                                         ("cube.obj", lambda: box(10, "obj"))])
def test_upload_a_cube_and_see_its_weight_in_each_alloy(house_setup, piece, media, name, maker):
    h = house_setup
    analysis = cad_services.cad_upload(actor=h.designer, order_id=piece.order_id,
                                       piece_id=piece.pk, uploaded_file=upload(name, maker()),
                                       stone_count=0)
    doc = analysis.document
    assert doc.kind == DocumentKind.CAD and doc.piece_id == piece.pk
    assert doc.line_id == piece.line_id
    assert doc.content_type == ("model/obj" if name.endswith(".obj") else "model/stl")
    assert analysis.is_watertight and analysis.volume_mm3 == D("1000.000")
    report = cad.cad_report(h.sales, doc)
    assert _estimate(report, "750y").weight_g == D("15.500")
    assert _estimate(report, "750y").fine_g == D("11.625")
    assert _estimate(report, "950pt").weight_g == D("20.100")
    assert _estimate(report, "950pt").fine_g == D("19.095")
    assert AuditEntry.objects.filter(action="cad.analyse", object_id=str(analysis.pk)).exists()


def test_upload_a_ring_and_see_it_in_750_yellow_gold_and_950_platinum(house_setup, piece,
                                                                      media):
    h = house_setup
    analysis = cad_services.cad_upload(actor=h.sales, order_id=piece.order_id,
                                       uploaded_file=upload("band.stl", ring()))
    report = cad.cad_report(h.sales, analysis.document)
    volume = analysis.volume_mm3
    assert _estimate(report, "750y").weight_g == (volume * D("15.50") / 1000).quantize(D("0.001"))
    assert _estimate(report, "950pt").weight_g == (volume * D("20.10") / 1000).quantize(
        D("0.001"))
    assert D("4.5") < _estimate(report, "750y").weight_g < D("4.7")
    assert D("5.9") < _estimate(report, "950pt").weight_g < D("6.1")


def test_value_at_todays_price_only_for_price_roles(house_setup, piece, media):
    h = house_setup
    today = timezone.localdate()
    metal_price_set(actor=h.admin, metal="gold", priced_on=today - dt.timedelta(days=3),
                    price_per_fine_g="50.00", currency="EUR")
    metal_price_set(actor=h.admin, metal="gold", priced_on=today, price_per_fine_g="60.00",
                    currency="EUR")
    analysis = cad_services.cad_upload(actor=h.sales, order_id=piece.order_id,
                                       uploaded_file=upload("cube.stl", box(10)))
    report = cad.cad_report(h.sales, analysis.document)
    gold = _estimate(report, "750y")
    assert gold.value == D("697.50")  # 11.625 fine g × 60.00
    assert _estimate(report, "950pt").value is None  # no platinum price entered
    for user in (h.designer, h.quality):
        other = cad.cad_report(user, analysis.document)
        assert not other.prices_shown
        assert all(e.price is None and e.value is None for e in other.estimates)


def test_an_open_mesh_is_kept_with_its_reason_and_no_weight(house_setup, piece, media):
    h = house_setup
    analysis = cad_services.cad_upload(actor=h.designer, order_id=piece.order_id,
                                       piece_id=piece.pk,
                                       uploaded_file=upload("open.stl", open_box()))
    assert not analysis.is_watertight and analysis.volume_mm3 is None
    assert "not closed" in analysis.problem
    assert cad.cad_report(h.sales, analysis.document).estimates == []
    with pytest.raises(TransitionNotAllowed):
        cad_services.cad_weight_apply(actor=h.designer, document_id=analysis.document_id)


@pytest.mark.parametrize("name, data", [
    ("ring.stl", b"definitely not an STL file, just some words " * 30),
    ("ring.stl", bytes(range(256)) * 16),
    ("ring.stl", box(10, "obj")),  # an OBJ that says it is an STL
    ("ring.obj", box(10)),  # a binary STL that says it is an OBJ
    ("ring.obj", b"# no faces here\nv 0 0 0\nv 1 0 0\n"),
    ("ring.stl", nan_box()),
    ("ring.3dm", box(10)),
])
def test_a_bad_file_leaves_nothing_behind(house_setup, piece, media, name, data):
    h = house_setup
    audits = AuditEntry.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        cad_services.cad_upload(actor=h.designer, order_id=piece.order_id, piece_id=piece.pk,
                                uploaded_file=upload(name, data))
    assert exc.value.status == 400 and exc.value.details == {"field": "file"}
    assert not Document.objects.exists() and not MeshAnalysis.objects.exists()
    assert AuditEntry.objects.count() == audits
    assert stored_files(media) == []


def test_who_may_upload(house_setup, piece, media):
    h = house_setup
    for user in (h.client_contact, h.caster_member, h.quality, h.logistics):
        with pytest.raises(PermissionDenied):
            cad_services.cad_upload(actor=user, order_id=piece.order_id, piece_id=piece.pk,
                                    uploaded_file=upload("cube.stl", box(10)))
    # A designer attaches to an order (or a line) they can see, not only to a piece.
    analysis = cad_services.cad_upload(actor=h.designer, order_id=piece.order_id,
                                       line_id=piece.line_id,
                                       uploaded_file=upload("cube.stl", box(10)))
    assert analysis.document.line_id == piece.line_id and analysis.document.piece_id is None
    # …but not to an order they cannot see (a draft has no piece at design yet).
    draft = h.draft_order()
    with pytest.raises(NotFound):
        cad_services.cad_upload(actor=h.designer, order_id=draft.pk,
                                uploaded_file=upload("cube.stl", box(10)))
    other_line = draft.lines.get()
    with pytest.raises(NotFound):
        cad_services.cad_upload(actor=h.sales, order_id=piece.order_id, line_id=other_line.pk,
                                uploaded_file=upload("cube.stl", box(10)))
    with pytest.raises(ValidationFailed):
        cad_services.cad_upload(actor=h.sales, order_id=piece.order_id,
                                uploaded_file=upload("cube.stl", box(10)), stone_count=-1)


def test_analyse_an_stl_attached_with_the_orders_documents(house_setup, piece, media):
    h = house_setup
    doc = document_upload(actor=h.sales, order_id=piece.order_id,
                          uploaded_file=upload("cube.stl", box(10)), kind=DocumentKind.CAD)
    assert cad.cad_report(h.sales, doc).analysis is None
    analysis = cad_services.mesh_analyse(actor=h.designer, document_id=doc.pk)
    assert analysis.volume_mm3 == D("1000.000")
    again = cad_services.mesh_analyse(actor=h.designer, document_id=doc.pk)
    assert again.pk == analysis.pk
    pdf = document_upload(actor=h.sales, order_id=piece.order_id,
                          uploaded_file=upload("sheet.pdf", sample_files.pdf()))
    with pytest.raises(NotFound):
        cad_services.mesh_analyse(actor=h.designer, document_id=pdf.pk)
    with pytest.raises(ValidationFailed):  # not a mesh, whatever its name: refused at upload
        document_upload(actor=h.sales, order_id=piece.order_id,
                        uploaded_file=upload("fake.stl", b"not a mesh " * 50))
    assert not Document.objects.filter(original_name="fake.stl").exists()


# ---------------------------------------------------------------------------------------------
# budget and theoretical weight


def _set_budget(line_id, **budget):
    # A launched order's lines are no longer edited through the services (the budget is set
    # on the launch sheet); change it directly to see the comparison move.
    OrderLine.objects.filter(pk=line_id).update(**budget)


def test_the_design_is_compared_with_the_lines_budget(house_setup, media):
    h = house_setup
    piece = h.launched_piece(lines=[default_line(budget_metal_g="15.000",
                                                 budget_stone_count=2)])
    analysis = cad_services.cad_upload(actor=h.designer, order_id=piece.order_id,
                                       piece_id=piece.pk, stone_count=3,
                                       uploaded_file=upload("cube.stl", box(10)))
    check = cad.cad_report(h.sales, analysis.document).budget
    assert check.alloy.code == "750y" and check.estimated_g == D("15.500")
    assert check.weight_over and check.over_weight_g == D("0.500")
    assert check.stones_over
    assert len(check.warnings) == 2 and "over the line's budget" in check.warnings[0]

    cad_services.mesh_stone_count_set(actor=h.designer, document_id=analysis.document_id,
                                      stone_count=2)
    _set_budget(piece.line_id, budget_metal_g=D("16.000"))
    doc = cad.cad_document_for(h.sales, analysis.document_id)
    check = cad.cad_report(h.sales, doc).budget
    assert not check.weight_over and not check.stones_over and check.warnings == []
    # Workshops and clients do not see the house's budget.
    assert cad.cad_report(h.client_contact, analysis.document).budget is None


def test_a_file_on_the_order_of_several_lines_asks_for_a_line(house_setup, media):
    h = house_setup
    order = h.launched_order(lines=[default_line(), default_line(description="Pendant",
                                                                 alloy="950pt")])
    analysis = cad_services.cad_upload(actor=h.sales, order_id=order.pk,
                                       uploaded_file=upload("cube.stl", box(10)))
    check = cad.cad_report(h.sales, analysis.document).budget
    assert check.line is None and check.notes
    with pytest.raises(ValidationFailed):
        cad_services.cad_weight_apply(actor=h.sales, document_id=analysis.document_id)


def test_use_the_design_weight_as_theoretical_weight_of_the_lines_pieces(house_setup, media):
    h = house_setup
    order = h.launched_order(lines=[default_line(quantity=3, alloy="950pt")])
    line = order.lines.get()
    analysis = cad_services.cad_upload(actor=h.designer, order_id=order.pk, line_id=line.pk,
                                       uploaded_file=upload("cube.stl", box(10)))
    pieces = cad_services.cad_weight_apply(actor=h.designer, document_id=analysis.document_id)
    assert len(pieces) == 3
    assert set(Piece.objects.filter(line=line).values_list("theoretical_weight_g", flat=True)) \
        == {D("20.100")}
    entry = AuditEntry.objects.filter(action="piece.theoretical_weight").latest("id")
    assert entry.after["source"] == "cad" and entry.after["document"] == analysis.document_id
    # One piece only.
    one = Piece.objects.filter(line=line).order_by("serial").first()
    cad_services.piece_theoretical_weight_set(actor=h.sales, piece_id=one.pk, weight_g="19.5")
    done = cad_services.cad_weight_apply(actor=h.sales, document_id=analysis.document_id,
                                         piece_id=one.pk)
    assert [p.pk for p in done] == [one.pk] and done[0].theoretical_weight_g == D("20.100")


def test_entered_theoretical_weight_and_its_guards(house_setup, piece):
    h = house_setup
    p = cad_services.piece_theoretical_weight_set(actor=h.manager, piece_id=piece.pk,
                                                  weight_g="12.3456")
    assert p.theoretical_weight_g == D("12.346")
    piece.refresh_from_db()
    assert piece.theoretical_weight_g == D("12.346")
    for bad in ("-1", "0", "abc", "NaN", "Infinity", "1000000", True):
        with pytest.raises(ValidationFailed):
            cad_services.piece_theoretical_weight_set(actor=h.manager, piece_id=piece.pk,
                                                      weight_g=bad)
    with pytest.raises(ValidationFailed):
        cad_services.piece_theoretical_weight_set(actor=h.manager, piece_id=piece.pk,
                                                  weight_g="1", source="guess")
    for user in (h.caster_member, h.client_contact, h.quality):
        with pytest.raises(PermissionDenied):
            cad_services.piece_theoretical_weight_set(actor=user, piece_id=piece.pk,
                                                      weight_g="1")
    cleared = cad_services.piece_theoretical_weight_set(actor=h.manager, piece_id=piece.pk,
                                                        weight_g=None)
    assert cleared.theoretical_weight_g is None
    delivered = h.walk(h.launched_piece())
    with pytest.raises(TransitionNotAllowed):
        cad_services.piece_theoretical_weight_set(actor=h.manager, piece_id=delivered.pk,
                                                  weight_g="5")


# ---------------------------------------------------------------------------------------------
# API


def _outsider():
    """A member of a workshop that is on no piece's route."""
    return make_user("workshop", workshops=[make_workshop(skills=["setting"])])


def _api_upload(client, name, data, **fields):
    return client.client.post(f"{API}/cad", {"file": upload(name, data), **fields},
                              headers=client._headers())


def test_api_upload_and_read_weights_per_role(house_setup, piece, api, media):
    h = house_setup
    metal_price_set(actor=h.admin, metal="platinum", priced_on=timezone.localdate(),
                    price_per_fine_g="30.00", currency="EUR")
    body = ok(_api_upload(api(h.designer), "cube.stl", box(10), order_id=piece.order_id,
                          piece_id=piece.pk, stone_count=4, visibility="workshops"), 201)
    assert body["analysis"]["volume_mm3"] == "1000.000"
    assert body["analysis"]["is_watertight"] is True
    assert body["analysis"]["size"] == {"x_mm": "10.000", "y_mm": "10.000", "z_mm": "10.000"}
    doc_id = body["document_id"]
    assert body["mesh_url"] == reverse("cad:mesh", args=[doc_id])

    sales = ok(api(h.sales).get(f"/cad/{doc_id}"))
    rows = {r["alloy"]: r for r in sales["estimates"]}
    assert rows["750y"]["weight_g"] == "15.500" and rows["950pt"]["weight_g"] == "20.100"
    assert rows["950pt"]["fine_g"] == "19.095"
    assert rows["950pt"]["value"] == "572.85" and rows["950pt"]["currency"] == "EUR"
    assert rows["750y"]["value"] is None
    assert sales["prices_shown"] is True and sales["budget"]["stone_count"] == 4

    # The caster sees the piece (and so its design) once the piece is there: weights, no money.
    h.walk(piece, to="prototyping", arrive=True)
    caster = ok(api(h.caster_member).get(f"/cad/{doc_id}"))
    assert caster["prices_shown"] is False and caster["budget"] is None
    assert all(r["value"] is None and r["currency"] is None for r in caster["estimates"])
    assert {r["alloy"]: r["weight_g"] for r in caster["estimates"]}["750y"] == "15.500"
    # A workshop not on the piece's route never sees it.
    assert_error(api(_outsider()).get(f"/cad/{doc_id}"), 404, "not_found")
    assert_error(api(h.other_client_contact).get(f"/cad/{doc_id}"), 404)


def test_api_bad_files_are_400_and_store_nothing(house_setup, piece, api, media):
    h = house_setup
    body = assert_error(_api_upload(api(h.sales), "ring.stl", b"GIF89a not a mesh" * 40,
                                    order_id=piece.order_id), 400, "invalid_mesh")
    assert "not a mesh" in body["message"]
    assert_error(_api_upload(api(h.sales), "ring.obj", b"v 1 2 3\n",
                             order_id=piece.order_id), 400, "invalid_mesh")
    assert not Document.objects.exists() and stored_files(media) == []
    assert_error(_api_upload(api(h.client_contact), "cube.stl", box(10),
                             order_id=piece.order_id), 403, "forbidden")
    assert_error(_api_upload(api(h.caster_member), "cube.stl", box(10),
                             order_id=piece.order_id, piece_id=piece.pk), 403, "forbidden")
    assert_error(_api_upload(api(h.sales), "cube.stl", box(10), order_id=999999), 404)
    assert_error(_api_upload(api(h.sales), "cube.stl", box(10)), 400)
    assert not Document.objects.exists()


def test_api_stone_count_apply_and_theoretical_weight(house_setup, piece, api, media):
    h = house_setup
    body = ok(_api_upload(api(h.sales), "cube.obj", box(10, "obj"), order_id=piece.order_id,
                          line_id=piece.line_id), 201)
    doc_id = body["document_id"]
    assert body["content_type"] == "model/obj" and body["line_id"] == piece.line_id
    out = ok(api(h.designer).put(f"/cad/{doc_id}/stone-count", {"stone_count": 7}))
    assert out["analysis"]["stone_count"] == 7
    assert_error(api(h.designer).put(f"/cad/{doc_id}/stone-count", {"stone_count": -2}), 400)
    applied = ok(api(h.designer).post(f"/cad/{doc_id}/apply-weight", {}))
    assert applied == [{"id": piece.pk, "serial": piece.serial, "theoretical_weight_g": "15.500"}]
    set_ = ok(api(h.manager).put(f"/pieces/{piece.pk}/theoretical-weight",
                                 {"weight_g": "15.25"}))
    assert set_["theoretical_weight_g"] == "15.250"
    assert_error(api(h.caster_member).put(f"/pieces/{piece.pk}/theoretical-weight",
                                          {"weight_g": "1"}), 403)
    assert_error(api(h.manager).put(f"/pieces/{piece.pk}/theoretical-weight",
                                    {"weight_g": "-3"}), 400)
    assert ok(api(h.designer).post(f"/cad/{doc_id}/analyse"))["analysis"]["volume_mm3"] \
        == "1000.000"


# ---------------------------------------------------------------------------------------------
# pages


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_cad_page_shows_weights_budget_and_values_to_the_right_people(house_setup, piece,
                                                                     media):
    h = house_setup
    metal_price_set(actor=h.admin, metal="gold", priced_on=timezone.localdate(),
                    price_per_fine_g="60.00", currency="EUR")
    _set_budget(piece.line_id, budget_metal_g=D("12.000"), budget_stone_count=5)
    analysis = cad_services.cad_upload(actor=h.designer, order_id=piece.order_id,
                                       piece_id=piece.pk, stone_count=1,
                                       uploaded_file=upload("cube.stl", box(10)))
    url = reverse("cad:page", args=[analysis.document_id])
    html = _logged_in(h.sales).get(url).content.decode()
    assert "15.500 g" in html and "20.100 g" in html and "11.625 g" in html
    assert "697.50 EUR" in html
    assert "10.000 × 10.000 × 10.000 mm" in html and "1000.000 mm³" in html
    assert "over the line&#x27;s budget" in html or "over the line's budget" in html
    assert "data-mesh-viewer" in html and "vendor/three/three.module.js" in html
    assert "Set as theoretical weight" in html

    designer = _logged_in(h.designer).get(url).content.decode()
    assert "15.500 g" in designer and "697.50" not in designer

    h.walk(piece, to="prototyping", arrive=True)
    caster = _logged_in(h.caster_member).get(url)
    assert caster.status_code == 200
    text = caster.content.decode()
    assert "15.500 g" in text and "697.50" not in text and "EUR" not in text
    assert "budget" not in text.lower() and "Set as theoretical weight" not in text
    outsider = _outsider()  # a workshop not on the piece's route
    assert _logged_in(outsider).get(url).status_code == 404

    mesh = _logged_in(h.caster_member).get(reverse("cad:mesh", args=[analysis.document_id]))
    assert mesh.status_code == 200
    assert mesh["Content-Type"] == "application/octet-stream"
    assert mesh["X-Content-Type-Options"] == "nosniff"
    assert b"".join(mesh.streaming_content) == box(10)
    assert _logged_in(outsider).get(
        reverse("cad:mesh", args=[analysis.document_id])).status_code == 404


def test_an_open_mesh_page_says_so(house_setup, piece, media):
    h = house_setup
    analysis = cad_services.cad_upload(actor=h.designer, order_id=piece.order_id,
                                       piece_id=piece.pk,
                                       uploaded_file=upload("open.stl", open_box()))
    html = _logged_in(h.sales).get(reverse("cad:page", args=[analysis.document_id])) \
        .content.decode()
    assert "Not closed" in html and "not closed (it has holes" in html
    assert "Estimated weight in each alloy" not in html


def test_upload_page_from_the_order_and_the_piece(house_setup, piece, media):
    h = house_setup
    client = _logged_in(h.sales)
    order_html = client.get(reverse("orders:detail", args=[piece.order_id])).content.decode()
    upload_url = reverse("cad:upload") + f"?order={piece.order_id}"
    assert upload_url in order_html
    assert client.get(upload_url).status_code == 200

    bad = client.post(upload_url, {"file": upload("ring.stl", b"junk " * 100),
                                   "visibility": Visibility.WORKSHOPS})
    assert bad.status_code == 400
    assert "not a mesh" in bad.content.decode()
    assert not Document.objects.exists()

    good = client.post(upload_url, {"file": upload("band.stl", ring()),
                                    "line": piece.line_id, "stone_count": "2",
                                    "visibility": Visibility.WORKSHOPS})
    doc = Document.objects.get()
    assert good.status_code == 302 and good["Location"] == reverse("cad:page", args=[doc.pk])
    assert doc.line_id == piece.line_id and doc.mesh.stone_count == 2
    order_html = client.get(reverse("orders:detail", args=[piece.order_id])).content.decode()
    assert reverse("cad:page", args=[doc.pk]) in order_html

    designer = _logged_in(h.designer)
    piece_html = designer.get(reverse("production:piece", args=[piece.pk])).content.decode()
    assert reverse("cad:upload") + f"?piece={piece.pk}" in piece_html
    assert designer.post(reverse("cad:upload") + f"?piece={piece.pk}",
                         {"file": upload("cube.stl", box(10)),
                          "visibility": Visibility.HOUSE}).status_code == 302
    assert Document.objects.filter(piece=piece).count() == 1

    applied = designer.post(reverse("cad:apply_weight", args=[doc.pk]), {"piece": piece.pk})
    assert applied.status_code == 302
    piece.refresh_from_db()
    assert piece.theoretical_weight_g == doc.mesh.volume_mm3 * D("15.5") / 1000 \
        or abs(piece.theoretical_weight_g - doc.mesh.volume_mm3 * D("15.5") / 1000) < D("0.001")

    entered = designer.post(reverse("cad:piece_weight", args=[piece.pk]), {"weight_g": "4.2"})
    assert entered.status_code == 302
    piece.refresh_from_db()
    assert piece.theoretical_weight_g == D("4.200")

    # Clients and workshops get no upload page.
    assert _logged_in(h.client_contact).get(upload_url).status_code == 404
    assert _logged_in(h.caster_member).get(upload_url).status_code == 404
    assert h.client_contact and _logged_in(h.client_contact).post(
        reverse("cad:piece_weight", args=[piece.pk]), {"weight_g": "1"}).status_code in (302,
                                                                                         404)
    piece.refresh_from_db()
    assert piece.theoretical_weight_g == D("4.200")


def test_cad_page_in_french(house_setup, piece, media):
    h = house_setup
    analysis = cad_services.cad_upload(actor=h.sales, order_id=piece.order_id,
                                       uploaded_file=upload("cube.stl", box(10)))
    h.manager.language = "fr"
    h.manager.save()
    html = _logged_in(h.manager).get(reverse("cad:page", args=[analysis.document_id])) \
        .content.decode()
    assert "Poids estimé dans chaque alliage" in html and "Or jaune 18 carats (750)" in html
    assert "Estimated weight in each alloy" not in html
