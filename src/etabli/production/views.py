"""House pages for pieces: the dashboard, the piece list, the piece page and its actions, job bags.

Thin on purpose: reads go through `selectors` (already scoped to the user), writes through the
production services, so a page never shows or does what the API would refuse.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pydantic
import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Prefetch, Q, Subquery
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import date as date_filter
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from etabli.accounts.models import Role
from etabli.alerts import panels as alert_panels
from etabli.clients.models import Client
from etabli.core import printing
from etabli.core.errors import DomainError, PermissionDenied
from etabli.core.web import form_error, page_of, role_home
from etabli.documents import selectors as document_selectors
from etabli.documents.models import DocumentKind
from etabli.documents.services import document_upload
from etabli.workshops.models import StepKind, Workshop

from . import selectors, services
from .access import check_can_record
from .forms import ACTION_FORMS, DashboardFilterForm, PieceFilterForm
from .models import (
    ACTIVE_PIECE_STATUSES,
    OPEN_STEP_STATUSES,
    EventKind,
    HoldReason,
    Piece,
    PieceStatus,
    StepRun,
    StepStatus,
    TrackingEvent,
    Transfer,
)
from .state import next_status

AT_RISK_DAYS = 2  # a piece due within this many days is at risk
WEEK_DAYS = 7
BOARD_CELL_LIMIT = 8  # pieces listed per step × workshop cell; the count says how many more
PANEL_LIMIT = 15
LATEST_EVENTS = 20
MAX_ID = 2**63 - 1


def htmx_login_required(view):
    """login_required that, for an htmx poll after the session expired, reloads the page
    (so the person sees the log-in form) instead of swapping it into the board."""
    wrapped = login_required(view)

    def inner(request, *args, **kwargs):
        if not request.user.is_authenticated and request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = redirect_to_login(request.get_full_path()).url
            return response
        return wrapped(request, *args, **kwargs)

    inner.__name__ = view.__name__
    inner.__doc__ = view.__doc__
    return inner


# ---------------------------------------------------------------------------------------------
# filters: the API's PieceFilters, read from the query string


FILTER_LABELS = {
    "status": gettext_lazy("status"), "step": gettext_lazy("step"),
    "workshop_id": gettext_lazy("workshop"), "order_id": gettext_lazy("order"),
    "client_id": gettext_lazy("client"), "late": gettext_lazy("late"),
    "q": gettext_lazy("search"),
}


def parse_piece_filters(query, allowed=None) -> tuple[selectors.PieceFilters, dict, list[str]]:
    """(filters, the applied raw values, names of values ignored as invalid)."""
    values: dict[str, str] = {}
    ignored: list[str] = []
    for name in selectors.PieceFilters.model_fields:
        if allowed is not None and name not in allowed:
            continue
        raw = (query.get(name) or "").strip()
        if raw == "":
            continue
        try:
            parsed = getattr(selectors.PieceFilters.model_validate({name: raw}), name)
        except pydantic.ValidationError:
            ignored.append(name)
            continue
        if (name == "step" and raw not in StepKind.values) \
                or (isinstance(parsed, int) and not isinstance(parsed, bool)
                    and not 0 < parsed <= MAX_ID) \
                or (name == "q" and len(raw) > 100):
            ignored.append(name)
            continue
        values[name] = ("true" if parsed else "false") if name == "late" else raw
    return selectors.PieceFilters(**values), values, ignored


def _warn_ignored(request, ignored: list[str]) -> None:
    if ignored:
        messages.warning(request, _("Some filters were not understood and were ignored: %(f)s.")
                         % {"f": ", ".join(str(FILTER_LABELS[n]) for n in ignored)})


# ---------------------------------------------------------------------------------------------
# what a role may see of workshops (as production/api.py does)


def shown_workshop(ws, user, piece: Piece | None = None):
    """The workshop if `user` may know it: clients never; a workshop member only their own,
    the house, and the workshop the piece goes to next."""
    if ws is None or user.role == Role.CLIENT:
        return None
    if user.role == Role.WORKSHOP:
        if ws.pk in user.workshop_ids() or ws.is_house \
                or (piece is not None and ws.pk == piece.current_workshop_id):
            return ws
        return None
    return ws


def is_late(piece: Piece, today: dt.date) -> bool:
    return bool(piece.current_due and piece.current_due < today
                and piece.status in ACTIVE_PIECE_STATUSES)


def is_at_risk(piece: Piece, today: dt.date) -> bool:
    return bool(piece.current_due and piece.status in ACTIVE_PIECE_STATUSES
                and today <= piece.current_due <= today + dt.timedelta(days=AT_RISK_DAYS))


def _mark(pieces, today):
    for p in pieces:
        p.is_late = is_late(p, today)
        p.is_at_risk = is_at_risk(p, today)
    return pieces


def _piece_urls():
    """pk -> the piece page's URL, with one reverse() for all (it dominates a board of chips)."""
    mark = "987654321"
    url = reverse("production:piece", args=[int(mark)])
    return lambda pk: url.replace(mark, str(pk))


