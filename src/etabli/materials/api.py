"""Precious materials over the API: alloys and unit conversions, metal prices, the metal ledger
(locations, balances, statements, losses, purchases, entries), material slips, stock-takes,
casting trees, and stone lots, allocations and breakage.

Handlers are thin: they parse the input, call one service (or read through `visible_to()` and
the selectors) and shape the answer. Who may do what is decided by the services; prices and
values are only ever shown to roles that see prices.
"""

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from django.conf import settings
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.pagination import paginate
from pydantic import BeforeValidator, field_validator

from etabli.accounts.models import Role
from etabli.core.api import Pagination
from etabli.core.errors import NotFound, PermissionDenied, ValidationFailed
from etabli.core.schemas import WorkshopRef, request_user
from etabli.workshops.models import Workshop

from . import ledger, selectors, services, stone_services, units
from .models import (
    AllocationStatus,
    Alloy,
    CastingStatus,
    CastingTree,
    EntryKind,
    Location,
    LocationKind,
    LossAllowance,
    MaterialSlip,
    Metal,
    MetalEntry,
    MetalPrice,
    SlipKind,
    SlipStatus,
    StockTake,
    StockTakeStatus,
    StoneAllocation,
    StoneBalance,
    StoneEntry,
    StoneLot,
    StoneShape,
    StoneType,
)

router = Router(tags=["materials"])
metal_router = Router(tags=["metal"])
slips_router = Router(tags=["slips"])
stones_router = Router(tags=["stones"])

MAX_ITEMS = 200  # lines in one body: a slip carries at most 200 lines
MAX_CSV_BYTES = 2 * 1024 * 1024
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(2999, 12, 31)


# ---------------------------------------------------------------------------------------------
# helpers


ISO_DATE_START = re.compile(r"\s*\d{4}-\d{2}-\d{2}")


def _iso_text(value):
    """Dates and moments are written in ISO 8601; a bare number is not read as a timestamp."""
    if isinstance(value, int | float) or (isinstance(value, str)
                                           and not ISO_DATE_START.match(value)):
        raise ValueError("write dates as YYYY-MM-DD and moments as YYYY-MM-DDTHH:MM:SS")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_text)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_text)]


def _sees_vault(user) -> bool:
    """House staff who see every location (and so the vault)."""
    return bool(user and user.is_active and (user.is_house_wide or user.role == Role.LOGISTICS))


def _check_sees_prices(user) -> None:
    if not user.sees_prices:
        raise PermissionDenied(_("Your role does not see metal prices."))


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is not None and timezone.is_naive(moment):
        return timezone.make_aware(moment)
    return moment


def _check_date(value: dt.date | None, field: str) -> None:
    if value is not None and not EARLIEST <= value <= LATEST:
        raise ValidationFailed(_("%(field)s must be between %(start)s and %(end)s.")
                               % {"field": field, "start": EARLIEST, "end": LATEST},
                               details={"field": field})


