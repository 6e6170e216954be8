"""The workshop portal: a phone at the bench. My queue, scan a job bag, act on one piece.

Only workshop members come here. Reads start from `Piece.objects.visible_to` (pieces at or on
their way to the member's workshops); every action calls the same production service as the
API, so the portal never offers what the services would refuse.
"""

from __future__ import annotations

import re
import uuid
from functools import wraps
from urllib.parse import unquote

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from etabli.accounts.models import Role
from etabli.core.errors import DomainError
from etabli.documents import selectors as document_selectors
from etabli.documents.models import Document, DocumentKind
from etabli.documents.services import document_upload
from etabli.workshops.models import Operation, StepKind

from . import selectors, services
from .access import check_can_record
from .models import (
    ACTIVE_PIECE_STATUSES,
    OPEN_STEP_STATUSES,
    EventKind,
    HoldReason,
    Piece,
    PieceStatus,
    StepStatus,
    TrackingEvent,
    Transfer,
    TransferLine,
)
from .state import next_status


def workshop_only(view):
    """Logged in as a workshop member; anyone else is told the page does not exist."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if request.user.role != Role.WORKSHOP:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def _is_late(piece: Piece, today) -> bool:
    return bool(piece.current_due and piece.current_due < today
                and piece.status in ACTIVE_PIECE_STATUSES)


def _open_run(piece: Piece):
    run = piece.current_run
    return run if run is not None and run.status in OPEN_STEP_STATUSES else None


# ---------------------------------------------------------------------------------------------
# my queue


@require_GET
@workshop_only
def queue(request):
    user = request.user
    mine = user.workshop_ids()
    today = timezone.localdate()
    open_lines = Prefetch(
        "transfer_lines", to_attr="open_lines",
        queryset=TransferLine.objects.filter(received_at__isnull=True)
        .select_related("transfer").order_by("-id"))
    pieces = (Piece.objects.visible_to(user).filter(status__in=ACTIVE_PIECE_STATUSES)
              .select_related("line__alloy", "current_run", "current_workshop")
              .prefetch_related(open_lines).order_by("current_due", "serial", "id"))
    incoming, in_progress, ready = [], [], []
    for piece in pieces:
        piece.is_late = _is_late(piece, today)
        if piece.transit_to_id in mine:
            piece.slip = piece.open_lines[0].transfer if piece.open_lines else None
            incoming.append(piece)
        elif piece.location_id in mine:
            if piece.status == PieceStatus.READY:
                # Either it goes on to the next step's workshop, or that step is done here.
                piece.starts_here = piece.current_workshop_id == piece.location_id
                ready.append(piece)
            else:
                in_progress.append(piece)
    workshops = list(user.workshops.order_by("name").values_list("name", flat=True))
    return render(request, "workshop/queue.html", {
        "incoming": incoming, "in_progress": in_progress, "ready": ready,
        "workshop_names": workshops,
    })


# ---------------------------------------------------------------------------------------------
# scan a job bag, or type its serial

_JOB_BAG_URL = re.compile(r"/p/([^/?#\s]+)")


def serial_from_scan(raw: str) -> str:
    """The serial in what was scanned, typed or pasted: a bare serial or a job bag URL."""
    text = (raw or "").strip()
    match = _JOB_BAG_URL.search(text)
    if match:
        text = unquote(match.group(1))
    return text.strip().strip("/").strip()


class FindForm(forms.Form):
    serial = forms.CharField(
        label=gettext_lazy("Serial or job bag link"), max_length=300,
        help_text=gettext_lazy("Printed under the QR code, e.g. P26-000123. Pasting the job "
                               "bag's link works too."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters",
                                      "spellcheck": "false", "enterkeyhint": "go"}))


def _scan_page(request, form, status=200):
    return render(request, "workshop/scan.html", {"form": form}, status=status)


@require_GET
@workshop_only
def scan(request):
    return _scan_page(request, FindForm())


@require_GET
@workshop_only
def find(request):
    form = FindForm(request.GET)
    if not form.is_valid():
        return _scan_page(request, form)
    serial = serial_from_scan(form.cleaned_data["serial"])
    piece = selectors.piece_by_serial(request.user, serial) if serial else None
    if piece is None:
        # The same words whether the serial is unknown or belongs elsewhere: a workshop
        # learns nothing about pieces that are not theirs.
        form.add_error("serial", _("No piece with serial “%(serial)s” is at your workshop or "
                                   "on its way to it. Check the serial on the job bag.")
                       % {"serial": serial or form.cleaned_data["serial"]})
        return _scan_page(request, form)
    return redirect("workshop:piece", piece_id=piece.pk)


# ---------------------------------------------------------------------------------------------
# the forms of the piece page


def _new_event_id() -> str:
    return uuid.uuid4().hex


class PhotoInput(forms.FileInput):
    # The phone opens its back camera; a desktop shows a file picker.
    def __init__(self):
        super().__init__(attrs={"accept": "image/*", "capture": "environment"})


class ActionForm(forms.Form):
    """One tracking event. `client_event_id` is made when the page is drawn, so a second tap
    on the same button records nothing new."""

    main: tuple[str, ...] = ()
    client_event_id = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def main_fields(self):
        return [self[name] for name in self.main]

    def extra_fields(self):
        return [f for f in self.visible_fields() if f.name not in self.main]

    def extra_has_errors(self) -> bool:
        return any(f.errors for f in self.extra_fields())


def _weight_field(label):
    return forms.CharField(
        label=label, required=False, max_length=20,
        help_text=gettext_lazy("In grams, to the milligram (e.g. 12.345). Optional."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))


def _comment_field(required=False):
    return forms.CharField(label=gettext_lazy("Comment"), required=required, max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 2}))


def _photo_field():
    return forms.FileField(label=gettext_lazy("Photo"), required=False, widget=PhotoInput(),
                           help_text=gettext_lazy("Take a photo with the phone, or choose one."))


class ReceiveForm(ActionForm):
    main = ("weight_g",)
    weight_g = _weight_field(gettext_lazy("Weight on arrival (g)"))
    comment = _comment_field()
    photo = _photo_field()


class StartForm(ActionForm):
    comment = _comment_field()


class CompleteForm(ActionForm):
    main = ("weight_g",)
    weight_g = _weight_field(gettext_lazy("Weight when done (g)"))
    comment = _comment_field()
    photo = _photo_field()


class SendForm(ActionForm):
    main = ("weight_g",)
    weight_g = _weight_field(gettext_lazy("Weight sent (g)"))
    comment = _comment_field()
    photo = _photo_field()


class HoldForm(ActionForm):
    main = ("reason", "comment")
    reason = forms.ChoiceField(label=gettext_lazy("Why is it held?"),
                               choices=[("", "—")] + list(HoldReason.choices))
    comment = _comment_field()
    photo = _photo_field()


class NoteForm(ActionForm):
    main = ("comment", "photo")
    comment = _comment_field()
    photo = _photo_field()
    weight_g = _weight_field(gettext_lazy("Weight (g)"))


ACTION_FORMS: dict[str, type[ActionForm]] = {
    "receive": ReceiveForm, "start": StartForm, "complete": CompleteForm, "send": SendForm,
    "hold": HoldForm, "note": NoteForm,
}
ACTION_EVENT = {"receive": EventKind.RECEIVED, "start": EventKind.STARTED,
                "complete": EventKind.COMPLETED, "send": EventKind.SENT,
                "hold": EventKind.HELD, "note": EventKind.NOTE}
MAIN_ACTIONS = ("receive", "start", "complete", "send")


def available_actions(user, piece: Piece) -> list[str]:
    """What `user` may do next on `piece`, by the rules the services apply."""

    def may(kind: str) -> bool:
        try:
            check_can_record(user, piece, kind)
        except DomainError:
            return False
        return True

    run = _open_run(piece)
    if run is None:
        return ["note"] if piece.current_run_id and may(EventKind.NOTE) else []
    here = piece.location_id == run.workshop_id
    actions = []
    for action in ("receive", "start", "complete", "send", "hold", "note"):
        kind = ACTION_EVENT[action]
        if kind != EventKind.NOTE and next_status(kind, run.status, run.held_from) is None:
            continue
        if action == "start" and run.status == StepStatus.READY and not here:
            continue  # it must be sent to the step's workshop first
        if action == "send" and here:
            continue  # already where the step is done: start it
        if may(kind):
            actions.append(action)
    return actions


def _add_error(form: forms.Form, exc: DomainError) -> None:
    """A service's refusal next to our field (services name some fields differently)."""
    field = str((exc.details or {}).get("field") or "")
    if field.startswith("weights_g") or field == "weight_g":
        field = "weight_g"
    elif field == "file":
        field = "photo"
    form.add_error(field if field in form.fields else None, exc.message)


