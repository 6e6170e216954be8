from django.contrib import admin

from .models import ChangeRequest, LaunchCheckItem, Order, OrderLine


class ReadOnlyAdmin(admin.ModelAdmin):
    """Orders change only through services (audited); the admin shows them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("reference", "client", "status", "promised_date", "created_at")
    list_filter = ("status", "channel")
    search_fields = ("reference", "client__name", "client_reference")
    inlines = [LineInline]


@admin.register(LaunchCheckItem)
class LaunchCheckItemAdmin(ReadOnlyAdmin):
    list_display = ("order", "section", "code", "checked", "checked_by", "checked_at")


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ("order", "status", "requested_at", "impact_days")
