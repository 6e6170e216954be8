"""Finishing in the Django admin. Records are read-only (the services write them, audited);
hallmark exemptions may be edited here as on the Hallmarks page — an admin edit bypasses the
audit trail the page and the API keep."""

from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import FinishingRecord, HallmarkExemption


@admin.register(HallmarkExemption)
class HallmarkExemptionAdmin(admin.ModelAdmin):
    list_display = ("country", "metal", "under_weight_g", "legal_reference", "updated_at")
    list_filter = ("country", "metal")
    ordering = ("country", "metal")


@admin.register(FinishingRecord)
class FinishingRecordAdmin(ReadOnlyAdmin):
    list_display = ("piece", "operation", "status", "workshop", "actor", "recorded_at")
    list_filter = ("operation", "status")
    search_fields = ("piece__serial",)
