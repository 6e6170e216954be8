from __future__ import annotations

from django.conf import settings
from django.db import models


class Sequence(models.Model):
    """Counters for human-readable numbers (order references, serials, slip numbers).

    Incremented under a row lock inside the caller's transaction, so numbers are unique and
    gap-free per key even with several app servers.
    """

    key = models.CharField(max_length=40, unique=True)
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}={self.last_value}"


class AuditEntry(models.Model):
    """Who changed what, when, with the values before and after. Written only by services."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40)
    object_repr = models.CharField(max_length=200)
    # Plain ids rather than foreign keys: the trail must outlive what it describes.
    order_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    piece_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"
