"""HTML → PDF with WeasyPrint, for every printed document (job bags now; slips, sheets later).

Rendering never reaches the network: a document may embed `data:` URIs (QR codes, inline
images) and the project's static files (resolved on disk by the staticfiles finders); any
other URL is refused, so content in a document cannot make the server fetch anything.
"""

from __future__ import annotations

import mimetypes
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string


class FetchRefused(ValueError):
    pass


def _fetcher_for(base_url: str | None):
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    static_prefix = urlsplit(settings.STATIC_URL or "/static/").path
    base = urlsplit(base_url or "")

    class LocalOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith("data:"):
                return super().fetch(url, headers)
            parts = urlsplit(url)
            same_site = parts.scheme in ("http", "https") and parts.netloc == base.netloc
            if same_site and parts.path.startswith(static_prefix):
                path = finders.find(unquote(parts.path[len(static_prefix):]))
                if path:
                    with open(path, "rb") as handle:
                        data = handle.read()
                    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, data, {"Content-Type": ctype})
            raise FetchRefused(f"Not fetched while printing: {url}")

    return LocalOnlyFetcher(allowed_protocols={"data", "http", "https"})


def render_pdf(template: str, context: dict, base_url: str | None = None, *,
               request=None) -> bytes:
    """Render a Django template to PDF bytes. `base_url` (e.g. the site's absolute root) lets
    the template use relative static URLs."""
    from weasyprint import HTML

    html = render_to_string(template, context, request=request)
    return HTML(string=html, base_url=base_url, url_fetcher=_fetcher_for(base_url)).write_pdf()