def _chips(pieces, piece_url) -> None:
    """Each piece's chip on the board (`p.chip`): late, at risk, on hold, in transit.

    Built here rather than by including a template per piece: the board shows a few hundred
    chips, and the template engine took ten times longer for the same HTML."""
    labels = {k: escape(v) for k, v in (
        ("due", _("due")), ("late", _("Late")), ("at_risk", _("At risk")),
        ("on_hold", _("On hold")), ("in_transit", _("In transit")))}
    for p in pieces:
        due = badge = status = ""
        if p.current_due:
            due = (f'<span class="due{" is-late" if p.is_late else ""}">'
                   f'<span class="visually-hidden">{labels["due"]} </span>'
                   f'{escape(date_filter(p.current_due, "j M"))}</span>')
        if p.is_late:
            badge = f'<span class="badge late">{labels["late"]}</span>'
        elif p.is_at_risk:
            badge = f'<span class="badge in_progress">{labels["at_risk"]}</span>'
        if p.status == PieceStatus.ON_HOLD:
            status = f'<span class="badge on_hold">{labels["on_hold"]}</span>'
        elif p.status == PieceStatus.IN_TRANSIT:
            status = f'<span class="badge in_transit">{labels["in_transit"]}</span>'
        p.chip = mark_safe(  # noqa: S308 - every value above is escaped
            f'<span class="chip"><a href="{escape(piece_url(p.pk))}" class="serial">'
            f'{escape(p.serial)}</a>\n<span class="ref">{escape(p.order.reference)}</span>\n'
            f'{due}\n{badge}\n{status}</span>\n')


# ---------------------------------------------------------------------------------------------
# dashboard


def _house_only(user) -> None:
    if not user.is_house_wide:
        raise Http404("No dashboard for this role.")


def _cell_pieces(active, rows) -> list[Piece]:
    """The first BOARD_CELL_LIMIT pieces of every cell, soonest due (so late, then at risk)
    first, at most BOARD_CELL_LIMIT * 60 in all.

    On PostgreSQL, one short scan of the board index per cell (a UNION ALL of LIMITed
    subqueries), so the cost follows the cells shown, not the pieces in production. Databases
    that cannot LIMIT inside a UNION number the rows of every cell instead."""
    if not rows:
        return []
    order = [F("current_due").asc(nulls_last=True), "serial"]
    if connection.features.supports_slicing_ordering_in_compound:
        cells = [active.filter(current_step=r["current_step"],
                               current_workshop_id=r["current_workshop_id"])
                 .order_by(*order).values_list("pk", flat=True)[:BOARD_CELL_LIMIT]
                 for r in rows]
        ids = list(cells[0].union(*cells[1:], all=True))
    else:
        ids = active.annotate(rank=Window(
            RowNumber(), partition_by=[F("current_step"), F("current_workshop_id")],
            order_by=order,
        )).filter(rank__lte=BOARD_CELL_LIMIT).values_list("pk")
    return list(Piece.objects.filter(pk__in=ids).select_related("order").only(*CHIP_FIELDS)
                .order_by(*order)[:BOARD_CELL_LIMIT * 60])


# What a piece chip shows (_chips), and the panels' step and workshop.
CHIP_FIELDS = ("serial", "status", "current_due", "current_step", "current_workshop_id",
               "order__reference")


