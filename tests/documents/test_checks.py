"""What a file is, from its content: every accepted kind, every refusal, names, thumbnails."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from etabli.core.errors import ValidationFailed
from etabli.documents import checks

from . import files


def refused(data: bytes, name: str = "") -> ValidationFailed:
    with pytest.raises(ValidationFailed) as exc:
        checks.inspect(data, name_hint=name)
    assert exc.value.details["field"] == "file"
    return exc.value


@pytest.mark.parametrize(("data", "content_type"), [
    (files.jpeg(), "image/jpeg"),
    (files.png(), "image/png"),
    (files.webp(), "image/webp"),
    (files.pdf(), "application/pdf"),
    (files.xlsx(), checks.XLSX_CONTENT_TYPE),
    (files.stl_binary(), "model/stl"),
    (files.stl_ascii(), "model/stl"),
    (files.obj(), "model/obj"),
    (files.rhino_3dm(), "model/vnd.3dm"),
])
def test_accepted_kinds_are_recognised_by_content(data, content_type):
    assert checks.inspect(data).content_type == content_type
    # the name plays no part
    assert checks.inspect(data, name_hint="evil.html").content_type == content_type


def test_binary_stl_whose_header_says_solid_is_still_binary():
    data = b"solid but binary".ljust(80, b" ") + files.stl_binary(3)[80:]
    assert checks.inspect(data).content_type == "model/stl"


@pytest.mark.parametrize("data", [
    b"\xff\xd8\xff" + b"1" * 20,  # starts like a JPEG
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # starts like a PNG
    b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 20,  # starts like a WebP
    files.jpeg()[:400],  # a truncated JPEG
    files.png()[:-30],  # a PNG cut before its end
])
def test_images_are_decoded_not_trusted_by_their_first_bytes(data):
    assert refused(data).code == "invalid_image"


def test_truncated_images_are_refused_even_when_pillow_is_told_to_load_them(monkeypatch):
    from PIL import ImageFile

    # WeasyPrint sets this for the whole process when it is imported
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for data in (files.png(size=(300, 300))[:-200], files.jpeg(size=(300, 300))[:-200]):
        assert refused(data).code == "invalid_image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # given back as it was


def test_an_image_claiming_too_many_pixels_is_refused_before_decoding():
    # over our limit (60 MP) but under Pillow's own (89 MP): refused by its header alone
    exc = refused(files.png_claiming(9_000, 8_000))
    assert exc.code == "too_many_pixels"
    assert exc.message == ("This image is too large (9000 × 8000 pixels); the limit is 60 "
                           "megapixels.")
    # far over Pillow's limit: Pillow itself refuses to open it
    assert refused(files.png_claiming(20_000, 20_000)).code == "too_many_pixels"


def test_pillow_s_own_bomb_guard_is_a_refusal_not_a_crash(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert refused(files.png(size=(100, 100))).code == "too_many_pixels"


@pytest.mark.parametrize("tail", [
    b"<html><body><script>alert(1)</script></body></html>",
    b"<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    b"<iframe src=javascript:alert(1)>",
    b"<?php system($_GET['c']); ?>",
])
def test_images_with_a_page_or_script_appended_are_refused(tail):
    for data in (files.jpeg() + tail, files.png() + tail, files.webp() + tail):
        assert refused(data, "photo.jpg").code == "active_content"


@pytest.mark.parametrize("data", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b'<?xml version="1.0"?><svg onload="alert(1)"/>',
    b"<!DOCTYPE html><html><script>alert(1)</script></html>",
    b"<html><body>hello</body></html>",
    b"  <script>fetch('/api')</script>",
])
def test_web_pages_and_svg_are_refused_whatever_their_name(data):
    for name in ("a.svg", "a.html", "a.png", "a.stl", "a.obj"):
        exc = refused(data, name)
        assert exc.code == "active_content"
        assert "Web pages and SVG images cannot be uploaded." in exc.message


def test_polyglots_are_refused():
    # a PDF that is also a web page
    assert refused(files.pdf() + b"<html><script>alert(1)</script></html>").code \
        == "active_content"
    # an OBJ carrying a script
    assert refused(files.obj() + b"# <script>alert(1)</script>\n").code == "active_content"
    # an ASCII STL with a javascript: link in a comment
    assert refused(files.stl_ascii().replace(b"solid ring", b"solid javascript:alert(1)")
                   ).code == "active_content"


def test_pdf_with_scripts_or_launch_actions_and_incomplete_pdfs_are_refused():
    scripted = files.pdf().replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S "
                                   b"/JavaScript /JS (app.alert(1)) >>")
    assert refused(scripted).code == "active_content"
    launch = files.pdf().replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /Launch "
                                 b"/F (calc.exe) >>")
    assert refused(launch).code == "active_content"
    assert refused(files.pdf()[:-40]).code == "invalid_pdf"


def test_only_excel_workbooks_among_zips():
    assert refused(files.docx_like()).code == "not_xlsx"
    assert refused(files.zip_of({"readme.txt": b"hi"})).code == "not_xlsx"
    # the right parts' names but not a spreadsheet's content types
    fake = files.zip_of({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<w/>",
                         "xl/worksheets/sheet1.xml": b"<s/>"})
    assert refused(fake, "prices.xlsx").code == "not_xlsx"
    assert refused(files.xlsm_like(), "prices.xlsx").code == "active_content"
    assert refused(b"PK\x03\x04" + b"\x00" * 100, "prices.xlsx").code == "not_xlsx"


def test_stl_checks():
    good = files.stl_binary(4)
    assert refused(good[:-10], "ring.stl").code == "invalid_stl"  # truncated
    assert refused(good + b"\x00" * 7, "ring.stl").code == "invalid_stl"  # trailing bytes
    assert refused(b"\x00" * 84 + b"\x01" * 50, "ring.stl").code == "invalid_stl"  # 0 triangles
    assert refused(b"solid ring\nendsolid ring\n", "ring.stl").code == "invalid_stl"
    # without a .stl name the message is the general one
    assert refused(good[:-10]).code == "unsupported_type"


@pytest.mark.parametrize("data", [
    b"just some text",
    b"v 1 2 3\n",  # vertices without faces
    b"GIF89a" + b"\x00" * 40,
    b"MZ\x90\x00" + b"\x00" * 200,  # a Windows program
    b"\x00\x01\x02\x03",
])
def test_other_files_are_refused(data):
    exc = refused(data, "file.obj")
    assert exc.code == "unsupported_type"
    assert "This file type is not accepted" in exc.message


@pytest.mark.parametrize(("raw", "clean"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\drivers\\etc\\hosts", "hosts"),
    ("/abs/path/ring.png", "ring.png"),
    ("ring\x00.png.html", "ring.png.html"),
    ("line\nbreak\r.pdf", "linebreak.pdf"),
    ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override removed
    (".htaccess", "htaccess"),
    ("..", "file"),
    ("", "file"),
    (None, "file"),
    ("   ", "file"),
    ("tab\there.stl", "tabhere.stl"),
])
def test_names_are_made_safe(raw, clean):
    assert checks.clean_name(raw) == clean


def test_long_names_keep_their_extension():
    name = checks.clean_name("a" * 300 + ".stl")
    assert len(name) == 200 and name.endswith(".stl")
    assert len(checks.clean_name("b" * 300)) == 200


def test_size_limit_comes_from_the_settings(settings):
    settings.ETABLI_MAX_UPLOAD_MB = 1
    data = files.stl_binary(1)
    assert checks.read_upload(files.upload("ring.stl", data)) == data
    big = files.upload("big.stl", b"\x00" * (1024 * 1024 + 1))
    with pytest.raises(ValidationFailed) as exc:
        checks.read_upload(big)
    assert exc.value.status == 413 and exc.value.code == "too_large"
    assert exc.value.message == ("The file is too large (1.0 MB); the limit is 1 MB per file.")


def test_a_file_lying_about_its_size_is_still_cut_at_the_limit(settings):
    settings.ETABLI_MAX_UPLOAD_MB = 1

    class Liar(io.BytesIO):
        size = 10
        name = "liar.stl"

    with pytest.raises(ValidationFailed) as exc:
        checks.read_upload(Liar(b"\x00" * (2 * 1024 * 1024)))
    assert exc.value.code == "too_large"


def test_empty_and_missing_files():
    with pytest.raises(ValidationFailed, match="The file is empty."):
        checks.read_upload(files.upload("empty.png", b""))
    with pytest.raises(ValidationFailed, match="Choose a file."):
        checks.read_upload(None)


# ---------------------------------------------------------------------------------------------
# thumbnails


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("maker", [files.jpeg, files.png, files.webp])
def test_thumbnail_is_a_small_jpeg(maker):
    thumb = checks.make_thumbnail(maker(size=(1600, 1200)))
    img = _open(thumb)
    assert img.format == "JPEG" and img.size == (320, 240)


def test_small_images_are_not_enlarged():
    assert _open(checks.make_thumbnail(files.png(size=(100, 50)))).size == (100, 50)


def test_thumbnail_is_turned_upright_and_keeps_no_metadata():
    # orientation 6: the camera was turned; the stored pixels are 640×480 landscape, the photo
    # is portrait, and its left half (blue) is at the top once turned.
    original = files.jpeg(size=(640, 480), orientation=6, gps=True)
    assert b"PhoneMaker" in original and _open(original).getexif().get_ifd(files.GPS_IFD)
    thumb = checks.make_thumbnail(original)
    img = _open(thumb)
    assert img.size == (240, 320)
    assert not img.getexif() and "exif" not in img.info
    assert b"PhoneMaker" not in thumb and b"Exif" not in thumb
    top = img.getpixel((120, 20))
    bottom = img.getpixel((120, 300))
    assert top[2] > 150 and top[0] < 100  # blue on top
    assert bottom[0] > 150 and bottom[2] < 100  # red below


def test_transparent_png_gets_a_white_background():
    img = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    thumb = _open(checks.make_thumbnail(out.getvalue()))
    assert thumb.mode == "RGB" and thumb.getpixel((25, 25)) == (255, 255, 255)


def test_an_image_that_cannot_be_reduced_has_no_thumbnail():
    assert checks.make_thumbnail(b"not an image") is None
