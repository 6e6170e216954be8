"""Report charts drawn on the server as SVG with pygal: no JavaScript, nothing fetched.

Each function returns an SVG string (or "" when there is nothing to draw) that the page
inlines and the PDF embeds as an image. pygal's tooltips script is disabled (`js=[]`) and
the style uses the app's colours (core/etabli.css).
"""

from __future__ import annotations

import base64

import pygal
from django.utils.translation import gettext as _
from pygal.style import Style

APP_STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1f1b17",
    foreground_strong="#1f1b17", foreground_subtle="#ddd5ca", opacity=".9",
    opacity_hover="1", transition="0s",
    colors=("#b8862b", "#245c8f", "#a1241b", "#2f7d32", "#6b625a", "#8a6420"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif",
    title_font_size=16, label_font_size=12, major_label_font_size=12, legend_font_size=12,
    value_font_size=11, tooltip_font_size=12,
)


def _config(chart_cls, title: str, **kwargs):
    return chart_cls(title=title, style=APP_STYLE, js=[], disable_xml_declaration=True,
                     width=720, height=340, explicit_size=False, legend_at_bottom=True,
                     print_values=False, show_minor_x_labels=True, truncate_label=24,
                     x_label_rotation=kwargs.pop("x_label_rotation", 0), **kwargs)


def _render(chart) -> str:
    svg = chart.render(is_unicode=True)
    return svg


def lead_time_trend(data: dict) -> str:
    lt = data.get("lead_time")
    if not lt or not lt["weekly"]:
        return ""
    chart = _config(pygal.Line, _("Order → delivery lead time, median per week (days)"),
                    x_label_rotation=30)
    chart.x_labels = [w["week"].strftime("%d %b") for w in lt["weekly"]]
    chart.add(_("Median"), [w["median_days"] for w in lt["weekly"]])
    return _render(chart)


def workshop_times(data: dict) -> str:
    if not data["workshops"]:
        return ""
    chart = _config(pygal.Bar, _("Time per workshop: actual vs planned (days)"))
    chart.x_labels = [w["workshop"] for w in data["workshops"]]
    chart.add(_("Actual"), [w["actual_days"] for w in data["workshops"]])
    chart.add(_("Planned"), [w["planned_days"] for w in data["workshops"]])
    return _render(chart)


def metal_loss(data: dict) -> str:
    rows = data["metal_loss"]["rows"]
    if not rows:
        return ""
    per: dict[str, float] = {}
    for r in rows:
        per[r["workshop"]] = per.get(r["workshop"], 0.0) + float(r["loss_g"])
    chart = _config(pygal.Bar, _("Metal loss per workshop (g)"))
    chart.x_labels = list(per)
    chart.add(_("Loss g"), list(per.values()))
    return _render(chart)


def bottleneck(data: dict) -> str:
    if not data["queue"]:
        return ""
    chart = _config(pygal.HorizontalBar, _("Where pieces wait: mean queue time per step (days)"))
    chart.x_labels = [q["label"] for q in data["queue"]]
    chart.add(_("Mean wait"), [q["avg_days"] for q in data["queue"]])
    chart.add(_("Longest wait"), [q["max_days"] for q in data["queue"]])
    return _render(chart)


def throughput(data: dict) -> str:
    weeks = data["throughput"]
    if not weeks:
        return ""
    chart = _config(pygal.Line, _("Throughput per week"), x_label_rotation=30)
    chart.x_labels = [w["week"].strftime("%d %b") for w in weeks]
    if data["scope"] == "house":
        chart.add(_("Pieces delivered"), [w["pieces_delivered"] for w in weeks])
    chart.add(_("Steps completed"), [w["steps_completed"] for w in weeks])
    return _render(chart)


def all_charts(data: dict) -> list[dict]:
    charts = [("lead_time", lead_time_trend(data)), ("workshops", workshop_times(data)),
              ("metal_loss", metal_loss(data)), ("bottleneck", bottleneck(data)),
              ("throughput", throughput(data))]
    return [{"name": name, "svg": svg,
             "data_uri": "data:image/svg+xml;base64,"
                         + base64.b64encode(svg.encode("utf-8")).decode("ascii")}
            for name, svg in charts if svg]