def _clean_weight_text(value: str) -> str:
    # "12,5" is how half the bench writes it.
    return (value or "").strip().replace(",", ".")


def _perform(action: str, user, piece: Piece, data: dict):
    """Call the one service for `action`; returns (event, replayed, transfer)."""
    common = {"actor": user, "piece_id": piece.pk,
              "client_event_id": data.get("client_event_id") or None}
    comment = data.get("comment", "")
    weight = _clean_weight_text(data.get("weight_g", ""))
    if action == "receive":
        event = services.piece_receive(**common, weight_g=weight, comment=comment)
    elif action == "start":
        event = services.piece_start(**common, comment=comment)
    elif action == "complete":
        event = services.piece_complete(**common, weight_g=weight, comment=comment)
    elif action == "hold":
        event = services.piece_hold(**common, reason=data["reason"], comment=comment)
    elif action == "note":
        if not comment and not weight and data.get("photo"):
            comment = _("Photo")
        event = services.piece_note(**common, comment=comment, weight_g=weight)
    else:  # send: one piece on one slip, to the workshop of its next step
        transfer = services.pieces_send(
            actor=user, piece_ids=[piece.pk], weights_g={piece.pk: weight} if weight else None,
            comment=comment, client_ref=common["client_event_id"])
        event = transfer.events.filter(piece_id=piece.pk, kind=EventKind.SENT).first()
        return event, getattr(transfer, "replayed", False), transfer
    return event, getattr(event, "replayed", False), None


