"""Printed materials documents: the slip that travels with the metal (with a QR code that opens
it) and a workshop's statement. Rendered by WeasyPrint through `production.pdf.render_pdf`,
which never fetches anything from the network."""

from __future__ import annotations

import segno
from django.utils import timezone

from etabli.production.pdf import render_pdf


def slip_pdf(request, *, slip, lines, url: str, from_name: str, to_name: str, pieces) -> bytes:
    qr = segno.make(url, error="m")
    return render_pdf("materials/slip_pdf.html", {
        "slip": slip, "lines": lines, "url": url, "qr": qr.svg_data_uri(border=1),
        "from_name": from_name, "to_name": to_name, "pieces": pieces,
        "printed_at": timezone.localtime(),
    }, base_url=request.build_absolute_uri("/"), request=request)


def statement_pdf(request, context: dict) -> bytes:
    return render_pdf("materials/statement_pdf.html", context,
                      base_url=request.build_absolute_uri("/"), request=request)
