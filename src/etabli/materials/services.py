"""Every change to precious materials: prices, purchases, slips, settlements, stock-takes and
casting trees. Each service is one transaction; stones are in `stone_services`.

A job at a workshop is an *issue slip* (metal, pieces and stones sent out) answered by *return
slips* (pieces, scrap and unused stones sent back). Material on a slip is *in transit* until
the other side weighs what it received; a difference beyond the tolerance flags the slip.
Settling the issue books what the workshop still holds for the job as its loss, measured
against the allowance for the workshop and operation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q as models_q
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from etabli.core import audit
from etabli.core.errors import Conflict, NotFound, TransitionNotAllowed, ValidationFailed
from etabli.core.sequences import yearly_reference
from etabli.workshops.models import Workshop

from . import ledger
from .access import (
    HOUSE_RECEIVING_ROLES,
    check_acts_for_workshop,
    check_manages_materials,
    check_sets_prices,
)
from .models import (
    METAL_LINE_KINDS,
    SCRAP_LINE_KINDS,
    AllocationStatus,
    Alloy,
    CastingStatus,
    CastingTree,
    EntryKind,
    LineKind,
    Location,
    LocationKind,
    LossAllowance,
    MaterialSlip,
    MaterialSlipLine,
    Metal,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    SlipKind,
    SlipStatus,
    StockTake,
    StockTakeStatus,
    StoneAllocation,
    StoneLot,
)

MG = Decimal("0.001")
MAX_METAL_G = Decimal("50000")  # one line of a slip: 50 kg is already a very large vault
MAX_PIECE_G = Decimal("5000")
MAX_CARATS = Decimal("10000")
MAX_STONES = 100000
MAX_LINES = 200
MAX_PRICE_PER_G = Decimal("100000")


# ---------------------------------------------------------------------------------------------
# input


def q3(value: Any) -> Decimal:
    """A sum from the database, to the milligram (SQLite adds decimals as floats)."""
    return Decimal(str(value or 0)).quantize(MG)


def clean_grams(value: Any, field: str, *, maximum: Decimal = MAX_METAL_G,
                allow_zero: bool = False) -> Decimal:
    """A weight in grams to the milligram, more than 0 (or 0 when allowed) and plausible."""
    if value is None or value == "":
        raise ValidationFailed(_("Give a weight in grams."), details={"field": field})
    if isinstance(value, bool):
        raise ValidationFailed(_("'%(value)s' is not a weight in grams.") % {"value": value},
                               details={"field": field})
    try:
        weight = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a weight in grams.") % {"value": value},
                               details={"field": field}) from exc
    if not weight.is_finite():
        raise ValidationFailed(_("'%(value)s' is not a weight in grams.") % {"value": value},
                               details={"field": field})
    if weight < 0 or (weight == 0 and not allow_zero):
        raise ValidationFailed(_("A weight must be more than 0 g."), details={"field": field})
    if weight > maximum:
        raise ValidationFailed(_("%(weight)s g is more than the %(limit)s g one line may carry.")
                               % {"weight": weight, "limit": maximum}, details={"field": field})
    if weight != weight.quantize(MG):
        raise ValidationFailed(_("Weights are recorded to the milligram (3 decimals)."),
                               details={"field": field})
    return weight.quantize(MG)


def clean_carats(value: Any, field: str) -> Decimal:
    if value is None or value == "" or isinstance(value, bool):
        raise ValidationFailed(_("Give a weight in carats."), details={"field": field})
    try:
        carats = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a weight in carats.") % {"value": value},
                               details={"field": field}) from exc
    if not carats.is_finite() or carats <= 0:
        raise ValidationFailed(_("A weight in carats must be more than 0 ct."),
                               details={"field": field})
    if carats > MAX_CARATS:
        raise ValidationFailed(_("%(carats)s ct is not a plausible weight for stones.")
                               % {"carats": carats}, details={"field": field})
    if carats != carats.quantize(MG):
        raise ValidationFailed(_("Carats are weighed to the thousandth (3 decimals)."),
                               details={"field": field})
    return carats.quantize(MG)


def clean_count(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise ValidationFailed(_("'%(value)s' is not a number of stones.") % {"value": value},
                               details={"field": field})
    try:
        count = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a number of stones.") % {"value": value},
                               details={"field": field}) from exc
    if count <= 0 or count > MAX_STONES:
        raise ValidationFailed(_("A number of stones is between 1 and %(max)s.")
                               % {"max": MAX_STONES}, details={"field": field})
    return count


def clean_text(value: Any, field: str, limit: int = 2000) -> str:
    value = ("" if value is None else str(value)).strip()
    if len(value) > limit:
        raise ValidationFailed(_("%(field)s is too long (at most %(limit)s characters).")
                               % {"field": field, "limit": limit}, details={"field": field})
    return value


def clean_client_ref(value: Any) -> str | None:
    if value is None or value == "":
        return None
    value = str(value).strip()
    if not value or len(value) > 64:
        raise ValidationFailed(_("client_ref must be 1 to 64 characters."),
                               details={"field": "client_ref"})
    return value


def get_alloy(code: Any, field: str = "alloy") -> Alloy:
    alloy = Alloy.objects.filter(code=str(code or "")).first() if code else None
    if alloy is None:
        raise ValidationFailed(_("Unknown alloy '%(code)s'.") % {"code": code or ""},
                               details={"field": field})
    return alloy


def _visible_workshop(actor, workshop_id: Any) -> Workshop:
    pk = _int_or_none(workshop_id)
    workshop = Workshop.objects.visible_to(actor).filter(pk=pk).first() if pk else None
    if workshop is None:
        raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id})
    return workshop


def _tolerance_g() -> Decimal:
    return Decimal(str(settings.ETABLI_WEIGHT_TOLERANCE_G))


def _existing_slip(client_ref: str | None, kind: str, actor=None) -> MaterialSlip | None:
    if client_ref is None:
        return None
    slip = MaterialSlip.objects.filter(client_ref=client_ref).first()
    # Someone else's slip is never handed back on a repeat: it may be another workshop's.
    if slip is not None and (slip.kind != kind or (
            actor is not None
            and not MaterialSlip.objects.visible_to(actor).filter(pk=slip.pk).exists())):
        raise Conflict(_("This client_ref was already used for a different slip."),
                       details={"field": "client_ref"})
    return slip


# ---------------------------------------------------------------------------------------------
# alloys and prices


ALLOY_FIELDS = ["name", "colour", "density_g_cm3"]


@transaction.atomic
def alloy_update(*, actor, code: str, name: str | None = None, colour: str | None = None,
                 density_g_cm3: Any = None) -> Alloy:
    """Edit an alloy's name, colour or density (fineness and metal are what it *is*)."""
    check_manages_materials(actor)
    alloy = Alloy.objects.select_for_update().filter(code=code).first()
    if alloy is None:
        raise NotFound(_("Unknown alloy '%(code)s'.") % {"code": code})
    before = audit.snapshot(alloy, ALLOY_FIELDS)
    if name is not None:
        alloy.name = clean_text(name, "name", 80) or alloy.name
    if colour is not None:
        alloy.colour = clean_text(colour, "colour", 30)
    if density_g_cm3 is not None:
        alloy.density_g_cm3 = _clean_density(density_g_cm3)
    alloy.save()
    audit.record(actor=actor, action="alloy.update", obj=alloy, before=before,
                 after=audit.snapshot(alloy, ALLOY_FIELDS))
    return alloy


def _clean_density(value: Any) -> Decimal:
    try:
        density = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a density in g/cm³.") % {"value": value},
                               details={"field": "density_g_cm3"}) from exc
    if not density.is_finite() or not Decimal("1") <= density <= Decimal("25"):
        raise ValidationFailed(_("A metal's density is between 1 and 25 g/cm³."),
                               details={"field": "density_g_cm3"})
    return density.quantize(Decimal("0.01"))


@transaction.atomic
def alloy_create(*, actor, code: str, name: str, metal: str, fineness_permille: Any,
                 colour: str = "", density_g_cm3: Any) -> Alloy:
    check_manages_materials(actor)
    code = clean_text(code, "code", 20).lower()
    if not code or not code.replace("-", "").replace("_", "").isalnum():
        raise ValidationFailed(_("An alloy code is letters, digits, '-' or '_'."),
                               details={"field": "code"})
    if Alloy.objects.filter(code=code).exists():
        raise Conflict(_("There is already an alloy '%(code)s'.") % {"code": code},
                       details={"field": "code"})
    if metal not in Metal.values:
        raise ValidationFailed(_("Unknown metal '%(metal)s'.") % {"metal": metal},
                               details={"field": "metal"})
    try:
        fineness = int(fineness_permille)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(_("Fineness is in parts per thousand (1 to 1000)."),
                               details={"field": "fineness_permille"}) from exc
    if not 1 <= fineness <= 1000:
        raise ValidationFailed(_("Fineness is in parts per thousand (1 to 1000)."),
                               details={"field": "fineness_permille"})
    alloy = Alloy.objects.create(code=code, name=clean_text(name, "name", 80) or code,
                                 metal=metal, fineness_permille=fineness,
                                 colour=clean_text(colour, "colour", 30),
                                 density_g_cm3=_clean_density(density_g_cm3))
    audit.record(actor=actor, action="alloy.create", obj=alloy,
                 after=audit.snapshot(alloy, ["code", "metal", "fineness_permille"]
                                      + ALLOY_FIELDS))
    return alloy


