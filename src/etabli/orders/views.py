"""Order pages: the list, the intake (the launch sheet in five steps) and the order page.

Thin: forms parse, the services write (and have the last word), the selectors and
`visible_to()` decide what is shown. An order outside the user's scope, or a page their role does
not have, is a 404.
"""

from __future__ import annotations

import datetime as dt
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from etabli.accounts.models import Role, User
from etabli.clients.models import Channel, Client, ClientKind
from etabli.clients.services import client_create
from etabli.core.errors import DomainError
from etabli.core.web import form_error, page_of
from etabli.documents import selectors as document_selectors
from etabli.documents.models import Document
from etabli.documents.services import document_files_discard, document_upload
from etabli.materials.models import Alloy
from etabli.production import routing
from etabli.production.models import (
    ACTIVE_PIECE_STATUSES,
    Piece,
    PieceStatus,
    RouteTemplate,
    StepRun,
    StepStatus,
)
from etabli.workshops.models import Operation, StepKind, Workshop

from . import selectors, services
from .forms import (
    SECTION_ORDER,
    AssessForm,
    CancelForm,
    ChangeRequestForm,
    ChecklistForm,
    DecideForm,
    DocumentUploadForm,
    LaunchForm,
    LineForm,
    OrderFilterForm,
    OrderHeaderForm,
    OrderStartForm,
    RouteSkipForm,
    RouteStepForm,
)
from .models import (
    LAUNCH_CHECKLIST,
    ChangeRequestStatus,
    ChecklistSection,
    Order,
    OrderStatus,
)

PER_PAGE = 25
GANTT_MAX_PIECES = 40
AUDIT_MAX_ROWS = 300


# ---------------------------------------------------------------------------------------------
# access


def _require_house_staff(user) -> None:
    """Workshops and clients have their own portals; the order pages are the house's."""
    if not user.is_active or user.role in (Role.WORKSHOP, Role.CLIENT):
        raise Http404("No such page.")


def _require_order_role(user) -> None:
    if not user.takes_orders:
        raise Http404("No such page.")


def _order_or_404(user, order_id: int) -> Order:
    order = selectors.order_get(user, order_id)
    if order is None:
        raise Http404("No such order.")
    return order


def _show_error(form, exc: DomainError, rename: dict | None = None, prefix: str = "") -> None:
    """`form_error` for services whose field names differ from the form's."""
    field = (exc.details or {}).get("field")
    field = (rename or {}).get(field, field)
    form_error(form, DomainError(f"{prefix}{exc.message}", details={"field": field}))


# ---------------------------------------------------------------------------------------------
# the list


@login_required
def order_list(request):
    user = request.user
    _require_house_staff(user)
    today = timezone.localdate()
    clients = list(Client.objects.visible_to(user).only("pk", "name").order_by("name"))
    form = OrderFilterForm(request.GET or None, clients=clients)
    data: dict = {}
    if form.is_bound:
        form.is_valid()  # a bad value is shown next to its filter; the others still apply
        data = form.cleaned_data
    filters = selectors.OrderFilters(q=(data.get("q") or "").strip() or None,
                                     status=data.get("status") or None,
                                     client_id=data.get("client"))
    qs = selectors.orders_with_lateness(selectors.order_list(user, filters), user, today)
    page = page_of(request, qs, PER_PAGE)
    for order in page.object_list:
        order.is_late = order.has_late_piece or (
            order.status == OrderStatus.LAUNCHED and order.promised_date is not None
            and order.promised_date < today)
    return render(request, "orders/list.html", {
        "form": form, "page": page, "today": today,
        "filtered": bool(filters.q or filters.status or filters.client_id),
        "can_create": user.takes_orders,
    })


# ---------------------------------------------------------------------------------------------
# intake: the launch sheet in steps

STEPS = [
    ("client", gettext_lazy("Client & date")),
    ("lines", gettext_lazy("Lines")),
    ("documents", gettext_lazy("Specifications & documents")),
    ("route", gettext_lazy("Route")),
    ("checklist", gettext_lazy("Checklist & launch")),
]
STEP_CODES = [code for code, _label in STEPS]


def _templates():
    return list(RouteTemplate.objects.order_by("-is_default", "name"))


def _step_states(order: Order, current: str) -> list[dict]:
    lines = order.lines.count()
    without_alloy = order.lines.filter(alloy__isnull=True).count()
    docs = order.documents.count()
    unassigned = order.route.filter(skipped=False, workshop__isnull=True).count()
    checked = order.checklist.filter(checked=True).count()
    total = len(LAUNCH_CHECKLIST)
    done = {
        "client": order.promised_date is not None,
        "lines": lines > 0 and without_alloy == 0,
        "documents": docs > 0,
        "route": unassigned == 0,
        "checklist": checked == total,
    }
    notes = {
        "client": "" if done["client"] else _("no promised date"),
        "lines": ngettext("%(n)d line", "%(n)d lines", lines) % {"n": lines},
        "documents": ngettext("%(n)d file", "%(n)d files", docs) % {"n": docs},
        "route": "" if done["route"] else ngettext(
            "%(n)d step without workshop", "%(n)d steps without workshop",
            unassigned) % {"n": unassigned},
        "checklist": f"{checked}/{total}",
    }
    return [{"code": code, "label": label, "number": i,
             "url": reverse("orders:edit", args=[order.pk, code]),
             "current": code == current, "done": done[code], "note": notes[code]}
            for i, (code, label) in enumerate(STEPS, start=1)]


