from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "etabli.orders"
    label = "orders"
    verbose_name = "Orders"
