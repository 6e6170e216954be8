"""What an uploaded file is, decided from its content, never from its name; its name made safe;
image thumbnails.

Accepted: photos and renders (JPEG, PNG, WebP — decoded with Pillow, so a file that only starts
like an image is refused), PDF, Excel workbooks (.xlsx), CAD files (STL binary or ASCII, OBJ,
3DM). Refused: anything else, and any accepted file that also carries a web page or a script
(a polyglot), since a browser that guessed its type could run it.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import threading
import unicodedata
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from etabli.core.errors import ValidationFailed

log = logging.getLogger("etabli.documents")

# A photo from a phone is 12 to 50 megapixels; more than this is refused before it is decoded
# (a few kilobytes can claim billions of pixels and take the server's memory).
MAX_IMAGE_PIXELS = 60_000_000
THUMBNAIL_PX = 320
THUMBNAIL_CONTENT_TYPE = "image/jpeg"
MAX_NAME_LENGTH = 200

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Markers of a web page or a script, looked for anywhere in the file. Each is long enough that
# the compressed pixels of a photo do not spell it by chance (a bare "<svg" would, about once in
# a few thousand large photos); an SVG image is refused by its start instead.
_ACTIVE = re.compile(rb"<(?:script|html|iframe|body|object|embed|frameset)[\s/>]"
                     rb"|<!doctype\s+html|<meta\s+http-equiv|<\?php")  # on lowered bytes
_SCRIPT_URLS = (b"javascript:", b"vbscript:")
_WEB_START = re.compile(rb"<(svg|html|script|!doctype|\?xml)", re.IGNORECASE)
# PDF actions that run code or open other programs.
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch)(?![A-Za-z0-9])")
_OBJ_VERTEX = re.compile(rb"^[ \t]*v[ \t]+[-+0-9.]", re.MULTILINE)
_OBJ_FACE = re.compile(rb"^[ \t]*f[ \t]+[-0-9]", re.MULTILINE)
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


@dataclass(frozen=True)
class FileType:
    content_type: str
    extension: str

    @property
    def is_image(self) -> bool:
        return self.content_type in _PIL_FORMATS


def _refuse(message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"field": "file"})


def max_upload_bytes() -> int:
    return int(settings.ETABLI_MAX_UPLOAD_MB) * 1024 * 1024


def size_refusal(size: int) -> ValidationFailed:
    limit_mb = int(settings.ETABLI_MAX_UPLOAD_MB)
    return ValidationFailed(
        _("The file is too large (%(size)s MB); the limit is %(limit)s MB per file.")
        % {"size": f"{size / (1024 * 1024):.1f}", "limit": limit_mb},
        code="too_large", status=413, details={"field": "file", "limit_mb": limit_mb})


def read_upload(uploaded_file) -> bytes:
    """The file's bytes, refused when missing, empty or over the size limit (never reading
    more than the limit, whatever size the upload claims)."""
    if uploaded_file is None:
        raise _refuse(_("Choose a file."), "required")
    limit = max_upload_bytes()
    claimed = getattr(uploaded_file, "size", None) or 0
    if claimed > limit:
        raise size_refusal(claimed)
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(limit + 1)
    if len(data) > limit:
        raise size_refusal(max(claimed, len(data)))
    if not data:
        raise _refuse(_("The file is empty."), "empty")
    return data


def clean_name(raw: str | None) -> str:
    """The name to show and to offer on download: the last part of a path, without control
    or invisible formatting characters (NUL, newlines, right-to-left overrides), without
    leading dots, at most 200 characters with its extension kept."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name:
        return "file"
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[:MAX_NAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_LENGTH]
    return name


def _is_text(data: bytes) -> bool:
    """Plain text: no NUL anywhere, no other control character at the start."""
    return b"\x00" not in data and all(b >= 0x20 or b in b"\t\r\n\x0c" for b in data[:65536])


def _has_active_content(data: bytes) -> bool:
    # Lowered once, then plain searches (a case-insensitive regex is thirty times slower).
    lowered = data.lower()
    return _ACTIVE.search(lowered) is not None or any(u in lowered for u in _SCRIPT_URLS)


_STRICT_LOCK = threading.Lock()