def _success_message(request, action: str, piece: Piece, event, transfer) -> None:
    serial = piece.serial
    if action == "receive":
        messages.success(request, _("%(serial)s received.") % {"serial": serial})
        if (event.data or {}).get("weight_flagged"):
            messages.warning(request, _("The weight on arrival differs from the weight sent: "
                                        "the house has been told."))
    elif action == "start":
        messages.success(request, _("%(serial)s started.") % {"serial": serial})
    elif action == "complete":
        messages.success(request, _("%(serial)s: step completed.") % {"serial": serial})
    elif action == "send":
        messages.success(request, _("%(serial)s sent to %(workshop)s on slip %(slip)s.") % {
            "serial": serial, "workshop": transfer.to_workshop.name,
            "slip": transfer.slip_number})
    elif action == "hold":
        messages.success(request, _("%(serial)s is on hold.") % {"serial": serial})
    else:
        messages.success(request, _("Note added to %(serial)s.") % {"serial": serial})


def _already_recorded(user, client_event_id: str | None) -> bool:
    if not client_event_id:
        return False
    return (TrackingEvent.objects.filter(client_event_id=client_event_id, actor=user).exists()
            or Transfer.objects.filter(client_ref=client_event_id, sent_by=user).exists())


@require_POST
@workshop_only
def act(request, piece_id: int, action: str):
    if action not in ACTION_FORMS:
        raise Http404("No such action.")
    piece = selectors.piece_get(request.user, piece_id)
    if piece is None:
        if _already_recorded(request.user, request.POST.get(f"{action}-client_event_id")):
            # A second tap after the piece left (sent on): the first one did the work.
            messages.info(request, _("Already recorded: nothing was done twice."))
            return redirect("workshop:queue")
        raise Http404("No such piece.")
    form = ACTION_FORMS[action](request.POST, request.FILES, prefix=action)
    if form.is_valid():
        photo = form.cleaned_data.get("photo")
        try:
            # The event and its photo are one write: a refused photo records nothing.
            with transaction.atomic():
                event, replayed, transfer = _perform(action, request.user, piece,
                                                     form.cleaned_data)
                if photo and not replayed:
                    document_upload(actor=request.user, order_id=piece.order_id,
                                    uploaded_file=photo, kind=DocumentKind.PHOTO,
                                    piece_id=piece.pk, event=event)
        except DomainError as exc:
            _add_error(form, exc)
        else:
            if replayed:
                messages.info(request, _("Already recorded: nothing was done twice."))
            else:
                _success_message(request, action, piece, event, transfer)
            if selectors.piece_get(request.user, piece.pk) is None or action == "send":
                return redirect("workshop:queue")
            return redirect("workshop:piece", piece_id=piece.pk)
    return _render_piece(request, piece, bound={action: form})


