"""Design over the API: briefs, rounds and their files, the client's decision, approvals and
prototypes. Thin: reads start from the models' `visible_to`, writes go through `services`.

Scopes: designers and the house's staff see the design work of the orders they see; a client
contact only the rounds sent to them on their own orders, with the files shared with them;
workshops nothing, except that the workshop making a piece's prototype records it (and reads
the prototypes made there).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Router, Schema
from ninja.files import UploadedFile

from etabli.accounts.models import Role
from etabli.core.errors import NotFound
from etabli.documents.models import Document, Visibility
from etabli.production.models import Piece

from . import budget, selectors, services
from .models import (
    DesignApproval,
    DesignRound,
    Prototype,
    PrototypeMethod,
    PrototypeResult,
    RoundStatus,
)

router = Router(tags=["Design"])

# ---------------------------------------------------------------------------------------------
# schemas


class UserRef(Schema):
    id: int
    name: str


class FigureOut(Schema):
    estimated: Decimal | None
    budget: Decimal | None
    difference: Decimal | None
    difference_pct: Decimal | None
    over: bool


class BudgetOut(Schema):
    metal: FigureOut
    stone_count: FigureOut
    stone_ct: FigureOut
    consistent: bool
    warnings: list[str]


class BriefOut(Schema):
    line_id: int
    order_id: int
    client_intent: str
    technical_constraints: str
    aesthetic_constraints: str
    budget_metal_g: Decimal | None
    budget_stone_count: int | None
    budget_stone_ct: Decimal | None
    prices_shown: bool
    target_price: Decimal | None = Field(None, description="Only for the price roles")
    currency: str | None = None
    updated_by: UserRef | None
    updated_at: dt.datetime | None


class BriefIn(Schema):
    """Only the fields sent change; null clears a value. Only the price roles send
    target_price."""

    client_intent: str | None = Field(None, max_length=4000)
    technical_constraints: str | None = Field(None, max_length=4000)
    aesthetic_constraints: str | None = Field(None, max_length=4000)
    budget_metal_g: Decimal | None = None
    budget_stone_count: int | None = None
    budget_stone_ct: Decimal | None = None
    target_price: Decimal | None = None


class FileOut(Schema):
    id: int
    name: str
    kind: str
    content_type: str
    visibility: str
    version: int
    sha256: str
    size_bytes: int
    url: str


class ApprovalOut(Schema):
    id: int
    round_id: int
    line_id: int
    round_number: int
    approved_by: UserRef | None
    approved_at: dt.datetime
    on_behalf: bool
    note: str
    document_id: int | None
    files: list[dict]
    budget: BudgetOut
    valid: bool
    invalidated_by_prototype_id: int | None


class RoundOut(Schema):
    id: int
    line_id: int
    order_id: int
    number: int
    status: str
    status_label: str
    designer_note: str
    estimated_metal_g: Decimal | None
    metal_source: str
    estimated_stone_count: int | None
    estimated_stone_ct: Decimal | None
    files: list[FileOut]
    budget: BudgetOut
    sent_at: dt.datetime | None
    decided_at: dt.datetime | None
    decided_by: UserRef | None
    decided_on_behalf: bool
    decision_comment: str
    approval_id: int | None


class LineDesignOut(Schema):
    line_id: int
    order_id: int
    order_reference: str
    description: str
    is_custom_design: bool
    status: str
    status_label: str
    rounds_sent: int
    round_limit: int
    over_limit: bool
    warning: str
    approved: bool
    approval_id: int | None
    missing: str
    rounds: list[RoundOut]


class RoundIn(Schema):
    designer_note: str = Field("", max_length=4000)
    estimated_metal_g: Decimal | None = None
    estimated_stone_count: int | None = None
    estimated_stone_ct: Decimal | None = None


class RoundPatch(Schema):
    """Only the fields sent change; null clears an estimate."""

    designer_note: str | None = Field(None, max_length=4000)
    estimated_metal_g: Decimal | None = None
    estimated_stone_count: int | None = None
    estimated_stone_ct: Decimal | None = None


class DecisionIn(Schema):
    decision: Literal["approve", "request_changes"]
    comment: str = Field("", max_length=4000,
                         description="What should change; for the house, how the client gave "
                                     "their approval")
    document_id: int | None = Field(None, description="The client's written approval (a "
                                                       "document of the order), when the house "
                                                       "records it on their behalf")


class PrototypeIn(Schema):
    method: PrototypeMethod
    result: PrototypeResult
    fit_ok: bool | None = None
    fit_notes: str = Field("", max_length=4000)
    reason: str = Field("", max_length=4000)
    notes: str = Field("", max_length=4000)


class PrototypeOut(Schema):
    id: int
    piece_id: int
    serial: str
    line_id: int
    run_id: int
    method: str
    fit_tested: bool
    fit_ok: bool | None
    fit_notes: str
    result: str
    reason: str
    notes: str
    invalidates_approval_id: int | None
    recorded_by: UserRef | None
    recorded_at: dt.datetime


# ---------------------------------------------------------------------------------------------
# shaping


def _user_ref(user) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "name": user.get_full_name() or user.username}


def _decider_ref(reader, user) -> dict | None:
    """Who decided or approved: the house's people stay with the house (a client reads only
    their own name), as for a document's uploader."""
    if user is None or not (reader.sees_clients or user.pk == reader.pk):
        return None
    return _user_ref(user)


