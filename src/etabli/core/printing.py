"""Printed documents of an order: the house's letterhead and the order's language.

Every order document (launch sheet, technical sheet, transfer slip, inspection sheet, delivery
slip, invoice, care card…) extends `pdf/base.html` and is rendered with `render_order_pdf`, which
switches to the order's language for the time of the rendering and gives the template the house
as configured (`ETABLI_HOUSE_*`).
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

import segno
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone, translation

from etabli.production.pdf import render_pdf

LOGO_MAX_BYTES = 2 * 1024 * 1024


def house_logo_data_uri() -> str:
    """The configured logo as a data: URI (PNG or JPEG), or "" when none is usable."""
    path = (settings.ETABLI_HOUSE_LOGO or "").strip()
    if not path:
        return ""
    logo = Path(path)
    try:
        if not logo.is_file() or logo.stat().st_size > LOGO_MAX_BYTES:
            return ""
        data = logo.read_bytes()
    except OSError:
        return ""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        ctype = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        ctype = "image/jpeg"
    else:
        ctype = mimetypes.guess_type(path)[0] or ""
        if ctype not in ("image/png", "image/jpeg"):
            return ""
    return f"data:{ctype};base64,{base64.b64encode(data).decode('ascii')}"


def house() -> dict:
    return {
        "name": settings.ETABLI_HOUSE_NAME,
        "address_lines": [line for line in settings.ETABLI_HOUSE_ADDRESS.splitlines()
                          if line.strip()],
        "vat_number": settings.ETABLI_HOUSE_VAT_NUMBER,
        "email": settings.ETABLI_HOUSE_EMAIL,
        "phone": settings.ETABLI_HOUSE_PHONE,
        "logo": house_logo_data_uri(),
    }


def qr_data_uri(url: str) -> str:
    """A QR code of `url` as an SVG data: URI (printed documents embed it, nothing is fetched)."""
    return segno.make(url, error="m").svg_data_uri(border=1)


def person(user) -> str:
    """How a person is named on paper: full name, else the user name; "" for nobody."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def order_language(order) -> str:
    lang = getattr(order, "language", "") or "en"
    return lang if lang in dict(settings.LANGUAGES) else "en"


def render_order_pdf(template: str, context: dict, *, order, request=None) -> bytes:
    """Render `template` (extending pdf/base.html) in the order's language, with the house."""
    base_url = request.build_absolute_uri("/") if request is not None else None
    with translation.override(order_language(order)):
        ctx = {"house": house(), "order": order, "printed_at": timezone.localtime(),
               "LANGUAGE_CODE": order_language(order), **context}
        # The request is not passed on: its user's language must not win over the order's.
        return render_pdf(template, ctx, base_url)


def pdf_response(data: bytes, filename: str, *, inline: bool = True) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
