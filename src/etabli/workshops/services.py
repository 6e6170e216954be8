from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from .models import Operation, Workshop, WorkshopContact, WorkshopKind

FIELDS = ["code", "name", "kind", "capacity_benches", "address", "email", "phone", "is_active"]


def _snapshot(ws: Workshop) -> dict:
    return audit.snapshot(ws, FIELDS) | {"skills": sorted(ws.skills.values_list("code", flat=True))}


def _require_admin(actor) -> None:
    if actor is not None and not actor.runs_production:
        raise PermissionDenied(
            _("Only an administrator or production manager can manage workshops."))


def _skills(codes: list[str]) -> list[Operation]:
    ops = list(Operation.objects.filter(code__in=codes))
    missing = sorted(set(codes) - {op.code for op in ops})
    if missing:
        raise NotFound(_("Unknown operation(s): %(codes)s.") % {"codes": ", ".join(missing)},
                       details={"field": "skills"})
    return ops


@transaction.atomic
def workshop_create(*, actor, code: str, name: str, kind: str = WorkshopKind.EXTERNAL,
                    skills: list[str] | None = None, capacity_benches: int = 1,
                    address: str = "", email: str = "", phone: str = "",
                    contacts: list[dict] | None = None) -> Workshop:
    _require_admin(actor)
    code = (code or "").strip().lower()
    if not code or not name.strip():
        raise ValidationFailed(_("A workshop needs a code and a name."))
    if kind not in WorkshopKind.values:
        raise ValidationFailed(_("Unknown workshop kind '%(kind)s'.") % {"kind": kind},
                               details={"field": "kind"})
    if kind == WorkshopKind.HOUSE and Workshop.objects.filter(kind=WorkshopKind.HOUSE).exists():
        raise Conflict(_("There is already a house; add internal benches instead."))
    if capacity_benches < 1:
        raise ValidationFailed(_("Capacity must be at least one bench."),
                               details={"field": "capacity_benches"})
    if Workshop.objects.filter(code=code).exists():
        raise Conflict(_("A workshop with code '%(code)s' already exists.") % {"code": code},
                       details={"field": "code"})
    ws = Workshop.objects.create(code=code, name=name.strip(), kind=kind,
                                 capacity_benches=capacity_benches, address=address,
                                 email=email, phone=phone)
    if skills:
        ws.skills.set(_skills(skills))
    for contact in contacts or []:
        WorkshopContact.objects.create(workshop=ws, **contact)
    audit.record(actor=actor, action="workshop.create", obj=ws,
                 after=audit.snapshot(ws, FIELDS) | {"skills": sorted(skills or [])})
    return ws


@transaction.atomic
def workshop_update(*, actor, workshop: Workshop, skills: list[str] | None = None,
                    **changes) -> Workshop:
    _require_admin(actor)
    ws = Workshop.objects.select_for_update().get(pk=workshop.pk)
    before = _snapshot(ws)
    for field, value in changes.items():
        if field not in {"name", "capacity_benches", "address", "email", "phone", "is_active"}:
            raise ValidationFailed(_("'%(field)s' cannot be changed.") % {"field": field},
                                   details={"field": field})
        if value is None:
            continue
        if field == "capacity_benches" and value < 1:
            raise ValidationFailed(_("Capacity must be at least one bench."),
                                   details={"field": field})
        setattr(ws, field, value)
    ws.save()
    if skills is not None:
        ws.skills.set(_skills(skills))
    after = _snapshot(ws)
    audit.record(actor=actor, action="workshop.update", obj=ws, before=before, after=after)
    return ws
