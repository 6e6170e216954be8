from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FinishingConfig(AppConfig):
    name = "etabli.finishing"
    label = "finishing"
    verbose_name = _("Finishing")
