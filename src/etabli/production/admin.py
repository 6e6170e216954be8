from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import Piece, RouteTemplate, RouteTemplateStep, StepRun, TrackingEvent, Transfer


class TemplateStepInline(admin.TabularInline):
    model = RouteTemplateStep
    extra = 0


@admin.register(RouteTemplate)
class RouteTemplateAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_default")
    inlines = [TemplateStepInline]


@admin.register(Piece)
class PieceAdmin(ReadOnlyAdmin):
    list_display = ("serial", "order", "status", "current_step", "current_workshop",
                    "current_due")
    list_filter = ("status", "current_step")
    search_fields = ("serial", "order__reference")


@admin.register(StepRun)
class StepRunAdmin(ReadOnlyAdmin):
    list_display = ("piece", "position", "step", "workshop", "status", "planned_due")


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    list_display = ("piece", "kind", "workshop", "actor", "occurred_at")
    list_filter = ("kind",)


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("slip_number", "from_workshop", "to_workshop", "status", "sent_at")