def _clean_price(value: Any, field: str = "price_per_fine_g") -> Decimal:
    try:
        price = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError, AttributeError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a price.") % {"value": value},
                               details={"field": field}) from exc
    if not price.is_finite() or price <= 0 or price > MAX_PRICE_PER_G:
        raise ValidationFailed(_("A price per fine gram is more than 0 and at most %(max)s.")
                               % {"max": MAX_PRICE_PER_G}, details={"field": field})
    return price.quantize(Decimal("0.0001"))


def _clean_currency(value: Any) -> str:
    currency = (str(value or "").strip() or settings.ETABLI_DEFAULT_CURRENCY).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationFailed(_("A currency is a three-letter code such as EUR."),
                               details={"field": "currency"})
    return currency


def _clean_date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a date (YYYY-MM-DD).") % {"value": value},
                               details={"field": field}) from exc


def _set_price(actor, metal: str, priced_on: dt.date, price: Decimal, currency: str,
               source: str) -> MetalPrice:
    if metal not in Metal.values:
        raise ValidationFailed(_("Unknown metal '%(metal)s'.") % {"metal": metal},
                               details={"field": "metal"})
    if priced_on > timezone.localdate() + dt.timedelta(days=1):
        raise ValidationFailed(_("A price cannot be dated in the future."),
                               details={"field": "priced_on"})
    row, _created = MetalPrice.objects.update_or_create(
        metal=metal, priced_on=priced_on, currency=currency,
        defaults={"price_per_fine_g": price, "source": source, "entered_by": actor})
    return row


@transaction.atomic
def metal_price_set(*, actor, metal: str, priced_on: Any, price_per_fine_g: Any,
                    currency: str | None = None, source: str = "") -> MetalPrice:
    """Enter (or correct) the price of a fine gram of a metal on a date."""
    check_sets_prices(actor)
    row = _set_price(actor, metal, _clean_date(priced_on, "priced_on"),
                     _clean_price(price_per_fine_g), _clean_currency(currency),
                     clean_text(source, "source", 80))
    audit.record(actor=actor, action="metal_price.set", obj=row,
                 after={"metal": metal, "priced_on": row.priced_on,
                        "price_per_fine_g": row.price_per_fine_g, "currency": row.currency})
    return row


PRICE_CSV_COLUMNS = ("date", "metal", "price_per_fine_g")
MAX_PRICE_ROWS = 20000


@transaction.atomic
def metal_prices_import(*, actor, text: str, source: str = "CSV import") -> int:
    """Import a price history from CSV (columns date, metal, price_per_fine_g and optionally
    currency), all rows or none. Returns the number of prices written."""
    check_sets_prices(actor)
    if not text or not text.strip():
        raise ValidationFailed(_("The CSV file is empty."), details={"field": "file"})
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in PRICE_CSV_COLUMNS if c not in header]
    if missing:
        raise ValidationFailed(
            _("The CSV file needs the columns %(columns)s; missing: %(missing)s.")
            % {"columns": ", ".join(PRICE_CSV_COLUMNS), "missing": ", ".join(missing)},
            details={"field": "file"})
    source = clean_text(source, "source", 80)
    written = 0
    for raw in reader:
        number = reader.line_num  # the file's line, blank lines included, for the message
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
               if k is not None}
        if not any(row.values()):
            continue
        if written >= MAX_PRICE_ROWS:
            raise ValidationFailed(_("At most %(max)s prices per import.")
                                   % {"max": MAX_PRICE_ROWS}, details={"field": "file"})
        try:
            _set_price(actor, row["metal"].lower(), _clean_date(row["date"], "date"),
                       _clean_price(row["price_per_fine_g"]),
                       _clean_currency(row.get("currency")), source)
        except ValidationFailed as exc:
            raise ValidationFailed(_("Line %(line)s: %(message)s")
                                   % {"line": number, "message": exc.message},
                                   details={"field": "file", "line": number}) from exc
        written += 1
    if written == 0:
        raise ValidationFailed(_("The CSV file has no prices."), details={"field": "file"})
    audit.record(actor=actor, action="metal_price.import", obj=MetalPrice.objects.first(),
                 after={"rows": written, "source": source})
    return written


# ---------------------------------------------------------------------------------------------
# purchases and allowances


@transaction.atomic
def metal_purchase(*, actor, alloy: str, weight_g: Any, supplier: str = "",
                   reference: str = "") -> MetalEntry:
    """Metal bought (or brought in) into the vault."""
    check_manages_materials(actor)
    alloy_obj = get_alloy(alloy)
    weight = clean_grams(weight_g, "weight_g")
    comment = " · ".join(p for p in (clean_text(supplier, "supplier", 100),
                                     clean_text(reference, "reference", 100)) if p)
    entry = ledger.post_metal(kind=EntryKind.PURCHASE, alloy=alloy_obj, alloy_g=weight,
                              source=ledger.location(LocationKind.SUPPLIER),
                              destination=ledger.location(LocationKind.VAULT), actor=actor,
                              comment=comment)
    audit.record(actor=actor, action="metal.purchase", obj=entry,
                 after={"alloy": alloy_obj.code, "weight_g": weight, "comment": comment})
    return entry


@transaction.atomic
def loss_allowance_set(*, actor, operation: str, percent: Any,
                       workshop_id: int | None = None) -> LossAllowance:
    """Set the loss allowed on an operation, for one workshop or as the house default."""
    check_manages_materials(actor)
    from etabli.workshops.models import Operation

    if not Operation.objects.filter(code=operation).exists():
        raise ValidationFailed(_("Unknown operation '%(code)s'.") % {"code": operation},
                               details={"field": "operation"})
    try:
        pct = Decimal(str(percent))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("'%(value)s' is not a percentage.") % {"value": percent},
                               details={"field": "percent"}) from exc
    if not pct.is_finite() or not 0 <= pct <= 100:
        raise ValidationFailed(_("An allowance is between 0 and 100 %."),
                               details={"field": "percent"})
    workshop = _visible_workshop(actor, workshop_id) if workshop_id is not None else None
    row, _created = LossAllowance.objects.update_or_create(
        workshop=workshop, operation=operation, defaults={"percent": pct.quantize(Decimal("0.01"))})
    audit.record(actor=actor, action="loss_allowance.set", obj=row,
                 after={"workshop": workshop.pk if workshop else None, "operation": operation,
                        "percent": row.percent})
    return row


def allowance_percent(workshop: Workshop | None, operation: str) -> Decimal | None:
    """The allowance for a workshop's operation: its own, else the house default, else None."""
    if not operation:
        return None
    from django.db.models import Q

    rows = {r.workshop_id: r.percent for r in LossAllowance.objects.filter(
        Q(workshop=workshop) | Q(workshop__isnull=True) if workshop else Q(workshop__isnull=True),
        operation=operation)}
    if workshop is not None and workshop.pk in rows:
        return rows[workshop.pk]
    return rows.get(None)


# ---------------------------------------------------------------------------------------------
# slips


def _visible_pieces(actor, piece_ids: list[Any], also=None):
    """The pieces named, each visible to the actor (or listed in `also`, the pieces of the
    issue a workshop answers, which it may name even before they reach it on the route)."""
    from etabli.production.models import Piece

    if len(piece_ids) > MAX_LINES:
        raise ValidationFailed(_("At most %(max)s pieces per slip.") % {"max": MAX_LINES},
                               details={"field": "piece_ids"})
    ids = []
    for pid in piece_ids:
        try:
            ids.append(int(pid))
        except (TypeError, ValueError) as exc:
            raise NotFound(_("No piece with id %(id)s.") % {"id": pid}) from exc
    pieces = {p.pk: p for p in Piece.objects.visible_to(actor).filter(pk__in=ids)}
    if also is not None:
        pieces.update({p.pk: p for p in also.filter(pk__in=ids)})
    for pid in ids:
        if pid not in pieces:
            raise NotFound(_("No piece with id %(id)s.") % {"id": pid})
    return [pieces[pid] for pid in dict.fromkeys(ids)]


def _new_slip(*, actor, kind: str, workshop: Workshop, source: Location, destination: Location,
              operation: str = "", issue: MaterialSlip | None = None, comment: str = "",
              client_ref: str | None = None, casting_tree: CastingTree | None = None,
              closes_issue: bool = False) -> MaterialSlip:
    prefix = {SlipKind.ISSUE: "MI", SlipKind.RETURN: "MR", SlipKind.REFINER: "MF"}[kind]
    try:
        with transaction.atomic():
            return _create_slip(prefix, actor=actor, kind=kind, workshop=workshop,
                                source=source, destination=destination, operation=operation,
                                issue=issue, comment=comment, client_ref=client_ref,
                                casting_tree=casting_tree, closes_issue=closes_issue)
    except IntegrityError as exc:
        # The same submission, sent twice at the same moment: the other one won.
        raise Conflict(_("This submission (client_ref %(ref)s) has just been recorded by "
                         "another request.") % {"ref": client_ref},
                       code="duplicate_submission", details={"field": "client_ref"}) from exc


