from django.contrib import admin

from .models import Alloy


@admin.register(Alloy)
class AlloyAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "metal", "fineness_permille", "colour", "density_g_cm3")
