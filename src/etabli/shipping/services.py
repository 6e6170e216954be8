"""Shipments: prepared with pieces at their delivery step, packed, shipped, delivered.

Every write is one transaction. Delivering a shipment ends the delivery step of each of its
pieces through the production services (so the tracking events, the piece's state, the metal
ledger and the order's delivery all follow as for any completed step).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import (
    Conflict,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
)
from etabli.core.sequences import yearly_reference
from etabli.orders.models import Order, OrderStatus
from etabli.production import services as production
from etabli.production.models import OPEN_STEP_STATUSES, Piece, StepRun, StepStatus
from etabli.workshops.models import StepKind

from .access import check_runs_shipments, check_sees_prices, runs_shipments
from .models import (
    INSURED_METHODS,
    SHIPMENT_TRANSITIONS,
    CaseKind,
    Protection,
    Shipment,
    ShipmentItem,
    ShipmentStatus,
    ShippingMethod,
)

SHIPMENT_FIELDS = ["status", "method", "carrier", "tracking_number", "address",
                   "declared_value", "insurance_value", "signature_required",
                   "neutral_outer_packaging", "note"]
MAX_PIECES = 200
MAX_AMOUNT = Decimal("9999999999.99")
TRACKING_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./\-]{2,59}$")
# Statuses of a delivery run whose piece may go on a shipment (at the house, not on hold).
SHIPPABLE_RUN_STATUSES = (StepStatus.READY, StepStatus.RECEIVED, StepStatus.IN_PROGRESS)


# ---------------------------------------------------------------------------------------------
# input


def clean_text(value: Any, field: str, limit: int = 4000) -> str:
    value = "" if value is None else str(value).strip()
    if len(value) > limit:
        raise ValidationFailed(
            _("%(field)s is too long (at most %(limit)s characters).")
            % {"field": field, "limit": limit}, details={"field": field})
    return value


def clean_choice(value: Any, choices, field: str) -> str:
    if value not in choices.values:
        raise ValidationFailed(
            _("Unknown %(field)s '%(value)s'. Choose one of: %(choices)s.")
            % {"field": field, "value": value, "choices": ", ".join(choices.values)},
            details={"field": field})
    return value


def clean_amount(value: Any, field: str) -> Decimal | None:
    """An amount of money: not negative, to the cent; None when not given."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationFailed(_("'%(value)s' is not an amount.") % {"value": value},
                               details={"field": field})
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not an amount.") % {"value": value},
                               details={"field": field}) from exc
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValidationFailed(_("An amount is between 0 and %(max)s.") % {"max": MAX_AMOUNT},
                               details={"field": field})
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed(_("Amounts are to the cent (2 decimals)."),
                               details={"field": field})
    return amount.quantize(Decimal("0.01"))


def clean_tracking(value: Any) -> str:
    value = " ".join(("" if value is None else str(value)).split())
    if value and not TRACKING_RE.match(value):
        raise ValidationFailed(
            _("A tracking number is 3 to 60 letters and digits (spaces, dots, slashes and "
              "dashes allowed)."), details={"field": "tracking_number"})
    return value


def _clean_ref(value: Any) -> str | None:
    if value is None or value == "":
        return None
    value = str(value).strip()
    if not value or len(value) > 64:
        raise ValidationFailed(_("client_ref must be 1 to 64 characters."),
                               details={"field": "client_ref"})
    return value


def _clean_ids(piece_ids: Any, field: str = "piece_ids") -> list[int]:
    if not isinstance(piece_ids, list | tuple) or not piece_ids:
        raise ValidationFailed(_("Choose at least one piece."), details={"field": field})
    ids = []
    for value in piece_ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
            raise ValidationFailed(_("'%(value)s' is not a piece id.") % {"value": value},
                                   details={"field": field})
        ids.append(value)
    if len(set(ids)) != len(ids):
        raise ValidationFailed(_("A piece is listed twice."), details={"field": field})
    if len(ids) > MAX_PIECES:
        raise ValidationFailed(_("At most %(n)s pieces per shipment.") % {"n": MAX_PIECES},
                               details={"field": field})
    return ids


# ---------------------------------------------------------------------------------------------
# reading what the services need