def _create_slip(prefix, *, actor, kind, workshop, source, destination, operation, issue,
                 comment, client_ref, casting_tree, closes_issue) -> MaterialSlip:
    return MaterialSlip.objects.create(
        number=yearly_reference(prefix), kind=kind, workshop=workshop, from_location=source,
        to_location=destination, operation=operation, issue=issue, sent_by=actor,
        sent_at=timezone.now(), comment=comment, client_ref=client_ref,
        casting_tree=casting_tree, closes_issue=closes_issue)


def _dispatch_metal_line(slip: MaterialSlip, line: MaterialSlipLine, source: Location,
                         actor) -> None:
    ledger.post_metal(kind=EntryKind.DISPATCH, alloy=line.alloy, alloy_g=line.weight_sent_g,
                      source=source, destination=ledger.location(LocationKind.TRANSIT),
                      actor=actor, slip=slip, slip_line=line, piece=line.piece,
                      operation=slip.operation)


def _dispatch_stone_line(slip: MaterialSlip, line: MaterialSlipLine, source: Location,
                         actor) -> None:
    ledger.post_stones(kind=EntryKind.DISPATCH, lot=line.lot, count=line.stone_count,
                       carats=line.carats_sent, source=source,
                       destination=ledger.location(LocationKind.TRANSIT), actor=actor,
                       slip=slip, piece=line.piece, workshop=slip.workshop)


def _clean_operation(operation: str) -> str:
    from etabli.workshops.models import Operation

    operation = clean_text(operation, "operation", 40)
    if operation and not Operation.objects.filter(code=operation).exists():
        raise ValidationFailed(_("Unknown operation '%(code)s'.") % {"code": operation},
                               details={"field": "operation"})
    return operation


def _one_alloy(alloys: set[int]) -> None:
    if len(alloys) > 1:
        raise ValidationFailed(
            _("One slip carries one alloy, so that the job's loss is measured in it: make one "
              "slip per alloy."), details={"field": "lines"})


@transaction.atomic
def material_issue(*, actor, workshop_id: Any, operation: str = "",
                   metal: list[dict] | None = None, pieces: list[dict] | None = None,
                   stones: list[dict] | None = None, allocation_ids: list[Any] | None = None,
                   piece_ids: list[Any] | None = None, comment: str = "",
                   client_ref: Any = None, casting_tree: CastingTree | None = None
                   ) -> MaterialSlip:
    """Issue material from the house to a workshop on a numbered slip.

    `metal`: [{"alloy": code, "weight_g": g}] from the vault; `pieces`: [{"piece_id", "weight_g"}]
    pieces sent by weight (their metal leaves "in pieces"); `stones`: [{"lot_id", "count",
    "carats"}] loose stones from the vault; `allocation_ids`: stones reserved for pieces;
    `piece_ids`: the pieces the material is for.
    """
    check_manages_materials(actor)
    client_ref = clean_client_ref(client_ref)
    existing = _existing_slip(client_ref, SlipKind.ISSUE, actor)
    if existing is not None:
        return existing
    workshop = _visible_workshop(actor, workshop_id)
    if workshop.is_house:
        raise ValidationFailed(_("Material is issued to a workshop, not to the house itself."),
                               details={"field": "workshop_id"})
    if not workshop.is_active:
        raise ValidationFailed(_("%(workshop)s is not active.") % {"workshop": workshop.name},
                               details={"field": "workshop_id"})
    metal, pieces, stones = metal or [], pieces or [], stones or []
    allocation_ids = allocation_ids or []
    if len(metal) + len(pieces) + len(stones) + len(allocation_ids) > MAX_LINES:
        raise ValidationFailed(_("At most %(max)s lines per slip.") % {"max": MAX_LINES},
                               details={"field": "lines"})
    if not (metal or pieces or stones or allocation_ids):
        raise ValidationFailed(_("Say what is issued: metal, pieces or stones."),
                               details={"field": "lines"})
    vault = ledger.location(LocationKind.VAULT)
    in_pieces = ledger.location(LocationKind.IN_PIECES)
    slip = _new_slip(actor=actor, kind=SlipKind.ISSUE, workshop=workshop, source=vault,
                     destination=ledger.workshop_location(workshop),
                     operation=_clean_operation(operation), comment=clean_text(comment, "comment"),
                     client_ref=client_ref, casting_tree=casting_tree)
    alloys: set[int] = set()
    for i, item in enumerate(metal):
        alloy = get_alloy(item.get("alloy"), f"metal[{i}].alloy")
        line = slip.lines.create(kind=LineKind.METAL, alloy=alloy,
                                 weight_sent_g=clean_grams(item.get("weight_g"),
                                                           f"metal[{i}].weight_g"))
        alloys.add(alloy.pk)
        _dispatch_metal_line(slip, line, vault, actor)
    piece_objs = _visible_pieces(actor, [p.get("piece_id") for p in pieces])
    for i, (item, piece) in enumerate(zip(pieces, piece_objs, strict=True)):
        alloy = piece.line.alloy
        if alloy is None:
            raise ValidationFailed(_("Piece %(serial)s has no alloy on its order line.")
                                   % {"serial": piece.serial}, details={"field": f"pieces[{i}]"})
        gross = clean_grams(item.get("weight_g"), f"pieces[{i}].weight_g", maximum=MAX_PIECE_G)
        stones_g = _stones_weight_in(piece)
        if stones_g >= gross:
            raise ValidationFailed(
                _("Piece %(serial)s weighs %(gross)s g but holds %(stones)s g of stones.")
                % {"serial": piece.serial, "gross": gross, "stones": stones_g},
                details={"field": f"pieces[{i}].weight_g"})
        line = slip.lines.create(kind=LineKind.PIECE, alloy=alloy, piece=piece,
                                 gross_weight_g=gross, stones_weight_g=stones_g,
                                 weight_sent_g=gross - stones_g)
        alloys.add(alloy.pk)
        _dispatch_metal_line(slip, line, in_pieces, actor)
    _one_alloy(alloys)
    for i, item in enumerate(stones):
        lot = _visible_lot(actor, item.get("lot_id"), f"stones[{i}].lot_id")
        line = slip.lines.create(kind=LineKind.STONES, lot=lot,
                                 stone_count=clean_count(item.get("count"), f"stones[{i}].count"),
                                 carats_sent=clean_carats(item.get("carats"),
                                                          f"stones[{i}].carats"))
        _check_unreserved(lot, line.stone_count, line.carats_sent)
        _dispatch_stone_line(slip, line, vault, actor)
    for_pieces = {p.pk: p for p in piece_objs}
    for i, alloc_id in enumerate(dict.fromkeys(allocation_ids)):
        alloc = (StoneAllocation.objects.visible_to(actor).select_for_update(of=("self",))
                 .filter(pk=_int_or_none(alloc_id)).first())
        if alloc is None:
            raise NotFound(_("No stone allocation with id %(id)s.") % {"id": alloc_id})
        if alloc.status != AllocationStatus.RESERVED:
            raise TransitionNotAllowed(
                _("The stones reserved for %(serial)s have already been issued or released.")
                % {"serial": alloc.piece.serial}, details={"field": f"allocation_ids[{i}]"})
        line = slip.lines.create(kind=LineKind.STONES, lot=alloc.lot, piece=alloc.piece,
                                 stone_count=alloc.count, carats_sent=alloc.carats)
        alloc.status = AllocationStatus.ISSUED
        alloc.slip = slip
        alloc.save(update_fields=["status", "slip"])
        for_pieces[alloc.piece_id] = alloc.piece
        _dispatch_stone_line(slip, line, vault, actor)
    for piece in _visible_pieces(actor, piece_ids or []):
        for_pieces[piece.pk] = piece
    if for_pieces:
        slip.pieces.set(list(for_pieces.values()))
    audit.record(actor=actor, action="material_slip.issue", obj=slip,
                 after=_slip_summary(slip))
    return slip


def _int_or_none(value: Any) -> int | None:
    # int() would read True as 1 and 1.5 as 1: an id is a whole number, nothing else.
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _visible_lot(actor, lot_id: Any, field: str) -> StoneLot:
    lot = StoneLot.objects.visible_to(actor).filter(pk=_int_or_none(lot_id)).first()
    if lot is None:
        raise NotFound(_("No stone lot with id %(id)s.") % {"id": lot_id},
                       details={"field": field})
    return lot