def _period(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """A reporting period: this month so far unless given."""
    today = timezone.localdate()
    end = end or today
    start = start or end.replace(day=1)
    _check_date(start, "start")
    _check_date(end, "end")
    if start > end:
        raise ValidationFailed(_("The start of the period is after its end."),
                               details={"field": "start"})
    return start, end


def _replay(client_ref: str | None) -> bool:
    """Whether this client_ref already names a slip (the service then hands that one back)."""
    ref = (client_ref or "").strip()
    return bool(ref) and MaterialSlip.objects.filter(client_ref=ref).exists()


def _slip_response(slip: MaterialSlip, replayed: bool):
    return (200 if replayed else 201), _slip_for_detail(slip.pk)


def _decimal_text(v):
    """Decimals come as JSON numbers or strings; a boolean is not a weight."""
    if isinstance(v, bool):
        raise ValueError("a boolean is not a number")
    return v


# ---------------------------------------------------------------------------------------------
# shared output schemas


class LocationRef(Schema):
    id: int
    kind: LocationKind
    name: str
    workshop_id: int | None

    @staticmethod
    def resolve_name(obj) -> str:
        return ledger.display_name(obj)


class LocationOut(LocationRef):
    physical: bool

    @staticmethod
    def resolve_physical(obj) -> bool:
        return obj.is_physical


class AlloyRef(Schema):
    code: str
    name: str
    metal: Metal
    fineness_permille: int


class PieceRef(Schema):
    id: int
    serial: str


# ---------------------------------------------------------------------------------------------
# alloys and units


class AlloyOut(Schema):
    code: str
    name: str
    metal: str
    fineness_permille: int
    colour: str
    density_g_cm3: Decimal


class AlloyIn(Schema):
    code: str = Field(min_length=1, max_length=20, description="Letters, digits, '-' or '_'")
    name: str = Field("", max_length=80)
    metal: Metal
    fineness_permille: int = Field(ge=1, le=1000, description="Parts per thousand, e.g. 750")
    colour: str = Field("", max_length=30)
    density_g_cm3: Decimal = Field(description="g/cm³, between 1 and 25")

    _d = field_validator("density_g_cm3", mode="before")(_decimal_text)


class AlloyUpdateIn(Schema):
    name: str | None = Field(None, max_length=80)
    colour: str | None = Field(None, max_length=30)
    density_g_cm3: Decimal | None = None

    _d = field_validator("density_g_cm3", mode="before")(_decimal_text)


class ConversionOut(Schema):
    g: Decimal
    ozt: Decimal
    dwt: Decimal
    gr: Decimal
    ct: Decimal


@router.get("/alloys", response=list[AlloyOut], summary="Alloys (metal, fineness, density)")
@paginate(Pagination)
def list_alloys(request):
    return Alloy.objects.order_by("metal", "-fineness_permille", "code")


@router.post("/alloys", response={201: AlloyOut}, summary="Add an alloy")
def create_alloy(request, payload: AlloyIn):
    """Production managers and administrators."""
    return 201, services.alloy_create(actor=request.auth, **payload.dict())


@router.patch("/alloys/{code}", response=AlloyOut,
              summary="Edit an alloy's name, colour or density")
def update_alloy(request, code: str, payload: AlloyUpdateIn):
    """Metal and fineness are what an alloy *is* and cannot change. Production managers and
    administrators."""
    return services.alloy_update(actor=request.auth, code=code, **payload.dict())


class ConvertQuery(Schema):
    value: Decimal = Field(ge=0, le=10**9, description="A weight, in `unit`")
    unit: Literal["g", "ozt", "dwt", "gr", "ct"] = "g"


@router.get("/units/convert", response=ConversionOut,
            summary="A weight in grams, troy ounces, pennyweights, grains and carats")
def convert_units(request, params: Query[ConvertQuery]):
    """`value` in `unit` (g by default), converted to every unit (1 ozt = 31.1034768 g,
    1 dwt = 1.55517384 g, 1 gr = 64.79891 mg, 1 ct = 0.2 g)."""
    grams = units.from_unit(params.value, params.unit)
    return {**units.conversions(grams), "ct": units.to_unit(grams, "ct", 3)}


# ---------------------------------------------------------------------------------------------
# prices


class MetalPriceOut(Schema):
    id: int
    metal: Metal
    priced_on: dt.date
    price_per_fine_g: Decimal
    currency: str
    source: str
    entered_by: str | None
    entered_at: dt.datetime

    @staticmethod
    def resolve_entered_by(obj):
        return obj.entered_by.username if obj.entered_by_id else None


class MetalPriceIn(Schema):
    metal: Metal
    priced_on: IsoDate
    price_per_fine_g: Decimal = Field(description="Price of one fine gram")
    currency: str | None = Field(None, max_length=3, description="Default: the house currency")
    source: str = Field("", max_length=80)

    _p = field_validator("price_per_fine_g", mode="before")(_decimal_text)


class ImportOut(Schema):
    imported: int


@metal_router.get("/metal/prices", response=list[MetalPriceOut], summary="Metal price history")
@paginate(Pagination)
def list_prices(request, metal: Metal | None = None, currency: str | None = None,
                start: IsoDate | None = None, end: IsoDate | None = None):
    """Newest first. Roles that see prices only (administrators, production managers,
    sales)."""
    _check_sees_prices(request.auth)
    rows = MetalPrice.objects.select_related("entered_by")
    if metal:
        rows = rows.filter(metal=metal)
    if currency:
        rows = rows.filter(currency=currency.upper()[:3])
    _check_date(start, "start")
    _check_date(end, "end")
    if start:
        rows = rows.filter(priced_on__gte=start)
    if end:
        rows = rows.filter(priced_on__lte=end)
    return rows.order_by("-priced_on", "metal", "currency", "-id")


@metal_router.get("/metal/prices/on", response=list[MetalPriceOut],
                  summary="The price of each metal on a date")
def prices_on_date(request, date: IsoDate | None = None, metal: Metal | None = None,
                   currency: str | None = None):
    """For each metal, the latest price on or before `date` (today by default): the price a
    balance is valued at on that date."""
    _check_sees_prices(request.auth)
    _check_date(date, "date")
    prices = selectors.prices_on(date, (currency or "").upper()[:3] or None)
    return [p for m, p in prices.items() if metal is None or m == metal]


@metal_router.post("/metal/prices", response={201: MetalPriceOut},
                   summary="Enter (or correct) the price of a metal on a date")
def set_price(request, payload: MetalPriceIn):
    return 201, services.metal_price_set(actor=request.auth, **payload.dict())


@metal_router.post("/metal/prices/import", response=ImportOut,
                   summary="Import a price history from CSV (all rows or none)")
def import_prices(request, file: File[UploadedFile | None] = None,
                  text: Form[str | None] = None, source: Form[str] = "CSV import"):
    """Multipart form with a `file` (or the CSV in a `text` field): columns `date`, `metal`,
    `price_per_fine_g` and optionally `currency`, separated by commas, semicolons or tabs;
    UTF-8; at most 2 MB."""
    _check_sees_prices(request.auth)
    if file is not None:
        if file.size and file.size > MAX_CSV_BYTES:
            raise ValidationFailed(_("The CSV file is too large (at most 2 MB)."),
                                   details={"field": "file"})
        raw = file.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            raise ValidationFailed(_("The CSV file is too large (at most 2 MB)."),
                                   details={"field": "file"})
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(_("The CSV file is not UTF-8 text."),
                                   details={"field": "file"}) from exc
    if text is None:
        raise ValidationFailed(_("Send the CSV as a file (field 'file') or as text (field "
                                 "'text')."), details={"field": "file"})
    if "\x00" in text:
        raise ValidationFailed(_("The CSV file is not text."), details={"field": "file"})
    return {"imported": services.metal_prices_import(actor=request.auth, text=text,
                                                     source=source)}


# ---------------------------------------------------------------------------------------------
# locations, balances, statements, losses


class BalanceRowOut(Schema):
    location: LocationRef
    alloy: AlloyRef
    alloy_g: Decimal
    fine_g: Decimal
    alloy_ozt: Decimal
    value: Decimal | None = Field(None, description="Only for roles that see prices")
    priced_on: dt.date | None = None


class FineTotalOut(Schema):
    metal: Metal
    fine_g: Decimal
    fine_ozt: Decimal
    value: Decimal | None = None
    priced_on: dt.date | None = None


class BalancesOut(Schema):
    at: dt.datetime | None
    currency: str | None
    rows: list[BalanceRowOut]
    totals: list[FineTotalOut]


@metal_router.get("/metal/locations", response=list[LocationOut],
                  summary="Places and accounts of the ledgers")
@paginate(Pagination)
def list_locations(request, kind: LocationKind | None = None):
    """The vault, each workshop, the refiner, "in pieces", transit and the accounts (suppliers,
    losses, differences…). A workshop member sees their own workshop's location only."""
    rows = Location.objects.visible_to(request.auth)
    if kind:
        rows = rows.filter(kind=kind)
    return rows.order_by("kind", "name", "id")


@metal_router.get("/metal/balances", response=BalancesOut,
                  summary="Metal held per location and alloy, now or at any moment")
def metal_balances(request, at: IsoDateTime | None = None, location_id: int | None = None,
                   physical_only: bool = True):
    """Alloy and fine grams per location and alloy (empty balances left out), and the fine
    metal per metal. Roles that see prices also get the value at the price of that date.
    A workshop member sees their own workshop only."""
    user = request.auth
    at = _aware(at)
    if at is not None:
        _check_date(at.date(), "at")
    if location_id is not None and not Location.objects.visible_to(user).filter(
            pk=location_id).exists():
        raise NotFound(_("No location with id %(id)s.") % {"id": location_id})
    with_prices = user.sees_prices
    rows = selectors.metal_balances(user, at=at, location_id=location_id,
                                    physical_only=physical_only, with_prices=with_prices)
    out_rows = [{"location": r.location, "alloy": r.alloy, "alloy_g": r.alloy_g,
                 "fine_g": r.fine_g, "alloy_ozt": units.to_unit(r.alloy_g, "ozt", 4),
                 "value": r.value if with_prices else None,
                 "priced_on": r.price.priced_on if with_prices and r.price else None}
                for r in rows]
    prices = {r.alloy.metal: r.price for r in rows if r.price is not None}
    totals = []
    for metal, fine in sorted(selectors.fine_totals_by_metal(rows).items()):
        price = prices.get(metal) if with_prices else None
        totals.append({"metal": metal, "fine_g": fine,
                       "fine_ozt": units.to_unit(fine, "ozt", 4),
                       "value": selectors.value_of(fine, price) if price else None,
                       "priced_on": price.priced_on if price else None})
    return {"at": at, "currency": settings.ETABLI_DEFAULT_CURRENCY if with_prices else None,
            "rows": out_rows, "totals": totals}


class StatementLineOut(Schema):
    alloy: AlloyRef
    opening_g: Decimal
    issued_g: Decimal
    returned_pieces_g: Decimal
    returned_scrap_g: Decimal
    loss_g: Decimal
    other_g: Decimal
    closing_g: Decimal
    closing_fine_g: Decimal

    @field_validator("opening_g", "issued_g", "returned_pieces_g", "returned_scrap_g",
                     "loss_g", "other_g", "closing_g", "closing_fine_g")
    @classmethod
    def _grams(cls, value: Decimal) -> Decimal:
        return value.quantize(units.MG)  # to the milligram, zeros included


class JobOut(Schema):
    id: int
    number: str
    operation: str
    sent_at: dt.datetime
    settled_at: dt.datetime | None
    loss_g: Decimal | None
    loss_fine_g: Decimal | None
    allowance_g: Decimal | None
    over_allowance: bool


class SlipBrief(Schema):
    id: int
    number: str
    kind: SlipKind
    status: SlipStatus
    operation: str
    sent_at: dt.datetime


class StatementOut(Schema):
    workshop: WorkshopRef
    start: dt.date
    end: dt.date
    lines: list[StatementLineOut]
    jobs: list[JobOut]
    over_allowance: list[JobOut]
    in_transit: list[SlipBrief]


def _workshop_for_materials(user, workshop_id: int) -> Workshop:
    """A workshop whose materials the user may see: any for the house's staff who see the
    ledgers, their own for a workshop member; 404 otherwise."""
    workshop = Workshop.objects.visible_to(user).filter(pk=workshop_id).first()
    if workshop is None or not (_sees_vault(user) or (
            user.role == Role.WORKSHOP and workshop.pk in user.workshop_ids())):
        raise NotFound(_("No workshop with id %(id)s.") % {"id": workshop_id})
    return workshop


@metal_router.get("/workshops/{workshop_id}/metal-statement", response=StatementOut,
                  summary="A workshop's metal statement for a period")
def workshop_statement(request, workshop_id: int, start: IsoDate | None = None,
                       end: IsoDate | None = None):
    """Per alloy: opening balance, issued, returned in pieces, returned as scrap (filings,
    sweeps, button), loss booked and closing balance; the jobs settled in the period with
    their loss against the allowance; slips still in transit. This month by default."""
    workshop = _workshop_for_materials(request.auth, workshop_id)
    start, end = _period(start, end)
    st = selectors.workshop_statement(workshop, start, end)
    return {"workshop": workshop, "start": st.start, "end": st.end, "lines": st.lines,
            "jobs": st.jobs, "over_allowance": st.over_allowance, "in_transit": st.in_transit}


class LossOut(Schema):
    workshop: WorkshopRef
    operation: str
    jobs: int
    issued_g: Decimal
    loss_g: Decimal
    allowance_g: Decimal
    loss_percent: Decimal | None
    over_allowance_jobs: int


@metal_router.get("/metal/losses", response=list[LossOut],
                  summary="Metal losses per workshop and operation")
def metal_losses(request, start: IsoDate | None = None, end: IsoDate | None = None):
    """Jobs settled in the period (this month by default): metal issued, lost and allowed per
    workshop and operation. A workshop member sees their own."""
    start, end = _period(start, end)
    rows = selectors.losses_by_workshop(request.auth, start, end)
    workshops = Workshop.objects.in_bulk({r.workshop_id for r in rows})
    return [{"workshop": workshops[r.workshop_id], "operation": r.operation, "jobs": r.jobs,
             "issued_g": r.issued_g, "loss_g": r.loss_g, "allowance_g": r.allowance_g,
             "loss_percent": r.loss_percent, "over_allowance_jobs": r.over} for r in rows]


class LossAllowanceOut(Schema):
    id: int
    workshop: WorkshopRef | None = Field(description="None: the house default")
    operation: str
    percent: Decimal


class LossAllowanceIn(Schema):
    operation: str = Field(min_length=1, max_length=40)
    percent: Decimal = Field(description="Share of the metal issued, 0 to 100")
    workshop_id: int | None = Field(None, description="None: the house default")

    _p = field_validator("percent", mode="before")(_decimal_text)


@metal_router.get("/metal/loss-allowances", response=list[LossAllowanceOut],
                  summary="Loss allowed per workshop and operation")
@paginate(Pagination)
def list_loss_allowances(request, workshop_id: int | None = None,
                         operation: str | None = None):
    """House defaults first. A workshop member sees the defaults and their own."""
    user = request.auth
    rows = LossAllowance.objects.select_related("workshop")
    if user.role == Role.WORKSHOP:
        rows = rows.filter(Q(workshop__isnull=True) | Q(workshop_id__in=user.workshop_ids()))
    elif not _sees_vault(user):
        rows = rows.none()
    if workshop_id is not None:
        rows = rows.filter(workshop_id=workshop_id)
    if operation:
        rows = rows.filter(operation=operation)
    return rows.order_by(F("workshop__name").asc(nulls_first=True), "operation", "id")


@metal_router.put("/metal/loss-allowances", response=LossAllowanceOut,
                  summary="Set the loss allowed on an operation")
def set_loss_allowance(request, payload: LossAllowanceIn):
    """For one workshop, or the house default when `workshop_id` is null. Production managers
    and administrators."""
    row = services.loss_allowance_set(actor=request.auth, **payload.dict())
    return LossAllowance.objects.select_related("workshop").get(pk=row.pk)


class MetalEntryOut(Schema):
    id: int
    occurred_at: dt.datetime
    kind: EntryKind
    alloy: str
    alloy_g: Decimal
    fine_g: Decimal
    from_location: LocationRef
    to_location: LocationRef
    operation: str
    slip_id: int | None
    slip_number: str | None
    piece_id: int | None
    stock_take_id: int | None
    actor: str | None
    comment: str

    @staticmethod
    def resolve_alloy(obj) -> str:
        return obj.alloy.code

    @staticmethod
    def resolve_slip_number(obj):
        return obj.slip.number if obj.slip_id else None

    @staticmethod
    def resolve_actor(obj):
        return obj.actor.username if obj.actor_id else None


class PurchaseIn(Schema):
    alloy: str = Field(min_length=1, max_length=20)
    weight_g: Decimal = Field(description="Grams, to the milligram")
    supplier: str = Field("", max_length=100)
    reference: str = Field("", max_length=100)

    _w = field_validator("weight_g", mode="before")(_decimal_text)


def _entries_of(rows):
    return rows.select_related("alloy", "from_location", "to_location", "slip", "actor")


@metal_router.post("/metal/purchases", response={201: MetalEntryOut},
                   summary="Metal bought into the vault")
def purchase_metal(request, payload: PurchaseIn):
    entry = services.metal_purchase(actor=request.auth, **payload.dict())
    return 201, _entries_of(MetalEntry.objects).get(pk=entry.pk)


@metal_router.get("/metal/entries", response=list[MetalEntryOut],
                  summary="Metal ledger entries")
@paginate(Pagination)
def list_metal_entries(request, location_id: int | None = None, alloy: str | None = None,
                       slip_id: int | None = None, kind: EntryKind | None = None,
                       start: IsoDate | None = None, end: IsoDate | None = None):
    """Newest first. Every movement in or out of a location you may see; filter by location,
    alloy code, slip, kind and date range."""
    rows = MetalEntry.objects.visible_to(request.auth)
    if location_id is not None:
        rows = rows.filter(Q(from_location_id=location_id) | Q(to_location_id=location_id))
    if alloy:
        rows = rows.filter(alloy__code=alloy)
    if slip_id is not None:
        rows = rows.filter(slip_id=slip_id)
    if kind:
        rows = rows.filter(kind=kind)
    if start or end:
        start, end = _period(start or EARLIEST, end)
        since, until = selectors._bounds(start, end)
        rows = rows.filter(occurred_at__gte=since, occurred_at__lt=until)
    return _entries_of(rows).order_by("-occurred_at", "-id")


# ---------------------------------------------------------------------------------------------
# material slips


class SlipLineOut(Schema):
    id: int
    kind: str
    alloy: str | None
    piece: PieceRef | None
    lot_id: int | None
    lot_number: str | None
    gross_weight_g: Decimal | None
    stones_weight_g: Decimal
    weight_sent_g: Decimal | None
    weight_received_g: Decimal | None
    stone_count: int | None
    carats_sent: Decimal | None
    count_received: int | None
    carats_received: Decimal | None
    difference_flagged: bool

    @staticmethod
    def resolve_alloy(obj):
        return obj.alloy.code if obj.alloy_id else None

    @staticmethod
    def resolve_piece(obj):
        return obj.piece if obj.piece_id else None

    @staticmethod
    def resolve_lot_number(obj):
        return obj.lot.number if obj.lot_id else None


class SlipOut(Schema):
    id: int
    number: str
    kind: SlipKind
    status: SlipStatus
    workshop: WorkshopRef | None
    from_location: LocationRef
    to_location: LocationRef
    operation: str
    issue_id: int | None = Field(description="For a return: the issue slip it answers")
    casting_tree_id: int | None
    closes_issue: bool
    sent_by: str | None
    sent_at: dt.datetime
    received_by: str | None
    received_at: dt.datetime | None
    weight_flagged: bool
    settled_at: dt.datetime | None
    loss_g: Decimal | None
    loss_fine_g: Decimal | None
    allowance_g: Decimal | None
    over_allowance: bool
    comment: str
    client_ref: str | None

    @staticmethod
    def resolve_sent_by(obj):
        return obj.sent_by.username if obj.sent_by_id else None

    @staticmethod
    def resolve_received_by(obj):
        return obj.received_by.username if obj.received_by_id else None


class JobFiguresOut(Schema):
    issued_g: Decimal
    issued_fine_g: Decimal
    returned_pieces_g: Decimal
    returned_scrap_g: Decimal
    remaining_g: Decimal
    remaining_fine_g: Decimal
    allowance_percent: Decimal | None


class SlipDetailOut(SlipOut):
    lines: list[SlipLineOut]
    pieces: list[PieceRef]
    returns: list[SlipBrief]
    job: JobFiguresOut | None = Field(None, description="For an issue: what the job moved")

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.select_related("alloy", "piece", "lot").order_by("id"))

    @staticmethod
    def resolve_pieces(obj):
        return list(obj.pieces.order_by("serial"))

    @staticmethod
    def resolve_returns(obj):
        return list(obj.returns.order_by("sent_at", "id"))

    @staticmethod
    def resolve_job(obj):
        if obj.kind != SlipKind.ISSUE:
            return None
        return {**services.job_figures(obj),
                "allowance_percent": services.allowance_percent(obj.workshop, obj.operation)}


