"""Every change to design briefs, rounds, approvals and prototypes. Each service is one
transaction, keyword-only, and raises a DomainError on a guard.

Who does what:
- designers, sales, production managers and administrators write briefs (only the price roles
  touch the target price), prepare rounds, attach their files and send them;
- the client's contact approves a round or asks for changes in the client portal; sales, a
  production manager or an administrator may record the client's decision on their behalf —
  an approval only with a note and the client's written approval attached;
- the prototypist records the prototype at a prototyping step: the house's designer, a
  production manager or administrator, or the member of the workshop the step is at. "CAD
  changes needed" sends the piece back to design, which is the house's call (not a workshop's).
"""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.accounts.models import Role
from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.documents.models import Document, DocumentKind, Visibility
from etabli.orders.models import OrderLine, OrderStatus
from etabli.production.models import Piece, StepStatus
from etabli.workshops.models import StepKind

from . import budget, selectors
from .models import (
    OPEN_ROUND_STATUSES,
    DesignApproval,
    DesignBrief,
    DesignRound,
    Prototype,
    PrototypeMethod,
    PrototypeResult,
    RoundStatus,
)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


# "Not given" in partial updates (None clears a value).
UNSET: Any = _Unset()

MAX_METAL_G = Decimal("5000")
MAX_STONE_CT = Decimal("10000")
MAX_STONES = 100_000
MAX_PRICE = Decimal("10000000000")
ROUND_FILE_KINDS = (DocumentKind.CAD, DocumentKind.RENDER)
BRIEF_FIELDS = ["client_intent", "technical_constraints", "aesthetic_constraints"]
BUDGET_FIELDS = ["budget_metal_g", "budget_stone_count", "budget_stone_ct"]
ROUND_FIELDS = ["status", "designer_note", "estimated_metal_g", "metal_source",
                "estimated_stone_count", "estimated_stone_ct"]


# ---------------------------------------------------------------------------------------------
# input


def _clean_text(value: Any, field: str, limit: int = 4000) -> str:
    value = "" if value is None else str(value).strip()
    if len(value) > limit:
        raise ValidationFailed(_("%(field)s is too long (at most %(limit)s characters).")
                               % {"field": field, "limit": limit}, details={"field": field})
    return value