def lot_free_in_vault(lot: StoneLot) -> tuple[int, Decimal]:
    """Stones of a lot in the vault that are not reserved for a piece."""
    held_count, held_ct = ledger.stone_balance(lot, ledger.location(LocationKind.VAULT))
    reserved = (StoneAllocation.objects.filter(lot=lot, status=AllocationStatus.RESERVED)
                .aggregate(n=Sum("count"), ct=Sum("carats")))
    return held_count - (reserved["n"] or 0), held_ct - q3(reserved["ct"])


def _check_unreserved(lot: StoneLot, count: int, carats: Decimal) -> None:
    """Loose stones issued from a lot may not dip into stones reserved for pieces."""
    StoneLot.objects.select_for_update().filter(pk=lot.pk).first()
    free_count, free_ct = lot_free_in_vault(lot)
    if count > free_count or carats > free_ct:
        raise Conflict(
            _("Lot %(lot)s has %(count)s stones (%(carats)s ct) in the vault that are not "
              "reserved for a piece.")
            % {"lot": lot.number, "count": max(free_count, 0), "carats": max(free_ct, 0)},
            code="insufficient_stones", details={"lot": lot.pk})


def _stones_weight_in(piece) -> Decimal:
    """The weight of the stones booked as set in a piece (1 ct = 0.2 g)."""
    from .models import StoneEntry

    in_pieces = ledger.location(LocationKind.IN_PIECES)
    into = q3(StoneEntry.objects.filter(piece=piece, to_location=in_pieces)
              .aggregate(ct=Sum("carats"))["ct"])
    out = q3(StoneEntry.objects.filter(piece=piece, from_location=in_pieces)
             .aggregate(ct=Sum("carats"))["ct"])
    return ((into - out) * Decimal("0.2")).quantize(MG)


@transaction.atomic
def material_return(*, actor, issue_id: Any, pieces: list[dict] | None = None,
                    scrap: list[dict] | None = None, stones: list[dict] | None = None,
                    closes_issue: bool = False, comment: str = "",
                    client_ref: Any = None) -> MaterialSlip:
    """A workshop sends back what it made and what is left of an issue.

    `pieces`: [{"piece_id", "weight_g"}] each piece weighed as it leaves (with any stones it
    holds, which are deducted); `scrap`: [{"kind": scrap|filings|sweeps|button, "weight_g"}];
    `stones`: [{"lot_id", "count", "carats", "piece_id"?}] — with a piece, stones set in it;
    without, unused stones going back to the vault. `closes_issue`: nothing more will come
    back for this issue, so receiving this slip books the loss.
    """
    client_ref = clean_client_ref(client_ref)
    existing = _existing_slip(client_ref, SlipKind.RETURN, actor)
    if existing is not None:
        return existing
    issue = (MaterialSlip.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=_int_or_none(issue_id), kind=SlipKind.ISSUE).first())
    if issue is None:
        raise NotFound(_("No issue slip with id %(id)s.") % {"id": issue_id})
    check_acts_for_workshop(actor, issue.workshop)
    if issue.status != SlipStatus.RECEIVED:
        raise TransitionNotAllowed(
            _("Slip %(slip)s has not been received by the workshop yet: nothing can be "
              "returned against it.") % {"slip": issue.number})
    if issue.settled_at is not None:
        raise TransitionNotAllowed(_("Slip %(slip)s is settled: its job is closed.")
                                   % {"slip": issue.number})
    if issue.returns.filter(closes_issue=True).exclude(status=SlipStatus.CANCELLED).exists():
        raise TransitionNotAllowed(_("The last return for slip %(slip)s has already been sent.")
                                   % {"slip": issue.number})
    pieces, scrap, stones = pieces or [], scrap or [], stones or []
    if len(pieces) + len(scrap) + len(stones) > MAX_LINES:
        raise ValidationFailed(_("At most %(max)s lines per slip.") % {"max": MAX_LINES},
                               details={"field": "lines"})
    if not (pieces or scrap or stones or closes_issue):
        raise ValidationFailed(_("Say what is returned: pieces, scrap or stones."),
                               details={"field": "lines"})
    workshop_loc = ledger.workshop_location(issue.workshop)
    slip = _new_slip(actor=actor, kind=SlipKind.RETURN, workshop=issue.workshop,
                     source=workshop_loc, destination=ledger.location(LocationKind.VAULT),
                     operation=issue.operation, issue=issue,
                     comment=clean_text(comment, "comment"), client_ref=client_ref,
                     casting_tree=issue.casting_tree, closes_issue=bool(closes_issue))
    alloy = _issue_alloy(issue)
    piece_objs = _visible_pieces(actor, [p.get("piece_id") for p in pieces],
                                 also=issue.pieces.all())
    if len({p.pk for p in piece_objs}) != len(piece_objs):
        raise ValidationFailed(_("A piece is listed twice."), details={"field": "pieces"})
    for i, (item, piece) in enumerate(zip(pieces, piece_objs, strict=True)):
        piece_alloy = piece.line.alloy or alloy
        if alloy is not None and piece_alloy.pk != alloy.pk:
            raise ValidationFailed(
                _("Piece %(serial)s is in %(alloy)s, not in the alloy of slip %(slip)s.")
                % {"serial": piece.serial, "alloy": piece_alloy.name, "slip": issue.number},
                details={"field": f"pieces[{i}].piece_id"})
        gross = clean_grams(item.get("weight_g"), f"pieces[{i}].weight_g", maximum=MAX_PIECE_G)
        stones_g = _stones_weight_in(piece) + _stones_set_on_this_slip(stones, piece.pk)
        if stones_g >= gross:
            raise ValidationFailed(
                _("Piece %(serial)s weighs %(gross)s g but holds %(stones)s g of stones.")
                % {"serial": piece.serial, "gross": gross, "stones": stones_g},
                details={"field": f"pieces[{i}].weight_g"})
        line = slip.lines.create(kind=LineKind.PIECE, alloy=piece_alloy, piece=piece,
                                 gross_weight_g=gross, stones_weight_g=stones_g,
                                 weight_sent_g=gross - stones_g)
        _dispatch_metal_line(slip, line, workshop_loc, actor)
    for i, item in enumerate(scrap):
        kind = item.get("kind") or LineKind.SCRAP
        if kind not in SCRAP_LINE_KINDS:
            raise ValidationFailed(
                _("Scrap is one of: %(kinds)s.") % {"kinds": ", ".join(SCRAP_LINE_KINDS)},
                details={"field": f"scrap[{i}].kind"})
        scrap_alloy = get_alloy(item.get("alloy"), f"scrap[{i}].alloy") \
            if item.get("alloy") else alloy
        if scrap_alloy is None:
            raise ValidationFailed(_("Say which alloy the scrap is."),
                                   details={"field": f"scrap[{i}].alloy"})
        if alloy is not None and scrap_alloy.pk != alloy.pk:
            raise ValidationFailed(_("Scrap returned on slip %(slip)s is in %(alloy)s.")
                                   % {"slip": issue.number, "alloy": alloy.name},
                                   details={"field": f"scrap[{i}].alloy"})
        line = slip.lines.create(kind=kind, alloy=scrap_alloy,
                                 weight_sent_g=clean_grams(item.get("weight_g"),
                                                           f"scrap[{i}].weight_g"))
        _dispatch_metal_line(slip, line, workshop_loc, actor)
    issue_pieces = set(issue.pieces.values_list("pk", flat=True))
    for i, item in enumerate(stones):
        lot = _visible_lot(actor, item.get("lot_id"), f"stones[{i}].lot_id")
        piece = None
        if item.get("piece_id") not in (None, ""):
            piece = _visible_pieces(actor, [item.get("piece_id")], also=issue.pieces.all())[0]
            if issue_pieces and piece.pk not in issue_pieces:
                raise ValidationFailed(_("Piece %(serial)s is not on slip %(slip)s.")
                                       % {"serial": piece.serial, "slip": issue.number},
                                       details={"field": f"stones[{i}].piece_id"})
        line = slip.lines.create(kind=LineKind.STONES_SET if piece else LineKind.STONES,
                                 lot=lot, piece=piece,
                                 stone_count=clean_count(item.get("count"), f"stones[{i}].count"),
                                 carats_sent=clean_carats(item.get("carats"),
                                                          f"stones[{i}].carats"))
        _dispatch_stone_line(slip, line, workshop_loc, actor)
    slip.pieces.set(piece_objs)
    audit.record(actor=actor, action="material_slip.return", obj=slip,
                 after=_slip_summary(slip))
    return slip


def _stones_set_on_this_slip(stones: list[dict], piece_id: int) -> Decimal:
    total = Decimal("0")
    for item in stones:
        if str(item.get("piece_id")) == str(piece_id):
            try:
                total += Decimal(str(item.get("carats")))
            except (InvalidOperation, ValueError):
                continue  # reported with its own field when the stone line is read
    return (total * Decimal("0.2")).quantize(MG) if total.is_finite() else Decimal("0")


def _issue_alloy(issue: MaterialSlip) -> Alloy | None:
    line = issue.lines.filter(alloy__isnull=False).select_related("alloy").first()
    return line.alloy if line else None


