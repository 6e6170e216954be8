from __future__ import annotations

import hashlib

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    PRODUCTION_MANAGER = "production_manager", _("Production manager")
    SALES = "sales", _("Sales / order admin")
    DESIGNER = "designer", _("Designer")
    WORKSHOP = "workshop", _("Workshop member")
    QUALITY = "quality", _("Quality inspector")
    LOGISTICS = "logistics", _("Logistics")
    CLIENT = "client", _("Client contact")


# Roles that see the whole house: every order, piece and workshop.
HOUSE_WIDE_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.SALES})
# Roles that may see prices (target prices, values).
PRICE_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.SALES})
# Roles that may plan and run production anywhere.
PRODUCTION_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER})
# Roles that may take and qualify orders.
ORDER_ROLES = frozenset({Role.ADMIN, Role.PRODUCTION_MANAGER, Role.SALES})
# House staff who see client identities.
HOUSE_STAFF_ROLES = frozenset(set(Role) - {Role.WORKSHOP, Role.CLIENT})


class User(AbstractUser):
    role = models.CharField(max_length=24, choices=Role.choices, default=Role.SALES,
                            verbose_name=_("role"))
    workshops = models.ManyToManyField("workshops.Workshop", blank=True, related_name="members",
                                       verbose_name=_("workshops"))
    client = models.ForeignKey(
        "clients.Client", null=True, blank=True, on_delete=models.PROTECT, related_name="users",
        verbose_name=_("client"),
    )
    language = models.CharField(max_length=8, default="en", choices=[("en", "English"),
                                                                      ("fr", "Français")],
                                verbose_name=_("language"))

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                name="client_contact_has_client",
                condition=Q(role="client", client__isnull=False) | ~Q(role="client"),
                violation_error_message="A client contact must be bound to a client.",
            ),
        ]

    @property
    def is_house_wide(self) -> bool:
        return self.is_active and self.role in HOUSE_WIDE_ROLES

    @property
    def sees_prices(self) -> bool:
        return self.is_active and self.role in PRICE_ROLES

    @property
    def sees_clients(self) -> bool:
        return self.is_active and self.role in HOUSE_STAFF_ROLES

    @property
    def runs_production(self) -> bool:
        return self.is_active and self.role in PRODUCTION_ROLES

    @property
    def takes_orders(self) -> bool:
        return self.is_active and self.role in ORDER_ROLES

    def workshop_ids(self) -> set[int]:
        if not hasattr(self, "_workshop_ids"):
            self._workshop_ids = set(self.workshops.values_list("id", flat=True))
        return self._workshop_ids


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """A per-user API key. Only its SHA-256 is stored; the key itself is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens",
                             verbose_name=_("user"))
    name = models.CharField(max_length=80, default="api", verbose_name=_("name"))
    prefix = models.CharField(max_length=12, help_text=_("First characters, to recognise the key"),
                              verbose_name=_("prefix"))
    key_hash = models.CharField(max_length=64, unique=True, verbose_name=_("key hash"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    class Meta:
        verbose_name = _("api token")
        verbose_name_plural = _("api tokens")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user.username}:{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