def _dashboard_data(user, filters: selectors.PieceFilters, applied: dict) -> dict:
    today = timezone.localdate()
    risk_end = today + dt.timedelta(days=AT_RISK_DAYS)
    week_end = today + dt.timedelta(days=WEEK_DAYS - 1)
    active = selectors.active_pieces(user, filters, today=today)

    # Every count of the page in one grouped query (an index-only scan of the board index).
    # (COUNT(status), never null, rather than COUNT(id): id is not in the index.)
    rows = list(active.values("current_step", "current_workshop_id").annotate(
        n=Count("status"),
        late=Count("status", filter=Q(current_due__lt=today)),
        at_risk=Count("status", filter=Q(current_due__gte=today, current_due__lte=risk_end)),
        held=Count("status", filter=Q(status=PieceStatus.ON_HOLD)),
        week=Count("status", filter=Q(current_due__gte=today, current_due__lte=week_end)),
    ).order_by())
    totals = {k: sum(r[k] for r in rows) for k in ("n", "late", "at_risk", "held", "week")}
    workshops = selectors.workshops_by_id(
        {r["current_workshop_id"] for r in rows} - {None})

    by_cell: dict[tuple, list] = {}
    for p in _mark(_cell_pieces(active, rows), today):
        p.current_workshop = workshops.get(p.current_workshop_id)
        by_cell.setdefault((p.current_step, p.current_workshop_id), []).append(p)

    base_query = {k: v for k, v in applied.items() if k not in ("step", "workshop_id")}
    pieces_url = reverse("production:pieces")
    by_step: dict[str, list] = {}
    for r in rows:
        ws = workshops.get(r["current_workshop_id"])
        r["workshop"] = ws.name if ws else _("No workshop")
        r["code"] = ws.code if ws else None
        r["sort_name"] = ws.name if ws else ""
        by_step.setdefault(r["current_step"], []).append(r)
    columns = []
    for step, label in StepKind.choices:
        if filters.step and step != filters.step:
            continue
        cells = sorted(by_step.get(step, ()),
                       key=lambda r: (-r["late"], -r["at_risk"], r["sort_name"]))
        if step == StepKind.ORDER_RECEIPT and not cells:
            continue
        col = {"step": step, "label": label, "n": sum(c["n"] for c in cells),
               "late": sum(c["late"] for c in cells), "cells": []}
        for r in cells:
            shown = by_cell.get((step, r["current_workshop_id"]), [])
            col["cells"].append({
                "workshop": r["workshop"], "code": r["code"], "n": r["n"], "late": r["late"],
                "at_risk": r["at_risk"], "pieces": shown, "more": r["n"] - len(shown),
                "more_url": pieces_url + "?" + urlencode(
                    base_query | {"step": step, "workshop_id": r["current_workshop_id"] or ""}),
            })
        columns.append(col)

    held_event = TrackingEvent.objects.filter(piece=OuterRef("pk"), kind=EventKind.HELD) \
        .order_by("-id")
    held = list(active.filter(status=PieceStatus.ON_HOLD).annotate(
        hold_reason=Subquery(held_event.values("reason")[:1]),
        hold_comment=Subquery(held_event.values("comment")[:1]),
        held_at=Subquery(held_event.values("occurred_at")[:1]),
    ).select_related("order").only(*CHIP_FIELDS).order_by("held_at", "serial")[:PANEL_LIMIT])
    for p in _mark(held, today):
        p.current_workshop = workshops.get(p.current_workshop_id)
        try:
            p.hold_reason_label = HoldReason(p.hold_reason).label
        except ValueError:
            p.hold_reason_label = p.hold_reason or ""

    due_week = list(active.filter(current_due__gte=today, current_due__lte=week_end)
                    .select_related("order").only(*CHIP_FIELDS)
                    .order_by("current_due", "serial")[:PANEL_LIMIT])
    for p in _mark(due_week, today):
        p.current_workshop = workshops.get(p.current_workshop_id)

    piece_url = _piece_urls()
    _chips([p for ps in by_cell.values() for p in ps] + held + due_week, piece_url)
    # get_FOO_display() rebuilds its choices on every call: the labels are looked up once.
    steps = {k: str(v) for k, v in StepKind.choices}
    kinds = {k: str(v) for k, v in EventKind.choices}
    for p in held + due_week:
        p.step_label = steps.get(p.current_step, p.current_step)

    events_qs = TrackingEvent.objects.all()
    if applied:
        events_qs = events_qs.filter(
            piece__in=selectors.piece_list(user, filters, today=today).order_by().values("pk"))
    events = list(events_qs.select_related("piece__order", "actor", "workshop", "step_run")
                  .order_by("-occurred_at", "-id")[:LATEST_EVENTS])
    for ev in events:
        ev.piece_url = piece_url(ev.piece_id)
        ev.kind_label = kinds.get(ev.kind, ev.kind)
        ev.step_label = steps.get(ev.step_run.step, ev.step_run.step)

    return {
        "today": today, "totals": totals, "columns": columns, "held": held,
        "due_week": due_week, "events": events,
        "due_week_more": totals["week"] - len(due_week), "held_more": totals["held"] - len(held),
        "query": urlencode(applied),
        "pieces_url": pieces_url,
        "late_query": urlencode(applied | {"late": "true"}),
        "held_query": urlencode(applied | {"status": PieceStatus.ON_HOLD}),
        "updated_at": timezone.localtime(),
    }


