from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import Document


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    """Read-only: documents change through their services (audited) and are downloaded through
    the access-checked /documents/<token>/ view."""

    list_display = ("original_name", "version", "is_current", "order", "line", "piece", "kind",
                    "visibility", "content_type", "size_bytes", "uploaded_at")
    list_filter = ("kind", "visibility", "is_current", "content_type")
    search_fields = ("original_name", "family", "sha256", "order__reference", "piece__serial")
    list_select_related = ("order", "line", "piece")
