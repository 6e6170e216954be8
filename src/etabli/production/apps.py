from django.apps import AppConfig


class ProductionConfig(AppConfig):
    name = "etabli.production"
    label = "production"
    verbose_name = "Production"