def _budget(figures: budget.BudgetConsistency) -> dict:
    return figures.as_dict()


def _file(doc: Document) -> dict:
    return {"id": doc.pk, "name": doc.original_name, "kind": doc.kind,
            "content_type": doc.content_type, "visibility": doc.visibility,
            "version": getattr(doc, "version", 1), "sha256": doc.sha256,
            "size_bytes": doc.size_bytes, "url": reverse("document", args=[doc.token])}


def _round(reader, rnd: DesignRound) -> dict:
    approval = getattr(rnd, "approval", None) if rnd.status == "approved" else None
    return {"id": rnd.pk, "line_id": rnd.line_id, "order_id": rnd.line.order_id,
            "number": rnd.number, "status": rnd.status,
            "status_label": str(rnd.get_status_display()), "designer_note": rnd.designer_note,
            "estimated_metal_g": rnd.estimated_metal_g, "metal_source": rnd.metal_source,
            "estimated_stone_count": rnd.estimated_stone_count,
            "estimated_stone_ct": rnd.estimated_stone_ct,
            "files": [_file(d) for d in getattr(rnd, "shown_files", [])],
            "budget": _budget(budget.of_round(rnd)), "sent_at": rnd.sent_at,
            "decided_at": rnd.decided_at,
            "decided_by": _decider_ref(reader, rnd.decided_by),
            "decided_on_behalf": rnd.decided_on_behalf,
            "decision_comment": rnd.decision_comment,
            "approval_id": approval.pk if approval else None}


def _rounds(user, qs) -> list[dict]:
    rounds = list(qs.select_related("line__order", "decided_by", "approval")
                  .order_by("line_id", "number"))
    selectors.files_for(user, rounds)
    return [_round(user, r) for r in rounds]


def _approval(reader, approval: DesignApproval, *, withdrawn: int | None,
              latest_round_id: int | None, client_file_ids: set[int] | None) -> dict:
    """One approval. `withdrawn`: the prototype that invalidated it; `latest_round_id`: the
    line's latest round sent; `client_file_ids`: for a reader outside the house, the files of
    the approval they may see (None: all of them)."""
    files = approval.files
    if client_file_ids is not None:
        files = [f for f in files if f.get("id") in client_file_ids]
    return {"id": approval.pk, "round_id": approval.round_id, "line_id": approval.line_id,
            "round_number": approval.round_number,
            "approved_by": _decider_ref(reader, approval.approved_by),
            "approved_at": approval.approved_at, "on_behalf": approval.on_behalf,
            "note": approval.note,
            # the client's written approval is a house document
            "document_id": approval.document_id if reader.sees_clients else None,
            "files": files, "budget": _budget(budget.of_approval(approval)),
            "valid": withdrawn is None and latest_round_id == approval.round_id,
            "invalidated_by_prototype_id": withdrawn}


def _prototype(p: Prototype) -> dict:
    return {"id": p.pk, "piece_id": p.piece_id, "serial": p.piece.serial, "line_id": p.line_id,
            "run_id": p.run_id, "method": p.method, "fit_tested": p.fit_tested,
            "fit_ok": p.fit_ok, "fit_notes": p.fit_notes, "result": p.result,
            "reason": p.reason, "notes": p.notes, "invalidates_approval_id": p.invalidates_id,
            "recorded_by": _user_ref(p.recorded_by), "recorded_at": p.recorded_at}


def _line_or_404(user, line_id: int):
    line = selectors.line_for(user, line_id)
    if line is None:
        raise NotFound(_("No order line with id %(id)s.") % {"id": line_id})
    return line


def _round_or_404(user, round_id: int) -> DesignRound:
    rnd = selectors.round_for(user, round_id)
    if rnd is None:
        raise NotFound(_("No design round with id %(id)s.") % {"id": round_id})
    return rnd


def _round_out(user, round_id: int) -> dict:
    return _rounds(user, DesignRound.objects.visible_to(user).filter(pk=round_id))[0]


