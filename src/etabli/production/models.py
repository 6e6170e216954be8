from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from etabli.core.models import AppendOnly
from etabli.workshops.models import StepKind


class RouteTemplate(models.Model):
    code = models.SlugField(max_length=40, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    is_default = models.BooleanField(default=False, verbose_name=_("is default"))

    class Meta:
        verbose_name = _("route template")
        verbose_name_plural = _("route templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="one_default_route_template"),
        ]

    def __str__(self) -> str:
        return self.name


class RouteStepBase(models.Model):
    """What a route step says: which step, its operations, where, and how long it should take."""

    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    step = models.CharField(max_length=20, choices=StepKind.choices, verbose_name=_("step"))
    operations = models.JSONField(default=list, blank=True,
                                  help_text=_("Operation codes done in this step, in order"),
                                  verbose_name=_("operations"))
    planned_days = models.PositiveSmallIntegerField(default=1, verbose_name=_("planned days"))
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("workshop"))

    class Meta:
        abstract = True
        ordering = ["position"]


class RouteTemplateStep(RouteStepBase):
    template = models.ForeignKey(RouteTemplate, on_delete=models.CASCADE, related_name="steps",
                                 verbose_name=_("template"))

    class Meta(RouteStepBase.Meta):
        verbose_name = _("route template step")
        verbose_name_plural = _("route template steps")
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

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="route",
                              verbose_name=_("order"))
    skipped = models.BooleanField(default=False, verbose_name=_("skipped"))
    skip_reason = models.CharField(max_length=30, blank=True, choices=SkipReason.choices,
                                   verbose_name=_("skip reason"))
    skip_comment = models.TextField(blank=True, verbose_name=_("skip comment"))
    skip_reference = models.CharField(
        max_length=200, blank=True,
        help_text=_("Document reference (e.g. client's signed waiver)"),
        verbose_name=_("skip reference"))
    skip_document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text=_("The client's written acceptance, attached to the order"),
        verbose_name=_("skip document"))

    class Meta(RouteStepBase.Meta):
        verbose_name = _("order route step")
        verbose_name_plural = _("order route steps")
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

    serial = models.CharField(max_length=30, unique=True, verbose_name=_("serial"))
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="pieces",
                              verbose_name=_("order"))
    line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="pieces",
                             verbose_name=_("line"))
    unit_no = models.PositiveIntegerField(verbose_name=_("unit no"))
    status = models.CharField(max_length=12, choices=PieceStatus.choices,
                              default=PieceStatus.READY, verbose_name=_("status"))
    current_run = models.ForeignKey("StepRun", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("current run"))
    current_step = models.CharField(max_length=20, choices=StepKind.choices, blank=True,
                                    verbose_name=_("current step"))
    current_workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="+",
                                         verbose_name=_("current workshop"))
    current_due = models.DateField(null=True, blank=True, verbose_name=_("current due"))
    location = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="pieces_here",
                                 help_text=_("Where the piece physically is "
                                             "(empty while travelling)"),
                                 verbose_name=_("location"))
    transit_to = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="pieces_incoming",
                                   verbose_name=_("transit to"))
    rework_count = models.PositiveSmallIntegerField(default=0, verbose_name=_("rework count"))
    theoretical_weight_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                               blank=True, verbose_name=_("theoretical weight g"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_event_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last event at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))

    objects = PieceQuerySet.as_manager()

    class Meta:
        verbose_name = _("piece")
        verbose_name_plural = _("pieces")
        ordering = ["serial"]
        indexes = [
            models.Index(fields=["status", "current_step"]),
            models.Index(fields=["current_workshop", "status"]),
            models.Index(fields=["current_due"]),
            # The dashboard's board: its counts per step × workshop read this index only, and
            # each cell's first pieces (soonest due) are a short scan of it.
            models.Index(fields=["current_step", "current_workshop", "current_due", "serial",
                                 "status"],
                         condition=Q(status__in=ACTIVE_PIECE_STATUSES),
                         name="piece_active_board_idx"),
            # Pieces in production by due date: the late list, its count, "due this week".
            models.Index(fields=["current_due", "serial", "id"],
                         condition=Q(status__in=ACTIVE_PIECE_STATUSES),
                         name="piece_active_due_idx"),
            # Reports computed from the history select pieces delivered in a period.
            models.Index(fields=["delivered_at"], name="piece_delivered_idx"),
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

    piece = models.ForeignKey(Piece, on_delete=models.CASCADE, related_name="runs",
                              verbose_name=_("piece"))
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))
    step = models.CharField(max_length=20, choices=StepKind.choices, verbose_name=_("step"))
    operations = models.JSONField(default=list, blank=True, verbose_name=_("operations"))
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                 related_name="step_runs", verbose_name=_("workshop"))
    status = models.CharField(max_length=12, choices=StepStatus.choices,
                              default=StepStatus.PENDING, verbose_name=_("status"))
    held_from = models.CharField(max_length=12, blank=True,
                                 help_text=_("Status to return to when released"),
                                 verbose_name=_("held from"))
    attempt = models.PositiveSmallIntegerField(default=1, verbose_name=_("attempt"))
    reworked = models.BooleanField(default=False, help_text=_("Ended by sending the piece back"),
                                   verbose_name=_("reworked"))
    planned_days = models.PositiveSmallIntegerField(default=1, verbose_name=_("planned days"))
    planned_start = models.DateField(null=True, blank=True, verbose_name=_("planned start"))
    planned_due = models.DateField(null=True, blank=True, verbose_name=_("planned due"))
    actual_start = models.DateTimeField(null=True, blank=True, verbose_name=_("actual start"))
    actual_finish = models.DateTimeField(null=True, blank=True, verbose_name=_("actual finish"))
    skip_reason = models.CharField(max_length=30, blank=True, choices=SkipReason.choices,
                                   verbose_name=_("skip reason"))
    skip_comment = models.TextField(blank=True, verbose_name=_("skip comment"))
    skip_reference = models.CharField(max_length=200, blank=True, verbose_name=_("skip reference"))
    skip_document = models.ForeignKey("documents.Document", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="+",
                                      verbose_name=_("skip document"))

    class Meta:
        verbose_name = _("step run")
        verbose_name_plural = _("step runs")
        ordering = ["piece", "position"]
        indexes = [
            models.Index(fields=["workshop", "status"]),
            models.Index(fields=["piece", "position"]),
            # Reports computed from the history select runs finished / started in a period.
            models.Index(fields=["actual_finish"], name="steprun_finish_idx"),
            models.Index(fields=["actual_start"], name="steprun_start_idx"),
            # The steps still to do of the pieces in production (order-at-risk projection):
            # on PostgreSQL an index-only read of what the projection needs.
            models.Index(fields=["piece"], include=["step", "workshop", "planned_days"],
                         condition=Q(status="pending"), name="steprun_pending_idx"),
            # The open runs (one per piece in production) with what alert detection reads.
            models.Index(fields=["id"], include=["planned_days", "actual_start"],
                         condition=Q(status__in=OPEN_STEP_STATUSES), name="steprun_open_idx"),
            # The pieces that had a step at a workshop (reports filtered by workshop): an
            # index-only read on PostgreSQL.
            models.Index(fields=["workshop", "piece"], name="steprun_workshop_piece_idx"),
        ]
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