DASHBOARD_FILTERS = ("client_id", "workshop_id", "step", "status", "late")


@login_required
def dashboard(request):
    """Where is every piece: the board by step × workshop, holds, what is due, latest events."""
    user = request.user
    _house_only(user)
    filters, applied, ignored = parse_piece_filters(request.GET, DASHBOARD_FILTERS)
    if filters.status and filters.status not in ACTIVE_PIECE_STATUSES:
        ignored.append("status")
        applied.pop("status")
        filters = filters.model_copy(update={"status": None})
    _warn_ignored(request, ignored)
    form = DashboardFilterForm(
        initial=applied | {"late": applied.get("late") == "true"},
        clients=Client.objects.visible_to(user).only("pk", "name").order_by("name"),
        workshops=Workshop.objects.visible_to(user).only("pk", "name").order_by("name"))
    context = _dashboard_data(user, filters, applied) | {"form": form}
    context |= alert_panels.dashboard_section(user)
    return render(request, "production/dashboard.html", context)


@htmx_login_required
def dashboard_board(request):
    """The live part of the dashboard, polled by htmx every few seconds."""
    user = request.user
    _house_only(user)
    filters, applied, _ignored = parse_piece_filters(request.GET, DASHBOARD_FILTERS)
    if filters.status and filters.status not in ACTIVE_PIECE_STATUSES:
        applied.pop("status")
        filters = filters.model_copy(update={"status": None})
    return render(request, "production/_dashboard_live.html",
                  _dashboard_data(user, filters, applied)
                  | alert_panels.dashboard_section(user))


# ---------------------------------------------------------------------------------------------
# piece list


# What a row of the piece list shows (production/pieces.html).
LIST_FIELDS = ("serial", "status", "current_step", "current_due", "current_workshop_id",
               "transit_to_id", "rework_count", "order__reference", "order__client__name",
               "line__description", "line__size", "line__alloy__name")


@login_required
def piece_list_page(request):
    """Every piece the user may see, with the API's filters, search and pages."""
    user = request.user
    if user.role in (Role.WORKSHOP, Role.CLIENT):
        return redirect(role_home(user))
    filters, applied, ignored = parse_piece_filters(request.GET)
    _warn_ignored(request, ignored)
    today = timezone.localdate()
    # Two joins fewer than the API's list (the page's workshops come from one small query):
    # planning an eight-table join cost more than running it.
    qs = selectors.piece_list(user, filters, today=today).select_related(None) \
        .select_related("order__client", "line__alloy").only(*LIST_FIELDS).order_by(
            F("current_due").asc(nulls_last=True), "serial", "id")
    page = page_of(request, qs)
    pieces = _mark(list(page.object_list), today)
    workshops = selectors.workshops_by_id(
        {w for p in pieces for w in (p.current_workshop_id, p.transit_to_id)} - {None})
    steps = {k: str(v) for k, v in StepKind.choices}
    statuses = {k: str(v) for k, v in PieceStatus.choices}
    piece_url = _piece_urls()
    for p in pieces:
        p.url = piece_url(p.pk)
        p.current_workshop = workshops.get(p.current_workshop_id)
        p.transit_to = workshops.get(p.transit_to_id)
        p.step_label = steps.get(p.current_step, p.current_step)
        p.status_label = statuses.get(p.status, p.status)
    page.object_list = pieces
    form = PieceFilterForm(
        initial=applied | {"late": applied.get("late") == "true"},
        clients=(Client.objects.visible_to(user).only("pk", "name").order_by("name")
                 if user.sees_clients else ()),
        workshops=Workshop.objects.visible_to(user).only("pk", "name").order_by("name"))
    if not user.sees_clients:
        del form.fields["client_id"]
    order_filter = None
    if filters.order_id:
        from etabli.orders.models import Order

        order_filter = Order.objects.visible_to(user).filter(pk=filters.order_id) \
            .values_list("reference", flat=True).first()
    return render(request, "production/pieces.html", {
        "page": page, "form": form, "query": urlencode(applied),
        "order_filter": order_filter, "order_id": applied.get("order_id"),
        "filtered": bool(applied), "today": today,
    })


