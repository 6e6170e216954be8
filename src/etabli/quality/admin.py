"""Read-only views for administrators: every change goes through the quality pages and API."""

from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import Inspection, InspectionTemplate, Nonconformity


@admin.register(InspectionTemplate)
class InspectionTemplateAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "is_default", "is_active", "updated_at")


@admin.register(Inspection)
class InspectionAdmin(ReadOnlyAdmin):
    list_display = ("reference", "piece", "status", "verdict", "signed_by", "signed_at")
    list_filter = ("status", "verdict")
    search_fields = ("reference", "piece__serial")


@admin.register(Nonconformity)
class NonconformityAdmin(ReadOnlyAdmin):
    list_display = ("reference", "piece", "status", "root_cause", "created_at")
    list_filter = ("status", "root_cause")
    search_fields = ("reference", "piece__serial")
