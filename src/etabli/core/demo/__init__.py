"""Demo data: a believable jewellery house, built only through the services.

`build_demo(seed)` writes it (see `story.py` for how), `reset_domain_data()` empties the database
of everything but reference data, and `DEMO_USERS` lists the log-ins (all with `DEMO_PASSWORD`)
for the `demo` and `start` commands to print.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.contrib.auth.hashers import check_password
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from . import steps_alerts
from .catalogue import DEFAULT_SEED, DEMO_PASSWORD, DEMO_USERS, DemoUser

__all__ = ["DEFAULT_SEED", "DEMO_PASSWORD", "DEMO_USERS", "DemoSummary", "DemoUser",
           "build_demo", "demo_loaded", "demo_logins_active", "has_domain_data",
           "reset_domain_data"]

# The user whose presence says the demo has been loaded.
MARKER_USERNAME = "admin"


def demo_loaded() -> bool:
    from etabli.accounts.models import User

    return User.objects.filter(username__iexact=MARKER_USERNAME).exists()


def demo_logins_active() -> bool:
    """True when the demo's administrator still has the demo password (so the list is true)."""
    from etabli.accounts.models import User

    admin = User.objects.filter(username__iexact=MARKER_USERNAME, is_active=True).first()
    return admin is not None and check_password(DEMO_PASSWORD, admin.password)


def has_domain_data() -> dict[str, int]:
    """What the database holds besides reference data (empty when it holds nothing)."""
    from etabli.accounts.models import User
    from etabli.clients.models import Client
    from etabli.orders.models import Order
    from etabli.workshops.models import Workshop, WorkshopKind

    counts = {
        "users": User.objects.count(),
        "clients": Client.objects.count(),
        "orders": Order.objects.count(),
        "workshops": Workshop.objects.exclude(kind=WorkshopKind.HOUSE).count(),
    }
    return {name: n for name, n in counts.items() if n}


