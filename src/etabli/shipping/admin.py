"""Delivery in the admin: read-only (shipments, invoices and receptions change only through
the services, which audit every change)."""

from django.contrib import admin

from .models import FollowUp, Invoice, InvoiceLine, Reception, Shipment, ShipmentItem


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ItemInline(ReadOnlyInline):
    model = ShipmentItem
    fields = ["piece", "active", "case", "protection", "packed_by", "packed_at"]


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ["position", "description", "quantity", "unit_price"]


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    list_display = ["number", "order", "status", "method", "carrier", "tracking_number",
                    "shipped_at", "delivered_at"]
    list_filter = ["status", "method"]
    search_fields = ["number", "tracking_number", "order__reference"]
    inlines = [ItemInline]


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "order", "status", "total", "currency", "issued_at"]
    list_filter = ["status"]
    search_fields = ["number", "order__reference"]
    inlines = [InvoiceLineInline]


@admin.register(Reception)
class ReceptionAdmin(ReadOnlyAdmin):
    list_display = ["order", "outcome", "on_behalf", "recorded_by", "recorded_at"]


@admin.register(FollowUp)
class FollowUpAdmin(ReadOnlyAdmin):
    list_display = ["order", "piece", "status", "opened_at", "resolved_at"]
    list_filter = ["status"]
