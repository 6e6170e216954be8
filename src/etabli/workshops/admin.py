from django.contrib import admin
from django.utils.translation import gettext

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

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "skills":
            # Operation names from the reference data are shown in the user's language.
            field.label_from_instance = lambda op: gettext(op.name)
        return field


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "step", "position")