@contextmanager
def _strict_decoding():
    """Pillow refuses truncated images while this runs. WeasyPrint turns Pillow's
    LOAD_TRUNCATED_IMAGES on for the whole process when it is imported (to print what it can);
    an upload must be whole. The lock keeps two checks from restoring each other's value."""
    with _STRICT_LOCK:
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _check_image(data: bytes, content_type: str) -> None:
    """Decode the whole image: a file that only starts like one, a truncated one or one with
    too many pixels is refused."""
    fmt = _PIL_FORMATS[content_type]
    try:
        with _strict_decoding(), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise _refuse(_("This image is too large (%(w)s × %(h)s pixels); the limit "
                                    "is %(mp)s megapixels.")
                                  % {"w": width, "h": height,
                                     "mp": MAX_IMAGE_PIXELS // 1_000_000}, "too_many_pixels")
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(_("This image has too many pixels to be opened safely."),
                      "too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error,
            EOFError, IndexError, TypeError):
        raise _refuse(_("This file is not a valid %(format)s image (it may be damaged or "
                        "incomplete).") % {"format": fmt}, "invalid_image") from None


def _check_pdf(data: bytes) -> None:
    if b"%%EOF" not in data[-2048:]:
        raise _refuse(_("This PDF is incomplete (it has no end): upload it again."),
                      "invalid_pdf")
    if _PDF_ACTIVE.search(data):
        raise _refuse(_("This PDF contains scripts or actions that start programs: it cannot "
                        "be uploaded. Print it to a new PDF first."), "active_content")


def _check_xlsx(data: bytes) -> FileType:
    not_workbook = _refuse(_("This zip file is not an Excel workbook (.xlsx): only Excel "
                             "workbooks are accepted among zip-based files."), "not_xlsx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > 10_000:
                raise not_workbook
            names = {info.filename for info in infos}
            types = archive.getinfo("[Content_Types].xml") \
                if "[Content_Types].xml" in names else None
            if types is None or "xl/workbook.xml" not in names \
                    or not any(n.startswith("xl/worksheets/") for n in names):
                raise not_workbook
            if types.file_size > 1024 * 1024:
                raise not_workbook
            content_types = archive.read(types)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, KeyError,
            NotImplementedError, RuntimeError, ValueError):
        raise not_workbook from None
    if b"macroEnabled" in content_types or "xl/vbaProject.bin" in names:
        raise _refuse(_("Workbooks with macros (.xlsm) cannot be uploaded: save it as a plain "
                        ".xlsx workbook."), "active_content")
    if b"spreadsheetml.sheet.main+xml" not in content_types:
        raise not_workbook
    return FileType(XLSX_CONTENT_TYPE, ".xlsx")


def _stl_binary_triangles(data: bytes) -> int | None:
    """The triangle count of a binary STL whose size matches it (84 + 50 × n bytes)."""
    if len(data) < 84:
        return None
    (count,) = struct.unpack_from("<I", data, 80)
    return count if count > 0 and len(data) == 84 + 50 * count else None


def _is_ascii_stl(data: bytes) -> bool:
    start = data.lstrip()[:5].lower()
    if start != b"solid" or not _is_text(data):
        return False
    lowered = data.lower()
    return b"facet" in lowered and b"vertex" in lowered and b"endsolid" in lowered


def _is_obj(data: bytes) -> bool:
    return _is_text(data) and bool(_OBJ_VERTEX.search(data)) and bool(_OBJ_FACE.search(data))


def _cad_without_signature(data: bytes) -> FileType | None:
    """STL (binary: no magic number, a size that matches its triangle count; ASCII: text) and
    OBJ (text); a web page or an SVG image is refused here."""
    if _stl_binary_triangles(data) is not None:
        return FileType("model/stl", ".stl")
    if _WEB_START.search(data[:1024]) or _has_active_content(data):
        raise _refuse(_("Web pages and SVG images cannot be uploaded."), "active_content")
    if _is_ascii_stl(data):
        return FileType("model/stl", ".stl")
    if _is_obj(data):
        return FileType("model/obj", ".obj")
    return None


def identify(head: bytes) -> FileType | None:
    """The type a file's first bytes announce (a first look only: `inspect` decides)."""
    if head.startswith(b"\xff\xd8\xff"):
        return FileType("image/jpeg", ".jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType("image/png", ".png")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileType("image/webp", ".webp")
    if head.startswith(b"%PDF-"):
        return FileType("application/pdf", ".pdf")
    if head.startswith(b"PK\x03\x04"):
        return FileType(XLSX_CONTENT_TYPE, ".xlsx")
    if head.startswith(b"3D Geometry File Format "):
        return FileType("model/vnd.3dm", ".3dm")
    return None


def inspect(data: bytes, name_hint: str = "") -> FileType:
    """What the file is, from its content; raises ValidationFailed for anything refused.
    `name_hint` only words the refusal (a broken .stl is told it is a broken STL)."""
    head = data[:2048]
    kind = identify(head)
    if kind is None:
        kind = _cad_without_signature(data)
    elif kind.content_type == XLSX_CONTENT_TYPE:
        kind = _check_xlsx(data)
    if kind is None:
        if name_hint.lower().endswith(".stl"):
            raise _refuse(_("This STL file is damaged or incomplete: a binary STL must hold "
                            "84 bytes plus 50 per triangle, an ASCII STL must start with "
                            "'solid' and list its facets. Export it again."), "invalid_stl")
        raise _refuse(_("This file type is not accepted: upload a photo (JPEG, PNG, WebP), a "
                        "PDF, an Excel workbook (.xlsx) or a CAD file (STL, OBJ, 3DM)."),
                      "unsupported_type")
    if _has_active_content(data):
        raise _refuse(_("This file carries a web page or a script besides its content: it "
                        "cannot be uploaded. Export it again from the program that made it."),
                      "active_content")
    if kind.is_image:
        _check_image(data, kind.content_type)
    elif kind.content_type == "application/pdf":
        _check_pdf(data)
    return kind


def make_thumbnail(data: bytes) -> bytes | None:
    """A JPEG at most 320 px on its longer side, turned upright as the camera's EXIF says, with
    no metadata (no EXIF, no GPS position). None when the image cannot be reduced."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))
            upright = ImageOps.exif_transpose(img)
            upright.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            rgba = upright.convert("RGBA")
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, TypeError) as exc:
        # The image was decoded at upload; a mode Pillow cannot reduce (16-bit grey, say)
        # leaves the document without a thumbnail, and the pages show the file's name.
        log.warning("no thumbnail: %s", exc)
        return None
    # A new image, so nothing of the original's metadata travels with the pixels.
    clean = Image.new("RGB", rgba.size, (255, 255, 255))
    clean.paste(rgba, mask=rgba.getchannel("A"))
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()