# ---------------------------------------------------------------------------------------------
# piece page


def _piece_or_404(user, piece_id: int) -> Piece:
    piece = selectors.piece_get(user, piece_id)
    if piece is None:
        raise Http404("No such piece.")
    return piece


def _open_run(runs):
    return next((r for r in runs if r.status in OPEN_STEP_STATUSES), None)


def rework_targets(runs, run) -> list[StepRun]:
    """The steps the piece may be sent back to (the rules of services.piece_rework)."""
    if run is None:
        return []
    last_rework = max((r.position for r in runs if r.reworked and r.position < run.position),
                      default=0)
    return [r for r in runs
            if r.position <= run.position and (r.status == StepStatus.DONE or r.pk == run.pk)
            and r.step != StepKind.ORDER_RECEIPT and not r.reworked
            and r.position > last_rework]


ACTION_EVENTS = {
    "receive": EventKind.RECEIVED, "start": EventKind.STARTED, "complete": EventKind.COMPLETED,
    "send": EventKind.SENT, "hold": EventKind.HELD, "release": EventKind.RELEASED,
    "rework": EventKind.REWORK, "note": EventKind.NOTE,
}


def allowed_actions(user, piece: Piece, runs: list[StepRun]) -> list[str]:
    """The actions `user` may take on `piece` right now: the state machine, the services' extra
    rules, and production.access — so only what the service would accept is offered."""
    run = _open_run(runs)
    allowed = []
    for action, kind in ACTION_EVENTS.items():
        if action == "note":
            if run is None and piece.current_run_id is None:
                continue
        else:
            if run is None or next_status(kind, run.status, run.held_from) is None:
                continue
            if action == "start" and run.status == StepStatus.READY \
                    and piece.location_id != run.workshop_id:
                continue
            if action == "send" and (run.status != StepStatus.READY
                                     or piece.location_id == run.workshop_id):
                continue
            if action == "rework" and not rework_targets(runs, run):
                continue
        try:
            check_can_record(user, piece, kind)
        except PermissionDenied:
            continue
        allowed.append(action)
    return allowed


def _target_choices(runs, run, user, piece):
    choices = []
    for r in rework_targets(runs, run):
        ws = shown_workshop(r.workshop, user, piece)
        label = f"{r.position}. {StepKind(r.step).label}"
        if ws is not None:
            label += f" · {ws.name}"
        if r.pk == run.pk:
            label += " " + _("(this step again)")
        choices.append((r.pk, label))
    return choices


def make_action_form(action, user, piece, runs, data=None, files=None):
    kwargs = {"prefix_action": action}
    if action == "rework":
        kwargs["targets"] = _target_choices(runs, _open_run(runs), user, piece)
    return ACTION_FORMS[action](data, files, **kwargs)


ACTION_LABELS = {
    "receive": gettext_lazy("Receive"), "start": gettext_lazy("Start the step"),
    "complete": gettext_lazy("Complete the step"), "send": gettext_lazy("Send"),
    "hold": gettext_lazy("Put on hold"), "release": gettext_lazy("Release the hold"),
    "rework": gettext_lazy("Send back for rework"), "note": gettext_lazy("Add a note"),
}


def _action_confirm(action, piece, run, dest) -> str:
    if action == "complete":
        return _("Complete the step “%(step)s” for %(serial)s?") % {
            "step": StepKind(run.step).label, "serial": piece.serial}
    if action == "send":
        return _("Send %(serial)s to %(to)s?") % {
            "serial": piece.serial, "to": dest.name if dest else _("the next workshop")}
    if action == "hold":
        return _("Put %(serial)s on hold?") % {"serial": piece.serial}
    if action == "rework":
        return _("Send %(serial)s back for rework? The steps from the chosen one are done "
                 "again.") % {"serial": piece.serial}
    return ""


