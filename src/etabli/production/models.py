from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etabli.workshops.models import StepKind


class RouteTemplate(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="one_default_route_template"),
        ]

    def __str__(self) -> str:
        return self.name


class RouteStepBase(models.Model):
    """What a route step says: which step, its operations, where, and how long it should take."""

    position = models.PositiveSmallIntegerField()
    step = models.CharField(max_length=20, choices=StepKind.choices)
    operations = models.JSONField(default=list, blank=True,
                                  help_text="Operation codes done in this step, in order")
    planned_days = models.PositiveSmallIntegerField(default=1)
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True
        ordering = ["position"]


class RouteTemplateStep(RouteStepBase):
    template = models.ForeignKey(RouteTemplate, on_delete=models.CASCADE, related_name="steps")

    class Meta(RouteStepBase.Meta):
        ordering = ["template", "position"]

    def __str__(self) -> str:
        return f"{self.template.code}#{self.position} {self.step}"


class SkipReason(models.TextChoices):
    # The three accepted reasons to skip prototyping (DESIGN.md, issue #2).
    EXACT_REPRODUCTION = "exact_reproduction", _("Exact reproduction of an existing model")
    SIMPLE_DESIGN = "simple_design", _("Simple design")
    CLIENT_RISK_ACCEPTANCE = "client_risk_acceptance", _("Client's written acceptance of the risk")
    OTHER = "other", _("Other (explained)")


class OrderRouteStep(RouteStepBase):
    """The route of one order, copied from a template and adjusted before launch."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="route")
    skipped = models.BooleanField(default=False)
    skip_reason = models.CharField(max_length=30, blank=True, choices=SkipReason.choices)
    skip_comment = models.TextField(blank=True)
    skip_reference = models.CharField(max_length=200, blank=True,
                                      help_text="Document reference (e.g. client's signed waiver)")

    class Meta(RouteStepBase.Meta):
        ordering = ["order", "position"]

    def __str__(self) -> str:
        return f"{self.order.reference}#{self.position} {self.step}"


class StepStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    READY = "ready", _("Ready")
    IN_TRANSIT = "in_transit", _("In transit")
    RECEIVED = "received", _("Received")
    IN_PROGRESS = "in_progress", _("In progress")
    ON_HOLD = "on_hold", _("On hold")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")


# A piece has at most one open step run: the one it is waiting for, travelling to or in.
OPEN_STEP_STATUSES = (StepStatus.READY, StepStatus.IN_TRANSIT, StepStatus.RECEIVED,
                      StepStatus.IN_PROGRESS, StepStatus.ON_HOLD)
CLOSED_STEP_STATUSES = (StepStatus.DONE, StepStatus.SKIPPED)


class PieceStatus(models.TextChoices):
    READY = "ready", _("Ready for its next step")
    IN_TRANSIT = "in_transit", _("In transit")
    RECEIVED = "received", _("Received, waiting to start")
    IN_PROGRESS = "in_progress", _("In progress")
    ON_HOLD = "on_hold", _("On hold")
    DELIVERED = "delivered", _("Delivered")


ACTIVE_PIECE_STATUSES = (PieceStatus.READY, PieceStatus.IN_TRANSIT, PieceStatus.RECEIVED,
                         PieceStatus.IN_PROGRESS, PieceStatus.ON_HOLD)


class PieceQuerySet(models.QuerySet):
    def visible_to(self, user) -> PieceQuerySet:
        """The one place that says which pieces a user may see (API and pages start here)."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role

        if user.is_house_wide:
            return self
        if user.role == Role.WORKSHOP:
            ids = user.workshop_ids()
            return self.filter(Q(location_id__in=ids) | Q(transit_to_id__in=ids))
        if user.role == Role.CLIENT:
            return self.filter(order__client_id=user.client_id)
        if user.role == Role.DESIGNER:
            return self.filter(current_step__in=[StepKind.DESIGN, StepKind.PROTOTYPING])
        if user.role == Role.QUALITY:
            return self.filter(current_step=StepKind.FINISHING)
        if user.role == Role.LOGISTICS:
            # Logistics ships to clients and dispatches from the house to the workshops.
            return self.filter(Q(current_step=StepKind.DELIVERY)
                               | Q(location__kind="house", status=PieceStatus.READY)
                               | Q(transit_to__kind="house"))
        return self.none()


