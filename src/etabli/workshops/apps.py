from django.apps import AppConfig


class WorkshopsConfig(AppConfig):
    name = "etabli.workshops"
    label = "workshops"
    verbose_name = "Workshops"