def _gantt(runs, today):
    """Bars for planned and actual dates, as percentages of the route's span."""
    def day(value):
        if value is None:
            return None
        return timezone.localtime(value).date() if isinstance(value, dt.datetime) else value

    dates = [today]
    for r in runs:
        dates += [d for d in (r.planned_start, r.planned_due, day(r.actual_start),
                              day(r.actual_finish)) if d]
    start, end = min(dates), max(dates)
    span = (end - start).days + 1

    def bar(a, b):
        if a is None or b is None:
            return None
        if b < a:
            b = a
        return {"left": f"{(a - start).days / span * 100:.2f}",
                "width": f"{max((b - a).days + 1, 1) / span * 100:.2f}"}

    rows = []
    for r in runs:
        actual_end = day(r.actual_finish) or (today if r.actual_start else None)
        rows.append({"run": r, "planned": None if r.status == StepStatus.SKIPPED
                     else bar(r.planned_start, r.planned_due),
                     "actual": bar(day(r.actual_start), actual_end)})
    return {"rows": rows, "start": start, "end": end,
            "today": f"{((today - start).days + 0.5) / span * 100:.2f}"}


def _event_label(ev) -> str:
    return str(EventKind(ev.kind).label)


def piece_context(request, piece: Piece, bound: dict | None = None) -> dict:
    user = request.user
    today = timezone.localdate()
    runs = selectors.piece_runs(user, piece)
    run = _open_run(runs)
    for r in runs:
        r.shown_workshop = shown_workshop(r.workshop, user, piece)
        r.is_current = run is not None and r.pk == run.pk
    events = list(selectors.piece_events(user, piece))
    docs = list(document_selectors.piece_documents(user, piece)  # newest visible versions
                .select_related("uploaded_by").order_by("uploaded_at", "id"))
    event_ids = {e.pk for e in events}
    if user.role == Role.WORKSHOP:
        # Photos of work done elsewhere stay with the workshop that took them.
        docs = [d for d in docs if d.event_id is None or d.event_id in event_ids]
    photos: dict[int, list] = {}
    for d in docs:
        if d.event_id is not None:
            photos.setdefault(d.event_id, []).append(d)
    for ev in events:
        ev.shown_workshop = shown_workshop(ev.workshop, user, piece)
        # Who did it is shown only where it happened is shown.
        ev.shown_actor = ev.actor if (ev.workshop_id is None or ev.shown_workshop) else None
        ev.label = _event_label(ev)
        ev.photos = photos.get(ev.pk, [])
        try:
            ev.reason_label = HoldReason(ev.reason).label if ev.reason else ""
        except ValueError:
            ev.reason_label = ev.reason

    bound = bound or {}
    actions = []
    dest = shown_workshop(run.workshop, user, piece) if run else None
    for action in allowed_actions(user, piece, runs):
        form = bound.get(action) or make_action_form(action, user, piece, runs)
        label = ACTION_LABELS[action]
        if action == "send" and dest is not None:
            label = _("Send to %(to)s") % {"to": dest.name}
        actions.append({"name": action, "label": label, "form": form,
                        "url": reverse("production:piece_action", args=[piece.pk, action]),
                        "confirm": _action_confirm(action, piece, run, dest),
                        "open": action in bound,
                        "danger": action in ("hold", "rework")})
    if actions and not bound:
        actions[0]["open"] = True

    order_url = None
    if user.role not in (Role.WORKSHOP, Role.CLIENT):
        try:
            order_url = reverse("orders:detail", args=[piece.order_id])
        except NoReverseMatch:
            order_url = None
    from etabli.core import panels

    return {
        "panels": panels.piece_panels(request, piece),
        "piece": piece, "order": piece.order, "line": piece.line, "run": run, "runs": runs,
        "events": events, "documents": docs, "actions": actions, "today": today,
        "is_late": is_late(piece, today), "is_at_risk": is_at_risk(piece, today),
        "current_workshop": shown_workshop(piece.current_workshop, user, piece),
        "location": shown_workshop(piece.location, user, piece),
        "transit_to": shown_workshop(piece.transit_to, user, piece),
        "sees_clients": user.sees_clients, "sees_prices": user.sees_prices,
        "shows_workshops": user.role != Role.CLIENT, "is_client": user.role == Role.CLIENT,
        "sees_promise": user.role != Role.WORKSHOP,
        "gantt": _gantt(runs, today), "order_url": order_url,
        "can_print": user.role != Role.CLIENT,
    }


