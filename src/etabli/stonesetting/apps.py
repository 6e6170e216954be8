from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StonesettingConfig(AppConfig):
    name = "etabli.stonesetting"
    label = "stonesetting"
    verbose_name = _("Stone setting")