def _lock_order(actor, order_id: int) -> Order:
    order = (Order.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=order_id).first())
    if order is None:
        raise NotFound(_("No order with id %(id)s.") % {"id": order_id},
                       details={"field": "order_id"})
    return order


def lock_shipment(actor, shipment_id: int) -> Shipment:
    shipment = (Shipment.objects.visible_to(actor).select_for_update(of=("self",))
                .select_related("order").filter(pk=shipment_id).first())
    if shipment is None:
        raise NotFound(_("No shipment with id %(id)s.") % {"id": shipment_id})
    return shipment


def delivery_run(piece: Piece) -> StepRun:
    """The piece's open delivery step, if the piece may go on a shipment now; else a refusal
    that says what is missing."""
    run = (piece.runs.filter(status__in=OPEN_STEP_STATUSES).select_related("workshop")
           .first())
    if run is None:
        raise TransitionNotAllowed(_("%(serial)s has already been delivered.")
                                   % {"serial": piece.serial}, details={"piece": piece.serial})
    if run.step != StepKind.DELIVERY:
        raise TransitionNotAllowed(
            _("%(serial)s is at its %(step)s step: it can be shipped once it reaches "
              "delivery.") % {"serial": piece.serial, "step": StepKind(run.step).label.lower()},
            details={"piece": piece.serial})
    if run.status == StepStatus.ON_HOLD:
        raise TransitionNotAllowed(_("%(serial)s is on hold: release it first.")
                                   % {"serial": piece.serial}, details={"piece": piece.serial})
    if run.status not in SHIPPABLE_RUN_STATUSES or piece.location_id != run.workshop_id:
        raise TransitionNotAllowed(
            _("%(serial)s is not at %(workshop)s yet: receive it there before shipping it.")
            % {"serial": piece.serial, "workshop": run.workshop.name},
            details={"piece": piece.serial})
    return run


def _lock_pieces(actor, order: Order, piece_ids: list[int]) -> list[tuple[Piece, StepRun]]:
    # A fixed locking order keeps two shipments being prepared at once from deadlocking.
    found = {p.pk: p for p in Piece.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk__in=piece_ids).order_by("pk")}
    out = []
    for pid in sorted(piece_ids):
        piece = found.get(pid)
        if piece is None:
            raise NotFound(_("No piece with id %(id)s.") % {"id": pid},
                           details={"field": "piece_ids"})
        if piece.order_id != order.pk:
            raise ValidationFailed(_("%(serial)s is not a piece of order %(ref)s.")
                                   % {"serial": piece.serial, "ref": order.reference},
                                   details={"field": "piece_ids"})
        run = delivery_run(piece)
        other = (ShipmentItem.objects.filter(piece=piece, active=True)
                 .select_related("shipment").first())
        if other is not None:
            raise Conflict(_("%(serial)s is already on shipment %(number)s.")
                           % {"serial": piece.serial, "number": other.shipment.number},
                           details={"field": "piece_ids", "shipment": other.shipment.number})
        out.append((piece, run))
    return out


def _default_values(shipment: Shipment) -> None:
    """The declared value follows the pieces' agreed prices (a price role may change it);
    everything but a pickup is insured for that value."""
    prices = [item.piece.line.target_price for item in
              shipment.items.filter(active=True).select_related("piece__line")]
    total = None if not prices or any(p is None for p in prices) else sum(prices, Decimal(0))
    shipment.declared_value = total
    shipment.insurance_value = None if shipment.is_pickup else total


def _default_address(order: Order, method: str) -> str:
    if method == ShippingMethod.PICKUP:
        return "\n".join([settings.ETABLI_HOUSE_NAME, settings.ETABLI_HOUSE_ADDRESS]).strip()
    return order.client.address


def _move(shipment: Shipment, to: str) -> None:
    if to not in SHIPMENT_TRANSITIONS[shipment.status]:
        raise TransitionNotAllowed(_refusal(shipment, to), details={"status": shipment.status})


