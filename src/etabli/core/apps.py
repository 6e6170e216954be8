from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "etabli.core"
    label = "core"
    verbose_name = "Core"
