"""Notifications: what happened, for whom, and how it reaches them.

A `Notification` is one event for one person, stored as a kind + params and rendered in the
recipient's language when it is shown or sent (see `rendering`). E-mails wait in the
`OutgoingEmail` outbox and webhooks in `WebhookDelivery` until the `notifications.deliver` job
sends them, with retries; nothing is sent inside the transaction that caused it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Event(models.TextChoices):
    """What a person (or an integration) may hear of."""

    PIECES_SENT = "pieces_sent", _("Pieces on their way to my workshop")
    ALERT_OPENED = "alert_opened", _("Alerts for me")


class EmailMode(models.TextChoices):
    OFF = "off", _("No e-mail")
    IMMEDIATE = "immediate", _("At once")
    DIGEST = "digest", _("In the daily digest")


# What a person gets before they choose: everything in the inbox, and an e-mail at once.
DEFAULT_INBOX = True
DEFAULT_EMAIL = EmailMode.IMMEDIATE


class NotificationQuerySet(models.QuerySet):
    def visible_to(self, user) -> NotificationQuerySet:
        """Each person sees their own notifications, nobody else's (not even an admin)."""
        if not (getattr(user, "is_authenticated", False) and user.is_active):
            return self.none()
        return self.filter(recipient=user)

    def inbox(self) -> NotificationQuerySet:
        return self.filter(in_inbox=True)

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="notifications", verbose_name=_("recipient"))
    kind = models.CharField(max_length=24, choices=Event.choices, verbose_name=_("kind"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("params"))
    url = models.CharField(max_length=300, blank=True, verbose_name=_("link"))
    piece = models.ForeignKey("production.Piece", null=True, blank=True,
                              on_delete=models.CASCADE, related_name="+", verbose_name=_("piece"))
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+", verbose_name=_("order"))
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("workshop"))
    # The alert, by id: notifications outlive alerts and do not tie the two apps' migrations.
    alert_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("alert"))
    in_inbox = models.BooleanField(default=True, verbose_name=_("in the inbox"))
    created_at = models.DateTimeField(db_index=True, verbose_name=_("created at"))
    read_at = models.DateTimeField(null=True, blank=True, verbose_name=_("read at"))

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The unread count in every page's header, and the inbox list.
            models.Index(fields=["recipient", "in_inbox", "read_at"], name="notif_unread"),
            models.Index(fields=["recipient", "-created_at", "-id"], name="notif_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient_id}"


class Preference(models.Model):
    """One person's choice for one event: inbox or not, e-mail at once, in a digest, or not."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="notification_preferences", verbose_name=_("user"))
    event = models.CharField(max_length=24, choices=Event.choices, verbose_name=_("event"))
    inbox = models.BooleanField(default=DEFAULT_INBOX, verbose_name=_("inbox"))
    email = models.CharField(max_length=10, choices=EmailMode.choices, default=DEFAULT_EMAIL,
                             verbose_name=_("e-mail"))

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "event"], name="one_preference_per_event",
                                    violation_error_message="One preference per event."),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.event}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class OutgoingEmail(models.Model):
    """An e-mail waiting to be sent (the outbox), then its record."""

    class Kind(models.TextChoices):
        NOTIFICATION = "notification", _("Notification")
        DIGEST = "digest", _("Daily digest")

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="+", verbose_name=_("recipient"))
    kind = models.CharField(max_length=14, choices=Kind.choices, verbose_name=_("kind"))
    notification = models.ForeignKey(Notification, null=True, blank=True,
                                     on_delete=models.CASCADE, related_name="emails",
                                     verbose_name=_("notification"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("params"))
    to_address = models.EmailField(blank=True, verbose_name=_("to"))
    subject = models.CharField(max_length=300, blank=True, verbose_name=_("subject"))
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING, verbose_name=_("status"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))

    class Meta:
        verbose_name = _("outgoing e-mail")
        verbose_name_plural = _("outgoing e-mails")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="email_due")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.to_address}"


class DigestLog(models.Model):
    """The day a person's digest went out: at most one per person per day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+", verbose_name=_("user"))
    day = models.DateField(verbose_name=_("day"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    items = models.PositiveIntegerField(default=0, verbose_name=_("items"))

    class Meta:
        verbose_name = _("digest")
        verbose_name_plural = _("digests")
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="one_digest_per_day",
                                    violation_error_message="One digest per person per day."),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.day}"


class WebhookSubscription(models.Model):
    """An integration that receives events as signed JSON POSTs."""

    name = models.CharField(max_length=80, verbose_name=_("name"))
    url = models.URLField(max_length=500, verbose_name=_("URL"))
    secret = models.CharField(max_length=128, verbose_name=_("secret"))
    events = models.JSONField(default=list, verbose_name=_("events"))
    active = models.BooleanField(default=True, verbose_name=_("active"))
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("owner"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one subscription: the body sent, each attempt's outcome, the next try."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE,
                                     related_name="deliveries", verbose_name=_("subscription"))
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                           verbose_name=_("delivery id"))
    event = models.CharField(max_length=24, choices=Event.choices, verbose_name=_("event"))
    payload = models.JSONField(verbose_name=_("payload"))
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING, verbose_name=_("status"))
    attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt"))
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True,
                                                        verbose_name=_("last status code"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="pending_delivery_has_next_attempt"),
        ]

    def __str__(self) -> str:
        return str(self.uid)