def _slip_summary(slip: MaterialSlip) -> dict:
    return {"number": slip.number, "kind": slip.kind, "workshop": slip.workshop_id,
            "status": slip.status,
            "lines": [{"kind": ln.kind, "alloy": ln.alloy_id, "piece": ln.piece_id,
                       "lot": ln.lot_id, "weight_sent_g": ln.weight_sent_g,
                       "weight_received_g": ln.weight_received_g, "count": ln.stone_count,
                       "carats": ln.carats_sent, "count_received": ln.count_received,
                       "carats_received": ln.carats_received,
                       "flagged": ln.difference_flagged}
                      for ln in slip.lines.all()]}


def _check_can_receive(actor, slip: MaterialSlip) -> None:
    """The side the slip is addressed to receives it."""
    from etabli.core.errors import PermissionDenied

    if slip.to_location.kind == LocationKind.WORKSHOP:
        check_acts_for_workshop(actor, slip.workshop)
    elif actor.role not in HOUSE_RECEIVING_ROLES:
        raise PermissionDenied(_("Slip %(slip)s is received at the house.")
                               % {"slip": slip.number})


def _destination_of(slip: MaterialSlip, line: MaterialSlipLine) -> Location:
    if slip.kind == SlipKind.RETURN:
        if line.kind == LineKind.PIECE or line.kind == LineKind.STONES_SET:
            return ledger.location(LocationKind.IN_PIECES)
        return ledger.location(LocationKind.VAULT)
    return slip.to_location


@transaction.atomic
def material_slip_receive(*, actor, slip_id: Any, lines: list[dict] | None = None,
                          comment: str = "") -> MaterialSlip:
    """The receiving side weighs and counts what arrived and confirms the slip.

    `lines`: [{"line_id", "weight_g"}] for metal lines, [{"line_id", "count", "carats"}] for
    stones; every line must be confirmed. A difference with what was sent is booked as a
    weighing difference (never silently absorbed) and flagged beyond the tolerance.
    """
    slip = (MaterialSlip.objects.visible_to(actor).select_for_update(of=("self",))
            .select_related("to_location", "workshop").filter(pk=_int_or_none(slip_id)).first())
    if slip is None:
        raise NotFound(_("No material slip with id %(id)s.") % {"id": slip_id})
    _check_can_receive(actor, slip)
    if slip.kind == SlipKind.REFINER:
        raise TransitionNotAllowed(_("A refiner slip is settled with the refiner's statement."))
    if slip.status == SlipStatus.RECEIVED:
        raise Conflict(_("Slip %(slip)s has already been received.") % {"slip": slip.number},
                       code="already_received")
    if slip.status == SlipStatus.CANCELLED:
        raise TransitionNotAllowed(_("Slip %(slip)s was cancelled.") % {"slip": slip.number})
    given: dict[int, dict] = {}
    for i, item in enumerate(lines or []):
        line_id = _int_or_none(item.get("line_id"))
        if line_id is None:
            raise ValidationFailed(_("Each confirmed line needs its line_id."),
                                   details={"field": f"lines[{i}].line_id"})
        if line_id in given:
            raise ValidationFailed(_("Line %(id)s is confirmed twice.") % {"id": line_id},
                                   details={"field": f"lines[{i}].line_id"})
        given[line_id] = item
    slip_lines = list(slip.lines.select_related("alloy", "lot", "piece"))
    unknown = set(given) - {ln.pk for ln in slip_lines}
    if unknown:
        raise ValidationFailed(_("Line %(id)s is not on slip %(slip)s.")
                               % {"id": sorted(unknown)[0], "slip": slip.number},
                               details={"field": "lines"})
    missing = [ln for ln in slip_lines if ln.pk not in given]
    if missing:
        raise ValidationFailed(
            _("Weigh and confirm every line of slip %(slip)s (%(count)s not confirmed).")
            % {"slip": slip.number, "count": len(missing)},
            details={"field": "lines", "missing": [ln.pk for ln in missing]})
    transit = ledger.location(LocationKind.TRANSIT)
    difference = ledger.location(LocationKind.DIFFERENCE)
    tolerance = _tolerance_g()
    now = timezone.now()
    flagged = False
    for ln in slip_lines:
        item = given[ln.pk]
        destination = _destination_of(slip, ln)
        if ln.kind in METAL_LINE_KINDS:
            received = clean_grams(item.get("weight_g"), f"line {ln.pk}",
                                   maximum=ln.weight_sent_g * 2 + 1, allow_zero=True)
            if ln.kind == LineKind.PIECE:
                # The piece is weighed whole; its stones are not metal.
                if received and received <= ln.stones_weight_g:
                    raise ValidationFailed(
                        _("Piece %(serial)s holds %(stones)s g of stones: it cannot weigh "
                          "%(weight)s g.") % {"serial": ln.piece.serial,
                                              "stones": ln.stones_weight_g, "weight": received},
                        details={"field": f"line {ln.pk}"})
                received = received - ln.stones_weight_g if received else received
            ln.weight_received_g = received
            diff = ln.weight_sent_g - received
            ln.difference_flagged = abs(diff) > tolerance
            _book_metal_receipt(slip, ln, received, diff, transit, destination, difference, actor,
                                now)
        else:
            count = clean_count(item.get("count"), f"line {ln.pk}.count") \
                if item.get("count") not in (0, "0") else 0
            carats = clean_carats(item.get("carats"), f"line {ln.pk}.carats") \
                if count else Decimal("0")
            if count > ln.stone_count:
                raise ValidationFailed(_("%(count)s stones received but %(sent)s were sent.")
                                       % {"count": count, "sent": ln.stone_count},
                                       details={"field": f"line {ln.pk}.count"})
            ln.count_received, ln.carats_received = count, carats
            ln.difference_flagged = (count != ln.stone_count
                                     or abs(ln.carats_sent - carats) > Decimal("0.005"))
            _book_stone_receipt(slip, ln, count, carats, transit, destination, difference,
                                actor, now)
        flagged = flagged or ln.difference_flagged
        ln.save()
    slip.status = SlipStatus.RECEIVED
    slip.received_by = actor
    slip.received_at = now
    slip.weight_flagged = flagged
    if comment:
        slip.comment = "\n".join(p for p in (slip.comment, clean_text(comment, "comment")) if p)
    slip.save()
    if slip.casting_tree_id and slip.kind == SlipKind.RETURN:
        _casting_tree_record_return(slip)
    audit.record(actor=actor, action="material_slip.receive", obj=slip,
                 after=_slip_summary(slip))
    if slip.kind == SlipKind.RETURN and slip.closes_issue:
        _settle(actor, MaterialSlip.objects.select_for_update().get(pk=slip.issue_id))
    return slip


def _book_metal_receipt(slip, ln, received, diff, transit, destination, difference, actor,
                        now) -> None:
    entry = MetalEntry.objects.filter(slip_line=ln, kind=EntryKind.DISPATCH).first()
    fine_sent = entry.fine_g
    fine_received = None
    if received:
        # Split the fine grams in transit so that each part holds no more fine metal than
        # alloy: what was sent may carry a rounding milligram more than its nominal fine
        # weight (the last grams of a place), which must not land on a 1 mg difference.
        fine_received = fine_sent if diff == 0 else min(
            fine_sent, received,
            max(ledger.units.fine_g(received, ln.alloy.fineness_permille), fine_sent - diff))
        if diff > 0:
            ledger.post_metal(kind=EntryKind.RECEIPT, alloy=ln.alloy, alloy_g=received,
                              fine_g=fine_received, source=transit, destination=destination,
                              actor=actor, at=now, slip=slip, slip_line=ln, piece=ln.piece,
                              operation=slip.operation)
        else:
            ledger.post_metal(kind=EntryKind.RECEIPT, alloy=ln.alloy, alloy_g=ln.weight_sent_g,
                              fine_g=fine_sent, source=transit, destination=destination,
                              actor=actor, at=now, slip=slip, slip_line=ln, piece=ln.piece,
                              operation=slip.operation)
    if diff > 0:
        # Less arrived than left: the rest of what is in transit is a weighing difference.
        ledger.post_metal(kind=EntryKind.DIFFERENCE, alloy=ln.alloy, alloy_g=diff,
                          fine_g=fine_sent - (fine_received or Decimal("0")), source=transit,
                          destination=difference, actor=actor, at=now, slip=slip, slip_line=ln,
                          piece=ln.piece, operation=slip.operation)
    elif diff < 0:
        # More arrived than left: the extra comes out of the differences account.
        ledger.post_metal(kind=EntryKind.DIFFERENCE, alloy=ln.alloy, alloy_g=-diff,
                          source=difference, destination=destination, actor=actor, at=now,
                          slip=slip, slip_line=ln, piece=ln.piece, operation=slip.operation)


