from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ClientKind(models.TextChoices):
    B2B = "b2b", _("Business (B2B)")
    B2C = "b2c", _("Private client (B2C)")


class Channel(models.TextChoices):
    DIRECT = "direct", _("Direct")
    WHOLESALE = "wholesale", _("Wholesale")
    RETAIL = "retail", _("Retail")
    ECOMMERCE = "ecommerce", _("E-commerce")


class ClientQuerySet(models.QuerySet):
    def visible_to(self, user) -> ClientQuerySet:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if user.role == Role.CLIENT:
            return self.filter(pk=user.client_id)
        if user.sees_clients:
            return self
        return self.none()


class Client(models.Model):
    code = models.SlugField(max_length=30, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=160, verbose_name=_("name"))
    kind = models.CharField(max_length=4, choices=ClientKind.choices, default=ClientKind.B2B,
                            verbose_name=_("kind"))
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.DIRECT,
                               verbose_name=_("channel"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    phone = models.CharField(max_length=40, blank=True, verbose_name=_("phone"))
    address = models.TextField(blank=True, verbose_name=_("address"))
    language = models.CharField(max_length=8, default="en", verbose_name=_("language"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    objects = ClientQuerySet.as_manager()

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ClientContact(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="contacts",
                               verbose_name=_("client"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    function = models.CharField(max_length=80, blank=True, verbose_name=_("function"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    phone = models.CharField(max_length=40, blank=True, verbose_name=_("phone"))

    class Meta:
        verbose_name = _("client contact")
        verbose_name_plural = _("client contacts")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.client})"