def _reset_querysets() -> list:
    """Every kind of row `reset_domain_data` removes. Reference data (operations, alloys, the
    house, the default route template) stays. A new model holding domain data belongs here."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.sessions.models import Session

    from etabli.accounts.models import ApiToken, User
    from etabli.alerts.models import Alert, ObservedDuration
    from etabli.clients.models import Client, ClientContact
    from etabli.core.models import AuditEntry, Sequence
    from etabli.design.models import DesignApproval, Prototype
    from etabli.materials.models import (
        CastingTree,
        Location,
        LocationKind,
        LossAllowance,
        MaterialSlip,
        MaterialSlipLine,
        MetalBalance,
        MetalEntry,
        MetalPrice,
        StockTake,
        StoneAllocation,
        StoneBalance,
        StoneEntry,
        StoneLot,
    )
    from etabli.notifications.models import (
        DigestLog,
        Notification,
        OutgoingEmail,
        WebhookDelivery,
        WebhookSubscription,
    )
    from etabli.orders.models import ChangeRequest, LaunchCheckItem, Order, OrderLine
    from etabli.production.models import (
        OrderRouteStep,
        Piece,
        RouteTemplate,
        StepRun,
        TrackingEvent,
        Transfer,
        TransferLine,
    )
    from etabli.reports.models import PieceFact, StepDay, StepDayDetail
    from etabli.shipping.models import FollowUp, Invoice, Reception, Shipment
    from etabli.stonesetting.models import SettingControl, SettingPlan
    from etabli.workshops.models import Workshop, WorkshopContact, WorkshopKind

    return [
        StepDay.objects.all(),
        StepDayDetail.objects.all(),
        PieceFact.objects.all(),
        OutgoingEmail.objects.all(),
        Notification.objects.all(),
        DigestLog.objects.all(),
        WebhookDelivery.objects.all(),
        WebhookSubscription.objects.all(),
        Alert.objects.all(),
        ObservedDuration.objects.all(),
        FollowUp.objects.all(),
        Reception.objects.all(),
        Invoice.objects.all(),  # its lines go with it
        Shipment.objects.all(),  # its items go with it
        Prototype.objects.all(),
        DesignApproval.objects.all(),  # briefs and rounds go with their lines
        SettingControl.objects.all(),  # its counts go with it
        SettingPlan.objects.all(),  # its groups go with it
        MetalEntry.objects.all(),
        StoneEntry.objects.all(),
        MetalBalance.objects.all(),
        StoneBalance.objects.all(),
        StoneAllocation.objects.all(),
        MaterialSlipLine.objects.all(),
        MaterialSlip.objects.filter(issue__isnull=False),
        MaterialSlip.objects.all(),
        CastingTree.objects.all(),
        StockTake.objects.all(),
        StoneLot.objects.all(),
        MetalPrice.objects.all(),
        LossAllowance.objects.filter(workshop__isnull=False),
        Location.objects.filter(kind=LocationKind.WORKSHOP),
        TrackingEvent.objects.all(),
        TransferLine.objects.all(),
        Transfer.objects.all(),
        StepRun.objects.all(),
        Piece.objects.all(),
        ChangeRequest.objects.all(),
        LaunchCheckItem.objects.all(),
        OrderRouteStep.objects.all(),
        OrderLine.objects.all(),
        Order.objects.all(),
        RouteTemplate.objects.exclude(code="standard").exclude(is_default=True),
        ApiToken.objects.all(),
        LogEntry.objects.all(),
        Session.objects.all(),
        User.objects.all(),
        ClientContact.objects.all(),
        Client.objects.all(),
        WorkshopContact.objects.exclude(workshop__kind=WorkshopKind.HOUSE),
        Workshop.objects.exclude(kind=WorkshopKind.HOUSE),
        AuditEntry.objects.all(),
        Sequence.objects.all(),
    ]


@transaction.atomic
def reset_domain_data() -> None:
    """Delete all domain data (orders, pieces, clients, users, workshops but the house, the
    audit trail, numbering), keeping reference data. All or nothing."""
    pending = _reset_querysets()
    # Deletion order is resolved by retrying what is still referenced, so a model added later
    # with a protecting foreign key only needs adding to the list.
    while pending:
        blocked = []
        for qs in pending:
            try:
                with transaction.atomic():
                    qs.delete()
            except (ProtectedError, RestrictedError) as exc:
                blocked.append((qs, exc))
        if len(blocked) == len(pending):
            qs, exc = blocked[0]
            raise RuntimeError(
                f"Cannot reset: {qs.model._meta.label} rows are still referenced "
                f"({exc.args[0]})") from exc
        pending = [qs for qs, _exc in blocked]


@dataclass
class DemoSummary:
    seed: int
    seconds: float
    workshops: int
    clients: int
    users: int
    orders: dict[str, int] = field(default_factory=dict)
    pieces: dict[str, int] = field(default_factory=dict)
    late_pieces: int = 0
    held_pieces: int = 0
    reworked_pieces: int = 0
    change_requests: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        orders = ", ".join(f"{n} {status}" for status, n in self.orders.items())
        pieces = ", ".join(f"{n} {where}" for where, n in self.pieces.items())
        changes = ", ".join(f"{n} {status}" for status, n in self.change_requests.items())
        return [
            f"Demo house built in {self.seconds:.1f} s (seed {self.seed}):",
            f"  {self.workshops} workshops (with the house), {self.clients} clients, "
            f"{self.users} users",
            f"  orders: {sum(self.orders.values())} ({orders})",
            f"  pieces: {sum(self.pieces.values())} ({pieces})",
            f"  {self.late_pieces} late, {self.held_pieces} on hold, "
            f"{self.reworked_pieces} reworked; change requests: {changes}",
        ]


def summarise(seed: int, seconds: float) -> DemoSummary:
    from django.db.models import Count

    from etabli.accounts.models import User
    from etabli.clients.models import Client
    from etabli.orders.models import ChangeRequest, Order
    from etabli.production.models import Piece, PieceStatus
    from etabli.workshops.models import STEP_ORDER, Workshop

    pieces: dict[str, int] = {}
    active = Piece.objects.exclude(status=PieceStatus.DELIVERED)
    by_step = dict(active.values_list("current_step").annotate(n=Count("id")))
    for step in STEP_ORDER:
        if by_step.get(step):
            pieces[f"at {step}"] = by_step[step]
    pieces["delivered"] = Piece.objects.filter(status=PieceStatus.DELIVERED).count()
    return DemoSummary(
        seed=seed, seconds=seconds,
        workshops=Workshop.objects.count(), clients=Client.objects.count(),
        users=User.objects.count(),
        orders=dict(Order.objects.values_list("status").annotate(n=Count("id"))
                    .order_by("status")),
        pieces=pieces,
        late_pieces=active.filter(current_due__lt=timezone.localdate()).count(),
        held_pieces=active.filter(status=PieceStatus.ON_HOLD).count(),
        reworked_pieces=Piece.objects.filter(rework_count__gt=0).count(),
        change_requests=dict(ChangeRequest.objects.values_list("status")
                             .annotate(n=Count("id")).order_by("status")),
    )


def build_demo(seed: int = DEFAULT_SEED, *, reset: bool = False) -> DemoSummary:
    """Build the demo house in one transaction (after emptying the database with `reset`)."""
    from .story import Story

    started = time.perf_counter()
    with transaction.atomic():
        if reset:
            reset_domain_data()
        Story(seed).play()
        steps_alerts.first_detection()  # the first minute of the alerts worker
    return summarise(seed, time.perf_counter() - started)