def _book_stone_receipt(slip, ln, count, carats, transit, destination, difference, actor,
                        now) -> None:
    if carats > ln.carats_sent:
        raise ValidationFailed(
            _("%(carats)s ct received but %(sent)s ct were sent: stones do not gain weight, "
              "weigh them again.") % {"carats": carats, "sent": ln.carats_sent},
            details={"field": f"line {ln.pk}.carats"})
    if count:
        ledger.post_stones(kind=EntryKind.RECEIPT, lot=ln.lot, count=count, carats=carats,
                           source=transit, destination=destination, actor=actor, at=now,
                           slip=slip, piece=ln.piece, workshop=slip.workshop)
    missing_count, missing_ct = ln.stone_count - count, ln.carats_sent - carats
    if missing_count or missing_ct:
        ledger.post_stones(kind=EntryKind.DIFFERENCE, lot=ln.lot, count=missing_count,
                           carats=missing_ct, source=transit, destination=difference,
                           actor=actor, at=now, slip=slip, piece=ln.piece,
                           workshop=slip.workshop)
    if ln.kind == LineKind.STONES_SET and count:
        alloc = (StoneAllocation.objects.select_for_update()
                 .filter(piece=ln.piece, lot=ln.lot, status=AllocationStatus.ISSUED).first())
        if alloc is not None:
            alloc.count_set += count
            if alloc.count_set >= alloc.count:
                alloc.status = AllocationStatus.SET
            alloc.save(update_fields=["count_set", "status"])


@transaction.atomic
def material_slip_cancel(*, actor, slip_id: Any, reason: str) -> MaterialSlip:
    """Take back a slip sent by mistake, before the other side received it."""
    slip = (MaterialSlip.objects.visible_to(actor).select_for_update(of=("self",))
            .filter(pk=_int_or_none(slip_id)).first())
    if slip is None:
        raise NotFound(_("No material slip with id %(id)s.") % {"id": slip_id})
    if slip.kind == SlipKind.ISSUE:
        check_manages_materials(actor)
    else:
        check_acts_for_workshop(actor, slip.workshop)
    if slip.status != SlipStatus.SENT:
        raise TransitionNotAllowed(
            _("Slip %(slip)s has been %(status)s: only a slip still in transit can be "
              "cancelled.") % {"slip": slip.number,
                               "status": SlipStatus(slip.status).label.lower()})
    reason = clean_text(reason, "reason", 240)
    if not reason:
        raise ValidationFailed(_("Say why the slip is cancelled."), details={"field": "reason"})
    transit = ledger.location(LocationKind.TRANSIT)
    now = timezone.now()
    for entry in MetalEntry.objects.filter(slip=slip, kind=EntryKind.DISPATCH):
        ledger.post_metal(kind=EntryKind.DISPATCH, alloy=entry.alloy, alloy_g=entry.alloy_g,
                          fine_g=entry.fine_g, source=transit, destination=entry.from_location,
                          actor=actor, at=now, slip=slip, slip_line=entry.slip_line,
                          piece=entry.piece, comment=_("Cancelled: %(reason)s")
                          % {"reason": reason[:200]})
    from .models import StoneEntry

    for entry in StoneEntry.objects.filter(slip=slip, kind=EntryKind.DISPATCH):
        ledger.post_stones(kind=EntryKind.DISPATCH, lot=entry.lot, count=entry.count,
                           carats=entry.carats, source=transit, destination=entry.from_location,
                           actor=actor, at=now, slip=slip, piece=entry.piece,
                           workshop=entry.workshop, reason=reason[:240])
    StoneAllocation.objects.filter(slip=slip, status=AllocationStatus.ISSUED).update(
        status=AllocationStatus.RESERVED, slip=None)
    slip.status = SlipStatus.CANCELLED
    slip.comment = "\n".join(p for p in (slip.comment, _("Cancelled: %(reason)s")
                                         % {"reason": reason}) if p)
    slip.save(update_fields=["status", "comment"])
    audit.record(actor=actor, action="material_slip.cancel", obj=slip,
                 after={"reason": reason})
    return slip


def job_figures(issue: MaterialSlip) -> dict[str, Decimal]:
    """What a job (an issue and its returns) moved in and out of the workshop, in metal."""
    ws_loc = issue.to_location
    slips = [issue.pk, *issue.returns.exclude(status=SlipStatus.CANCELLED)
             .values_list("pk", flat=True)]
    entries = MetalEntry.objects.filter(slip_id__in=slips)
    received = entries.filter(to_location=ws_loc).aggregate(g=Sum("alloy_g"), f=Sum("fine_g"))
    sent = entries.filter(from_location=ws_loc, kind=EntryKind.DISPATCH)
    pieces = sent.filter(slip_line__kind=LineKind.PIECE).aggregate(g=Sum("alloy_g"))
    scrap = sent.exclude(slip_line__kind=LineKind.PIECE).aggregate(g=Sum("alloy_g"))
    sent_all = sent.aggregate(g=Sum("alloy_g"), f=Sum("fine_g"))
    issued_g, issued_fine_g = q3(received["g"]), q3(received["f"])
    return {
        "issued_g": issued_g,
        "issued_fine_g": issued_fine_g,
        "returned_pieces_g": q3(pieces["g"]),
        "returned_scrap_g": q3(scrap["g"]),
        "remaining_g": issued_g - q3(sent_all["g"]),
        "remaining_fine_g": issued_fine_g - q3(sent_all["f"]),
    }


def _settle(actor, issue: MaterialSlip) -> MaterialSlip:
    if issue.settled_at is not None:
        raise Conflict(_("Slip %(slip)s is already settled.") % {"slip": issue.number},
                       code="already_settled")
    if issue.status != SlipStatus.RECEIVED:
        raise TransitionNotAllowed(_("Slip %(slip)s has not been received by the workshop.")
                                   % {"slip": issue.number})
    if issue.returns.filter(status=SlipStatus.SENT).exists():
        raise TransitionNotAllowed(
            _("A return for slip %(slip)s is still in transit: receive it first.")
            % {"slip": issue.number})
    figures = job_figures(issue)
    alloy = _issue_alloy(issue)
    loss, loss_fine = figures["remaining_g"], figures["remaining_fine_g"]
    now = timezone.now()
    if alloy is not None and loss > 0:
        ledger.post_metal(kind=EntryKind.LOSS, alloy=alloy, alloy_g=loss,
                          fine_g=max(min(loss_fine, loss), Decimal("0")),
                          source=issue.to_location, destination=ledger.location(LocationKind.LOSS),
                          actor=actor, at=now, slip=issue, operation=issue.operation,
                          comment=_("Loss on slip %(slip)s") % {"slip": issue.number})
    elif alloy is not None and loss < 0:
        # The workshop returned more than it was given for this job (its own solder, or metal
        # left from another job): booked as a gain so the books still balance.
        ledger.post_metal(kind=EntryKind.LOSS, alloy=alloy, alloy_g=-loss,
                          source=ledger.location(LocationKind.LOSS), destination=issue.to_location,
                          actor=actor, at=now, slip=issue, operation=issue.operation,
                          comment=_("Gain on slip %(slip)s") % {"slip": issue.number})
    # The job is closed: stones issued for pieces are now either in their piece or not.
    for alloc in StoneAllocation.objects.select_for_update().filter(
            slip=issue, status=AllocationStatus.ISSUED):
        alloc.status = AllocationStatus.SET if alloc.count_set else AllocationStatus.RELEASED
        alloc.save(update_fields=["status"])
    pct = allowance_percent(issue.workshop, issue.operation)
    issue.settled_at = now
    issue.loss_g = loss
    issue.loss_fine_g = loss_fine
    issue.allowance_g = (figures["issued_g"] * pct / 100).quantize(MG) if pct is not None \
        else None
    issue.over_allowance = issue.allowance_g is not None and loss > issue.allowance_g
    issue.save(update_fields=["settled_at", "loss_g", "loss_fine_g", "allowance_g",
                              "over_allowance"])
    audit.record(actor=actor, action="material_slip.settle", obj=issue,
                 after={"loss_g": loss, "allowance_g": issue.allowance_g,
                        "over_allowance": issue.over_allowance})
    return issue


@transaction.atomic
def material_issue_settle(*, actor, issue_id: Any) -> MaterialSlip:
    """Close a job: what the workshop still holds of it is booked as its loss."""
    check_manages_materials(actor)
    issue = (MaterialSlip.objects.visible_to(actor).select_for_update(of=("self",))
             .filter(pk=_int_or_none(issue_id), kind=SlipKind.ISSUE).first())
    if issue is None:
        raise NotFound(_("No issue slip with id %(id)s.") % {"id": issue_id})
    return _settle(actor, issue)


# ---------------------------------------------------------------------------------------------
# stock-take