class Piece(models.Model):
    """One physical object, with its serial number and job bag.

    The `current_*`, `status`, `location` and `transit_to` fields are a cache of what the
    tracking events say; only the production services write them, in the same transaction as
    the event, and `derive_piece_state` recomputes them from the events to prove it.
    """

    serial = models.CharField(max_length=30, unique=True)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="pieces")
    line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="pieces")
    unit_no = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=PieceStatus.choices,
                              default=PieceStatus.READY)
    current_run = models.ForeignKey("StepRun", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    current_step = models.CharField(max_length=20, choices=StepKind.choices, blank=True)
    current_workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="+")
    current_due = models.DateField(null=True, blank=True)
    location = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="pieces_here",
                                 help_text="Where the piece physically is (empty while travelling)")
    transit_to = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="pieces_incoming")
    rework_count = models.PositiveSmallIntegerField(default=0)
    theoretical_weight_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                               blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = PieceQuerySet.as_manager()

    class Meta:
        ordering = ["serial"]
        indexes = [
            models.Index(fields=["status", "current_step"]),
            models.Index(fields=["current_workshop", "status"]),
            models.Index(fields=["current_due"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["line", "unit_no"], name="piece_unit_unique"),
            models.CheckConstraint(
                name="piece_location_xor_transit",
                condition=(Q(status="in_transit", location__isnull=True,
                             transit_to__isnull=False)
                           | (~Q(status="in_transit") & Q(transit_to__isnull=True))),
                violation_error_message="A piece is either at a location or in transit.",
            ),
        ]

    def __str__(self) -> str:
        return self.serial

    @property
    def right_first_time(self) -> bool:
        return self.rework_count == 0


class StepRun(models.Model):
    """One step of one piece's route: where, when planned, what actually happened."""

    piece = models.ForeignKey(Piece, on_delete=models.CASCADE, related_name="runs")
    position = models.PositiveSmallIntegerField()
    step = models.CharField(max_length=20, choices=StepKind.choices)
    operations = models.JSONField(default=list, blank=True)
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                 related_name="step_runs")
    status = models.CharField(max_length=12, choices=StepStatus.choices,
                              default=StepStatus.PENDING)
    held_from = models.CharField(max_length=12, blank=True,
                                 help_text="Status to return to when released")
    attempt = models.PositiveSmallIntegerField(default=1)
    reworked = models.BooleanField(default=False, help_text="Ended by sending the piece back")
    planned_days = models.PositiveSmallIntegerField(default=1)
    planned_start = models.DateField(null=True, blank=True)
    planned_due = models.DateField(null=True, blank=True)
    actual_start = models.DateTimeField(null=True, blank=True)
    actual_finish = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=30, blank=True, choices=SkipReason.choices)
    skip_comment = models.TextField(blank=True)
    skip_reference = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["piece", "position"]
        indexes = [models.Index(fields=["workshop", "status"]),
                   models.Index(fields=["piece", "position"])]
        constraints = [
            models.UniqueConstraint(
                fields=["piece"], condition=Q(status__in=OPEN_STEP_STATUSES),
                name="one_open_step_per_piece",
                violation_error_message="A piece can have only one open step.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.piece.serial}#{self.position} {self.step}"


class EventKind(models.TextChoices):
    RECEIVED = "received", _("Received")
    STARTED = "started", _("Started")
    COMPLETED = "completed", _("Completed")
    SENT = "sent", _("Sent")
    HELD = "held", _("Held")
    RELEASED = "released", _("Released")
    REWORK = "rework", _("Sent back for rework")
    NOTE = "note", _("Note")


class HoldReason(models.TextChoices):
    QUALITY_STOP = "quality_stop", _("Quality stop")
    MATERIAL_UNAVAILABLE = "material_unavailable", _("Material unavailable")
    CLIENT_CHANGE_REQUEST = "client_change_request", _("Client change request")
    CAPACITY = "capacity", _("Capacity exceeded")
    OTHER = "other", _("Other")


class TrackingEventQuerySet(models.QuerySet):
    def visible_to(self, user) -> TrackingEventQuerySet:
        return self.filter(piece__in=Piece.objects.visible_to(user))


class TrackingEvent(models.Model):
    """An append-only fact about a piece. Never updated, never deleted."""

    piece = models.ForeignKey(Piece, on_delete=models.PROTECT, related_name="events")
    step_run = models.ForeignKey(StepRun, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+",
                                 help_text="Where it happened")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                              related_name="+")
    occurred_at = models.DateTimeField(db_index=True)
    weight_g = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    comment = models.TextField(blank=True)
    reason = models.CharField(max_length=30, blank=True)
    transfer = models.ForeignKey("Transfer", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="events")
    client_event_id = models.CharField(max_length=64, null=True, blank=True,
                                       help_text="Caller's id, so a repeated scan counts once")
    data = models.JSONField(default=dict, blank=True)

    objects = TrackingEventQuerySet.as_manager()

    class Meta:
        ordering = ["piece", "id"]
        indexes = [models.Index(fields=["piece", "id"])]
        constraints = [
            models.UniqueConstraint(fields=["client_event_id"],
                                    condition=Q(client_event_id__isnull=False),
                                    name="tracking_event_client_id_unique"),
            models.CheckConstraint(condition=Q(weight_g__isnull=True) | Q(weight_g__gt=0),
                                   name="tracking_event_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.piece_id}:{self.kind}@{self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        # Append-only: an event, once written, is history.
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("Tracking events are append-only.")
        super().save(*args, **kwargs)


class TransferStatus(models.TextChoices):
    SENT = "sent", _("Sent")
    PARTIAL = "partial", _("Partly received")
    RECEIVED = "received", _("Received")


class TransferQuerySet(models.QuerySet):
    def visible_to(self, user) -> TransferQuerySet:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        from etabli.accounts.models import Role
        from etabli.workshops.models import WorkshopKind

        if user.is_house_wide or user.role == Role.LOGISTICS:
            return self
        if user.role == Role.WORKSHOP:
            ids = user.workshop_ids()
            return self.filter(Q(from_workshop_id__in=ids) | Q(to_workshop_id__in=ids))
        if user.role in {Role.DESIGNER, Role.QUALITY}:
            return self.filter(Q(from_workshop__kind=WorkshopKind.HOUSE)
                               | Q(to_workshop__kind=WorkshopKind.HOUSE))
        return self.none()


class Transfer(models.Model):
    """A transfer slip: pieces moving from one location to another, sent then received."""

    slip_number = models.CharField(max_length=30, unique=True)
    from_workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                      related_name="transfers_out")
    to_workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                    related_name="transfers_in")
    status = models.CharField(max_length=10, choices=TransferStatus.choices,
                              default=TransferStatus.SENT, db_index=True)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                related_name="+")
    sent_at = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text="Caller's id, so a repeated submission counts once")

    objects = TransferQuerySet.as_manager()

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(from_workshop=models.F("to_workshop")),
                                   name="transfer_between_two_places",
                                   violation_error_message="A transfer goes between two places."),
        ]

    def __str__(self) -> str:
        return self.slip_number


class TransferLine(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines")
    piece = models.ForeignKey(Piece, on_delete=models.PROTECT, related_name="transfer_lines")
    step_run = models.ForeignKey(StepRun, on_delete=models.PROTECT, related_name="+")
    weight_sent_g = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    weight_received_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                            blank=True)
    weight_flagged = models.BooleanField(default=False,
                                         help_text="Received weight differs beyond tolerance")
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["transfer", "id"]
        constraints = [
            models.UniqueConstraint(fields=["transfer", "piece"], name="transfer_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.transfer.slip_number}:{self.piece.serial}"
