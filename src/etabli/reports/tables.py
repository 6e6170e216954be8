"""The report's tables (one definition for the page, the CSV/XLSX exports and the PDF).

`tables(data)` turns the dict of `selectors.kpis` into named tables: a title, column headings
and rows of plain values. Columns that carry money exist only when the reader sees values.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpResponse
from django.utils.translation import gettext as _

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Table:
    name: str  # stable slug, used in the export URLs
    title: str
    columns: list[str]
    rows: list[list]


def _rate(v):
    return "" if v is None else v


def tables(data: dict) -> list[Table]:
    out: list[Table] = []
    lt = data.get("lead_time")
    if lt is not None:
        rows = []
        for key, label in (("manufacturing", _("Launch → manufacturing complete")),
                           ("delivery", _("Order → delivery"))):
            d = lt[key]
            rows.append([label, d["count"], _rate(d["median_days"]), _rate(d["p90_days"]),
                         _rate(d["mean_days"])])
        out.append(Table("lead_time", _("Lead time (days)"),
                         [_("Lead time"), _("Pieces"), _("Median"), _("90th percentile"),
                          _("Mean")], rows))
        out.append(Table("lead_time_weekly", _("Order → delivery lead time per week"),
                         [_("Week of"), _("Pieces delivered"), _("Median (days)")],
                         [[w["week"], w["count"], _rate(w["median_days"])]
                          for w in lt["weekly"]]))
    out.append(Table("steps", _("Time per step (days)"),
                     [_("Step"), _("Runs finished"), _("Actual (mean)"), _("Planned (mean)"),
                      _("Longer than planned")],
                     [[s["label"], s["runs"], _rate(s["actual_days"]), s["planned_days"],
                       s["over_plan"]] for s in data["steps"]]))
    out.append(Table("workshops", _("Time per workshop (days)"),
                     [_("Workshop"), _("Runs finished"), _("Actual (mean)"),
                      _("Planned (mean)")],
                     [[w["workshop"], w["runs"], _rate(w["actual_days"]), w["planned_days"]]
                      for w in data["workshops"]]))
    rft = data["right_first_time"]
    rows = []
    if rft["pieces"] is not None:
        p = rft["pieces"]
        rows.append([_("Pieces delivered without rework"), p["finished"], p["right_first_time"],
                     _rate(p["rate"])])
    r = rft["runs"]
    rows.append([_("Steps done at the first attempt"), r["finished"], r["first_attempt"],
                 _rate(r["rate"])])
    out.append(Table("right_first_time", _("Right first time"),
                     [_("Measure"), _("Finished"), _("Right first time"), _("Rate %")], rows))
    ml = data["metal_loss"]
    values = data["sees_values"]
    cols = [_("Workshop"), _("Operation"), _("Jobs"), _("Issued g"), _("Loss g"),
            # xgettext:no-python-format
            _("Loss % of issued"), _("Allowance g"), _("Over allowance")]
    if values:
        cols += [_("Loss fine g"), _("Value")]
    rows = []
    for m in ml["rows"]:
        row = [m["workshop"], m["operation"], m["jobs"], m["issued_g"], m["loss_g"],
               _rate(m["loss_percent"]), m["allowance_g"], m["over_allowance"]]
        if values:
            row += [m["loss_fine_g"], _rate(m["value"])]
        rows.append(row)
    out.append(Table("metal_loss", _("Metal loss per workshop and operation"), cols, rows))
    sb = data["stone_breakage"]
    out.append(Table("stone_breakage", _("Stone breakage"),
                     [_("Workshop"), _("Stones received"), _("Broken"), _("Lost"), _("Rate %")],
                     [[s["workshop"], s["received"], s["broken"], s["lost"], _rate(s["rate"])]
                      for s in sb["rows"]]))
    if data.get("on_time") is not None:
        o = data["on_time"]
        out.append(Table("on_time", _("On-time delivery"),
                         [_("Pieces delivered (with a promised date)"), _("On time"),
                          _("Rate %")], [[o["delivered"], o["on_time"], _rate(o["rate"])]]))
    out.append(Table("wip", _("Work in progress now"),
                     [_("Step"), _("Waiting"), _("In transit"), _("In progress"), _("On hold"),
                      _("Total")],
                     [[w["label"], w["waiting"], w["in_transit"], w["in_progress"],
                       w["on_hold"], w["total"]] for w in data["wip"]]))
    out.append(Table("queue", _("Queue time per step (days waiting before the work starts)"),
                     [_("Step"), _("Runs started"), _("Mean wait"), _("Longest wait")],
                     [[q["label"], q["runs"], _rate(q["avg_days"]), _rate(q["max_days"])]
                      for q in data["queue"]]))
    out.append(Table("queue_workshops", _("Queue time per workshop (days)"),
                     [_("Workshop"), _("Runs started"), _("Mean wait"), _("Longest wait")],
                     [[q["workshop"], q["runs"], _rate(q["avg_days"]), _rate(q["max_days"])]
                      for q in data["queue_workshops"]]))
    house = data["scope"] == "house"
    cols = [_("Week of")] + ([_("Pieces delivered")] if house else []) + [_("Steps completed")]
    out.append(Table("throughput", _("Throughput per week"), cols,
                     [[t["week"]] + ([t["pieces_delivered"]] if house else [])
                      + [t["steps_completed"]] for t in data["throughput"]]))
    return out


def _cell(value):
    if isinstance(value, Decimal):
        return float(value)
    return value


def csv_response(table: Table, filename: str) -> HttpResponse:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if v is None else v for v in row])
    response = HttpResponse(buf.getvalue().encode("utf-8-sig"), content_type="text/csv; "
                            "charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def xlsx_bytes(tabs: list[Table]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    for t in tabs:
        ws = wb.create_sheet(t.name[:31])
        ws.append([t.title])
        ws["A1"].font = Font(bold=True)
        ws.append(t.columns)
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in t.rows:
            ws.append([_cell(v) for v in row])
        for i, col in enumerate(t.columns, start=1):
            ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = max(
                12, min(40, len(str(col)) + 2))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_response(tabs: list[Table], filename: str) -> HttpResponse:
    response = HttpResponse(xlsx_bytes(tabs), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
    return response
