"""Setting plans and controls in the Django admin: to look only.

Plans reserve stones in the ledger and controls book breakage and hold pieces, all through the
services (audited); the admin shows them and changes nothing.
"""

from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import SettingControl, SettingControlCount, SettingGroup, SettingPlan


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class GroupInline(ReadOnlyInline):
    model = SettingGroup
    fields = ("number", "position", "setting_type", "stone_type", "shape", "size_mm", "sieve",
              "count", "carats", "supplied_by_client", "lot", "allocation", "note")


class CountInline(ReadOnlyInline):
    model = SettingControlCount
    fields = ("group_number", "description", "planned", "counted", "broken", "lost")


@admin.register(SettingPlan)
class SettingPlanAdmin(ReadOnlyAdmin):
    list_display = ("piece", "status", "revision", "checked_by", "checked_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("piece__serial",)
    inlines = [GroupInline]


@admin.register(SettingControl)
class SettingControlAdmin(ReadOnlyAdmin):
    list_display = ("piece", "setting_run", "passed", "stones_secure", "workshop",
                    "recorded_by", "recorded_at")
    list_filter = ("passed", "stones_secure")
    search_fields = ("piece__serial",)
    inlines = [CountInline]