def _decimal(value: Any, field: str, message: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationFailed(message, details={"field": field})
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(message, details={"field": field}) from None
    if not number.is_finite():
        raise ValidationFailed(message, details={"field": field})
    return number


def _clean_weight(value: Any, field: str, limit: Decimal, unit: str) -> Decimal | None:
    """A weight (grams or carats) more than 0, at most `limit`, to 3 decimals."""
    if value is None or value == "":
        return None
    number = _decimal(value, field, _("'%(value)s' is not a number of %(unit)s.")
                      % {"value": value, "unit": unit})
    if number <= 0 or number > limit or number != number.quantize(Decimal("0.001")):
        raise ValidationFailed(_("Give more than 0 %(unit)s, at most %(limit)s, to 3 decimals.")
                               % {"unit": unit, "limit": limit}, details={"field": field})
    return number.quantize(Decimal("0.001"))


def _clean_count(value: Any, field: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).strip().isdigit() \
            or int(str(value).strip()) > MAX_STONES:
        raise ValidationFailed(_("The number of stones is a whole number (0 or more)."),
                               details={"field": field})
    return int(str(value).strip())


def _clean_price(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    number = _decimal(value, "target_price", _("'%(value)s' is not an amount.")
                      % {"value": value})
    if number < 0 or number >= MAX_PRICE:
        raise ValidationFailed(_("The target price must be a positive amount."),
                               details={"field": "target_price"})
    return number.quantize(Decimal("0.01"))


# ---------------------------------------------------------------------------------------------
# access


def _check_works_on_design(actor) -> None:
    if not selectors.works_on_design(actor):
        raise PermissionDenied(_("Only designers, sales, production managers and "
                                 "administrators work on designs."))


def _lock_line(actor, line_id: int) -> OrderLine:
    """The line, visible to the actor, locked so that its rounds change one at a time."""
    line = (selectors.design_lines(actor).select_for_update(of=("self",))
            .filter(pk=line_id).first())
    if line is None:
        raise NotFound(_("No order line with id %(id)s.") % {"id": line_id})
    return OrderLine.objects.select_related("order", "alloy").get(pk=line.pk)


def _check_line_open(line: OrderLine) -> None:
    order = line.order
    if order.status not in (OrderStatus.DRAFT, OrderStatus.LAUNCHED):
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s: its design no longer changes.")
            % {"ref": order.reference, "status": OrderStatus(order.status).label.lower()},
            details={"status": order.status})


def _lock_round(actor, round_id: int) -> DesignRound:
    found = DesignRound.objects.visible_to(actor).filter(pk=round_id).values("line_id").first()
    if found is None:
        raise NotFound(_("No design round with id %(id)s.") % {"id": round_id})
    # The line first (as every other design write does), then the round.
    line = OrderLine.objects.select_for_update(of=("self",)).select_related("order", "alloy") \
        .get(pk=found["line_id"])
    rnd = DesignRound.objects.select_for_update().get(pk=round_id)
    rnd.line = line
    return rnd


def _round_label(rnd: DesignRound) -> str:
    return _("Round %(n)s of %(line)s") % {"n": rnd.number,
                                            "line": selectors.line_label(rnd.line)}


# ---------------------------------------------------------------------------------------------
# the brief


@transaction.atomic
def design_brief_save(*, actor, line_id: int, client_intent: Any = UNSET,
                      technical_constraints: Any = UNSET, aesthetic_constraints: Any = UNSET,
                      budget_metal_g: Any = UNSET, budget_stone_count: Any = UNSET,
                      budget_stone_ct: Any = UNSET, target_price: Any = UNSET) -> DesignBrief:
    """Write a line's brief and its material budget (and, for the price roles, its target
    price). Only the values given change; None (or "") clears a value."""
    line = _lock_line(actor, line_id)
    _check_works_on_design(actor)
    if target_price is not UNSET and not actor.sees_prices:
        raise PermissionDenied(_("Only sales, production managers and administrators set the "
                                 "target price."), details={"field": "target_price"})
    _check_line_open(line)
    texts = {"client_intent": client_intent, "technical_constraints": technical_constraints,
             "aesthetic_constraints": aesthetic_constraints}
    texts = {k: _clean_text(v, k) for k, v in texts.items() if v is not UNSET}
    budgets: dict[str, Any] = {}
    if budget_metal_g is not UNSET:
        budgets["budget_metal_g"] = _clean_weight(budget_metal_g, "budget_metal_g",
                                                  MAX_METAL_G, "g")
    if budget_stone_count is not UNSET:
        budgets["budget_stone_count"] = _clean_count(budget_stone_count, "budget_stone_count")
    if budget_stone_ct is not UNSET:
        budgets["budget_stone_ct"] = _clean_weight(budget_stone_ct, "budget_stone_ct",
                                                   MAX_STONE_CT, "ct")
    if target_price is not UNSET:
        budgets["target_price"] = _clean_price(target_price)
    brief = DesignBrief.objects.filter(line=line).first() or DesignBrief(line=line)
    line_fields = BUDGET_FIELDS + (["target_price"] if actor.sees_prices else [])
    before = {} if brief.pk is None else audit.snapshot(brief, BRIEF_FIELDS)
    before |= audit.snapshot(line, line_fields)
    for name, value in texts.items():
        setattr(brief, name, value)
    brief.updated_by = actor
    brief.updated_at = timezone.now()
    brief.save()
    if budgets:
        for name, value in budgets.items():
            setattr(line, name, value)
        line.save(update_fields=list(budgets))
    audit.record(actor=actor, action="design.brief", obj=brief, before=before,
                 after=audit.snapshot(brief, BRIEF_FIELDS) | audit.snapshot(line, line_fields)
                 | {"line": line.pk}, order_id=line.order_id)
    return brief


# ---------------------------------------------------------------------------------------------
# rounds


def _estimates(estimated_metal_g: Any, estimated_stone_count: Any,
               estimated_stone_ct: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if estimated_metal_g is not UNSET:
        out["estimated_metal_g"] = _clean_weight(estimated_metal_g, "estimated_metal_g",
                                                 MAX_METAL_G, "g")
        out["metal_source"] = "entered" if out["estimated_metal_g"] is not None else ""
    if estimated_stone_count is not UNSET:
        out["estimated_stone_count"] = _clean_count(estimated_stone_count,
                                                    "estimated_stone_count")
    if estimated_stone_ct is not UNSET:
        out["estimated_stone_ct"] = _clean_weight(estimated_stone_ct, "estimated_stone_ct",
                                                  MAX_STONE_CT, "ct")
    return out


@transaction.atomic
def design_round_create(*, actor, line_id: int, designer_note: str = "",
                        estimated_metal_g: Any = None, estimated_stone_count: Any = None,
                        estimated_stone_ct: Any = None) -> DesignRound:
    """Start the next round of a line (1, 2, …); the previous one must have been decided."""
    line = _lock_line(actor, line_id)
    _check_works_on_design(actor)
    _check_line_open(line)
    note = _clean_text(designer_note, "designer_note")
    values = _estimates(estimated_metal_g, estimated_stone_count, estimated_stone_ct)
    current = line.design_rounds.filter(status__in=OPEN_ROUND_STATUSES).first()
    if current is not None:
        if current.status == RoundStatus.DRAFT:
            message = _("Round %(n)s of this line is still being prepared: add to it, or send "
                        "it.")
        else:
            message = _("Round %(n)s of this line is waiting for the client's decision: a new "
                        "round starts once the client has decided.")
        raise Conflict(message % {"n": current.number}, details={"round_id": current.pk})
    last = line.design_rounds.order_by("-number").values_list("number", flat=True).first()
    rnd = DesignRound.objects.create(line=line, number=(last or 0) + 1, designer_note=note,
                                     created_by=actor, created_at=timezone.now(), **values)
    audit.record(actor=actor, action="design.round.create", obj=rnd,
                 after=audit.snapshot(rnd, ["number"] + ROUND_FIELDS) | {"line": line.pk},
                 order_id=line.order_id)
    return rnd


def _require_draft(rnd: DesignRound) -> None:
    if rnd.status != RoundStatus.DRAFT:
        raise TransitionNotAllowed(
            _("%(round)s was sent to the client on %(date)s: it no longer changes. Start a new "
              "round instead.") % {"round": _round_label(rnd),
                                   "date": timezone.localtime(rnd.sent_at).strftime("%Y-%m-%d")},
            details={"status": rnd.status})


@transaction.atomic
def design_round_update(*, actor, round_id: int, designer_note: Any = UNSET,
                        estimated_metal_g: Any = UNSET, estimated_stone_count: Any = UNSET,
                        estimated_stone_ct: Any = UNSET) -> DesignRound:
    """Change a round being prepared: the designer's note and the estimates."""
    rnd = _lock_round(actor, round_id)
    _check_works_on_design(actor)
    _check_line_open(rnd.line)
    _require_draft(rnd)
    values = _estimates(estimated_metal_g, estimated_stone_count, estimated_stone_ct)
    if designer_note is not UNSET:
        values["designer_note"] = _clean_text(designer_note, "designer_note")
    before = audit.snapshot(rnd, ROUND_FIELDS)
    for name, value in values.items():
        setattr(rnd, name, value)
    rnd.save()
    audit.record(actor=actor, action="design.round.update", obj=rnd, before=before,
                 after=audit.snapshot(rnd, ROUND_FIELDS), order_id=rnd.line.order_id)
    return rnd


def _same_file(rnd: DesignRound, uploaded_file) -> Document | None:
    """The file of the round with the same name and content as `uploaded_file`, if any."""
    if uploaded_file is None or not hasattr(uploaded_file, "read") \
            or (getattr(uploaded_file, "size", 0) or 0) > 100 * 1024 * 1024:
        return None  # nothing to compare, or too big to read here (refused on upload)
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    digest = hashlib.sha256(uploaded_file.read()).hexdigest()
    uploaded_file.seek(0)
    name = os.path.basename((getattr(uploaded_file, "name", "") or "").replace("\\", "/"))
    return rnd.files.filter(sha256=digest, original_name=name).first()


def _line_design_files(line: OrderLine):
    return Document.objects.filter(design_rounds__line=line).distinct()


@transaction.atomic
def design_round_add_file(*, actor, round_id: int, uploaded_file, kind: str,
                          visibility: str | None = None,
                          replaces_id: int | None = None) -> Document:
    """Attach a CAD file or a render to a round being prepared.

    Renders are shared with the client unless told otherwise; CAD files with the workshops that
    will make the piece. `replaces_id` names a file of an earlier round (or of this one) that
    this file is a new version of: the old version stays. A CAD mesh (STL, OBJ) is analysed and,
    when it is closed and the line has an alloy, gives the round its estimated metal weight
    (unless one was entered by hand).
    """
    from etabli.documents import services as documents
    from etabli.materials import units
    from etabli.materials.cad import MESH_CONTENT_TYPES
    from etabli.materials.cad_services import mesh_analyse

    rnd = _lock_round(actor, round_id)
    _check_works_on_design(actor)
    if kind not in ROUND_FILE_KINDS:
        raise ValidationFailed(_("A round's files are CAD files or renders ('cad' or "
                                 "'render'), not '%(kind)s'.") % {"kind": kind},
                               details={"field": "kind"})
    if visibility in (None, ""):
        visibility = Visibility.CLIENT if kind == DocumentKind.RENDER else Visibility.WORKSHOPS
    if visibility not in Visibility.values:
        raise ValidationFailed(_("Unknown visibility '%(value)s'.") % {"value": visibility},
                               details={"field": "visibility"})
    line = rnd.line
    _check_line_open(line)
    _require_draft(rnd)
    same = _same_file(rnd, uploaded_file)
    if same is not None:  # the same file sent twice (a double submit) is kept once
        return same
    replaced = None
    if replaces_id is not None:
        replaced = _line_design_files(line).filter(pk=replaces_id).first()
        if replaced is None:
            raise NotFound(_("No file with id %(id)s in this line's design rounds.")
                           % {"id": replaces_id}, details={"field": "replaces_id"})
        if replaced.kind != kind:
            raise ValidationFailed(_("%(name)s is a %(kind)s: its new version is one too.")
                                   % {"name": replaced.original_name,
                                      "kind": replaced.get_kind_display().lower()},
                                   details={"field": "kind"})
        doc = documents.document_new_version(actor=actor, document_id=replaced.pk,
                                             uploaded_file=uploaded_file, visibility=visibility)
    else:
        doc = documents.document_upload(actor=actor, order_id=line.order_id, line_id=line.pk,
                                        uploaded_file=uploaded_file, kind=kind,
                                        visibility=visibility)
    if (kind == DocumentKind.RENDER) != doc.is_image \
            or (kind == DocumentKind.CAD and not doc.content_type.startswith("model/")):
        documents.document_files_discard([doc])  # the rows roll back, the files would stay
        raise ValidationFailed(
            _("A render is an image (PNG, JPEG or WebP) and a CAD file a model (STL, OBJ or "
              "3DM): %(name)s is neither. Attach other files to the order's documents.")
            % {"name": doc.original_name}, details={"field": "file"})
    before = audit.snapshot(rnd, ROUND_FIELDS)
    if doc.content_type in MESH_CONTENT_TYPES:
        try:
            analysis = mesh_analyse(actor=actor, document_id=doc.pk)
        except Exception:
            documents.document_files_discard([doc])  # the rows roll back, the files would stay
            raise
        if analysis.volume_mm3 is not None and line.alloy is not None \
                and rnd.metal_source != "entered":
            rnd.estimated_metal_g = units.volume_weight_g(analysis.volume_mm3,
                                                          line.alloy.density_g_cm3)
            rnd.metal_source = "cad"
            rnd.save(update_fields=["estimated_metal_g", "metal_source"])
    if replaced is not None:
        rnd.files.remove(replaced)  # a new version replaces the old one in this round only
    rnd.files.add(doc)
    audit.record(actor=actor, action="design.round.file", obj=rnd, before=before,
                 after=audit.snapshot(rnd, ROUND_FIELDS)
                 | {"document": doc.pk, "kind": kind, "name": doc.original_name,
                    "version": getattr(doc, "version", 1),
                    "replaces": replaced.pk if replaced else None},
                 order_id=line.order_id)
    return doc


@transaction.atomic
def design_round_remove_file(*, actor, round_id: int, document_id: int) -> DesignRound:
    """Take a file out of a round being prepared (the document itself stays on the order)."""
    rnd = _lock_round(actor, round_id)
    _check_works_on_design(actor)
    _check_line_open(rnd.line)
    _require_draft(rnd)
    doc = rnd.files.filter(pk=document_id).first()
    if doc is None:
        raise NotFound(_("No file with id %(id)s in this round.") % {"id": document_id},
                       details={"field": "document_id"})
    rnd.files.remove(doc)
    audit.record(actor=actor, action="design.round.file_remove", obj=rnd,
                 before={"document": doc.pk, "name": doc.original_name},
                 order_id=rnd.line.order_id)
    return rnd


@transaction.atomic
def design_round_send(*, actor, round_id: int) -> DesignRound:
    """Send a round to the client; it needs at least one render or CAD file. Rounds sent are
    counted: past the house's limit the line shows a warning (it does not block)."""
    rnd = _lock_round(actor, round_id)
    _check_works_on_design(actor)
    line = rnd.line
    _check_line_open(line)
    if rnd.status != RoundStatus.DRAFT:
        raise TransitionNotAllowed(
            _("%(round)s has already been sent to the client.") % {"round": _round_label(rnd)},
            details={"status": rnd.status})
    if not rnd.files.filter(kind__in=ROUND_FILE_KINDS).exists():
        raise ValidationFailed(_("Add at least one render or CAD file before sending the round "
                                 "to the client."), details={"field": "files"})
    before = audit.snapshot(rnd, ["status"])
    rnd.status = RoundStatus.SENT
    rnd.sent_by = actor
    rnd.sent_at = timezone.now()
    rnd.save(update_fields=["status", "sent_by", "sent_at"])
    sent = line.design_rounds.exclude(status=RoundStatus.DRAFT).count()
    limit = selectors.round_limit()
    audit.record(actor=actor, action="design.round.send", obj=rnd, before=before,
                 after={"status": rnd.status, "rounds_sent": sent, "limit": limit,
                        "over_limit": sent > limit}, order_id=line.order_id)
    return rnd


# ---------------------------------------------------------------------------------------------
# the client's decision


def _decided_refusal(rnd: DesignRound) -> TransitionNotAllowed:
    who = rnd.decided_by.get_full_name() or rnd.decided_by.username if rnd.decided_by else "?"
    when = timezone.localtime(rnd.decided_at).strftime("%Y-%m-%d %H:%M")
    if rnd.status == RoundStatus.APPROVED:
        message = _("%(round)s was already approved by %(who)s on %(when)s: the decision is "
                    "final.")
    else:
        message = _("Changes to %(round)s were already requested by %(who)s on %(when)s: the "
                    "next round will be sent for a new decision.")
    return TransitionNotAllowed(message % {"round": _round_label(rnd), "who": who,
                                           "when": when},
                                code="already_decided", details={"status": rnd.status})


def _written_approval(actor, line: OrderLine, document_id: int | None, uploaded_file):
    from etabli.documents import services as documents

    if uploaded_file is not None:
        kind = "client_acceptance" if "client_acceptance" in DocumentKind.values \
            else DocumentKind.OTHER
        return documents.document_upload(actor=actor, order_id=line.order_id, line_id=line.pk,
                                         uploaded_file=uploaded_file, kind=kind,
                                         visibility=Visibility.HOUSE)
    if document_id is not None:
        doc = Document.objects.filter(pk=document_id, order_id=line.order_id).first()
        if doc is None:
            raise NotFound(_("No document with id %(id)s on this order.") % {"id": document_id},
                           details={"field": "document_id"})
        return doc
    raise ValidationFailed(_("Attach the client's written approval (the signed renders, the "
                             "e-mail or letter) to record it on their behalf."),
                           details={"field": "document"})


def _files_record(rnd: DesignRound) -> list[dict]:
    """The exact files approved: which versions, with their checksums."""
    return [{"id": d.pk, "name": d.original_name, "kind": d.kind,
             "version": getattr(d, "version", 1), "sha256": d.sha256,
             "size_bytes": d.size_bytes, "visibility": d.visibility}
            for d in rnd.files.order_by("kind", "id")]


@transaction.atomic
def design_round_decide(*, actor, round_id: int, approve: bool, comment: str = "",
                        document_id: int | None = None, uploaded_file=None) -> DesignRound:
    """The client approves the round sent to them, or asks for changes (saying which).

    Sales, a production manager or an administrator may record the client's decision on their
    behalf: an approval then needs a note and the client's written approval (a file uploaded
    now, or a document already attached to the order). The approval is a formal record of the
    round, its exact files and the budget consistency at that moment; a decision is final.
    """
    rnd = _lock_round(actor, round_id)
    line = rnd.line
    if actor.is_active and actor.role == Role.CLIENT:
        on_behalf = False
    elif actor.takes_orders:
        on_behalf = True
    else:
        raise PermissionDenied(_("The client decides on a design round (or sales, a production "
                                 "manager or an administrator records the client's decision)."))
    if rnd.status == RoundStatus.DRAFT:
        raise TransitionNotAllowed(_("%(round)s has not been sent to the client yet.")
                                   % {"round": _round_label(rnd)},
                                   details={"status": rnd.status})
    if rnd.status != RoundStatus.SENT:
        raise _decided_refusal(rnd)
    if line.design_rounds.filter(number__gt=rnd.number).exclude(
            status=RoundStatus.DRAFT).exists():
        raise TransitionNotAllowed(_("Only the latest round sent can be decided."))
    _check_line_open(line)
    comment = _clean_text(comment, "comment")
    at = timezone.now()
    if approve:
        document = None
        if on_behalf:
            if not comment:
                raise ValidationFailed(_("Say how the client gave their approval (e.g. 'signed "
                                         "renders returned by e-mail on 3 May')."),
                                       details={"field": "comment"})
            document = _written_approval(actor, line, document_id, uploaded_file)
        figures = budget.of_round(rnd, line)
        DesignApproval.objects.create(
            round=rnd, line=line, round_number=rnd.number, approved_by=actor, approved_at=at,
            on_behalf=on_behalf, note=comment, document=document, files=_files_record(rnd),
            estimated_metal_g=figures.metal.estimated, budget_metal_g=figures.metal.budget,
            metal_difference_g=figures.metal.difference,
            estimated_stone_count=figures.stone_count.estimated,
            budget_stone_count=figures.stone_count.budget,
            stone_count_difference=figures.stone_count.difference,
            estimated_stone_ct=figures.stone_ct.estimated,
            budget_stone_ct=figures.stone_ct.budget,
            stone_ct_difference=figures.stone_ct.difference)
        rnd.status = RoundStatus.APPROVED
    else:
        if not comment:
            raise ValidationFailed(_("Say what should change in the design."),
                                   details={"field": "comment"})
        rnd.status = RoundStatus.CHANGES_REQUESTED
    rnd.decided_by = actor
    rnd.decided_at = at
    rnd.decided_on_behalf = on_behalf
    rnd.decision_comment = comment
    rnd.save(update_fields=["status", "decided_by", "decided_at", "decided_on_behalf",
                            "decision_comment"])
    audit.record(actor=actor,
                 action="design.round.approve" if approve else "design.round.changes",
                 obj=rnd, before={"status": RoundStatus.SENT},
                 after={"status": rnd.status, "on_behalf": on_behalf, "comment": comment,
                        "files": [f["id"] for f in _files_record(rnd)] if approve else []},
                 order_id=line.order_id)
    return rnd


# ---------------------------------------------------------------------------------------------
# prototypes


def _check_may_prototype(actor, piece: Piece, run) -> None:
    if actor.role == Role.DESIGNER or actor.runs_production:
        return
    if actor.role == Role.WORKSHOP:
        ids = actor.workshop_ids()
        if run.workshop_id in ids and piece.location_id in ids:
            return
        raise PermissionDenied(_("This piece's prototype is not made at your workshop."))
    raise PermissionDenied(_("Prototypes are recorded by the prototypist: the designer, a "
                             "production manager, or the workshop making it."))


@transaction.atomic
def prototype_record(*, actor, piece_id: int, method: str, result: str,
                     fit_ok: bool | None = None, fit_notes: str = "", reason: str = "",
                     notes: str = "") -> Prototype:
    """Record the prototype made at a piece's prototyping step: how it was made, the fit test
    (required for a ring), and the result. "CAD changes needed" (with its reason) sends the
    piece back to its design step and withdraws the line's approval: a new round must be
    approved before any piece of the line leaves design again."""
    from etabli.production.services import piece_rework

    piece = (Piece.objects.visible_to(actor).select_for_update(of=("self",))
             .select_related("line", "order").filter(pk=piece_id).first())
    if piece is None:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    run = piece.current_run
    if run is None or run.status in (StepStatus.DONE, StepStatus.SKIPPED) \
            or run.step != StepKind.PROTOTYPING:
        raise TransitionNotAllowed(_("%(serial)s is not at a prototyping step.")
                                   % {"serial": piece.serial})
    _check_may_prototype(actor, piece, run)
    if run.status not in (StepStatus.IN_PROGRESS, StepStatus.ON_HOLD):
        raise TransitionNotAllowed(_("Start the prototyping step of %(serial)s before recording "
                                     "its prototype.") % {"serial": piece.serial},
                                   details={"step_status": run.status})
    if Prototype.objects.filter(run=run).exists():
        raise Conflict(_("The prototype of this prototyping step is already recorded."),
                       details={"run_id": run.pk})
    if method not in PrototypeMethod.values:
        raise ValidationFailed(_("Unknown method '%(value)s'. Choose one of: %(choices)s.")
                               % {"value": method, "choices": ", ".join(PrototypeMethod.values)},
                               details={"field": "method"})
    if result not in PrototypeResult.values:
        raise ValidationFailed(_("Unknown result '%(value)s'. Choose one of: %(choices)s.")
                               % {"value": result, "choices": ", ".join(PrototypeResult.values)},
                               details={"field": "result"})
    if fit_ok is not None and not isinstance(fit_ok, bool):
        raise ValidationFailed(_("Say whether the prototype fits (yes or no)."),
                               details={"field": "fit_ok"})
    line = piece.line
    if fit_ok is None and selectors.needs_fit_test(line):
        raise ValidationFailed(_("Record the fit test: this ring is size %(size)s.")
                               % {"size": line.size}, details={"field": "fit_ok"})
    fit_notes = _clean_text(fit_notes, "fit_notes")
    notes = _clean_text(notes, "notes")
    reason = _clean_text(reason, "reason")
    approval = None
    event = None
    if result == PrototypeResult.APPROVED:
        if fit_ok is False:
            raise ValidationFailed(_("A prototype that does not fit is not approved: record "
                                     "the CAD changes needed, with the reason."),
                                   details={"field": "result"})
    else:
        if not reason:
            raise ValidationFailed(_("Say what must change in the CAD."),
                                   details={"field": "reason"})
        if actor.role == Role.WORKSHOP:
            raise PermissionDenied(_("Sending the piece back to design is the house's decision: "
                                     "tell the designer what you found (a note on the piece)."),
                                   details={"field": "result"})
        design_run = (piece.runs.filter(step=StepKind.DESIGN, status=StepStatus.DONE,
                                        position__lt=run.position)
                      .order_by("-position").first())
        if design_run is None:
            raise TransitionNotAllowed(_("%(serial)s has no design step done to go back to.")
                                       % {"serial": piece.serial})
        state = selectors.line_state(line)
        approval = state.approval if state.approved else None
        event = piece_rework(actor=actor, piece_id=piece.pk, target_run_id=design_run.pk,
                             comment=reason)
    prototype = Prototype.objects.create(
        piece=piece, line=line, run=run, method=method, fit_tested=fit_ok is not None,
        fit_ok=fit_ok, fit_notes=fit_notes, result=result, reason=reason, notes=notes,
        invalidates=approval, rework_event=event, recorded_by=actor,
        recorded_at=timezone.now())
    audit.record(actor=actor, action="design.prototype", obj=prototype,
                 after={"method": method, "result": result, "fit_ok": fit_ok,
                        "reason": reason, "run": run.pk,
                        "invalidates": approval.pk if approval else None},
                 order_id=piece.order_id, piece_id=piece.pk)
    return prototype
