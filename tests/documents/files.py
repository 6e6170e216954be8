"""Real files of every accepted kind (and broken ones), built in memory for the tests."""

from __future__ import annotations

import io
import struct
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

# The GPS IFD tag and the orientation tag of EXIF.
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def image(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), color=(200, 30, 30),
          *, orientation: int | None = None, gps: bool = False, mode: str = "RGB") -> bytes:
    """An image with a distinct left half (blue), so orientation can be checked."""
    img = Image.new(mode, size, color if mode == "RGB" else color + (255,))
    w, h = size
    left = Image.new(mode, (w // 2, h), (20, 20, 220) if mode == "RGB" else (20, 20, 220, 255))
    img.paste(left, (0, 0))
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        exif[0x010F] = "PhoneMaker"
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 21.0, 5.0)})
    out = io.BytesIO()
    kwargs = {"exif": exif.tobytes()} if (orientation or gps) else {}
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def jpeg(**kwargs) -> bytes:
    return image("JPEG", **kwargs)


def png(**kwargs) -> bytes:
    return image("PNG", **kwargs)


def webp(**kwargs) -> bytes:
    return image("WEBP", **kwargs)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` × `height` pixels (a decompression bomb's header)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def pdf(text: str = "Technical sheet") -> bytes:
    """A small, well-formed one-page PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
    ]
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def xlsx() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active["A1"] = "Alloy"
    wb.active["B1"] = "750y"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def docx_like() -> bytes:
    """A Word-style zip: [Content_Types].xml but no workbook."""
    return zip_of({"[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
                   "word/document.xml": b"<w:document/>"})


def xlsm_like() -> bytes:
    """An .xlsx with a macro project inside."""
    base = zipfile.ZipFile(io.BytesIO(xlsx()))
    entries = {n: base.read(n) for n in base.namelist()}
    entries["[Content_Types].xml"] = entries["[Content_Types].xml"].replace(
        b"spreadsheetml.sheet.main+xml", b"sheet.macroEnabled.main+xml")
    entries["xl/vbaProject.bin"] = b"\xd0\xcf\x11\xe0macro"
    return zip_of(entries)


def stl_binary(triangles: int = 2) -> bytes:
    header = b"binary stl from the tests".ljust(80, b" ")
    body = b""
    for i in range(triangles):
        body += struct.pack("<12fH", 0, 0, 1, 0, 0, i, 1, 0, i, 0, 1, i, 0)
    return header + struct.pack("<I", triangles) + body


def stl_ascii() -> bytes:
    return (b"solid ring\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n"
            b"   vertex 1 0 0\n   vertex 0 1 0\n  endloop\n endfacet\nendsolid ring\n")


def obj() -> bytes:
    return b"# ring\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"


def rhino_3dm() -> bytes:
    return b"3D Geometry File Format        7" + b"\x00" * 64


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type)