@transaction.atomic
def stock_take_create(*, actor, location_id: Any, counts: dict[str, Any],
                      counted_at: Any = None) -> StockTake:
    """Record a physical count of a location, alloy by alloy, next to the book figures."""
    check_manages_materials(actor)
    loc = Location.objects.visible_to(actor).filter(pk=_int_or_none(location_id)).first()
    if loc is None:
        raise NotFound(_("No location with id %(id)s.") % {"id": location_id})
    if not loc.is_physical or loc.kind == LocationKind.TRANSIT:
        raise ValidationFailed(_("Only a place that holds metal can be counted."),
                               details={"field": "location_id"})
    if not counts:
        raise ValidationFailed(_("Enter at least one counted weight."),
                               details={"field": "counts"})
    if len(counts) > MAX_LINES:
        raise ValidationFailed(_("Too many alloys."), details={"field": "counts"})
    take = StockTake.objects.create(number=yearly_reference("ST"), location=loc,
                                    counted_at=timezone.now(), counted_by=actor)
    book = {b.alloy_id: b.alloy_g for b in MetalBalance.objects.filter(location=loc)}
    for code, value in counts.items():
        alloy = get_alloy(code, f"counts.{code}")
        take.lines.create(alloy=alloy, book_g=book.get(alloy.pk, Decimal("0")),
                          counted_g=clean_grams(value, f"counts.{code}", allow_zero=True))
    audit.record(actor=actor, action="stock_take.create", obj=take,
                 after={"location": loc.pk, "counts": {k: str(v) for k, v in counts.items()}})
    return take


@transaction.atomic
def stock_take_post(*, actor, stock_take_id: Any, reason: str = "") -> StockTake:
    """Post the differences of a count as adjustments, with the reason given."""
    check_manages_materials(actor)
    take = (StockTake.objects.visible_to(actor).select_for_update(of=("self",))
            .filter(pk=_int_or_none(stock_take_id)).first())
    if take is None:
        raise NotFound(_("No stock-take with id %(id)s.") % {"id": stock_take_id})
    if take.status == StockTakeStatus.POSTED:
        raise Conflict(_("Stock-take %(number)s is already posted.") % {"number": take.number},
                       code="already_posted")
    reason = clean_text(reason, "reason")
    lines = list(take.lines.select_related("alloy"))
    # Locked (in the ledger's order, by id) so that the book compared with the count is still
    # the book when the adjustment is posted: two counts posted at once adjust the place once.
    book_now = {b.alloy_id: b.alloy_g for b in MetalBalance.objects.select_for_update()
                .filter(location=take.location).order_by("id")}
    for ln in lines:
        if book_now.get(ln.alloy_id, Decimal("0")) != ln.book_g:
            raise Conflict(
                _("The book for %(alloy)s has moved since the count (%(then)s g then, %(now)s g "
                  "now): count again.") % {"alloy": ln.alloy.name, "then": ln.book_g,
                                           "now": book_now.get(ln.alloy_id, Decimal("0"))},
                code="book_moved")
    if any(ln.difference_g for ln in lines) and not reason:
        raise ValidationFailed(_("Say why the count differs from the book."),
                               details={"field": "reason"})
    adjustment = ledger.location(LocationKind.ADJUSTMENT)
    now = timezone.now()
    for ln in lines:
        diff = ln.difference_g
        if diff > 0:
            ledger.post_metal(kind=EntryKind.ADJUSTMENT, alloy=ln.alloy, alloy_g=diff,
                              source=adjustment, destination=take.location, actor=actor, at=now,
                              stock_take=take, comment=reason[:240])
        elif diff < 0:
            ledger.post_metal(kind=EntryKind.ADJUSTMENT, alloy=ln.alloy, alloy_g=-diff,
                              source=take.location, destination=adjustment, actor=actor, at=now,
                              stock_take=take, comment=reason[:240])
    take.status = StockTakeStatus.POSTED
    take.reason = reason
    take.posted_by = actor
    take.posted_at = now
    take.save()
    audit.record(actor=actor, action="stock_take.post", obj=take,
                 after={"reason": reason,
                        "differences": {ln.alloy.code: ln.difference_g for ln in lines}})
    return take


# ---------------------------------------------------------------------------------------------
# casting


def casting_metal_needed(*, wax_weight_g: Decimal, alloy: Alloy, wax_density: Decimal,
                         sprue_allowance_percent: Decimal) -> Decimal:
    """Metal for a tree: the wax's volume filled with metal, plus sprues and button."""
    metal = wax_weight_g * alloy.density_g_cm3 / wax_density
    return (metal * (1 + sprue_allowance_percent / 100)).quantize(MG)


@transaction.atomic
def casting_tree_create(*, actor, workshop_id: Any, alloy: str, piece_ids: list[Any],
                        wax_weight_g: Any, wax_density_g_cm3: Any = "1.0",
                        sprue_allowance_percent: Any = "30", comment: str = "") -> CastingTree:
    check_manages_materials(actor)
    workshop = _visible_workshop(actor, workshop_id)
    if workshop.is_house:
        raise ValidationFailed(_("Choose the caster."), details={"field": "workshop_id"})
    alloy_obj = get_alloy(alloy)
    if not piece_ids:
        raise ValidationFailed(_("A tree holds at least one piece."),
                               details={"field": "piece_ids"})
    pieces = _visible_pieces(actor, piece_ids)
    for piece in pieces:
        if piece.line.alloy_id and piece.line.alloy_id != alloy_obj.pk:
            raise ValidationFailed(
                _("Piece %(serial)s is ordered in %(alloy)s: a tree is cast in one alloy.")
                % {"serial": piece.serial, "alloy": piece.line.alloy.name},
                details={"field": "piece_ids"})
    wax = clean_grams(wax_weight_g, "wax_weight_g", maximum=Decimal("2000"))
    try:
        density = Decimal(str(wax_density_g_cm3))
        allowance = Decimal(str(sprue_allowance_percent))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed(_("Wax density and allowance are numbers."),
                               details={"field": "wax_density_g_cm3"}) from exc
    if not density.is_finite() or not Decimal("0.5") <= density <= Decimal("2"):
        raise ValidationFailed(_("A casting wax's density is between 0.5 and 2 g/cm³."),
                               details={"field": "wax_density_g_cm3"})
    if not allowance.is_finite() or not 0 <= allowance <= 200:
        raise ValidationFailed(_("The sprue and button allowance is between 0 and 200 %."),
                               details={"field": "sprue_allowance_percent"})
    tree = CastingTree.objects.create(
        number=yearly_reference("CT"), alloy=alloy_obj, workshop=workshop, wax_weight_g=wax,
        wax_density_g_cm3=density.quantize(MG),
        sprue_allowance_percent=allowance.quantize(Decimal("0.01")),
        metal_needed_g=casting_metal_needed(wax_weight_g=wax, alloy=alloy_obj,
                                            wax_density=density,
                                            sprue_allowance_percent=allowance),
        created_by=actor, comment=clean_text(comment, "comment"))
    tree.pieces.set(pieces)
    audit.record(actor=actor, action="casting_tree.create", obj=tree,
                 after={"alloy": alloy_obj.code, "pieces": [p.pk for p in pieces],
                        "wax_weight_g": wax, "metal_needed_g": tree.metal_needed_g})
    return tree


def _lock_tree(actor, tree_id: Any) -> CastingTree:
    tree = (CastingTree.objects.visible_to(actor).select_for_update(of=("self",))
            .filter(pk=_int_or_none(tree_id)).first())
    if tree is None:
        raise NotFound(_("No casting tree with id %(id)s.") % {"id": tree_id})
    return tree


@transaction.atomic
def casting_tree_issue(*, actor, tree_id: Any, weight_g: Any = None,
                       client_ref: Any = None) -> MaterialSlip:
    """Issue the tree's metal to the caster (the weight needed, unless another is given)."""
    check_manages_materials(actor)
    tree = _lock_tree(actor, tree_id)
    existing = _existing_slip(clean_client_ref(client_ref), SlipKind.ISSUE, actor)
    if existing is not None:
        return existing
    if tree.status != CastingStatus.PLANNED:
        raise TransitionNotAllowed(_("The metal for tree %(tree)s has already been issued.")
                                   % {"tree": tree.number})
    weight = clean_grams(weight_g, "weight_g") if weight_g not in (None, "") \
        else tree.metal_needed_g
    slip = material_issue(actor=actor, workshop_id=tree.workshop_id, operation="casting",
                          metal=[{"alloy": tree.alloy.code, "weight_g": weight}],
                          piece_ids=list(tree.pieces.values_list("pk", flat=True)),
                          comment=_("Casting tree %(tree)s") % {"tree": tree.number},
                          client_ref=client_ref, casting_tree=tree)
    tree.status = CastingStatus.ISSUED
    tree.issued_g = weight
    tree.save(update_fields=["status", "issued_g"])
    audit.record(actor=actor, action="casting_tree.issue", obj=tree,
                 after={"slip": slip.number, "weight_g": weight})
    return slip


