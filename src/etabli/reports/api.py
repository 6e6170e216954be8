"""Reports: GET /api/v1/reports/kpis (JSON) and the exports, with the filters of the page.

Administrators, production managers and sales see the house; a workshop member sees their own
workshop's figures only; anyone else gets 404.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from etabli.clients.models import Channel
from etabli.core.errors import NotFound
from etabli.workshops.models import StepKind

from . import selectors, tables
from .selectors import ReportFilters

router = Router(tags=["Reports"])

MAX_ID = 2**31 - 1


class KpiQuery(Schema):
    start: dt.date = Field(description="First day of the period (included)")
    end: dt.date = Field(description="Last day of the period (included)")
    workshop_id: int | None = Field(None, ge=1, le=MAX_ID)
    step: StepKind | None = None
    client_id: int | None = Field(None, ge=1, le=MAX_ID)
    channel: Channel | None = None
    model: str | None = Field(None, max_length=60, description="Catalogue model reference")
    alloy_id: int | None = Field(None, ge=1, le=MAX_ID)

    def filters(self) -> ReportFilters:
        return ReportFilters(start=self.start, end=self.end, workshop_id=self.workshop_id,
                             step=self.step.value if self.step else None,
                             client_id=self.client_id,
                             channel=self.channel.value if self.channel else None,
                             model=(self.model or "").strip() or None, alloy_id=self.alloy_id)


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@router.get("/reports/kpis", response=dict, summary="Every KPI of a period")
def report_kpis(request, q: Query[KpiQuery]):
    """Lead times (median, 90th percentile), time per step and workshop, right first time,
    metal loss, stone breakage, on-time delivery, work in progress, queue times, throughput.
    Definitions: docs/reports.md."""
    return jsonable(selectors.kpis(request.auth, q.filters()))


@router.get("/reports/export.xlsx", summary="Every table of the report as an XLSX workbook")
def report_xlsx(request, q: Query[KpiQuery]):
    f = q.filters()
    data = selectors.kpis(request.auth, f)
    return tables.xlsx_response(tables.tables(data), f"etabli-report-{f.start:%Y%m%d}-"
                                                     f"{f.end:%Y%m%d}")


@router.get("/reports/{table}.csv", summary="One table of the report as CSV")
def report_csv(request, table: str, q: Query[KpiQuery]):
    f = q.filters()
    data = selectors.kpis(request.auth, f)
    found = [t for t in tables.tables(data) if t.name == table]
    if not found:
        raise NotFound(_("No such table."))
    return tables.csv_response(found[0], f"etabli-{table}-{f.start:%Y%m%d}-{f.end:%Y%m%d}")