def _refusal(shipment: Shipment, to: str) -> str:
    n = shipment.number
    if shipment.status == ShipmentStatus.CANCELLED:
        return _("Shipment %(number)s was cancelled.") % {"number": n}
    if shipment.status == ShipmentStatus.DELIVERED:
        return _("Shipment %(number)s has already been delivered.") % {"number": n}
    if shipment.status == ShipmentStatus.SHIPPED:
        if to == ShipmentStatus.SHIPPED:
            return _("Shipment %(number)s has already been shipped.") % {"number": n}
        return _("Shipment %(number)s has left the house: only its delivery can be recorded.") \
            % {"number": n}
    return _("Shipment %(number)s cannot go from %(from)s to %(to)s.") % {
        "number": n, "from": ShipmentStatus(shipment.status).label.lower(),
        "to": ShipmentStatus(to).label.lower()}


def _require_prepared(shipment: Shipment) -> None:
    if shipment.status != ShipmentStatus.PREPARED:
        raise TransitionNotAllowed(
            _("Shipment %(number)s is %(status)s: only a prepared shipment can change.")
            % {"number": shipment.number,
               "status": ShipmentStatus(shipment.status).label.lower()},
            details={"status": shipment.status})


def _items(shipment: Shipment) -> list[ShipmentItem]:
    return list(shipment.items.filter(active=True).select_related("piece", "step_run")
                .order_by("piece_id"))


def _refresh_packed(shipment: Shipment) -> None:
    """The shipment is packed when every piece on it is: by whoever packed the last one."""
    items = _items(shipment)
    if items and all(i.is_packed for i in items):
        last = max(items, key=lambda i: (i.packed_at, i.pk))
        shipment.packed_by_id, shipment.packed_at = last.packed_by_id, last.packed_at
    else:
        shipment.packed_by, shipment.packed_at = None, None


def _audit(actor, shipment: Shipment, action: str, before: dict | None = None,
           extra: dict | None = None) -> None:
    after = audit.snapshot(shipment, SHIPMENT_FIELDS) | (extra or {})
    audit.record(actor=actor, action=action, obj=shipment, before=before, after=after,
                 order_id=shipment.order_id)


# ---------------------------------------------------------------------------------------------
# preparing


@transaction.atomic
def shipment_create(*, actor, order_id: int, piece_ids: list[int], method: str,
                    carrier: str = "", tracking_number: str = "", address: str | None = None,
                    signature_required: bool = True, neutral_outer_packaging: bool = True,
                    note: str = "", declared_value: Any = None, insurance_value: Any = None,
                    client_ref: str | None = None) -> Shipment:
    """Prepare a shipment for pieces of one order that wait at the house for delivery."""
    client_ref = _clean_ref(client_ref)
    # A replay is only for whoever may prepare shipments, and only of their own submission:
    # anyone else goes on to the same refusals as without a reference.
    if client_ref is not None and runs_shipments(actor):
        existing = Shipment.objects.filter(client_ref=client_ref).first()
        if existing is not None:
            same = (existing.created_by_id == actor.pk
                    and Shipment.objects.visible_to(actor).filter(pk=existing.pk).exists()
                    and existing.order_id == order_id
                    and set(existing.items.values_list("piece_id", flat=True))
                    == set(piece_ids or []))
            if not same:
                raise Conflict(_("This client reference was already used for another "
                                 "shipment."), details={"field": "client_ref"})
            existing.replayed = True
            return existing
    order = _lock_order(actor, order_id)
    check_runs_shipments(actor)
    if order.status != OrderStatus.LAUNCHED:
        raise TransitionNotAllowed(
            _("Order %(ref)s is %(status)s: only the pieces of an order in production are "
              "shipped.") % {"ref": order.reference,
                             "status": OrderStatus(order.status).label.lower()},
            details={"status": order.status})
    ids = _clean_ids(piece_ids)
    method = clean_choice(method, ShippingMethod, "method")
    if declared_value not in (None, ""):
        check_sees_prices(actor, "declared_value")
    if insurance_value not in (None, ""):
        check_sees_prices(actor, "insurance_value")
    declared = clean_amount(declared_value, "declared_value")
    insured = clean_amount(insurance_value, "insurance_value")
    carrier = clean_text(carrier, "carrier", 80)
    tracking = clean_tracking(tracking_number)
    note = clean_text(note, "note")
    address = clean_text(address, "address") if address is not None else None
    pieces = _lock_pieces(actor, order, ids)
    at = timezone.now()
    shipment = Shipment.objects.create(
        number=yearly_reference("SH"), order=order, method=method, carrier=carrier,
        tracking_number=tracking, currency=order.currency,
        address=address if address is not None else _default_address(order, method),
        signature_required=bool(signature_required),
        neutral_outer_packaging=bool(neutral_outer_packaging), note=note, created_by=actor,
        created_at=at, client_ref=client_ref)
    for piece, run in pieces:
        ShipmentItem.objects.create(shipment=shipment, piece=piece, step_run=run, added_at=at)
    _default_values(shipment)
    if declared is not None:
        shipment.declared_value = declared
    if insured is not None:
        shipment.insurance_value = insured
    shipment.save(update_fields=["declared_value", "insurance_value"])
    _audit(actor, shipment, "shipment.create",
           extra={"number": shipment.number, "pieces": [p.serial for p, _r in pieces]})
    shipment.replayed = False
    return shipment