# ---------------------------------------------------------------------------------------------
# one piece


@require_GET
@workshop_only
def piece_detail(request, piece_id: int):
    piece = selectors.piece_get(request.user, piece_id)
    if piece is None:
        raise Http404("No such piece.")
    return _render_piece(request, piece)


def _render_piece(request, piece: Piece, bound: dict | None = None):
    user = request.user
    mine = user.workshop_ids()
    bound = bound or {}
    run = _open_run(piece)
    actions = available_actions(user, piece)
    for action, form in bound.items():
        if action not in actions:
            # Refused, and the piece no longer offers this action: say why at the top.
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
    forms_by_action = {
        action: bound.get(action) or ACTION_FORMS[action](
            prefix=action, initial={"client_event_id": _new_event_id()})
        for action in actions}
    operations = []
    if run is not None and run.operations:
        names = dict(Operation.objects.filter(code__in=run.operations)
                     .values_list("code", "name"))
        operations = [_(names[code]) if code in names else code for code in run.operations]
    incoming_line = None
    if piece.status == PieceStatus.IN_TRANSIT:
        incoming_line = (TransferLine.objects.filter(piece=piece, received_at__isnull=True)
                         .select_related("transfer").order_by("-id").first())
    events = list(selectors.piece_events(user, piece))
    documents = list(document_selectors.piece_documents(user, piece)  # newest visible versions
                     .order_by("uploaded_at", "id"))
    photos_by_event: dict[int, list[Document]] = {}
    loose_documents = []
    for doc in documents:
        if doc.event_id:
            photos_by_event.setdefault(doc.event_id, []).append(doc)
        else:
            loose_documents.append(doc)
    hold = None
    for event in events:
        event.photos = photos_by_event.get(event.pk, [])
        # Names of people and places elsewhere stay there.
        event.ours = event.workshop_id in mine
        event.reason_label = (HoldReason(event.reason).label
                              if event.reason in HoldReason.values else event.reason)
        if event.kind == EventKind.HELD:
            hold = event
    destination = run.workshop if run is not None and "send" in actions else None
    main_actions = [(a, forms_by_action[a]) for a in MAIN_ACTIONS if a in forms_by_action]
    from etabli.core import panels

    return render(request, "workshop/piece.html", {
        "panels": panels.workshop_piece_panels(request, piece),
        "piece": piece, "line": piece.line, "run": run,
        "step_label": StepKind(piece.current_step).label if piece.current_step else "",
        "operations": operations, "is_late": _is_late(piece, timezone.localdate()),
        "at_mine": piece.location_id in mine, "incoming_line": incoming_line,
        "main_actions": main_actions, "forms": forms_by_action, "destination": destination,
        "events": events, "documents": loose_documents,
        "hold": hold if piece.status == PieceStatus.ON_HOLD else None,
    })