@transaction.atomic
def casting_tree_return(*, actor, tree_id: Any, pieces: list[dict], button_g: Any = None,
                        scrap_g: Any = None, client_ref: Any = None) -> MaterialSlip:
    """The caster returns the cast pieces (each weighed), the button and sprues, and scrap.
    This is the last return of the tree's metal: receiving it books the loss."""
    tree = _lock_tree(actor, tree_id)
    check_acts_for_workshop(actor, tree.workshop)
    existing = _existing_slip(clean_client_ref(client_ref), SlipKind.RETURN, actor)
    if existing is not None:
        return existing
    if tree.status != CastingStatus.ISSUED:
        raise TransitionNotAllowed(_("Tree %(tree)s is not waiting to be cast.")
                                   % {"tree": tree.number})
    issue = tree.slips.filter(kind=SlipKind.ISSUE).exclude(status=SlipStatus.CANCELLED).first()
    if issue is None:
        raise TransitionNotAllowed(_("No metal was issued for tree %(tree)s.")
                                   % {"tree": tree.number})
    tree_pieces = set(tree.pieces.values_list("pk", flat=True))
    for i, item in enumerate(pieces or []):
        if _int_or_none(item.get("piece_id")) not in tree_pieces:
            raise ValidationFailed(_("Piece %(id)s is not on tree %(tree)s.")
                                   % {"id": item.get("piece_id"), "tree": tree.number},
                                   details={"field": f"pieces[{i}].piece_id"})
    scrap = []
    if button_g not in (None, "", 0, "0"):
        scrap.append({"kind": LineKind.BUTTON, "weight_g": button_g})
    if scrap_g not in (None, "", 0, "0"):
        scrap.append({"kind": LineKind.SCRAP, "weight_g": scrap_g})
    return material_return(actor=actor, issue_id=issue.pk, pieces=pieces, scrap=scrap,
                           closes_issue=True, client_ref=client_ref,
                           comment=_("Casting tree %(tree)s") % {"tree": tree.number})


def _casting_tree_record_return(slip: MaterialSlip) -> None:
    """Once the house has weighed a tree's return: good pieces, button, scrap and yield."""
    tree = CastingTree.objects.select_for_update().get(pk=slip.casting_tree_id)
    received = {k: Decimal("0") for k in ("piece", "button", "scrap")}
    for ln in slip.lines.all():
        if ln.weight_received_g is None:
            continue
        key = "piece" if ln.kind == LineKind.PIECE else \
            "button" if ln.kind == LineKind.BUTTON else "scrap"
        received[key] += ln.weight_received_g
    tree.good_pieces_g = (tree.good_pieces_g or 0) + received["piece"]
    tree.button_g = (tree.button_g or 0) + received["button"]
    tree.scrap_g = (tree.scrap_g or 0) + received["scrap"]
    if slip.closes_issue:
        tree.status = CastingStatus.RETURNED
    tree.save(update_fields=["good_pieces_g", "button_g", "scrap_g", "status"])


# ---------------------------------------------------------------------------------------------
# refiner


@transaction.atomic
def refiner_send(*, actor, lines: list[dict], comment: str = "",
                 client_ref: Any = None) -> MaterialSlip:
    """Send scrap, filings and sweeps from the vault to the refiner: [{"alloy", "weight_g"}]."""
    check_manages_materials(actor)
    client_ref = clean_client_ref(client_ref)
    existing = _existing_slip(client_ref, SlipKind.REFINER, actor)
    if existing is not None:
        return existing
    if not lines:
        raise ValidationFailed(_("Say what is sent to the refiner."), details={"field": "lines"})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(_("At most %(max)s lines per slip.") % {"max": MAX_LINES},
                               details={"field": "lines"})
    vault, refiner = ledger.location(LocationKind.VAULT), ledger.location(LocationKind.REFINER)
    slip = _new_slip(actor=actor, kind=SlipKind.REFINER, workshop=None, source=vault,
                     destination=refiner, comment=clean_text(comment, "comment"),
                     client_ref=client_ref)
    for i, item in enumerate(lines):
        alloy = get_alloy(item.get("alloy"), f"lines[{i}].alloy")
        line = slip.lines.create(kind=LineKind.SCRAP, alloy=alloy,
                                 weight_sent_g=clean_grams(item.get("weight_g"),
                                                           f"lines[{i}].weight_g"))
        ledger.post_metal(kind=EntryKind.DISPATCH, alloy=alloy, alloy_g=line.weight_sent_g,
                          source=vault, destination=refiner, actor=actor, slip=slip,
                          slip_line=line)
    audit.record(actor=actor, action="material_slip.refiner_send", obj=slip,
                 after=_slip_summary(slip))
    return slip


@transaction.atomic
def refiner_settle(*, actor, slip_id: Any, returned: list[dict], comment: str = ""
                   ) -> MaterialSlip:
    """Book the refiner's statement for a lot: what was sent is consumed, the fine metal it
    returns ([{"alloy", "weight_g"}], usually 999 gold or silver) enters the vault. The fine
    grams that did not come back are the refining loss."""
    check_manages_materials(actor)
    slip = (MaterialSlip.objects.visible_to(actor).select_for_update(of=("self",))
            .filter(pk=_int_or_none(slip_id), kind=SlipKind.REFINER).first())
    if slip is None:
        raise NotFound(_("No refiner slip with id %(id)s.") % {"id": slip_id})
    if slip.status != SlipStatus.SENT:
        raise Conflict(_("Slip %(slip)s is already settled.") % {"slip": slip.number},
                       code="already_settled")
    if len(returned or []) > MAX_LINES:
        raise ValidationFailed(_("At most %(max)s lines per slip.") % {"max": MAX_LINES},
                               details={"field": "returned"})
    refiner = ledger.location(LocationKind.REFINER)
    refining = ledger.location(LocationKind.REFINING)
    vault = ledger.location(LocationKind.VAULT)
    now = timezone.now()
    fine_sent = Decimal("0")
    for entry in MetalEntry.objects.filter(slip=slip, kind=EntryKind.DISPATCH):
        fine_sent += entry.fine_g
        ledger.post_metal(kind=EntryKind.REFINING, alloy=entry.alloy, alloy_g=entry.alloy_g,
                          fine_g=entry.fine_g, source=refiner, destination=refining,
                          actor=actor, at=now, slip=slip, slip_line=entry.slip_line)
    fine_back = Decimal("0")
    for i, item in enumerate(returned or []):
        alloy = get_alloy(item.get("alloy"), f"returned[{i}].alloy")
        weight = clean_grams(item.get("weight_g"), f"returned[{i}].weight_g")
        entry = ledger.post_metal(kind=EntryKind.REFINING, alloy=alloy, alloy_g=weight,
                                  source=refining, destination=vault, actor=actor, at=now,
                                  slip=slip)
        fine_back += entry.fine_g
    if fine_back > fine_sent:
        raise ValidationFailed(
            _("The refiner cannot return more fine metal (%(back)s g) than it was sent "
              "(%(sent)s g).") % {"back": fine_back, "sent": fine_sent},
            details={"field": "returned"})
    slip.status = SlipStatus.RECEIVED
    slip.received_by = actor
    slip.received_at = now
    slip.settled_at = now
    slip.loss_fine_g = fine_sent - fine_back
    if comment:
        slip.comment = "\n".join(p for p in (slip.comment, clean_text(comment, "comment")) if p)
    slip.save()
    audit.record(actor=actor, action="material_slip.refiner_settle", obj=slip,
                 after={"fine_sent_g": fine_sent, "fine_returned_g": fine_back})
    return slip


# ---------------------------------------------------------------------------------------------
# delivery


def piece_materials_deliver(*, piece, at: dt.datetime) -> None:
    """A delivered piece takes its metal and stones out of "in pieces" to the client. Called
    by the production services inside their transaction when a piece is delivered."""
    from .models import StoneEntry

    in_pieces = ledger.location(LocationKind.IN_PIECES)
    delivered = ledger.location(LocationKind.DELIVERED)
    metal: dict[int, list] = {}
    for entry in MetalEntry.objects.filter(piece=piece).filter(
            models_q(to_location=in_pieces) | models_q(from_location=in_pieces)
    ).select_related("alloy"):
        sign = 1 if entry.to_location_id == in_pieces.pk else -1
        row = metal.setdefault(entry.alloy_id, [entry.alloy, Decimal("0"), Decimal("0")])
        row[1] += sign * entry.alloy_g
        row[2] += sign * entry.fine_g
    for alloy, alloy_g, fine_g in metal.values():
        if alloy_g > 0:
            ledger.post_metal(kind=EntryKind.DELIVERY, alloy=alloy, alloy_g=alloy_g,
                              fine_g=max(min(fine_g, alloy_g), Decimal("0")), source=in_pieces,
                              destination=delivered, at=at, piece=piece)
    stones: dict[int, list] = {}
    for entry in StoneEntry.objects.filter(piece=piece).filter(
            models_q(to_location=in_pieces) | models_q(from_location=in_pieces)
    ).select_related("lot"):
        sign = 1 if entry.to_location_id == in_pieces.pk else -1
        row = stones.setdefault(entry.lot_id, [entry.lot, 0, Decimal("0")])
        row[1] += sign * entry.count
        row[2] += sign * entry.carats
    for lot, count, carats in stones.values():
        if count > 0 or carats > 0:
            ledger.post_stones(kind=EntryKind.DELIVERY, lot=lot, count=max(count, 0),
                               carats=max(carats, Decimal("0")), source=in_pieces,
                               destination=delivered, at=at, piece=piece)
