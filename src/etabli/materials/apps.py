from django.apps import AppConfig


class MaterialsConfig(AppConfig):
    name = "etabli.materials"
    label = "materials"
    verbose_name = "Materials"
