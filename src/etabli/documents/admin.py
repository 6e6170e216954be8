from django.contrib import admin

from etabli.orders.admin import ReadOnlyAdmin

from .models import Document


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("original_name", "order", "piece", "kind", "visibility", "uploaded_at")