UPDATABLE = {"method", "carrier", "tracking_number", "address", "signature_required",
             "neutral_outer_packaging", "note", "declared_value", "insurance_value"}


@transaction.atomic
def shipment_update(*, actor, shipment_id: int, **changes: Any) -> Shipment:
    """Change a prepared shipment (amounts: the roles that see prices only)."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationFailed(_("Unknown field '%(field)s'.") % {"field": field},
                               details={"field": field})
    shipment = lock_shipment(actor, shipment_id)
    amounts = {"declared_value", "insurance_value"} & set(changes)
    if amounts:
        check_sees_prices(actor, sorted(amounts)[0])
    if set(changes) - amounts or not changes:
        check_runs_shipments(actor)
    _require_prepared(shipment)
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    if "method" in changes:
        shipment.method = clean_choice(changes["method"], ShippingMethod, "method")
    for name, limit in (("carrier", 80), ("address", 4000), ("note", 4000)):
        if name in changes:
            setattr(shipment, name, clean_text(changes[name], name, limit))
    if "tracking_number" in changes:
        shipment.tracking_number = clean_tracking(changes["tracking_number"])
    for name in ("signature_required", "neutral_outer_packaging"):
        if name in changes and changes[name] is not None:
            setattr(shipment, name, bool(changes[name]))
    for name in ("declared_value", "insurance_value"):
        if name in changes:
            setattr(shipment, name, clean_amount(changes[name], name))
    shipment.save()
    _audit(actor, shipment, "shipment.update", before)
    return shipment


@transaction.atomic
def shipment_add_pieces(*, actor, shipment_id: int, piece_ids: list[int]) -> Shipment:
    shipment = lock_shipment(actor, shipment_id)
    check_runs_shipments(actor)
    _require_prepared(shipment)
    ids = _clean_ids(piece_ids)
    pieces = _lock_pieces(actor, shipment.order, ids)
    at = timezone.now()
    for piece, run in pieces:
        ShipmentItem.objects.create(shipment=shipment, piece=piece, step_run=run, added_at=at)
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    _default_values(shipment)
    _refresh_packed(shipment)
    shipment.save()
    _audit(actor, shipment, "shipment.add_pieces", before,
           {"pieces": [p.serial for p, _r in pieces]})
    return shipment


@transaction.atomic
def shipment_remove_piece(*, actor, shipment_id: int, piece_id: int) -> Shipment:
    shipment = lock_shipment(actor, shipment_id)
    check_runs_shipments(actor)
    _require_prepared(shipment)
    item = (shipment.items.filter(piece_id=piece_id, active=True).select_related("piece")
            .first())
    if item is None:
        raise NotFound(_("Piece %(id)s is not on shipment %(number)s.")
                       % {"id": piece_id, "number": shipment.number},
                       details={"field": "piece_id"})
    if shipment.items.filter(active=True).count() == 1:
        raise ValidationFailed(
            _("%(serial)s is the only piece of shipment %(number)s: cancel the shipment "
              "instead.") % {"serial": item.piece.serial, "number": shipment.number},
            details={"field": "piece_id"})
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    item.active = False
    item.save(update_fields=["active"])
    _default_values(shipment)
    _refresh_packed(shipment)
    shipment.save()
    _audit(actor, shipment, "shipment.remove_piece", before, {"removed": item.piece.serial})
    return shipment


@transaction.atomic
def shipment_pack(*, actor, shipment_id: int, pieces: list[dict] | None = None,
                  neutral_outer_packaging: bool | None = None) -> Shipment:
    """Record how pieces are packed (case, protection) and the outer packaging."""
    shipment = lock_shipment(actor, shipment_id)
    check_runs_shipments(actor)
    _require_prepared(shipment)
    pieces = list(pieces or [])
    if not pieces and neutral_outer_packaging is None:
        raise ValidationFailed(_("Say how the pieces are packed."),
                               details={"field": "pieces"})
    by_piece = {i.piece_id: i for i in _items(shipment)}
    seen: set[int] = set()
    at = timezone.now()
    packed = []
    for row in pieces:
        pid = row.get("piece_id") if isinstance(row, dict) else None
        item = by_piece.get(pid) if isinstance(pid, int) and not isinstance(pid, bool) else None
        if item is None:
            raise ValidationFailed(_("Piece %(id)s is not on shipment %(number)s.")
                                   % {"id": pid, "number": shipment.number},
                                   details={"field": "pieces"})
        if pid in seen:
            raise ValidationFailed(_("A piece is listed twice."), details={"field": "pieces"})
        seen.add(pid)
        item.case = clean_choice(row.get("case"), CaseKind, "case")
        item.protection = clean_choice(row.get("protection"), Protection, "protection")
        item.packed_by, item.packed_at = actor, at
        item.save(update_fields=["case", "protection", "packed_by", "packed_at"])
        packed.append(item.piece.serial)
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    if neutral_outer_packaging is not None:
        shipment.neutral_outer_packaging = bool(neutral_outer_packaging)
    _refresh_packed(shipment)
    shipment.save()
    _audit(actor, shipment, "shipment.pack", before,
           {"packed": packed, "all_packed": shipment.packed_at is not None})
    return shipment


# ---------------------------------------------------------------------------------------------
# leaving, arriving


def _check_ready_to_leave(shipment: Shipment, items: list[ShipmentItem]) -> None:
    if not items:
        raise ValidationFailed(_("Shipment %(number)s has no pieces.")
                               % {"number": shipment.number}, details={"field": "pieces"})
    unpacked = [i.piece.serial for i in items if not i.is_packed]
    if unpacked:
        raise TransitionNotAllowed(
            _("Pack every piece first (case and protection): %(serials)s.")
            % {"serials": ", ".join(unpacked)}, details={"field": "pieces"})
    if shipment.method in INSURED_METHODS and not shipment.declared_value:
        raise ValidationFailed(
            _("A %(method)s needs a declared value: sales or a production manager sets it on "
              "the shipment.") % {"method": ShippingMethod(shipment.method).label.lower()},
            details={"field": "declared_value"})
    for item in items:
        piece = Piece.objects.select_for_update(of=("self",)).get(pk=item.piece_id)
        run = delivery_run(piece)
        if run.pk != item.step_run_id:
            raise TransitionNotAllowed(
                _("%(serial)s went back to an earlier step since it was put on this shipment: "
                  "take it off the shipment.") % {"serial": piece.serial},
                details={"piece": piece.serial})


@transaction.atomic
def shipment_ship(*, actor, shipment_id: int, carrier: str | None = None,
                  tracking_number: str | None = None) -> Shipment:
    """The parcel leaves the house with its carrier and tracking number."""
    shipment = lock_shipment(actor, shipment_id)
    check_runs_shipments(actor)
    _move(shipment, ShipmentStatus.SHIPPED)
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    if carrier is not None:
        shipment.carrier = clean_text(carrier, "carrier", 80)
    if tracking_number is not None:
        shipment.tracking_number = clean_tracking(tracking_number)
    if not shipment.is_pickup:
        if not shipment.carrier:
            raise ValidationFailed(_("Name the carrier."), details={"field": "carrier"})
        if not shipment.tracking_number:
            raise ValidationFailed(_("Give the carrier's tracking number: a shipment leaves "
                                     "with one (unless the client picks it up)."),
                                   details={"field": "tracking_number"})
    _check_ready_to_leave(shipment, _items(shipment))
    shipment.status = ShipmentStatus.SHIPPED
    shipment.shipped_by, shipment.shipped_at = actor, timezone.now()
    shipment.save()
    _audit(actor, shipment, "shipment.ship", before)
    return shipment


@transaction.atomic
def shipment_deliver(*, actor, shipment_id: int, signed_by: str = "",
                     comment: str = "") -> Shipment:
    """The client has the parcel: each piece's delivery step is completed (started first if
    it was not), and the order is delivered when every piece is."""
    shipment = lock_shipment(actor, shipment_id)
    check_runs_shipments(actor)
    _move(shipment, ShipmentStatus.DELIVERED)
    if shipment.status == ShipmentStatus.PREPARED and not shipment.is_pickup:
        raise TransitionNotAllowed(
            _("Shipment %(number)s has not left yet: ship it with its tracking number first.")
            % {"number": shipment.number}, details={"status": shipment.status})
    signed_by = clean_text(signed_by, "signed_by", 120)
    comment = clean_text(comment, "comment")
    if shipment.signature_required and not signed_by:
        raise ValidationFailed(_("This shipment requires a signature: say who signed for it."),
                               details={"field": "signed_by"})
    items = _items(shipment)
    if shipment.status == ShipmentStatus.PREPARED:  # a pickup, handed over at the house
        _check_ready_to_leave(shipment, items)
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    at = timezone.now()
    shipment.status = ShipmentStatus.DELIVERED
    shipment.delivered_by, shipment.delivered_at = actor, at
    shipment.signed_by = signed_by
    if shipment.is_pickup and shipment.shipped_at is None:
        shipment.shipped_by, shipment.shipped_at = actor, at
    shipment.save()
    # The gate on the delivery step now sees a delivered shipment: the steps may end.
    text = f"Delivered with shipment {shipment.number}" + (f": {comment}" if comment else "")
    for item in items:
        piece = Piece.objects.get(pk=item.piece_id)
        run = piece.runs.filter(status__in=OPEN_STEP_STATUSES).first()
        if run is None or run.pk != item.step_run_id:
            raise TransitionNotAllowed(
                _("%(serial)s is no longer at the delivery step this shipment was prepared "
                  "for.") % {"serial": piece.serial}, details={"piece": piece.serial})
        if run.status in (StepStatus.READY, StepStatus.RECEIVED):
            production.piece_start(actor=actor, piece_id=piece.pk,
                                   comment=f"Shipment {shipment.number}")
        production.piece_complete(actor=actor, piece_id=piece.pk, comment=text)
    _audit(actor, shipment, "shipment.deliver", before, {"signed_by": signed_by})
    return shipment


@transaction.atomic
def shipment_cancel(*, actor, shipment_id: int, reason: str) -> Shipment:
    shipment = lock_shipment(actor, shipment_id)
    check_runs_shipments(actor)
    _move(shipment, ShipmentStatus.CANCELLED)
    reason = clean_text(reason, "reason")
    if not reason:
        raise ValidationFailed(_("Say why the shipment is cancelled."),
                               details={"field": "reason"})
    before = audit.snapshot(shipment, SHIPMENT_FIELDS)
    shipment.items.filter(active=True).update(active=False)
    shipment.status = ShipmentStatus.CANCELLED
    shipment.cancelled_by, shipment.cancelled_at = actor, timezone.now()
    shipment.cancel_reason = reason
    shipment.save()
    _audit(actor, shipment, "shipment.cancel", before, {"reason": reason})
    return shipment


# ---------------------------------------------------------------------------------------------
# the gate


def leave_refusal(piece: Piece, run: StepRun) -> str | None:
    """Why `piece` may not leave its delivery step `run` yet (None when it may)."""
    items = list(ShipmentItem.objects.filter(step_run=run, active=True)
                 .select_related("shipment"))
    if any(i.shipment.status == ShipmentStatus.DELIVERED for i in items):
        return None
    if items:
        shipment = items[0].shipment
        return _("%(serial)s leaves the delivery step when shipment %(number)s is delivered: "
                 "record its delivery on %(url)s.") % {
            "serial": piece.serial, "number": shipment.number,
            "url": reverse("shipping:shipment", args=[shipment.pk])}
    return _("%(serial)s leaves the delivery step with a delivered shipment: prepare one on "
             "%(url)s and record its delivery there.") % {
        "serial": piece.serial, "url": reverse("shipping:list")}