@login_required
def piece_page(request, piece_id: int):
    piece = _piece_or_404(request.user, piece_id)
    return render(request, "production/piece.html", piece_context(request, piece))


# ---------------------------------------------------------------------------------------------
# actions


def _safe_next(request) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


def _record(user, piece: Piece, action: str, data: dict):
    """Call the service for `action`; returns the event (with `.replayed`)."""
    cid = data.get("client_event_id") or None
    comment = data.get("comment") or ""
    weight = data.get("weight_g")
    common = {"actor": user, "piece_id": piece.pk}
    if action == "receive":
        return services.piece_receive(**common, weight_g=weight, comment=comment,
                                      client_event_id=cid)
    if action == "start":
        return services.piece_start(**common, comment=comment, client_event_id=cid)
    if action == "complete":
        return services.piece_complete(**common, weight_g=weight, comment=comment,
                                       client_event_id=cid)
    if action == "send":
        transfer = services.pieces_send(
            actor=user, piece_ids=[piece.pk], comment=comment, client_ref=cid,
            weights_g={piece.pk: weight} if weight is not None else None)
        event = (transfer.events.filter(piece_id=piece.pk, kind=EventKind.SENT)
                 .select_related("transfer", "step_run").first())
        event.replayed = getattr(transfer, "replayed", False)
        return event
    if action == "hold":
        return services.piece_hold(**common, reason=data["reason"], comment=comment,
                                   client_event_id=cid)
    if action == "release":
        return services.piece_release(**common, comment=comment, client_event_id=cid)
    if action == "rework":
        return services.piece_rework(**common, target_run_id=data["target_run_id"],
                                     comment=comment, client_event_id=cid)
    return services.piece_note(**common, comment=comment, weight_g=weight, client_event_id=cid)


def _success_message(action, piece, event) -> str:
    values = {"serial": piece.serial}
    if action == "send":
        values |= {"slip": event.transfer.slip_number if event.transfer_id else "",
                   "to": piece.current_workshop.name if piece.current_workshop else ""}
        return _("%(serial)s sent to %(to)s on slip %(slip)s.") % values
    if action == "note":
        return _("Note added to %(serial)s.") % values
    return {
        "receive": _("%(serial)s received."),
        "start": _("%(serial)s: step started."),
        "complete": _("%(serial)s: step completed."),
        "hold": _("%(serial)s is on hold."),
        "release": _("%(serial)s released."),
        "rework": _("%(serial)s sent back for rework."),
    }[action] % values


FIELD_ALIASES = {"file": "photo"}


