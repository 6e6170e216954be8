from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "etabli.clients"
    label = "clients"
    verbose_name = "Clients"
