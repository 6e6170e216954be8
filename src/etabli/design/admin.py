from django.contrib import admin

from .models import DesignApproval, DesignBrief, DesignRound, Prototype


@admin.register(DesignBrief)
class DesignBriefAdmin(admin.ModelAdmin):
    list_display = ["line", "updated_by", "updated_at"]
    raw_id_fields = ["line"]


@admin.register(DesignRound)
class DesignRoundAdmin(admin.ModelAdmin):
    list_display = ["line", "number", "status", "sent_at", "decided_at"]
    list_filter = ["status"]
    raw_id_fields = ["line", "files"]


@admin.register(DesignApproval)
class DesignApprovalAdmin(admin.ModelAdmin):
    """Formal records: read only."""

    list_display = ["line", "round_number", "approved_by", "approved_at", "on_behalf"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Prototype)
class PrototypeAdmin(admin.ModelAdmin):
    list_display = ["piece", "method", "result", "fit_ok", "recorded_by", "recorded_at"]
    list_filter = ["result", "method"]

    def has_change_permission(self, request, obj=None):
        return False