def _render_step(request, order: Order, step: str, template: str, context: dict):
    i = STEP_CODES.index(step)
    return render(request, template, {
        "order": order, "step": step, "steps": _step_states(order, step),
        "prev_step": STEP_CODES[i - 1] if i > 0 else None,
        "next_step": STEP_CODES[i + 1] if i + 1 < len(STEP_CODES) else None,
        "cancel_form": CancelForm(),
    } | context)


def _to_step(order: Order, step: str, anchor: str = ""):
    return redirect(reverse("orders:edit", args=[order.pk, step]) + anchor)


@login_required
def order_new(request):
    """Step 1 of a new order: the client (chosen or created here) and the order's header.
    Saving creates the draft; the next steps edit it."""
    user = request.user
    _require_order_role(user)
    clients = list(Client.objects.visible_to(user).order_by("name"))
    templates = _templates()
    initial = {"route_template": next((t.code for t in templates if t.is_default), None)}
    if request.GET.get("client", "").isdigit():
        initial["client"] = int(request.GET["client"])
    form = OrderStartForm(request.POST or None, clients=clients, templates=templates,
                          initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            # One transaction: a new client is not kept if the order itself is refused.
            with transaction.atomic():
                client_id = d["client"]
                if not client_id:
                    name = d["new_client_name"].strip()
                    client = client_create(
                        actor=user, code=d["new_client_code"] or slugify(name)[:30], name=name,
                        kind=d["new_client_kind"] or ClientKind.B2B,
                        channel=d["new_client_channel"] or Channel.DIRECT,
                        email=d["new_client_email"], phone=d["new_client_phone"])
                    client_id = client.pk
                order = services.order_create(
                    actor=user, client_id=client_id, promised_date=d["promised_date"],
                    client_reference=d["client_reference"], notes=d["notes"],
                    route_template=d["route_template"])
        except DomainError as exc:
            _show_error(form, exc, {"client_id": "client", "code": "new_client_code",
                                    "name": "new_client_name", "kind": "new_client_kind",
                                    "channel": "new_client_channel"})
        else:
            messages.success(request, _("Order %(ref)s created. Now add its lines.")
                             % {"ref": order.reference})
            return _to_step(order, "lines")
    return render(request, "orders/intake_client.html", {
        "form": form, "order": None, "step": "client",
        "steps": [{"code": code, "label": label, "number": i, "url": None,
                   "current": code == "client", "done": False, "note": ""}
                  for i, (code, label) in enumerate(STEPS, start=1)],
        "next_step": None, "prev_step": None,
    })


@login_required
def order_edit(request, order_id: int, step: str):
    user = request.user
    _require_order_role(user)
    handler = _STEP_VIEWS.get(step)
    if handler is None:
        raise Http404("No such step.")
    order = _order_or_404(user, order_id)
    if order.status != OrderStatus.DRAFT:
        messages.info(request, _("Order %(ref)s is no longer being qualified: its launch sheet "
                                 "cannot change. Ask for a change request instead.")
                      % {"ref": order.reference})
        return redirect("orders:detail", order.pk)
    return handler(request, order)


def _step_client(request, order: Order):
    templates = _templates()
    initial = {"client_reference": order.client_reference,
               "promised_date": order.promised_date,
               "route_template": order.route_template.code if order.route_template_id else "",
               "notes": order.notes}
    form = OrderHeaderForm(request.POST or None, templates=templates, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if v != initial[k]}
        try:
            if changes:
                services.order_update(actor=request.user, order_id=order.pk, **changes)
        except DomainError as exc:
            form_error(form, exc)
        else:
            if changes:
                messages.success(request, _("Saved."))
            return _to_step(order, "lines")
    return _render_step(request, order, "client", "orders/intake_client.html", {"form": form})


def _line_initial(line) -> dict:
    return {"description": line.description, "model_reference": line.model_reference,
            "is_custom_design": line.is_custom_design, "quantity": line.quantity,
            "size": line.size, "alloy": line.alloy.code if line.alloy_id else "",
            "stones": line.stones, "customisations": line.customisations,
            "specifications": line.specifications, "target_price": line.target_price,
            "budget_metal_g": line.budget_metal_g,
            "budget_stone_count": line.budget_stone_count,
            "budget_stone_ct": line.budget_stone_ct}


def _int_or_404(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404("No such line.") from None


def _step_lines(request, order: Order):
    user = request.user
    alloys = list(Alloy.objects.all())
    show_price = user.sees_prices
    lines = list(order.lines.select_related("alloy").order_by("position"))
    by_id = {line.pk: line for line in lines}
    editing = None
    if request.method == "POST":
        action = request.POST.get("action", "add")
        if action == "remove":
            line_id = _int_or_404(request.POST.get("line_id"))
            try:
                services.order_line_remove(actor=user, order_id=order.pk, line_id=line_id)
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Line removed."))
            return _to_step(order, "lines")
        if action == "update":
            editing = by_id.get(_int_or_404(request.POST.get("line_id")))
            if editing is None:
                raise Http404("No such line.")
        form = LineForm(request.POST, alloys=alloys, show_price=show_price)
        if form.is_valid():
            try:
                if editing is not None:
                    services.order_line_update(actor=user, order_id=order.pk,
                                               line_id=editing.pk, **form.service_data())
                else:
                    services.order_line_add(actor=user, order_id=order.pk,
                                            **form.service_data())
            except DomainError as exc:
                form_error(form, exc)
            else:
                messages.success(request, _("Line saved."))
                return _to_step(order, "lines")
    else:
        if "line" in request.GET:
            editing = by_id.get(_int_or_404(request.GET["line"]))
            if editing is None:
                raise Http404("No such line.")
        form = LineForm(initial=_line_initial(editing) if editing else {"quantity": 1},
                        alloys=alloys, show_price=show_price)
    return _render_step(request, order, "lines", "orders/intake_lines.html", {
        "lines": lines, "form": form, "editing": editing, "show_price": show_price})


def _upload(request, order: Order, form: DocumentUploadForm) -> bool:
    """Attach every chosen file, or none of them."""
    d = form.cleaned_data
    files = d["files"]
    saved: list[Document] = []
    try:
        with transaction.atomic():
            for f in files:
                try:
                    saved.append(document_upload(actor=request.user, order_id=order.pk,
                                                 line_id=d.get("line"), uploaded_file=f,
                                                 kind=d["kind"], visibility=d["visibility"]))
                except DomainError as exc:
                    exc.file_name = f.name
                    raise
    except DomainError as exc:
        document_files_discard(saved)  # the rows are rolled back; their files go too
        name = getattr(exc, "file_name", "")
        if len(files) > 1:
            exc.message += " " + _("None of the files was attached: choose them again "
                                   "without this one.")
        _show_error(form, exc, {"file": "files"}, prefix=f"{name}: " if name else "")
        return False
    messages.success(request, ngettext("%(n)d document attached.", "%(n)d documents attached.",
                                       len(saved)) % {"n": len(saved)})
    return True


def _documents(user, order: Order) -> list[Document]:
    return document_selectors.order_documents(user, order)


def _step_documents(request, order: Order):
    lines = list(order.lines.order_by("position"))
    form = DocumentUploadForm(request.POST or None, request.FILES or None, lines=lines)
    if request.method == "POST" and form.is_valid() and _upload(request, order, form):
        return _to_step(order, "documents")
    return _render_step(request, order, "documents", "orders/intake_documents.html", {
        "form": form, "documents": _documents(request.user, order), "lines": lines})


def _workshops_by_step() -> dict[str, list[Workshop]]:
    """Active workshops that have a skill in each step (what the route service accepts)."""
    out: dict[str, list[Workshop]] = {step: [] for step in StepKind.values}
    for ws in Workshop.objects.filter(is_active=True).prefetch_related("skills").order_by(
            "kind", "name"):
        for step in sorted({op.step for op in ws.skills.all()}):
            out[step].append(ws)
    return out


UNSKIPPABLE = (StepKind.ORDER_RECEIPT, StepKind.DELIVERY)


def _step_route(request, order: Order):
    user = request.user
    route = list(order.route.select_related("workshop", "skip_document").order_by("position"))
    by_id = {rs.pk: rs for rs in route}
    choices = _workshops_by_step()
    bound: dict[tuple[int, str], object] = {}

    def step_form(rs, data=None):
        workshops = choices[rs.step]
        if rs.workshop_id and rs.workshop not in workshops:
            workshops = [rs.workshop] + workshops
        form = RouteStepForm(data, prefix=f"s{rs.pk}", workshops=workshops,
                             initial={"workshop": rs.workshop_id,
                                      "planned_days": rs.planned_days})
        if rs.workshop_id:  # a chosen workshop can be changed, not emptied
            form.fields["workshop"].choices = form.fields["workshop"].choices[1:]
            form.fields["workshop"].required = True
        return form

    documents = list(order.documents.order_by("uploaded_at", "id"))

    def skip_form(rs, data=None):
        return RouteSkipForm(data, prefix=f"k{rs.pk}", step=rs.step, documents=documents)

    if request.method == "POST":
        action = request.POST.get("action")
        rs = by_id.get(_int_or_404(request.POST.get("step_id")))
        if rs is None or action not in ("update", "skip", "unskip"):
            raise Http404("No such step.")
        label = StepKind(rs.step).label
        try:
            if action == "unskip":
                routing.order_route_step_skip(actor=user, order_id=order.pk, step_id=rs.pk,
                                              skip=False)
                messages.success(request, _("%(step)s is back on the route.") % {"step": label})
                return _to_step(order, "route", f"#step-{rs.pk}")
            if action == "update":
                form = bound[(rs.pk, action)] = step_form(rs, request.POST)
                if form.is_valid() and form.cleaned_data["workshop"] is None \
                        and form.cleaned_data["planned_days"] == rs.planned_days:
                    form.add_error("workshop", _("Choose the workshop that does this step."))
                elif form.is_valid():
                    routing.order_route_step_update(
                        actor=user, order_id=order.pk, step_id=rs.pk,
                        workshop_id=form.cleaned_data["workshop"],
                        planned_days=form.cleaned_data["planned_days"])
                    messages.success(request, _("%(step)s saved.") % {"step": label})
                    return _to_step(order, "route", f"#step-{rs.pk}")
            else:
                form = bound[(rs.pk, action)] = skip_form(rs, request.POST)
                if form.is_valid():
                    d = form.cleaned_data
                    routing.order_route_step_skip(
                        actor=user, order_id=order.pk, step_id=rs.pk, skip=True,
                        reason=d["reason"], comment=d["comment"], reference=d["reference"],
                        document_id=d.get("document"))
                    messages.success(request, _("%(step)s will be skipped.") % {"step": label})
                    return _to_step(order, "route", f"#step-{rs.pk}")
        except DomainError as exc:
            shown = action == "update" or rs.step not in UNSKIPPABLE
            if (rs.pk, action) in bound and shown:
                _show_error(bound[(rs.pk, action)], exc, {"workshop_id": "workshop",
                                                          "document_id": "document"})
            else:  # no form on the page to show it next to
                messages.error(request, exc.message)
    operation_names = dict(Operation.objects.values_list("code", "name"))
    rows = []
    for rs in route:
        rows.append({
            "rs": rs, "label": StepKind(rs.step).label,
            "operations": [_(operation_names[op]) if op in operation_names else op
                           for op in rs.operations],
            "form": bound.get((rs.pk, "update")) or step_form(rs),
            "skip_form": bound.get((rs.pk, "skip")) or skip_form(rs),
            "skip_open": (rs.pk, "skip") in bound,
            "can_skip": rs.step not in UNSKIPPABLE,
            "no_workshops": not choices[rs.step],
        })
    return _render_step(request, order, "route", "orders/intake_route.html", {
        "rows": rows, "deadline": services.order_deadline_check(order)})


def _blocker_rows(order: Order) -> list[dict]:
    """What stops the launch, in the user's language, each linked to the step that fixes it."""
    labels = {code: (section, label) for code, section, label in LAUNCH_CHECKLIST}
    rows = []
    for b in services.launch_blockers(order):
        code = b["code"]
        step, text = "checklist", b["message"]
        if code == "no_lines":
            step, text = "lines", _("The order has no lines.")
        elif code == "line_without_alloy":
            number = re.search(r"\d+", b["message"])
            step = "lines"
            text = (_("Line %(n)s has no alloy.") % {"n": number.group(0)}) if number else text
        elif code == "no_promised_date":
            step, text = "client", _("No promised date.")
        elif code == "step_without_workshop":
            step = "route"
            text = _("Some steps of the route have no workshop.")
        elif code.startswith("unchecked:") and code[10:] in labels:
            section, label = labels[code[10:]]
            text = _("%(section)s: “%(item)s” is not checked.") % {
                "section": ChecklistSection(section).label, "item": label}
        elif code == "not_draft":
            step = None
        url = reverse("orders:edit", args=[order.pk, step]) if step else None
        if code.startswith("unchecked:"):
            url = f"#id_{code[10:]}"  # the checkbox, on the same page
        rows.append({"code": code, "message": text, "url": url})
    # One line for all the unassigned steps is enough.
    seen, out = set(), []
    for row in rows:
        key = (row["code"], row["message"])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def _step_checklist(request, order: Order):
    user = request.user
    items = list(order.checklist.select_related("checked_by").order_by("id"))
    initial = {}
    for item in items:
        initial[item.code] = item.checked
        initial[f"{item.code}_note"] = item.note
    action = request.POST.get("action") if request.method == "POST" else None
    form = ChecklistForm(request.POST if action == "checklist" else None, initial=initial)
    launch_form = LaunchForm(request.POST if action == "launch" else None)
    if action == "checklist" and form.is_valid():
        d = form.cleaned_data
        changed = 0
        current = None
        try:
            with transaction.atomic():  # the whole sheet is saved, or none of it
                for item in items:
                    current = item.code
                    checked, note = d[item.code], d[f"{item.code}_note"].strip()
                    if checked != item.checked or note != item.note:
                        services.launch_item_set(actor=user, order_id=order.pk,
                                                 code=item.code, checked=checked, note=note)
                        changed += 1
        except DomainError as exc:
            _show_error(form, exc, {"note": f"{current}_note", "code": current})
        else:
            messages.success(request, ngettext("%(n)d item of the checklist saved.",
                                               "%(n)d items of the checklist saved.",
                                               changed) % {"n": changed})
            return _to_step(order, "checklist", "#launch")
    elif action == "earliest_date":
        check = services.order_deadline_check(order)
        try:
            services.order_update(actor=user, order_id=order.pk,
                                  promised_date=check.earliest_promise)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The promised date is now %(date)s.")
                             % {"date": check.earliest_promise.isoformat()})
        return _to_step(order, "checklist", "#launch")
    elif action == "launch" and launch_form.is_valid():
        try:
            services.order_launch(actor=user, order_id=order.pk,
                                  override_reason=launch_form.cleaned_data["override_reason"])
        except DomainError as exc:
            rename = {None: "override_reason"} if exc.code == "deadline_unrealistic" else {}
            _show_error(launch_form, exc, rename)
        else:
            count = order.pieces.count()
            messages.success(request, format_html(
                "{} <a href=\"{}\">{}</a>",
                ngettext("Order %(ref)s is launched: %(n)d piece is in production.",
                         "Order %(ref)s is launched: %(n)d pieces are in production.",
                         count) % {"ref": order.reference, "n": count},
                reverse("production:order_job_bags", args=[order.pk]),
                _("Print the job bags")))
            return redirect("orders:detail", order.pk)
    elif action not in (None, "checklist", "launch"):
        raise Http404("No such action.")
    sections = []
    by_code = {item.code: item for item in items}
    for section in SECTION_ORDER:
        rows = [{"item": by_code[code], "box": form[code], "note": form[f"{code}_note"]}
                for code, sec, _label in LAUNCH_CHECKLIST if sec == section and code in by_code]
        sections.append({"label": ChecklistSection(section).label, "code": section,
                         "rows": rows})
    order.refresh_from_db()
    return _render_step(request, order, "checklist", "orders/intake_checklist.html", {
        "form": form, "sections": sections, "launch_form": launch_form,
        "blockers": _blocker_rows(order), "deadline": services.order_deadline_check(order)})


_STEP_VIEWS = {
    "client": _step_client,
    "lines": _step_lines,
    "documents": _step_documents,
    "route": _step_route,
    "checklist": _step_checklist,
}


# ---------------------------------------------------------------------------------------------
# the order page


def _day(value) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date()
    return value


def _gantt(pieces: list[Piece], today: dt.date, promised: dt.date | None) -> dict | None:
    """Planned and actual bars of each piece's steps, as percentages of the order's span."""
    if not pieces:
        return None
    days = [today] + ([promised] if promised else [])
    for piece in pieces:
        for run in piece.runs.all():
            days += [d for d in (run.planned_start, run.planned_due, _day(run.actual_start),
                                 _day(run.actual_finish)) if d]
    start, end = min(days), max(days) + dt.timedelta(days=1)
    span = max((end - start).days, 1)

    def pct(day: dt.date, extra: float = 0.0) -> float:
        return max(0.0, min(100.0, ((day - start).days + extra) * 100 / span))

    def bar(a: dt.date, b: dt.date, extra_end: float = 0.0) -> dict:
        left = pct(a)
        width = max(pct(b, extra_end) - left, 0.6)
        return {"left": f"{left:.2f}", "width": f"{min(width, 100 - left):.2f}"}

    rows = []
    for piece in pieces:
        steps = []
        for run in piece.runs.all():
            entry = {"run": run, "label": StepKind(run.step).label, "planned": None,
                     "actual": None, "late": False}
            if run.status == StepStatus.SKIPPED:
                steps.append(entry)
                continue
            if run.planned_start and run.planned_due:
                entry["planned"] = bar(run.planned_start, run.planned_due)
            a_start, a_finish = _day(run.actual_start), _day(run.actual_finish)
            if a_start:
                entry["actual"] = bar(a_start, a_finish or today, extra_end=1.0)
            finish = a_finish or (today if run.status != StepStatus.DONE else None)
            entry["late"] = bool(run.planned_due and finish and finish > run.planned_due)
            steps.append(entry)
        rows.append({"piece": piece, "steps": steps})
    return {"rows": rows, "start": start, "end": end - dt.timedelta(days=1),
            "today": f"{pct(today, 0.5):.2f}",
            "promised": f"{pct(promised, 1.0):.2f}" if promised else None}


AUDIT_ACTIONS = {
    "order.create": gettext_lazy("Order created"),
    "order.update": gettext_lazy("Order changed"),
    "order.launch": gettext_lazy("Order launched"),
    "order.cancel": gettext_lazy("Order cancelled"),
    "order.delivered": gettext_lazy("Order delivered"),
    "order.replan": gettext_lazy("Plan moved"),
    "order_line.add": gettext_lazy("Line added"),
    "order_line.update": gettext_lazy("Line changed"),
    "order_line.remove": gettext_lazy("Line removed"),
    "launch_item.check": gettext_lazy("Checklist item checked"),
    "launch_item.uncheck": gettext_lazy("Checklist item unchecked"),
    "order_route.update": gettext_lazy("Route step changed"),
    "order_route.skip": gettext_lazy("Route step skipped"),
    "order_route.unskip": gettext_lazy("Route step put back"),
    "order_route.add": gettext_lazy("Route step added"),
    "order_route.reorder": gettext_lazy("Route reordered"),
    "document.upload": gettext_lazy("Document attached"),
    "document.new_version": gettext_lazy("New version of a document"),
    "document.visibility": gettext_lazy("Who may see a document changed"),
    "change_request.create": gettext_lazy("Change requested"),
    "change_request.assess": gettext_lazy("Change assessed"),
    "change_request.decide": gettext_lazy("Change decided"),
    "piece.create": gettext_lazy("Piece created"),
    "piece.receive": gettext_lazy("Piece received"),
    "piece.start": gettext_lazy("Work started"),
    "piece.complete": gettext_lazy("Step completed"),
    "piece.send": gettext_lazy("Piece sent"),
    "piece.hold": gettext_lazy("Piece put on hold"),
    "piece.release": gettext_lazy("Piece released"),
    "piece.rework": gettext_lazy("Sent back for rework"),
    "step.skip": gettext_lazy("Step skipped"),
    "step.add": gettext_lazy("Step added"),
    "step.assign": gettext_lazy("Step assigned"),
    "route.reorder": gettext_lazy("Route reordered"),
    "piece.theoretical_weight": gettext_lazy("Expected weight set"),
    "order.confirm_reception": gettext_lazy("Reception confirmed"),
    "order.close": gettext_lazy("Order closed"),
    "cad.analyse": gettext_lazy("CAD file analysed"),
    "cad.stone_count": gettext_lazy("Stones counted from the CAD file"),
    "design.brief": gettext_lazy("Design brief saved"),
    "design.round.create": gettext_lazy("Design round started"),
    "design.round.update": gettext_lazy("Design round changed"),
    "design.round.file": gettext_lazy("File added to a design round"),
    "design.round.file_remove": gettext_lazy("File removed from a design round"),
    "design.round.send": gettext_lazy("Design round sent to the client"),
    "design.round.changes": gettext_lazy("Client asked for design changes"),
    "design.round.approve": gettext_lazy("Design approved"),
    "design.prototype": gettext_lazy("Prototype result recorded"),
    "setting_plan.create": gettext_lazy("Setting plan drafted"),
    "setting_plan.check": gettext_lazy("Setting plan checked"),
    "setting_plan.reopen": gettext_lazy("Setting plan reopened"),
    "setting_group.add": gettext_lazy("Stone group added to the setting plan"),
    "setting_group.update": gettext_lazy("Stone group changed"),
    "setting_group.remove": gettext_lazy("Stone group removed"),
    "setting_control.record": gettext_lazy("Setting control recorded"),
    "setting_control.photos": gettext_lazy("Photos added to a setting control"),
    "stone.allocate": gettext_lazy("Stones reserved"),
    "stone.release": gettext_lazy("Stones released"),
    "stone.breakage": gettext_lazy("Stones broken"),
    "stone.lost": gettext_lazy("Stones lost"),
    "transfer.send": gettext_lazy("Transfer slip issued"),
    "casting_tree.create": gettext_lazy("Casting tree made up"),
    "casting_tree.issue": gettext_lazy("Casting tree issued"),
    "material_slip.issue": gettext_lazy("Material issued"),
    "material_slip.receive": gettext_lazy("Material received"),
    "material_slip.return": gettext_lazy("Material returned"),
    "material_slip.settle": gettext_lazy("Material settled"),
    "material_slip.cancel": gettext_lazy("Material slip cancelled"),
    "finishing.record": gettext_lazy("Finishing operation recorded"),
    "finishing.waive": gettext_lazy("Finishing operation waived"),
    "quality.inspection.create": gettext_lazy("Inspection started"),
    "quality.inspection.measure": gettext_lazy("Inspection measurements entered"),
    "quality.inspection.photo": gettext_lazy("Inspection photo added"),
    "quality.inspection.photo_remove": gettext_lazy("Inspection photo removed"),
    "quality.inspection.sign": gettext_lazy("Inspection signed"),
    "quality.inspection.discard": gettext_lazy("Inspection discarded"),
    "quality.nonconformity.open": gettext_lazy("Nonconformity opened"),
    "quality.nonconformity.cause": gettext_lazy("Nonconformity analysed"),
    "quality.nonconformity.rework": gettext_lazy("Nonconformity sent to rework"),
    "quality.nonconformity.close": gettext_lazy("Nonconformity closed"),
    "shipment.create": gettext_lazy("Shipment prepared"),
    "shipment.update": gettext_lazy("Shipment changed"),
    "shipment.add_pieces": gettext_lazy("Pieces added to a shipment"),
    "shipment.remove_piece": gettext_lazy("Piece taken off a shipment"),
    "shipment.pack": gettext_lazy("Packaging recorded"),
    "shipment.ship": gettext_lazy("Shipment sent"),
    "shipment.deliver": gettext_lazy("Shipment delivered"),
    "shipment.cancel": gettext_lazy("Shipment cancelled"),
    "invoice.prepare": gettext_lazy("Invoice prepared"),
    "invoice.price": gettext_lazy("Invoice prices set"),
    "invoice.issue": gettext_lazy("Invoice issued"),
    "follow_up.open": gettext_lazy("Follow-up opened"),
    "follow_up.resolve": gettext_lazy("Follow-up resolved"),
}
AUDIT_FIELDS = {
    "status": gettext_lazy("status"), "promised_date": gettext_lazy("promised date"),
    "client_reference": gettext_lazy("client's reference"), "notes": gettext_lazy("notes"),
    "route_template": gettext_lazy("route"), "client": gettext_lazy("client"),
    "deadline_override_reason": gettext_lazy("reason to override the deadline"),
    "description": gettext_lazy("description"), "quantity": gettext_lazy("quantity"),
    "alloy": gettext_lazy("alloy"), "size": gettext_lazy("size"),
    "target_price": gettext_lazy("target price"), "checked": gettext_lazy("checked"),
    "checked_by": gettext_lazy("checked by"), "checked_at": gettext_lazy("checked at"),
    "note": gettext_lazy("note"), "workshop": gettext_lazy("workshop"),
    "planned_days": gettext_lazy("planned days"), "skipped": gettext_lazy("skipped"),
    "skip_reason": gettext_lazy("reason to skip"), "impact_days": gettext_lazy("impact (days)"),
    "new_promised_date": gettext_lazy("new promised date"),
    "assessment": gettext_lazy("assessment"), "pieces": gettext_lazy("pieces"),
    "reason": gettext_lazy("reason"), "steps_moved": gettext_lazy("steps moved"),
    "serial": gettext_lazy("serial"), "current_step": gettext_lazy("step"),
    "current_workshop": gettext_lazy("workshop"), "location": gettext_lazy("location"),
    "transit_to": gettext_lazy("travelling to"), "rework_count": gettext_lazy("reworks"),
    "deadline": gettext_lazy("deadline check"), "step": gettext_lazy("step"),
    "steps": gettext_lazy("steps"), "next_step": gettext_lazy("next step"),
    "slip": gettext_lazy("transfer slip"),
    # The others keep the English name made from the field; named here to be translated.
    "reference": gettext_lazy("reference"), "lines": gettext_lazy("lines"),
    "position": gettext_lazy("position"), "model_reference": gettext_lazy("model reference"),
    "is_custom_design": gettext_lazy("is custom design"), "stones": gettext_lazy("stones"),
    "customisations": gettext_lazy("customisations"),
    "specifications": gettext_lazy("specifications"), "references": gettext_lazy("references"),
    "operations": gettext_lazy("operations"), "skip_comment": gettext_lazy("skip comment"),
    "skip_reference": gettext_lazy("skip reference"),
    "decision_comment": gettext_lazy("decision comment"),
    "reception_confirmed_at": gettext_lazy("reception confirmed at"),
    "reception_confirmed_by": gettext_lazy("reception confirmed by"),
    "reception_note": gettext_lazy("reception note"), "back_to": gettext_lazy("back to"),
    "redo": gettext_lazy("redo"), "name": gettext_lazy("name"), "kind": gettext_lazy("kind"),
    "content_type": gettext_lazy("content type"), "visibility": gettext_lazy("visibility"),
    "currency": gettext_lazy("currency"), "channel": gettext_lazy("channel"),
}
# Piece and step statuses share some values; the first label found wins.
_STATUS_LABELS = (dict(StepStatus.choices) | dict(PieceStatus.choices)
                  | dict(ChangeRequestStatus.choices) | dict(OrderStatus.choices))
_REF_FIELDS = {"workshop": Workshop, "current_workshop": Workshop, "location": Workshop,
               "transit_to": Workshop, "alloy": Alloy, "route_template": RouteTemplate,
               "client": Client, "checked_by": User}
_REF_MODELS = {Workshop: "workshop", Alloy: "alloy", RouteTemplate: "route_template",
               Client: "client", User: "user"}


def _audit_rows(order: Order) -> tuple[list[dict], int]:
    entries = list(selectors.order_audit(order))
    total = len(entries)
    entries = entries[-AUDIT_MAX_ROWS:]
    # Foreign keys are kept as ids in the trail: name them with one query per kind.
    wanted: dict[type, set] = {model: set() for model in _REF_MODELS}
    for e in entries:
        for side in (e.before or {}, e.after or {}):
            for name, model in _REF_FIELDS.items():
                if isinstance(side.get(name), int):
                    wanted[model].add(side[name])
    names: dict[type, dict] = {}
    for model, ids in wanted.items():
        if ids:
            names[model] = {obj.pk: (obj.username if model is User
                                     # reference data names are shown in the user's language
                                     else _(str(obj)) if model in (Alloy, RouteTemplate)
                                     else str(obj))
                            for obj in model.objects.filter(pk__in=ids)}

    def show(field: str, value) -> str:
        if value is None or value == "" or value == []:
            return "—"
        if field in _REF_FIELDS and isinstance(value, int):
            return names.get(_REF_FIELDS[field], {}).get(value, f"#{value}")
        if field == "status" and value in _STATUS_LABELS:
            return str(_STATUS_LABELS[value])
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        if field in ("step", "current_step", "next_step") and value in StepKind.values:
            return str(StepKind(value).label)
        if field == "deadline" and isinstance(value, dict):
            value = _("earliest realistic date %(earliest)s, promised %(promised)s") % {
                "earliest": value.get("earliest_realistic_date"),
                "promised": value.get("promised_date") or "—"}
        elif isinstance(value, list):
            value = ", ".join(str(StepKind(v).label) if v in StepKind.values else str(v)
                              for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        text = str(value)
        return text if len(text) <= 140 else text[:139] + "…"

    rows = []
    for e in entries:
        before, after = e.before or {}, e.after or {}
        changes = []
        for field in list(dict.fromkeys(list(before) + list(after))):
            b, a = before.get(field), after.get(field)
            if field in before and field in after and b == a:
                continue
            if not before and a in (None, "", [], 0, False):
                continue  # a new object: its empty fields say nothing
            changes.append({"field": AUDIT_FIELDS.get(field, field.replace("_", " ")),
                            "before": show(field, b) if field in before else None,
                            "after": show(field, a) if field in after else None})
        rows.append({"at": e.at, "who": e.actor, "action": AUDIT_ACTIONS.get(e.action, e.action),
                     "object": e.object_repr, "changes": changes})
    rows.reverse()  # newest first
    return rows, total


def _impact(order: Order, cr) -> dict | None:
    if cr.impact_days is None:
        return None
    new_date = cr.new_promised_date
    if new_date is None and order.promised_date and cr.impact_days:
        new_date = order.promised_date + dt.timedelta(days=cr.impact_days)
    return {"days": cr.impact_days, "from": order.promised_date, "to": new_date}


def _render_detail(request, order: Order, bound: dict | None = None):
    user = request.user
    bound = bound or {}
    today = timezone.localdate()
    is_draft = order.status == OrderStatus.DRAFT
    is_open = order.status in (OrderStatus.DRAFT, OrderStatus.LAUNCHED)
    lines = list(order.lines.select_related("alloy").order_by("position"))
    pieces = list(Piece.objects.visible_to(user).filter(order=order)
                  .select_related("current_workshop", "line")
                  .prefetch_related(Prefetch("runs", queryset=StepRun.objects
                                             .select_related("workshop").order_by("position")))
                  .order_by("serial"))
    for piece in pieces:
        piece.is_late = bool(piece.current_due and piece.current_due < today
                             and piece.status in ACTIVE_PIECE_STATUSES)
    audit, audit_total = _audit_rows(order) if user.is_house_wide else (None, 0)
    crs = list(order.change_requests.select_related("requested_by", "assessed_by",
                                                    "decided_by").order_by("requested_at", "id"))
    cr_rows = []
    for cr in crs:
        pending = cr.status in (ChangeRequestStatus.OPEN, ChangeRequestStatus.ASSESSED)
        row = {"cr": cr, "impact": _impact(order, cr), "assess_form": None,
               "decide_form": None, "can_approve": False}
        if user.takes_orders and is_open and pending:
            row["assess_form"] = bound.get(("assess", cr.pk)) or AssessForm(
                prefix=f"cr{cr.pk}", initial={"impact_days": cr.impact_days,
                                              "new_promised_date": cr.new_promised_date,
                                              "assessment": cr.assessment})
        if user.runs_production and pending:
            row["decide_form"] = bound.get(("decide", cr.pk)) or DecideForm(prefix=f"d{cr.pk}")
            row["can_approve"] = cr.status == ChangeRequestStatus.ASSESSED and is_open
        cr_rows.append(row)
    can_order = user.takes_orders
    from etabli.core import panels

    return render(request, "orders/detail.html", {
        "panels": panels.order_panels(request, order),
        "order": order, "today": today, "lines": lines, "pieces": pieces,
        "gantt": _gantt(pieces[:GANTT_MAX_PIECES], today, order.promised_date),
        "gantt_cut": len(pieces) > GANTT_MAX_PIECES, "gantt_max": GANTT_MAX_PIECES,
        "route": list(order.route.select_related("workshop").order_by("position"))
        if is_draft else [],
        "documents": _documents(user, order),
        "audit": audit, "audit_total": audit_total, "audit_max": AUDIT_MAX_ROWS,
        "cr_rows": cr_rows,
        "show_prices": user.sees_prices, "show_client": user.sees_clients,
        "can_edit": can_order and is_draft,
        "can_upload": can_order and order.status != OrderStatus.CANCELLED,
        "can_request_change": can_order and is_open,
        "can_print": user.is_house_wide and order.status in (OrderStatus.LAUNCHED,
                                                             OrderStatus.DELIVERED),
        "is_late": is_open and order.status == OrderStatus.LAUNCHED and order.promised_date
        and order.promised_date < today,
        "upload_form": bound.get("upload") or DocumentUploadForm(lines=lines),
        "cr_form": bound.get("change_request") or ChangeRequestForm(),
        "cancel_form": bound.get("cancel") or CancelForm(),
        "cancel_open": "cancel" in bound,
    })


@login_required
def order_detail(request, order_id: int):
    _require_house_staff(request.user)
    return _render_detail(request, _order_or_404(request.user, order_id))


def _back(order: Order, anchor: str = ""):
    return redirect(reverse("orders:detail", args=[order.pk]) + anchor)


@login_required
@require_POST
def order_cancel(request, order_id: int):
    user = request.user
    _require_order_role(user)
    order = _order_or_404(user, order_id)
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            services.order_cancel(actor=user, order_id=order.pk,
                                  reason=form.cleaned_data["reason"])
        except DomainError as exc:
            if (exc.details or {}).get("field") != "reason":
                messages.error(request, exc.message)
                return _back(order)
            form_error(form, exc)
        else:
            messages.success(request, _("Order %(ref)s is cancelled.") % {"ref": order.reference})
            return _back(order)
    return _render_detail(request, order, {"cancel": form})


@login_required
@require_POST
def order_documents(request, order_id: int):
    user = request.user
    _require_order_role(user)
    order = _order_or_404(user, order_id)
    form = DocumentUploadForm(request.POST, request.FILES,
                              lines=list(order.lines.order_by("position")))
    if form.is_valid() and _upload(request, order, form):
        return _back(order, "#documents")
    return _render_detail(request, order, {"upload": form})


@login_required
@require_POST
def change_request_new(request, order_id: int):
    user = request.user
    _require_order_role(user)
    order = _order_or_404(user, order_id)
    form = ChangeRequestForm(request.POST)
    if form.is_valid():
        try:
            services.change_request_create(actor=user, order_id=order.pk,
                                           description=form.cleaned_data["description"])
        except DomainError as exc:
            if (exc.details or {}).get("field") != "description":
                messages.error(request, exc.message)
                return _back(order, "#changes")
            form_error(form, exc)
        else:
            messages.success(request, _("Change request recorded; assess its impact next."))
            return _back(order, "#changes")
    return _render_detail(request, order, {"change_request": form})


def _change_request_or_404(order: Order, cr_id: int):
    cr = order.change_requests.filter(pk=cr_id).first()
    if cr is None:
        raise Http404("No such change request.")
    return cr


@login_required
@require_POST
def change_request_assess(request, order_id: int, cr_id: int):
    user = request.user
    _require_order_role(user)
    order = _order_or_404(user, order_id)
    cr = _change_request_or_404(order, cr_id)
    form = AssessForm(request.POST, prefix=f"cr{cr.pk}")
    if form.is_valid():
        d = form.cleaned_data
        try:
            services.change_request_assess(actor=user, cr_id=cr.pk, impact_days=d["impact_days"],
                                           new_promised_date=d["new_promised_date"],
                                           assessment=d["assessment"])
        except DomainError as exc:
            if (exc.details or {}).get("field") not in form.fields:
                messages.error(request, exc.message)
                return _back(order, "#changes")
            form_error(form, exc)
        else:
            messages.success(request, _("Impact recorded."))
            return _back(order, f"#cr-{cr.pk}")
    return _render_detail(request, order, {("assess", cr.pk): form})


@login_required
@require_POST
def change_request_decide(request, order_id: int, cr_id: int):
    user = request.user
    if not user.runs_production:
        raise Http404("No such page.")
    order = _order_or_404(user, order_id)
    cr = _change_request_or_404(order, cr_id)
    form = DecideForm(request.POST, prefix=f"d{cr.pk}")
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        raise Http404("No such decision.")
    if form.is_valid():
        try:
            services.change_request_decide(actor=user, cr_id=cr.pk,
                                           approve=decision == "approve",
                                           comment=form.cleaned_data["comment"])
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Change approved: the plan and the promised date moved.")
                             if decision == "approve" else _("Change rejected."))
        return _back(order, f"#cr-{cr.pk}")
    return _render_detail(request, order, {("decide", cr.pk): form})