def _brief(user, line) -> dict:
    brief = selectors.brief_of(user, line)
    out = {"line_id": line.pk, "order_id": line.order_id,
           "client_intent": brief.client_intent if brief else "",
           "technical_constraints": brief.technical_constraints if brief else "",
           "aesthetic_constraints": brief.aesthetic_constraints if brief else "",
           "budget_metal_g": line.budget_metal_g, "budget_stone_count": line.budget_stone_count,
           "budget_stone_ct": line.budget_stone_ct, "prices_shown": bool(user.sees_prices),
           "updated_by": _user_ref(brief.updated_by) if brief else None,
           "updated_at": brief.updated_at if brief else None}
    if user.sees_prices:
        out |= {"target_price": line.target_price, "currency": line.order.currency}
    return out


def _staff_only(user) -> None:
    """Briefs are the house's working paper: 404 for anyone else (never say it exists)."""
    if not user.sees_clients:
        raise NotFound(_("Not found."))


# ---------------------------------------------------------------------------------------------
# briefs


@router.get("/design/lines/{line_id}/brief", response=BriefOut,
            summary="A line's design brief and material budget")
def get_brief(request, line_id: int):
    _staff_only(request.auth)
    return _brief(request.auth, _line_or_404(request.auth, line_id))


@router.put("/design/lines/{line_id}/brief", response=BriefOut,
            summary="Write a line's design brief and material budget")
def put_brief(request, line_id: int, payload: BriefIn):
    _staff_only(request.auth)
    sent = payload.model_fields_set
    services.design_brief_save(
        actor=request.auth, line_id=line_id,
        **{name: getattr(payload, name) for name in sent})
    return _brief(request.auth, _line_or_404(request.auth, line_id))


# ---------------------------------------------------------------------------------------------
# a line's design


@router.get("/design/lines/{line_id}", response=LineDesignOut,
            summary="Where a line's design stands: rounds, the limit, the approval")
def line_design(request, line_id: int):
    user = request.auth
    line = _line_or_404(user, line_id)
    # From the rounds the caller may see: a client never learns of a draft.
    visible = list(DesignRound.objects.visible_to(user).filter(line=line)
                   .select_related("approval").order_by("number"))
    state = selectors.line_state(line, visible)
    return {"line_id": line.pk, "order_id": line.order_id,
            "order_reference": line.order.reference, "description": line.description,
            "is_custom_design": line.is_custom_design, "status": state.code,
            "status_label": state.label, "rounds_sent": state.rounds_sent,
            "round_limit": state.limit, "over_limit": state.over_limit,
            "warning": state.limit_warning, "approved": state.approved,
            "approval_id": state.approval.pk if state.approved else None,
            "missing": state.missing if user.sees_clients else "",
            "rounds": _rounds(user, DesignRound.objects.visible_to(user).filter(line=line))}


@router.get("/design/lines/{line_id}/rounds", response=list[RoundOut],
            summary="A line's design rounds (a client: those sent to them)")
def line_rounds(request, line_id: int):
    line = _line_or_404(request.auth, line_id)
    return _rounds(request.auth, DesignRound.objects.visible_to(request.auth).filter(line=line))


@router.get("/design/orders/{order_id}/rounds", response=list[RoundOut],
            summary="The design rounds of every line of an order")
def order_rounds(request, order_id: int):
    user = request.auth
    if not selectors.design_lines(user).filter(order_id=order_id).exists():
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id})
    return _rounds(user, DesignRound.objects.visible_to(user).filter(line__order_id=order_id))


@router.post("/design/lines/{line_id}/rounds", response={201: RoundOut},
             summary="Start the line's next design round")
def create_round(request, line_id: int, payload: RoundIn):
    rnd = services.design_round_create(actor=request.auth, line_id=line_id,
                                       **payload.model_dump())
    return 201, _round_out(request.auth, rnd.pk)


@router.get("/design/rounds/{round_id}", response=RoundOut, summary="One design round")
def get_round(request, round_id: int):
    return _round_out(request.auth, _round_or_404(request.auth, round_id).pk)


@router.patch("/design/rounds/{round_id}", response=RoundOut,
              summary="Change a round being prepared (note, estimates)")
def update_round(request, round_id: int, payload: RoundPatch):
    services.design_round_update(actor=request.auth, round_id=round_id,
                                 **{n: getattr(payload, n) for n in payload.model_fields_set})
    return _round_out(request.auth, round_id)


@router.post("/design/rounds/{round_id}/files", response={201: RoundOut},
             summary="Attach a CAD file or a render to a round being prepared (multipart)")
def add_file(request, round_id: int, file: File[UploadedFile],
             kind: Form[Literal["cad", "render"]],
             visibility: Form[Visibility | None] = None,
             replaces_id: Form[int | None] = None):
    services.design_round_add_file(actor=request.auth, round_id=round_id, uploaded_file=file,
                                   kind=kind, visibility=visibility, replaces_id=replaces_id)
    return 201, _round_out(request.auth, round_id)


