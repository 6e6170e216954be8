from django.contrib import admin

from .models import Operation, Workshop, WorkshopContact


class ContactInline(admin.TabularInline):
    model = WorkshopContact
    extra = 0


@admin.register(Workshop)
class WorkshopAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "capacity_benches", "is_active")
    list_filter = ("kind", "is_active")
    filter_horizontal = ("skills",)
    inlines = [ContactInline]


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "step", "position")
