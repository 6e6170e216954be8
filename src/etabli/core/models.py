from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AppendOnly:
    """For history rows (tracking events, ledger entries): written once, never changed."""

    append_only_message = "These rows are append-only."

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError(self.append_only_message)
        super().save(*args, **kwargs)


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

    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    action = models.CharField(max_length=60, verbose_name=_("action"))
    object_type = models.CharField(max_length=60, verbose_name=_("object type"))
    object_id = models.CharField(max_length=40, verbose_name=_("object id"))
    object_repr = models.CharField(max_length=200, verbose_name=_("object repr"))
    # Plain ids rather than foreign keys: the trail must outlive what it describes.
    order_id = models.BigIntegerField(null=True, blank=True, db_index=True,
                                      verbose_name=_("order id"))
    piece_id = models.BigIntegerField(null=True, blank=True, db_index=True,
                                      verbose_name=_("piece id"))
    before = models.JSONField(default=dict, blank=True, verbose_name=_("before"))
    after = models.JSONField(default=dict, blank=True, verbose_name=_("after"))

    class Meta:
        verbose_name = _("audit entry")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"


class PeriodicRun(models.Model):
    """When each periodic job (alert detection, notification delivery, digests…) is next due,
    and how its last run went. Schedulers claim a due job by moving `next_run_at` forward in
    one conditional UPDATE, so several workers never run the same pass twice."""

    name = models.CharField(max_length=100, primary_key=True, verbose_name=_("name"))
    next_run_at = models.DateTimeField(verbose_name=_("next run at"))
    last_enqueued_at = models.DateTimeField(null=True, blank=True,
                                            verbose_name=_("last enqueued at"))
    last_started_at = models.DateTimeField(null=True, blank=True,
                                           verbose_name=_("last started at"))
    last_finished_at = models.DateTimeField(null=True, blank=True,
                                            verbose_name=_("last finished at"))
    last_ok = models.BooleanField(null=True, verbose_name=_("last run succeeded"))
    last_result = models.JSONField(null=True, blank=True, verbose_name=_("last result"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))

    class Meta:
        verbose_name = _("periodic job")
        verbose_name_plural = _("periodic jobs")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