@router.delete("/design/rounds/{round_id}/files/{document_id}", response=RoundOut,
               summary="Take a file out of a round being prepared")
def remove_file(request, round_id: int, document_id: int):
    services.design_round_remove_file(actor=request.auth, round_id=round_id,
                                      document_id=document_id)
    return _round_out(request.auth, round_id)


@router.post("/design/rounds/{round_id}/send", response=RoundOut,
             summary="Send the round to the client")
def send_round(request, round_id: int):
    services.design_round_send(actor=request.auth, round_id=round_id)
    return _round_out(request.auth, round_id)


@router.post("/design/rounds/{round_id}/decision", response=RoundOut,
             summary="The client approves the round or asks for changes (or the house records "
                     "it on their behalf, an approval with document_id)")
def decide(request, round_id: int, payload: DecisionIn):
    services.design_round_decide(actor=request.auth, round_id=round_id,
                                 approve=payload.decision == "approve",
                                 comment=payload.comment, document_id=payload.document_id)
    return _round_out(request.auth, round_id)


@router.post("/design/rounds/{round_id}/written-approval", response=RoundOut,
             summary="The house records the client's approval, uploading the client's written "
                     "approval (multipart: file, note)")
def written_approval(request, round_id: int, file: File[UploadedFile],
                     note: Form[str] = ""):
    services.design_round_decide(actor=request.auth, round_id=round_id, approve=True,
                                 comment=note, uploaded_file=file)
    return _round_out(request.auth, round_id)


# ---------------------------------------------------------------------------------------------
# approvals


def _approvals(user, qs) -> list[dict]:
    """The approvals of `qs`, in a fixed number of queries."""
    approvals = list(qs.select_related("approved_by", "line").order_by("line_id",
                                                                        "round_number"))
    if not approvals:
        return []
    withdrawn: dict[int, int] = {}
    for proto_id, approval_id in (Prototype.objects.filter(invalidates__in=approvals)
                                  .values_list("pk", "invalidates_id")):
        withdrawn.setdefault(approval_id, proto_id)  # the first, as the model orders them
    latest: dict[int, int] = {}
    for line_id, round_id in (DesignRound.objects
                              .filter(line_id__in={a.line_id for a in approvals})
                              .exclude(status=RoundStatus.DRAFT)
                              .order_by("line_id", "-number").values_list("line_id", "pk")):
        latest.setdefault(line_id, round_id)
    client_file_ids = None
    if not user.sees_clients:
        ids = {f.get("id") for a in approvals for f in a.files}
        client_file_ids = set(Document.objects.visible_to(user)
                              .filter(visibility=Visibility.CLIENT, pk__in=ids)
                              .values_list("pk", flat=True))
    return [_approval(user, a, withdrawn=withdrawn.get(a.pk),
                      latest_round_id=latest.get(a.line_id), client_file_ids=client_file_ids)
            for a in approvals]


@router.get("/design/lines/{line_id}/approvals", response=list[ApprovalOut],
            summary="The approvals recorded for a line")
def line_approvals(request, line_id: int):
    line = _line_or_404(request.auth, line_id)
    return _approvals(request.auth, DesignApproval.objects.visible_to(request.auth)
                      .filter(line=line))


@router.get("/design/approvals/{approval_id}", response=ApprovalOut,
            summary="One approval: who, when, which files, the budget at that moment")
def get_approval(request, approval_id: int):
    found = _approvals(request.auth, DesignApproval.objects.visible_to(request.auth)
                       .filter(pk=approval_id))
    if not found:
        raise NotFound(_("No approval with id %(id)s.") % {"id": approval_id})
    return found[0]


# ---------------------------------------------------------------------------------------------
# prototypes


def _piece_or_404(user, piece_id: int) -> Piece:
    piece = Piece.objects.visible_to(user).filter(pk=piece_id).first()
    if piece is None or user.role == Role.CLIENT:
        raise NotFound(_("No piece with id %(id)s.") % {"id": piece_id})
    return piece


@router.get("/design/pieces/{piece_id}/prototypes", response=list[PrototypeOut],
            summary="The prototypes recorded for a piece")
def piece_prototypes(request, piece_id: int):
    piece = _piece_or_404(request.auth, piece_id)
    return [_prototype(p) for p in Prototype.objects.visible_to(request.auth)
            .filter(piece=piece).select_related("piece", "recorded_by")
            .order_by("recorded_at", "id")]


@router.post("/design/pieces/{piece_id}/prototypes", response={201: PrototypeOut},
             summary="Record the prototype of the piece's prototyping step")
def record_prototype(request, piece_id: int, payload: PrototypeIn):
    prototype = services.prototype_record(actor=request.auth, piece_id=piece_id,
                                          **payload.model_dump())
    prototype = Prototype.objects.select_related("piece", "recorded_by").get(pk=prototype.pk)
    return 201, _prototype(prototype)