class TrackingEvent(AppendOnly, models.Model):
    """An append-only fact about a piece. Never updated, never deleted."""

    append_only_message = "Tracking events are append-only."

    piece = models.ForeignKey(Piece, on_delete=models.PROTECT, related_name="events",
                              verbose_name=_("piece"))
    step_run = models.ForeignKey(StepRun, on_delete=models.PROTECT, related_name="events",
                                 verbose_name=_("step run"))
    kind = models.CharField(max_length=10, choices=EventKind.choices, verbose_name=_("kind"))
    workshop = models.ForeignKey("workshops.Workshop", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+",
                                 help_text=_("Where it happened"), verbose_name=_("workshop"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                              related_name="+", verbose_name=_("actor"))
    occurred_at = models.DateTimeField(db_index=True, verbose_name=_("occurred at"))
    weight_g = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                   verbose_name=_("weight g"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))
    reason = models.CharField(max_length=30, blank=True, verbose_name=_("reason"))
    transfer = models.ForeignKey("Transfer", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="events", verbose_name=_("transfer"))
    client_event_id = models.CharField(max_length=64, null=True, blank=True,
                                       help_text=_("Caller's id, so a repeated scan counts once"),
                                       verbose_name=_("client event id"))
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))

    objects = TrackingEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["piece", "id"]
        indexes = [
            models.Index(fields=["piece", "id"]),
            # When each held piece was put on hold (the dashboard's held panel).
            models.Index(fields=["piece", "id"], condition=Q(kind="held"),
                         name="event_held_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["client_event_id"],
                                    condition=Q(client_event_id__isnull=False),
                                    name="tracking_event_client_id_unique"),
            models.CheckConstraint(condition=Q(weight_g__isnull=True) | Q(weight_g__gt=0),
                                   name="tracking_event_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.piece_id}:{self.kind}@{self.occurred_at:%Y-%m-%d %H:%M}"



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

    slip_number = models.CharField(max_length=30, unique=True, verbose_name=_("slip number"))
    from_workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                      related_name="transfers_out", verbose_name=_("from workshop"))
    to_workshop = models.ForeignKey("workshops.Workshop", on_delete=models.PROTECT,
                                    related_name="transfers_in", verbose_name=_("to workshop"))
    status = models.CharField(max_length=10, choices=TransferStatus.choices,
                              default=TransferStatus.SENT, db_index=True, verbose_name=_("status"))
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                related_name="+", verbose_name=_("sent by"))
    sent_at = models.DateTimeField(verbose_name=_("sent at"))
    received_at = models.DateTimeField(null=True, blank=True, verbose_name=_("received at"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))
    client_ref = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                  help_text=_("Caller's id, so a repeated submission counts once"),
                                  verbose_name=_("client ref"))

    objects = TransferQuerySet.as_manager()

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(from_workshop=models.F("to_workshop")),
                                   name="transfer_between_two_places",
                                   violation_error_message="A transfer goes between two places."),
        ]

    def __str__(self) -> str:
        return self.slip_number


class TransferLine(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.CASCADE, related_name="lines",
                                 verbose_name=_("transfer"))
    piece = models.ForeignKey(Piece, on_delete=models.PROTECT, related_name="transfer_lines",
                              verbose_name=_("piece"))
    step_run = models.ForeignKey(StepRun, on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("step run"))
    weight_sent_g = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True,
                                        verbose_name=_("weight sent g"))
    weight_received_g = models.DecimalField(max_digits=10, decimal_places=3, null=True,
                                            blank=True, verbose_name=_("weight received g"))
    weight_flagged = models.BooleanField(default=False,
                                         help_text=_("Received weight differs beyond tolerance"),
                                         verbose_name=_("weight flagged"))
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("received by"))
    received_at = models.DateTimeField(null=True, blank=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("transfer line")
        verbose_name_plural = _("transfer lines")
        ordering = ["transfer", "id"]
        constraints = [
            models.UniqueConstraint(fields=["transfer", "piece"], name="transfer_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.transfer.slip_number}:{self.piece.serial}"
