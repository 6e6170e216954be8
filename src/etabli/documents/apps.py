from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "etabli.documents"
    label = "documents"
    verbose_name = "Documents"
