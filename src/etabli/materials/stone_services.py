"""Stones: lots received into the vault, reserved for pieces, broken or lost at a workshop.

Issuing stones to a setter and getting them back travel on the same material slips as metal
(`services.material_issue` / `material_return` / `material_slip_receive`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import NotFound, TransitionNotAllowed, ValidationFailed
from etabli.core.sequences import yearly_reference

from . import ledger
from .access import check_acts_for_workshop, check_manages_materials
from .models import (
    AllocationStatus,
    EntryKind,
    LocationKind,
    StoneAllocation,
    StoneEntry,
    StoneLot,
    StoneShape,
    StoneType,
)
from .services import (
    _int_or_none,
    _visible_lot,
    _visible_pieces,
    _visible_workshop,
    clean_carats,
    clean_count,
    clean_text,
    lot_free_in_vault,
)

LOT_TEXT_FIELDS = {"sieve": 20, "colour": 30, "clarity": 30, "certificate_lab": 20,
                   "certificate_number": 40, "origin": 80, "supplier": 120,
                   "supplier_invoice": 60}


@transaction.atomic
def stone_lot_receive(*, actor, stone_type: str, shape: str, count: Any, carats: Any,
                      size_mm: Any = None, compliance_statement: str = "",
                      price_per_ct: Any = None, **text: Any) -> StoneLot:
    """A parcel of stones enters the vault: counted, weighed, with its papers."""
    check_manages_materials(actor)
    if stone_type not in StoneType.values:
        raise ValidationFailed(_("Unknown stone type '%(value)s'.") % {"value": stone_type},
                               details={"field": "stone_type"})
    if shape not in StoneShape.values:
        raise ValidationFailed(_("Unknown shape '%(value)s'.") % {"value": shape},
                               details={"field": "shape"})
    unknown = set(text) - set(LOT_TEXT_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown field '%(field)s'.") % {"field": sorted(unknown)[0]},
                               details={"field": sorted(unknown)[0]})
    values = {name: clean_text(text.get(name), name, limit)
              for name, limit in LOT_TEXT_FIELDS.items()}
    count_n = clean_count(count, "count")
    carats_d = clean_carats(carats, "carats")
    size = None
    if size_mm not in (None, ""):
        size = _positive_decimal(size_mm, "size_mm", Decimal("100"), Decimal("0.01"))
    if size is None and not values["sieve"]:
        raise ValidationFailed(_("Give the stones' size in millimetres or their sieve size."),
                               details={"field": "size_mm"})
    compliance = clean_text(compliance_statement, "compliance_statement")
    if stone_type == StoneType.DIAMOND and not compliance:
        raise ValidationFailed(
            _("Diamonds come with the supplier's Kimberley Process / System of Warranties "
              "statement: copy it from the invoice."),
            details={"field": "compliance_statement"})
    if bool(values["certificate_lab"]) != bool(values["certificate_number"]):
        raise ValidationFailed(_("A certificate has both a laboratory and a number."),
                               details={"field": "certificate_number"})
    price = None
    if price_per_ct not in (None, ""):
        price = _positive_decimal(price_per_ct, "price_per_ct", Decimal("10000000"),
                                  Decimal("0.01"))
    lot = StoneLot.objects.create(
        number=yearly_reference("LOT"), stone_type=stone_type, shape=shape, size_mm=size,
        count_received=count_n, carats_received=carats_d, compliance_statement=compliance,
        price_per_ct=price, received_at=timezone.now(), created_by=actor, **values)
    ledger.post_stones(kind=EntryKind.PURCHASE, lot=lot, count=count_n, carats=carats_d,
                       source=ledger.location(LocationKind.SUPPLIER),
                       destination=ledger.location(LocationKind.VAULT), actor=actor)
    audit.record(actor=actor, action="stone_lot.receive", obj=lot,
                 after={"number": lot.number, "stone_type": stone_type, "count": count_n,
                        "carats": carats_d})
    return lot


def _positive_decimal(value: Any, field: str, maximum: Decimal, step: Decimal) -> Decimal:
    from decimal import InvalidOperation

    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a number.") % {"value": value},
                               details={"field": field}) from exc
    if not number.is_finite() or number <= 0 or number > maximum:
        raise ValidationFailed(_("%(field)s must be more than 0 and at most %(max)s.")
                               % {"field": field, "max": maximum}, details={"field": field})
    return number.quantize(step)


@transaction.atomic
def stone_allocate(*, actor, piece_id: Any, lot_id: Any, count: Any, carats: Any
                   ) -> StoneAllocation:
    """Reserve stones of a lot in the vault for a piece."""
    check_manages_materials(actor)
    piece = _visible_pieces(actor, [piece_id])[0]
    lot = _visible_lot(actor, lot_id, "lot_id")
    StoneLot.objects.select_for_update().filter(pk=lot.pk).first()  # one allocation at a time
    count_n = clean_count(count, "count")
    carats_d = clean_carats(carats, "carats")
    if piece.status == "delivered":
        raise TransitionNotAllowed(_("Piece %(serial)s has been delivered.")
                                   % {"serial": piece.serial})
    free_count, free_ct = lot_free_in_vault(lot)
    if count_n > free_count or carats_d > free_ct:
        from etabli.core.errors import Conflict

        raise Conflict(
            _("Lot %(lot)s has %(count)s stones (%(carats)s ct) free in the vault; "
              "%(asked)s stones (%(asked_ct)s ct) were asked.")
            % {"lot": lot.number, "count": max(free_count, 0), "carats": max(free_ct, 0),
               "asked": count_n, "asked_ct": carats_d},
            code="insufficient_stones",
            details={"field": "count", "free_count": free_count, "free_ct": str(free_ct)})
    alloc = StoneAllocation.objects.create(piece=piece, lot=lot, count=count_n, carats=carats_d,
                                           created_by=actor)
    audit.record(actor=actor, action="stone.allocate", obj=alloc,
                 after={"lot": lot.number, "count": count_n, "carats": carats_d},
                 order_id=piece.order_id, piece_id=piece.pk)
    return alloc


@transaction.atomic
def stone_allocation_release(*, actor, allocation_id: Any) -> StoneAllocation:
    """Give reserved stones back to the lot (before they are issued)."""
    check_manages_materials(actor)
    alloc = (StoneAllocation.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=_int_or_none(allocation_id)).first())
    if alloc is None:
        raise NotFound(_("No stone allocation with id %(id)s.") % {"id": allocation_id})
    if alloc.status != AllocationStatus.RESERVED:
        raise TransitionNotAllowed(
            _("Only reserved stones can be released; these are %(status)s.")
            % {"status": AllocationStatus(alloc.status).label.lower()})
    alloc.status = AllocationStatus.RELEASED
    alloc.save(update_fields=["status"])
    audit.record(actor=actor, action="stone.release", obj=alloc,
                 after={"status": alloc.status}, piece_id=alloc.piece_id)
    return alloc


@transaction.atomic
def stone_breakage_record(*, actor, workshop_id: Any, lot_id: Any, count: Any, carats: Any,
                          reason: str, piece_id: Any = None, lost: bool = False) -> StoneEntry:
    """Stones broken (or lost) at a workshop: they leave its balance with the reason."""
    workshop = _visible_workshop(actor, workshop_id)
    check_acts_for_workshop(actor, workshop)
    lot = _visible_lot(actor, lot_id, "lot_id")
    reason = clean_text(reason, "reason", 240)
    if not reason:
        raise ValidationFailed(_("Say how the stones were broken or lost."),
                               details={"field": "reason"})
    piece = None
    if piece_id not in (None, ""):
        from etabli.production.models import Piece

        piece = _visible_pieces(actor, [piece_id],
                                also=Piece.objects.filter(material_slips__workshop=workshop))[0]
    entry = ledger.post_stones(
        kind=EntryKind.LOST if lost else EntryKind.BREAKAGE, lot=lot,
        count=clean_count(count, "count"), carats=clean_carats(carats, "carats"),
        source=ledger.workshop_location(workshop),
        destination=ledger.location(LocationKind.LOSS if lost else LocationKind.BROKEN),
        actor=actor, piece=piece, workshop=workshop, reason=reason)
    audit.record(actor=actor, action="stone.lost" if lost else "stone.breakage", obj=entry,
                 after={"lot": lot.number, "count": entry.count, "carats": entry.carats,
                        "workshop": workshop.pk, "reason": reason},
                 order_id=piece.order_id if piece else None,
                 piece_id=piece.pk if piece else None)
    return entry
