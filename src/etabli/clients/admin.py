from django.contrib import admin

from .models import Client, ClientContact


class ContactInline(admin.TabularInline):
    model = ClientContact
    extra = 0


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind", "channel")
    list_filter = ("kind", "channel")
    search_fields = ("code", "name")
    inlines = [ContactInline]
