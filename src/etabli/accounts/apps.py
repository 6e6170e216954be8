from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "etabli.accounts"
    label = "accounts"
    verbose_name = "Accounts"
