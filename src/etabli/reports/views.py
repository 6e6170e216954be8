"""Report pages under /reports/: the KPIs with a filter form, SVG charts, CSV/XLSX exports of
every table and the monthly production report as PDF.

Thin: reads through `selectors.kpis` (which scopes to the user). Anyone who may not read
reports gets 404; bad filters give the page back with the message and status 400.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core.errors import DomainError

from . import charts, selectors, tables
from .selectors import ReportFilters


def _reader(request) -> None:
    if not selectors.can_read_reports(request.user):
        raise Http404("No such page.")


def default_period() -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    return today - dt.timedelta(days=89), today


def _filters(request) -> ReportFilters:
    params = request.GET.copy()
    if not params.get("start") and not params.get("end"):
        start, end = default_period()
        params["start"], params["end"] = start.isoformat(), end.isoformat()
    return ReportFilters.parse(params)


def _data(request):
    """(filters, kpis) or raise DomainError / Http404."""
    f = _filters(request)
    try:
        return f, selectors.kpis(request.user, f)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        raise


def _filename(f: ReportFilters, what: str) -> str:
    return f"etabli-{what}-{f.start:%Y%m%d}-{f.end:%Y%m%d}"


@login_required
def report(request):
    _reader(request)
    choices = selectors.filter_choices(request.user)
    try:
        f, data = _data(request)
    except DomainError as exc:
        return render(request, "reports/report.html",
                      {"error": exc.message, "choices": choices, "values": request.GET,
                       "today": timezone.localdate()}, status=exc.status)
    return render(request, "reports/report.html", {
        "filters": f, "values": f.as_query(), "data": data, "choices": choices,
        "tables": tables.tables(data), "charts": charts.all_charts(data),
        "query": request.GET.urlencode(), "today": timezone.localdate(),
    })


def _export(request, fmt: str, table: str | None):
    _reader(request)
    try:
        f, data = _data(request)
    except DomainError as exc:
        from django.http import HttpResponse

        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    tabs = tables.tables(data)
    if table is not None:
        tabs = [t for t in tabs if t.name == table]
        if not tabs:
            raise Http404("No such table.")
    if fmt == "csv":
        if len(tabs) != 1:
            raise Http404("A CSV export is one table.")
        return tables.csv_response(tabs[0], _filename(f, tabs[0].name))
    return tables.xlsx_response(tabs, _filename(f, table or "report"))


@login_required
def export_csv(request, table: str):
    return _export(request, "csv", table)


@login_required
def export_xlsx(request, table: str | None = None):
    return _export(request, "xlsx", table)


@login_required
def monthly_pdf(request):
    """The production report of one month (?month=YYYY-MM, the previous month by default),
    with the same filters as the page."""
    from etabli.core.printing import house, pdf_response
    from etabli.production.pdf import render_pdf

    _reader(request)
    value = (request.GET.get("month") or "").strip()
    try:
        if value:
            year, month = (int(x) for x in value.split("-"))
            first = dt.date(year, month, 1)
        else:
            first = (timezone.localdate().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        params = request.GET.copy()
        month_f = ReportFilters.month(first.year, first.month)
        params["start"], params["end"] = month_f.start.isoformat(), month_f.end.isoformat()
        f = ReportFilters.parse(params)
        data = selectors.kpis(request.user, f)
    except (ValueError, TypeError):
        from django.http import HttpResponse

        return HttpResponse(_("Give the month as YYYY-MM."), status=400,
                            content_type="text/plain")
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        from django.http import HttpResponse

        return HttpResponse(exc.message, status=exc.status, content_type="text/plain")
    pdf = render_pdf("reports/monthly_pdf.html", {
        "house": house(), "printed_at": timezone.localtime(), "filters": f, "month": first,
        "data": data, "tables": tables.tables(data), "charts": charts.all_charts(data),
    })
    return pdf_response(pdf, f"production-report-{first:%Y-%m}.pdf", inline=False)
