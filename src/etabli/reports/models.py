"""Summary tables of the reports: what the history says, kept as it happens.

A year of history at a large house is millions of step runs; a KPI report must not read them
all. The production services add each fact here in the same transaction as the event that makes
it (`reports.summaries`), so a report reads one row per day, step and workshop, or one narrow
row per piece. `etabli reports rebuild` recomputes both tables from the history (after a bulk
import, or to check them); tests prove the two ways agree.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class StepCounts(models.Model):
    """What step runs did on a day: the counters the step figures are sums of."""

    day = models.DateField(verbose_name=_("day"))
    step = models.CharField(max_length=20, verbose_name=_("step"))
    workshop = models.ForeignKey("workshops.Workshop", on_delete=models.CASCADE,
                                 related_name="+", verbose_name=_("workshop"))
    # Runs finished done that day (day of actual_finish).
    done_runs = models.PositiveIntegerField(default=0)
    first_attempt_runs = models.PositiveIntegerField(default=0)
    # Of those, the runs with a start: their working time against their plan.
    timed_runs = models.PositiveIntegerField(default=0)
    work_seconds = models.FloatField(default=0)
    planned_days = models.FloatField(default=0)
    over_plan_runs = models.PositiveIntegerField(default=0)
    # Runs started that day (day of actual_start, not the first of the route) whose wait is
    # known: start − the later of the previous step's finish and the arrival at the workshop.
    queued_runs = models.PositiveIntegerField(default=0)
    queue_seconds = models.FloatField(default=0)
    queue_max_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True


class StepDay(StepCounts):
    """What the step runs of one step at one workshop did on one (local) day."""

    class Meta:
        verbose_name = _("step day")
        verbose_name_plural = _("step days")
        constraints = [models.UniqueConstraint(fields=["day", "step", "workshop"],
                                               name="reports_stepday_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.step} {self.workshop_id}"


class StepDayDetail(StepCounts):
    """The same counts split by what the pieces are (client, channel, model, alloy): the step
    figures of a report filtered on those read these rows, not the runs.

    About one row for every one or two runs at a large house (the series of one order line
    move together); `StepDay` answers the reports without such a filter from far fewer rows.
    """

    client = models.ForeignKey("clients.Client", on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+", verbose_name=_("client"))
    channel = models.CharField(max_length=10, verbose_name=_("channel"))
    model_reference = models.CharField(max_length=60, blank=True,
                                       verbose_name=_("model reference"))
    # The alloy's id, 0 for none: part of the key, which a NULL would not match.
    alloy_key = models.PositiveBigIntegerField(default=0, verbose_name=_("alloy"))

    class Meta:
        verbose_name = _("step day detail")
        verbose_name_plural = _("step day details")
        constraints = [models.UniqueConstraint(
            fields=["day", "step", "workshop", "client", "channel", "model_reference",
                    "alloy_key"], name="reports_stepdaydetail_key")]
        indexes = [
            models.Index(fields=["client", "day"], name="stepdaydetail_client_idx"),
            models.Index(fields=["channel", "day"], name="stepdaydetail_channel_idx"),
            models.Index(fields=["model_reference", "day"], name="stepdaydetail_model_idx"),
            models.Index(fields=["alloy_key", "day"], name="stepdaydetail_alloy_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.step} {self.workshop_id} {self.client_id} {self.channel}"


class PieceFact(models.Model):
    """A piece's lead times, once known, with what the reports filter pieces by."""

    piece = models.OneToOneField("production.Piece", primary_key=True,
                                 on_delete=models.CASCADE, related_name="+",
                                 verbose_name=_("piece"))
    # Copies of the order's and line's dimensions (they do not change once launched).
    client = models.ForeignKey("clients.Client", on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+", verbose_name=_("client"))
    channel = models.CharField(max_length=10, verbose_name=_("channel"))
    model_reference = models.CharField(max_length=60, blank=True,
                                       verbose_name=_("model reference"))
    alloy = models.ForeignKey("materials.Alloy", null=True, blank=True,
                              on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="+", verbose_name=_("alloy"))
    # Launch → the piece's last manufacturing step done (local day of that finish).
    manufactured_on = models.DateField(null=True, blank=True, db_index=True)
    manufacturing_seconds = models.FloatField(null=True, blank=True)
    # Order → delivery (local day of the delivery).
    delivered_on = models.DateField(null=True, blank=True, db_index=True)
    lead_seconds = models.FloatField(null=True, blank=True)
    on_time = models.BooleanField(null=True, blank=True)  # None: no promised date
    right_first_time = models.BooleanField(null=True, blank=True)

    class Meta:
        verbose_name = _("piece fact")
        verbose_name_plural = _("piece facts")

    def __str__(self) -> str:
        return f"piece {self.piece_id}"