SLIP_RELATED = ("workshop", "from_location", "to_location", "sent_by", "received_by")


def _slip_for_detail(slip_id: int) -> MaterialSlip:
    return MaterialSlip.objects.select_related(*SLIP_RELATED).get(pk=slip_id)


def _slip_or_404(request, slip_id: int) -> MaterialSlip:
    slip = (MaterialSlip.objects.visible_to(request.auth).select_related(*SLIP_RELATED)
            .filter(pk=slip_id).first())
    if slip is None:
        raise NotFound(_("No material slip with id %(id)s.") % {"id": slip_id})
    return slip


def _weight(v):
    return _decimal_text(v)


class MetalLineIn(Schema):
    alloy: str = Field(min_length=1, max_length=20, description="Alloy code, e.g. 750y")
    weight_g: Decimal

    _w = field_validator("weight_g", mode="before")(_weight)


class PieceWeightIn(Schema):
    piece_id: int
    weight_g: Decimal = Field(description="The piece weighed whole (with any stones it holds)")

    _w = field_validator("weight_g", mode="before")(_weight)


class StoneLineIn(Schema):
    lot_id: int
    count: int = Field(ge=1, le=services.MAX_STONES)
    carats: Decimal

    _c = field_validator("carats", mode="before")(_weight)


class ReturnStoneIn(StoneLineIn):
    piece_id: int | None = Field(None, description="Set in this piece; none: unused stones")