@login_required
@require_POST
def piece_action(request, piece_id: int, action: str):
    """One action on one piece, from the piece page or the workshop portal (`next`)."""
    if action not in ACTION_FORMS:
        raise Http404("No such action.")
    user = request.user
    piece = _piece_or_404(user, piece_id)
    next_url = _safe_next(request)
    runs = selectors.piece_runs(user, piece)
    form = make_action_form(action, user, piece, runs, data=request.POST, files=request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            event = _record_with_photo(user, piece, action, data)
        except DomainError as exc:
            field = (exc.details or {}).get("field", "")
            if field.startswith("weights_g"):
                field = "weight_g"
            field = FIELD_ALIASES.get(field, field)
            exc.details = (exc.details or {}) | {"field": field}
            form_error(form, exc)
        else:
            if event.replayed:
                messages.info(request, _("Already recorded: this form had already been sent, "
                                         "nothing was recorded twice."))
            else:
                piece.refresh_from_db()
                messages.success(request, _success_message(action, piece, event))
            if next_url:
                return redirect(next_url)
            if not Piece.objects.visible_to(user).filter(pk=piece.pk).exists():
                return redirect(role_home(user))  # e.g. sent on: it is no longer ours to see
            return redirect("production:piece", piece_id=piece.pk)
    errors = [str(e) for e in form.non_field_errors()]
    field_errors = [f"{form.fields[name].label}: {e}" for name, errs in form.errors.items()
                    if name != "__all__" for e in errs]
    messages.error(request, _("Not recorded: %(why)s") % {
        "why": " ".join(errors + field_errors) or _("check the form.")})
    if next_url:
        return redirect(next_url)
    if not any(name != "__all__" for name in form.errors):
        # Nothing to correct in the form (the piece's state or the role refused it).
        return redirect("production:piece", piece_id=piece.pk)
    piece = _piece_or_404(user, piece_id)
    return render(request, "production/piece.html",
                  piece_context(request, piece, bound={action: form}))


def _upload_photo(user, piece, photo, event=None):
    return document_upload(actor=user, order_id=piece.order_id, piece_id=piece.pk,
                           uploaded_file=photo, kind=DocumentKind.PHOTO, event=event)


def _record_with_photo(user, piece, action, data):
    """The action and its photo, in one transaction: both are recorded or neither."""
    photo = data.get("photo")
    cid = data.get("client_event_id") or None
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                if action == "send" and photo \
                        and not (cid and Transfer.objects.filter(client_ref=cid).exists()):
                    # Once sent, the piece is no longer the sender's to see (or to attach
                    # photos to): the photo is uploaded first, then tied to the SENT event.
                    doc = _upload_photo(user, piece, photo)
                    event = _record(user, piece, action, data)
                    doc.event = event
                    doc.save(update_fields=["event"])
                    return event
                event = _record(user, piece, action, data)
                if photo and not event.replayed:
                    _upload_photo(user, piece, photo, event)
                return event
        except IntegrityError:
            # The same form sent twice at the same instant: the second call finds the first.
            if attempt == 2 or not data.get("client_event_id"):
                raise
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# job bags and their QR codes


def _job_bag_pieces(user):
    return (Piece.objects.visible_to(user)
            .select_related("order", "line__alloy")
            .prefetch_related(Prefetch("runs", queryset=StepRun.objects.select_related("workshop")
                                       .order_by("position"))))


def _job_bag(request, piece: Piece) -> dict:
    user = request.user
    runs = list(piece.runs.all())
    url = request.build_absolute_uri(reverse("production:scan_serial", args=[piece.serial]))
    qr = segno.make(url, error="m")
    line = piece.line
    due = max((r.planned_due for r in runs if r.planned_due), default=None)
    return {
        "piece": piece, "order": piece.order, "line": line,
        "client_reference": piece.order.client_reference if user.sees_clients else "",
        "route": [{"position": r.position, "step": StepKind(r.step).label,
                   "code": r.workshop.code if user.sees_clients else "",
                   "status": r.status, "skipped": r.status == StepStatus.SKIPPED,
                   "current": r.pk == piece.current_run_id} for r in runs],
        "due": due, "qr": qr.svg_data_uri(border=1), "url": url,
    }


def _pdf_response(request, pieces, filename) -> HttpResponse:
    # Job bags of one order: printed in the order's language, with the house's name and logo.
    bags = [_job_bag(request, p) for p in pieces]
    pdf = printing.render_order_pdf("production/job_bag.html", {"bags": bags},
                                    order=pieces[0].order, request=request)
    return printing.pdf_response(pdf, filename)


@login_required
def job_bag(request, piece_id: int):
    """The printable job bag of one piece (anyone who can see the piece; workshops get no
    client data)."""
    piece = _job_bag_pieces(request.user).filter(pk=piece_id).first()
    if piece is None:
        raise Http404("No such piece.")
    return _pdf_response(request, [piece], f"job-bag-{piece.serial}.pdf")


@login_required
def order_job_bags(request, order_id: int):
    """Every job bag of an order the user can see, one label per page."""
    pieces = list(_job_bag_pieces(request.user).filter(order_id=order_id).order_by("serial"))
    if not pieces:
        raise Http404("No pieces to print.")
    return _pdf_response(request, pieces, f"job-bags-{pieces[0].order.reference}.pdf")


@login_required
def scan_serial(request, serial: str):
    """Where a job bag's QR code leads: the piece, on the page that fits the person."""
    piece = selectors.piece_by_serial(request.user, serial)
    if piece is None:
        raise Http404("No such piece.")
    if request.user.role == Role.WORKSHOP:
        for kwargs in ({"piece_id": piece.pk}, {"serial": piece.serial}):
            try:
                return redirect(reverse("workshop:piece", kwargs=kwargs))
            except NoReverseMatch:
                continue
    return redirect("production:piece", piece_id=piece.pk)
