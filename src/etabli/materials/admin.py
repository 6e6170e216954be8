"""Precious materials in the Django admin: mostly to look.

The ledgers are append-only and every movement goes through the services (balanced entries,
balances under row locks, the audit trail), so entries, balances, slips, stock-takes, casting
trees, stone lots and allocations are read-only here. Alloys, prices and loss allowances may be
edited, as elsewhere in the admin: such edits bypass the audit trail (the pages and the API go
through `alloy_update`, `metal_price_set` and `loss_allowance_set`, which record it).
"""

from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import (
    Alloy,
    CastingTree,
    Location,
    LossAllowance,
    MaterialSlip,
    MaterialSlipLine,
    MeshAnalysis,
    MetalBalance,
    MetalEntry,
    MetalPrice,
    StockTake,
    StockTakeLine,
    StoneAllocation,
    StoneBalance,
    StoneEntry,
    StoneLot,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Alloy)
class AlloyAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "metal", "fineness_permille", "colour", "density_g_cm3")
    list_filter = ("metal",)
    # What an alloy *is* (its code, metal and fineness) is kept: ledger entries depend on it.
    readonly_fields = ("code", "metal", "fineness_permille")

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()


@admin.register(MetalPrice)
class MetalPriceAdmin(admin.ModelAdmin):
    list_display = ("metal", "priced_on", "price_per_fine_g", "currency", "source",
                    "entered_by")
    list_filter = ("metal", "currency")
    date_hierarchy = "priced_on"
    readonly_fields = ("entered_by", "entered_at")


@admin.register(LossAllowance)
class LossAllowanceAdmin(admin.ModelAdmin):
    list_display = ("workshop", "operation", "percent")
    list_filter = ("operation",)


@admin.register(Location)
class LocationAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "workshop")
    list_filter = ("kind",)


@admin.register(MetalEntry)
class MetalEntryAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "kind", "alloy", "alloy_g", "fine_g", "from_location",
                    "to_location", "slip", "piece", "operation", "actor")
    list_filter = ("kind", "alloy", "operation")
    list_select_related = ("alloy", "from_location", "to_location", "slip", "piece", "actor")
    search_fields = ("slip__number", "piece__serial", "comment")
    date_hierarchy = "occurred_at"


@admin.register(MetalBalance)
class MetalBalanceAdmin(ReadOnlyAdmin):
    list_display = ("location", "alloy", "alloy_g", "fine_g", "physical")
    list_filter = ("physical", "alloy", "location__kind")
    list_select_related = ("location", "alloy")


class SlipLineInline(ReadOnlyInline):
    model = MaterialSlipLine
    fields = ("kind", "alloy", "piece", "lot", "gross_weight_g", "stones_weight_g",
              "weight_sent_g", "weight_received_g", "stone_count", "carats_sent",
              "count_received", "carats_received", "difference_flagged")


@admin.register(MaterialSlip)
class MaterialSlipAdmin(ReadOnlyAdmin):
    list_display = ("number", "kind", "status", "workshop", "operation", "sent_at",
                    "received_at", "weight_flagged", "loss_g", "allowance_g", "over_allowance")
    list_filter = ("kind", "status", "weight_flagged", "over_allowance", "operation")
    list_select_related = ("workshop",)
    search_fields = ("number", "client_ref", "pieces__serial")
    date_hierarchy = "sent_at"
    inlines = [SlipLineInline]


class StockTakeLineInline(ReadOnlyInline):
    model = StockTakeLine
    fields = ("alloy", "book_g", "counted_g")


@admin.register(StockTake)
class StockTakeAdmin(ReadOnlyAdmin):
    list_display = ("number", "location", "status", "counted_at", "counted_by", "posted_at")
    list_filter = ("status",)
    inlines = [StockTakeLineInline]


@admin.register(CastingTree)
class CastingTreeAdmin(ReadOnlyAdmin):
    list_display = ("number", "alloy", "workshop", "status", "wax_weight_g", "metal_needed_g",
                    "issued_g", "good_pieces_g", "button_g", "scrap_g", "yield_percent")
    list_filter = ("status", "alloy")
    search_fields = ("number", "pieces__serial")


@admin.register(StoneLot)
class StoneLotAdmin(ReadOnlyAdmin):
    list_display = ("number", "stone_type", "shape", "size_mm", "sieve", "colour", "clarity",
                    "count_received", "carats_received", "certificate_lab",
                    "certificate_number", "supplier", "received_at")
    list_filter = ("stone_type", "shape", "certificate_lab")
    search_fields = ("number", "certificate_number", "supplier", "supplier_invoice")


@admin.register(StoneEntry)
class StoneEntryAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "kind", "lot", "count", "carats", "from_location",
                    "to_location", "workshop", "piece", "slip", "reason")
    list_filter = ("kind", "lot__stone_type")
    list_select_related = ("lot", "from_location", "to_location", "workshop", "piece", "slip")
    search_fields = ("lot__number", "piece__serial", "slip__number", "reason")
    date_hierarchy = "occurred_at"


@admin.register(StoneBalance)
class StoneBalanceAdmin(ReadOnlyAdmin):
    list_display = ("lot", "location", "count", "carats", "physical")
    list_filter = ("physical", "location__kind")
    list_select_related = ("lot", "location")


@admin.register(StoneAllocation)
class StoneAllocationAdmin(ReadOnlyAdmin):
    list_display = ("piece", "lot", "count", "carats", "status", "count_set", "slip",
                    "created_at")
    list_filter = ("status",)
    search_fields = ("piece__serial", "lot__number")


@admin.register(MeshAnalysis)
class MeshAnalysisAdmin(ReadOnlyAdmin):
    list_display = ("document", "is_watertight", "volume_mm3", "triangle_count", "analysed_at")
    list_filter = ("is_watertight",)