class ScrapIn(Schema):
    kind: Literal["scrap", "filings", "sweeps", "button"] = "scrap"
    alloy: str | None = Field(None, max_length=20, description="Default: the issue's alloy")
    weight_g: Decimal

    _w = field_validator("weight_g", mode="before")(_weight)


CLIENT_REF = Field(None, max_length=64,
                   description="Your id for this slip; sending it again returns the same slip "
                               "(200) instead of making another")


class IssueIn(Schema):
    workshop_id: int
    operation: str = Field("", max_length=40, description="casting, setting, polishing…")
    metal: list[MetalLineIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    pieces: list[PieceWeightIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    stones: list[StoneLineIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    allocation_ids: list[int] = Field(default_factory=list, max_length=MAX_ITEMS)
    piece_ids: list[int] = Field(default_factory=list, max_length=MAX_ITEMS,
                                 description="The pieces the material is for")
    comment: str = Field("", max_length=2000)
    client_ref: str | None = CLIENT_REF


class ReturnIn(Schema):
    pieces: list[PieceWeightIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    scrap: list[ScrapIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    stones: list[ReturnStoneIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    closes_issue: bool = Field(False, description="Nothing more will come back for this issue")
    comment: str = Field("", max_length=2000)
    client_ref: str | None = CLIENT_REF


class ReceiveLineIn(Schema):
    line_id: int
    weight_g: Decimal | None = Field(None, description="Metal lines: the weight received")
    count: int | None = Field(None, ge=0, le=services.MAX_STONES,
                              description="Stone lines: the stones received")
    carats: Decimal | None = Field(None, description="Stone lines: their weight")

    _w = field_validator("weight_g", "carats", mode="before")(_weight)


class ReceiveIn(Schema):
    lines: list[ReceiveLineIn] = Field(max_length=MAX_ITEMS)
    comment: str = Field("", max_length=2000)


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=240)


class RefinerSendIn(Schema):
    lines: list[MetalLineIn] = Field(min_length=1, max_length=MAX_ITEMS)
    comment: str = Field("", max_length=2000)
    client_ref: str | None = CLIENT_REF


class RefinerSettleIn(Schema):
    returned: list[MetalLineIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    comment: str = Field("", max_length=2000)


SLIP_RESPONSES = {200: SlipDetailOut, 201: SlipDetailOut}


def _items(rows: list[Schema]) -> list[dict]:
    return [{k: v for k, v in row.dict().items() if v is not None} for row in rows]


@slips_router.get("/material-slips", response=list[SlipOut], summary="Material slips")
@paginate(Pagination)
def list_slips(request, status: SlipStatus | None = None, kind: SlipKind | None = None,
               workshop_id: int | None = None, flagged: bool | None = None,
               over_allowance: bool | None = None, issue_id: int | None = None,
               q: str | None = None):
    """Newest first. `flagged=true`: received with a weight difference beyond tolerance;
    `over_allowance=true`: jobs settled over their loss allowance; `q`: slip number. A
    workshop member sees their own workshop's slips."""
    rows = MaterialSlip.objects.visible_to(request.auth).select_related(*SLIP_RELATED)
    if status:
        rows = rows.filter(status=status)
    if kind:
        rows = rows.filter(kind=kind)
    if workshop_id is not None:
        rows = rows.filter(workshop_id=workshop_id)
    if flagged is not None:
        rows = rows.filter(weight_flagged=flagged)
    if over_allowance is not None:
        rows = rows.filter(over_allowance=over_allowance)
    if issue_id is not None:
        rows = rows.filter(issue_id=issue_id)
    if q:
        rows = rows.filter(number__icontains=q.strip()[:30])
    return rows.order_by("-sent_at", "-id")


@slips_router.post("/material-slips/issue", response=SLIP_RESPONSES,
                   summary="Issue metal, pieces and stones to a workshop")
def issue_slip(request, payload: IssueIn):
    """Metal from the vault by alloy and weight, pieces by weight, loose stones from a lot, or
    the stones reserved for pieces (`allocation_ids`). One alloy per slip. The material is in
    transit until the workshop receives it. Production managers and administrators."""
    replayed = _replay(payload.client_ref)
    slip = services.material_issue(
        actor=request.auth, workshop_id=payload.workshop_id, operation=payload.operation,
        metal=_items(payload.metal), pieces=_items(payload.pieces),
        stones=_items(payload.stones), allocation_ids=payload.allocation_ids,
        piece_ids=payload.piece_ids, comment=payload.comment, client_ref=payload.client_ref)
    return _slip_response(slip, replayed)


@slips_router.post("/material-slips/{slip_id}/return", response=SLIP_RESPONSES,
                   summary="Return pieces, scrap and stones against an issue")
def return_slip(request, slip_id: int, payload: ReturnIn):
    """`slip_id` is the issue answered. Each piece weighed as it leaves; scrap, filings,
    sweeps or button by weight; stones set in a piece (with `piece_id`) or unused.
    `closes_issue`: the last return, so receiving it settles the job. The workshop's members
    (or the vault's keepers)."""
    replayed = _replay(payload.client_ref)
    slip = services.material_return(
        actor=request.auth, issue_id=slip_id, pieces=_items(payload.pieces),
        scrap=_items(payload.scrap), stones=_items(payload.stones),
        closes_issue=payload.closes_issue, comment=payload.comment,
        client_ref=payload.client_ref)
    return _slip_response(slip, replayed)


@slips_router.post("/material-slips/{slip_id}/receive", response=SlipDetailOut,
                   summary="Weigh and confirm what arrived on a slip")
def receive_slip(request, slip_id: int, payload: ReceiveIn):
    """Every line confirmed: `weight_g` for metal lines, `count` and `carats` for stones. A
    difference is booked as a weighing difference and flagged beyond the tolerance. Receiving
    the last return of an issue settles the job."""
    slip = services.material_slip_receive(actor=request.auth, slip_id=slip_id,
                                          lines=_items(payload.lines), comment=payload.comment)
    return _slip_for_detail(slip.pk)


@slips_router.post("/material-slips/{slip_id}/cancel", response=SlipDetailOut,
                   summary="Cancel a slip still in transit")
def cancel_slip(request, slip_id: int, payload: CancelIn):
    slip = services.material_slip_cancel(actor=request.auth, slip_id=slip_id,
                                         reason=payload.reason)
    return _slip_for_detail(slip.pk)


@slips_router.post("/material-slips/{slip_id}/settle", response=SlipDetailOut,
                   summary="Settle a job: what the workshop still holds is its loss")
def settle_slip(request, slip_id: int):
    """For an issue slip whose returns have all been received. Production managers and
    administrators."""
    slip = services.material_issue_settle(actor=request.auth, issue_id=slip_id)
    return _slip_for_detail(slip.pk)


@slips_router.post("/material-slips/refiner", response=SLIP_RESPONSES,
                   summary="Send scrap from the vault to the refiner")
def refiner_send(request, payload: RefinerSendIn):
    replayed = _replay(payload.client_ref)
    slip = services.refiner_send(actor=request.auth, lines=_items(payload.lines),
                                 comment=payload.comment, client_ref=payload.client_ref)
    return _slip_response(slip, replayed)


@slips_router.post("/material-slips/{slip_id}/refiner-settle", response=SlipDetailOut,
                   summary="Book the refiner's statement for a refiner slip")
def refiner_settle(request, slip_id: int, payload: RefinerSettleIn):
    """`returned`: the fine metal the refiner gives back, by alloy and weight."""
    slip = services.refiner_settle(actor=request.auth, slip_id=slip_id,
                                   returned=_items(payload.returned), comment=payload.comment)
    return _slip_for_detail(slip.pk)


@slips_router.get("/material-slips/{slip_id}", response=SlipDetailOut,
                  summary="A material slip with its lines")
def get_slip(request, slip_id: int):
    # Declared after /material-slips/issue and /refiner: the path takes any text.
    return _slip_or_404(request, slip_id)



# ---------------------------------------------------------------------------------------------
# stock-takes


class StockTakeLineOut(Schema):
    alloy: str
    book_g: Decimal
    counted_g: Decimal
    difference_g: Decimal

    @staticmethod
    def resolve_alloy(obj) -> str:
        return obj.alloy.code


class StockTakeOut(Schema):
    id: int
    number: str
    location: LocationRef
    status: StockTakeStatus
    counted_at: dt.datetime
    counted_by: str | None
    reason: str
    posted_by: str | None
    posted_at: dt.datetime | None
    lines: list[StockTakeLineOut]

    @staticmethod
    def resolve_counted_by(obj):
        return obj.counted_by.username if obj.counted_by_id else None

    @staticmethod
    def resolve_posted_by(obj):
        return obj.posted_by.username if obj.posted_by_id else None

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.all())


class StockTakeIn(Schema):
    location_id: int
    counts: dict[str, Decimal] = Field(description="Grams counted per alloy code, e.g. "
                                                   "{\"750y\": \"123.450\"}")

    @field_validator("counts", mode="before")
    @classmethod
    def _counts(cls, value):
        if isinstance(value, dict):
            if len(value) > MAX_ITEMS:
                raise ValueError(f"at most {MAX_ITEMS} alloys")
            for v in value.values():
                _decimal_text(v)
        return value


class StockTakePostIn(Schema):
    reason: str = Field("", max_length=2000)


def _stock_takes(user):
    return (StockTake.objects.visible_to(user)
            .select_related("location", "counted_by", "posted_by")
            .prefetch_related("lines__alloy"))


def _stock_take_or_404(request, take_id: int) -> StockTake:
    take = _stock_takes(request.auth).filter(pk=take_id).first()
    if take is None:
        raise NotFound(_("No stock-take with id %(id)s.") % {"id": take_id})
    return take


@metal_router.get("/stock-takes", response=list[StockTakeOut], summary="Stock-takes")
@paginate(Pagination)
def list_stock_takes(request, location_id: int | None = None,
                     status: StockTakeStatus | None = None):
    rows = _stock_takes(request.auth)
    if location_id is not None:
        rows = rows.filter(location_id=location_id)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-counted_at", "-id")


@metal_router.post("/stock-takes", response={201: StockTakeOut},
                   summary="Record a physical count of a location")
def create_stock_take(request, payload: StockTakeIn):
    """The weight counted per alloy, set against the book; nothing is posted yet."""
    take = services.stock_take_create(actor=request.auth, location_id=payload.location_id,
                                      counts=payload.counts)
    return 201, _stock_take_or_404(request, take.pk)


@metal_router.get("/stock-takes/{take_id}", response=StockTakeOut,
                  summary="A stock-take with its differences")
def get_stock_take(request, take_id: int):
    return _stock_take_or_404(request, take_id)


@metal_router.post("/stock-takes/{take_id}/post", response=StockTakeOut,
                   summary="Post a count's differences as adjustments")
def post_stock_take(request, take_id: int, payload: StockTakePostIn):
    """A reason is needed when the count differs from the book. Refused when the book has
    moved since the count."""
    services.stock_take_post(actor=request.auth, stock_take_id=take_id, reason=payload.reason)
    return _stock_take_or_404(request, take_id)


# ---------------------------------------------------------------------------------------------
# casting trees


class CastingTreeOut(Schema):
    id: int
    number: str
    alloy: AlloyRef
    workshop: WorkshopRef
    status: CastingStatus
    pieces: list[PieceRef]
    wax_weight_g: Decimal
    wax_density_g_cm3: Decimal
    sprue_allowance_percent: Decimal
    metal_needed_g: Decimal
    issued_g: Decimal | None
    good_pieces_g: Decimal | None
    button_g: Decimal | None
    scrap_g: Decimal | None
    yield_percent: Decimal | None
    created_by: str | None
    created_at: dt.datetime
    comment: str

    @staticmethod
    def resolve_pieces(obj):
        return list(obj.pieces.all())

    @staticmethod
    def resolve_created_by(obj):
        return obj.created_by.username if obj.created_by_id else None


class CastingTreeDetailOut(CastingTreeOut):
    slips: list[SlipBrief]
    issue: JobOut | None = Field(None, description="The issue slip of the tree's metal, with "
                                                   "its loss once settled")

    @staticmethod
    def resolve_slips(obj):
        return list(obj.slips.order_by("sent_at", "id"))

    @staticmethod
    def resolve_issue(obj):
        return (obj.slips.filter(kind=SlipKind.ISSUE).exclude(status=SlipStatus.CANCELLED)
                .order_by("-sent_at", "-id").first())


class CastingTreeIn(Schema):
    workshop_id: int = Field(description="The caster")
    alloy: str = Field(min_length=1, max_length=20)
    piece_ids: list[int] = Field(min_length=1, max_length=MAX_ITEMS)
    wax_weight_g: Decimal
    wax_density_g_cm3: Decimal = Decimal("1.0")
    sprue_allowance_percent: Decimal = Decimal("30")
    comment: str = Field("", max_length=2000)

    _w = field_validator("wax_weight_g", "wax_density_g_cm3", "sprue_allowance_percent",
                         mode="before")(_weight)


class CastingIssueIn(Schema):
    weight_g: Decimal | None = Field(None, description="Default: the metal needed")
    client_ref: str | None = CLIENT_REF

    _w = field_validator("weight_g", mode="before")(_weight)


class CastingReturnIn(Schema):
    pieces: list[PieceWeightIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    button_g: Decimal | None = None
    scrap_g: Decimal | None = None
    client_ref: str | None = CLIENT_REF

    _w = field_validator("button_g", "scrap_g", mode="before")(_weight)


class MetalNeededOut(Schema):
    alloy: str
    metal_needed_g: Decimal


def _trees(user):
    return (CastingTree.objects.visible_to(user)
            .select_related("alloy", "workshop", "created_by").prefetch_related("pieces"))


def _tree_or_404(request, tree_id: int) -> CastingTree:
    tree = _trees(request.auth).filter(pk=tree_id).first()
    if tree is None:
        raise NotFound(_("No casting tree with id %(id)s.") % {"id": tree_id})
    return tree


@metal_router.get("/casting-trees", response=list[CastingTreeOut], summary="Casting trees")
@paginate(Pagination)
def list_casting_trees(request, status: CastingStatus | None = None,
                       workshop_id: int | None = None):
    rows = _trees(request.auth)
    if status:
        rows = rows.filter(status=status)
    if workshop_id is not None:
        rows = rows.filter(workshop_id=workshop_id)
    return rows.order_by("-created_at", "-id")


class MetalNeededQuery(Schema):
    alloy: str = Field(min_length=1, max_length=20)
    wax_weight_g: Decimal = Field(gt=0, le=2000)
    wax_density_g_cm3: Decimal = Field(Decimal("1.0"), ge=Decimal("0.5"), le=2)
    sprue_allowance_percent: Decimal = Field(Decimal("30"), ge=0, le=200)


@metal_router.get("/casting-trees/metal-needed", response=MetalNeededOut,
                  summary="Metal needed for a wax tree")
def casting_metal_needed(request, params: Query[MetalNeededQuery]):
    """Wax weight × alloy density / wax density, plus the sprue and button allowance."""
    alloy = services.get_alloy(params.alloy)
    return {"alloy": alloy.code, "metal_needed_g": services.casting_metal_needed(
        wax_weight_g=params.wax_weight_g, alloy=alloy, wax_density=params.wax_density_g_cm3,
        sprue_allowance_percent=params.sprue_allowance_percent)}


@metal_router.post("/casting-trees", response={201: CastingTreeDetailOut},
                   summary="Plan a casting tree")
def create_casting_tree(request, payload: CastingTreeIn):
    tree = services.casting_tree_create(actor=request.auth, **payload.dict())
    return 201, _tree_or_404(request, tree.pk)


@metal_router.get("/casting-trees/{tree_id}", response=CastingTreeDetailOut,
                  summary="A casting tree: metal needed, issued, returned and its yield")
def get_casting_tree(request, tree_id: int):
    return _tree_or_404(request, tree_id)


@metal_router.post("/casting-trees/{tree_id}/issue", response=SLIP_RESPONSES,
                   summary="Issue a tree's metal to the caster")
def issue_casting_tree(request, tree_id: int, payload: CastingIssueIn):
    replayed = _replay(payload.client_ref)
    slip = services.casting_tree_issue(actor=request.auth, tree_id=tree_id,
                                       weight_g=payload.weight_g, client_ref=payload.client_ref)
    return _slip_response(slip, replayed)


@metal_router.post("/casting-trees/{tree_id}/return", response=SLIP_RESPONSES,
                   summary="Return a tree's cast pieces, button and scrap")
def return_casting_tree(request, tree_id: int, payload: CastingReturnIn):
    """The last return of the tree's metal: once the house receives it the job is settled and
    the tree's yield known."""
    replayed = _replay(payload.client_ref)
    slip = services.casting_tree_return(actor=request.auth, tree_id=tree_id,
                                        pieces=_items(payload.pieces), button_g=payload.button_g,
                                        scrap_g=payload.scrap_g, client_ref=payload.client_ref)
    return _slip_response(slip, replayed)


# ---------------------------------------------------------------------------------------------
# stones


class StoneLotOut(Schema):
    id: int
    number: str
    stone_type: StoneType
    shape: StoneShape
    size_mm: Decimal | None
    sieve: str
    colour: str
    clarity: str
    count_received: int
    carats_received: Decimal
    certificate_lab: str
    certificate_number: str
    origin: str
    supplier: str | None = Field(None, description="Hidden from workshops")
    supplier_invoice: str | None = Field(None, description="Hidden from workshops")
    compliance_statement: str
    price_per_ct: Decimal | None = Field(None, description="Only for roles that see prices")
    received_at: dt.datetime
    vault_count: int | None = Field(None, description="In the vault (house staff)")
    vault_carats: Decimal | None = None
    reserved_count: int | None = Field(None, description="Reserved for pieces, in the vault")
    reserved_carats: Decimal | None = None
    free_count: int | None = Field(None, description="In the vault and not reserved")
    free_carats: Decimal | None = None

    @staticmethod
    def resolve_supplier(obj, context):
        user = request_user(context)
        return obj.supplier if user and user.role != Role.WORKSHOP else None

    @staticmethod
    def resolve_supplier_invoice(obj, context):
        user = request_user(context)
        return obj.supplier_invoice if user and user.role != Role.WORKSHOP else None

    @staticmethod
    def resolve_price_per_ct(obj, context):
        user = request_user(context)
        return obj.price_per_ct if user and user.sees_prices else None

    @staticmethod
    def _vault(obj, context, attr):
        if not _sees_vault(request_user(context)):
            return None
        value = getattr(obj, attr, None)
        if attr.endswith("carats"):
            return selectors.q3(value)
        return int(value or 0)

    @staticmethod
    def resolve_vault_count(obj, context):
        return StoneLotOut._vault(obj, context, "v_count")

    @staticmethod
    def resolve_vault_carats(obj, context):
        return StoneLotOut._vault(obj, context, "v_carats")

    @staticmethod
    def resolve_reserved_count(obj, context):
        return StoneLotOut._vault(obj, context, "r_count")

    @staticmethod
    def resolve_reserved_carats(obj, context):
        return StoneLotOut._vault(obj, context, "r_carats")

    @staticmethod
    def resolve_free_count(obj, context):
        if not _sees_vault(request_user(context)):
            return None
        return int(obj.v_count or 0) - int(obj.r_count or 0)

    @staticmethod
    def resolve_free_carats(obj, context):
        if not _sees_vault(request_user(context)):
            return None
        return selectors.q3(obj.v_carats) - selectors.q3(obj.r_carats)


class LotBalanceOut(Schema):
    location: LocationRef
    count: int
    carats: Decimal


class StoneLotDetailOut(StoneLotOut):
    balances: list[LotBalanceOut]

    @staticmethod
    def resolve_balances(obj, context):
        return selectors.lot_balances(obj, request_user(context))


class StoneLotIn(Schema):
    stone_type: StoneType
    shape: StoneShape
    count: int = Field(ge=1, le=services.MAX_STONES)
    carats: Decimal = Field(description="Total weight, to 0.001 ct")
    size_mm: Decimal | None = None
    sieve: str = Field("", max_length=20)
    colour: str = Field("", max_length=30)
    clarity: str = Field("", max_length=30)
    certificate_lab: str = Field("", max_length=20)
    certificate_number: str = Field("", max_length=40)
    origin: str = Field("", max_length=80)
    supplier: str = Field("", max_length=120)
    supplier_invoice: str = Field("", max_length=60)
    compliance_statement: str = Field("", max_length=2000,
                                      description="Required for diamonds (Kimberley Process / "
                                                  "System of Warranties)")
    price_per_ct: Decimal | None = None

    _d = field_validator("carats", "size_mm", "price_per_ct", mode="before")(_weight)


def _lots(user):
    vault = StoneBalance.objects.filter(lot=OuterRef("pk"), location__kind=LocationKind.VAULT)
    reserved = (StoneAllocation.objects
                .filter(lot=OuterRef("pk"), status=AllocationStatus.RESERVED)
                .values("lot").annotate(n=Sum("count"), ct=Sum("carats")))
    return StoneLot.objects.visible_to(user).annotate(
        v_count=Subquery(vault.values("count")[:1]),
        v_carats=Subquery(vault.values("carats")[:1]),
        r_count=Subquery(reserved.values("n")[:1]),
        r_carats=Subquery(reserved.values("ct")[:1]))


def _lot_or_404(request, lot_id: int) -> StoneLot:
    lot = _lots(request.auth).filter(pk=lot_id).first()
    if lot is None:
        raise NotFound(_("No stone lot with id %(id)s.") % {"id": lot_id})
    return lot


@stones_router.get("/stone-lots", response=list[StoneLotOut], summary="Stone lots")
@paginate(Pagination)
def list_stone_lots(request, stone_type: StoneType | None = None,
                    shape: StoneShape | None = None, q: str | None = None):
    """Newest first, with what is in the vault, reserved and free (for the house's staff).
    `q`: lot number, certificate number or supplier. A workshop member sees the lots that have
    been on a slip to or from their workshop."""
    rows = _lots(request.auth)
    if stone_type:
        rows = rows.filter(stone_type=stone_type)
    if shape:
        rows = rows.filter(shape=shape)
    if q:
        text = q.strip()[:60]
        match = Q(number__icontains=text) | Q(certificate_number__icontains=text)
        if request.auth.role != Role.WORKSHOP:
            match |= Q(supplier__icontains=text)
        rows = rows.filter(match)
    return rows.order_by("-received_at", "-id")


@stones_router.get("/stone-lots/{lot_id}", response=StoneLotDetailOut,
                   summary="A stone lot and its balances per location")
def get_stone_lot(request, lot_id: int):
    return _lot_or_404(request, lot_id)


@stones_router.post("/stone-lots", response={201: StoneLotDetailOut},
                    summary="Receive a parcel of stones into the vault")
def receive_stone_lot(request, payload: StoneLotIn):
    """Counted and weighed, with its certificate, origin and supplier. Diamonds need the
    supplier's compliance statement. Production managers and administrators."""
    lot = stone_services.stone_lot_receive(actor=request.auth, **payload.dict())
    return 201, _lot_or_404(request, lot.pk)


class StoneEntryOut(Schema):
    id: int
    occurred_at: dt.datetime
    kind: EntryKind
    lot_id: int
    lot_number: str
    count: int
    carats: Decimal
    from_location: LocationRef
    to_location: LocationRef
    slip_id: int | None
    piece_id: int | None
    workshop_id: int | None
    reason: str
    actor: str | None

    @staticmethod
    def resolve_lot_number(obj):
        return obj.lot.number

    @staticmethod
    def resolve_actor(obj):
        return obj.actor.username if obj.actor_id else None


@stones_router.get("/stone-lots/{lot_id}/entries", response=list[StoneEntryOut],
                   summary="A stone lot's movements")
@paginate(Pagination)
def list_lot_entries(request, lot_id: int):
    lot = _lot_or_404(request, lot_id)
    return (StoneEntry.objects.visible_to(request.auth).filter(lot=lot)
            .select_related("lot", "from_location", "to_location", "actor")
            .order_by("-occurred_at", "-id"))


class AllocationOut(Schema):
    id: int
    piece: PieceRef
    lot_id: int
    lot_number: str
    count: int
    carats: Decimal
    status: AllocationStatus
    slip_id: int | None
    count_set: int
    created_at: dt.datetime

    @staticmethod
    def resolve_lot_number(obj):
        return obj.lot.number


class AllocationIn(Schema):
    piece_id: int
    lot_id: int
    count: int = Field(ge=1, le=services.MAX_STONES)
    carats: Decimal

    _c = field_validator("carats", mode="before")(_weight)


def _allocations(user):
    return StoneAllocation.objects.visible_to(user).select_related("piece", "lot")


@stones_router.get("/stone-allocations", response=list[AllocationOut],
                   summary="Stones reserved for pieces")
@paginate(Pagination)
def list_allocations(request, piece_id: int | None = None, lot_id: int | None = None,
                     status: AllocationStatus | None = None):
    rows = _allocations(request.auth)
    if piece_id is not None:
        rows = rows.filter(piece_id=piece_id)
    if lot_id is not None:
        rows = rows.filter(lot_id=lot_id)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("piece__serial", "id")


@stones_router.post("/stone-allocations", response={201: AllocationOut},
                    summary="Reserve stones of a lot for a piece")
def create_allocation(request, payload: AllocationIn):
    """From the stones of the lot in the vault that are not already reserved. Production
    managers and administrators."""
    alloc = stone_services.stone_allocate(actor=request.auth, **payload.dict())
    return 201, _allocations(request.auth).get(pk=alloc.pk)


@stones_router.post("/stone-allocations/{allocation_id}/release", response=AllocationOut,
                    summary="Give reserved stones back to the lot")
def release_allocation(request, allocation_id: int):
    alloc = stone_services.stone_allocation_release(actor=request.auth,
                                                    allocation_id=allocation_id)
    return _allocations(request.auth).get(pk=alloc.pk)


class BreakageIn(Schema):
    workshop_id: int
    lot_id: int
    count: int = Field(ge=1, le=services.MAX_STONES)
    carats: Decimal
    reason: str = Field(min_length=1, max_length=240)
    piece_id: int | None = None
    lost: bool = Field(False, description="Lost rather than broken")

    _c = field_validator("carats", mode="before")(_weight)


class BreakageRateOut(Schema):
    workshop_id: int
    workshop_name: str
    stone_type: StoneType
    received: int
    broken: int
    lost: int
    rate_percent: Decimal | None


@stones_router.post("/stones/breakages", response={201: StoneEntryOut},
                    summary="Record stones broken or lost at a workshop")
def record_breakage(request, payload: BreakageIn):
    """The workshop's members (or the vault's keepers), with the reason."""
    entry = stone_services.stone_breakage_record(actor=request.auth, **payload.dict())
    return 201, (StoneEntry.objects.select_related("lot", "from_location", "to_location",
                                                   "actor").get(pk=entry.pk))


@stones_router.get("/stones/breakage-rates", response=list[BreakageRateOut],
                   summary="Breakage rate per workshop and stone type")
def breakage_rates(request, start: IsoDate | None = None, end: IsoDate | None = None):
    """Stones received by each workshop and broken or lost there, over a period (all time
    unless both `start` and `end` are given). A workshop member sees their own."""
    if start or end:
        start, end = _period(start or EARLIEST, end)
    return selectors.breakage_rates(request.auth, start, end)
