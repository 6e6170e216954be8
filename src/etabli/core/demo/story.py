"""The demo house's last five months, played through the services.

Every row is written by a service (`workshop_create`, `order_create`, `order_launch`,
`pieces_send`, `piece_rework`, …) exactly as the pages and the API would write it: checklists,
routes, step runs, tracking events, transfer slips and the audit trail are all genuine.

To make the dates believable (orders taken weeks ago, pieces late against their plan, lead
times worth measuring) the story is played on a simulated clock: while it runs,
`django.utils.timezone.now` answers the time of the scene being played. Scenes of all orders
are merged and played in time order, so order references, serial numbers and slip numbers
follow the calendar. The clock never goes past the real present.

Everything is decided by `random.Random(seed)` before anything is written: the same seed gives
the same house.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from types import SimpleNamespace

from django.conf import settings
from django.utils import timezone

from etabli.accounts.models import User
from etabli.accounts.services import user_create
from etabli.clients.models import Client
from etabli.clients.services import client_create
from etabli.orders.models import LAUNCH_CHECKLIST, Order
from etabli.production import planning, routing
from etabli.production.models import RouteTemplate
from etabli.workshops.models import Workshop
from etabli.workshops.selectors import house as house_workshop
from etabli.workshops.services import workshop_create, workshop_update

from . import catalogue as cat
from .materials import play_materials
from .scenes import HOUSE, OrderRun

HOUR = dt.timedelta(hours=1)
# Where the pieces of launched orders are today: step → number of orders.
LAUNCHED_AT = [("design", 6), ("prototyping", 6), ("manufacturing", 15), ("setting", 11),
               ("finishing", 10), ("delivery", 7), ("delivered", 16)]
DRAFTS = [("draft_new", 2), ("draft_partial", 3), ("draft_ready", 2), ("cancelled", 2)]
LATE_ORDERS = 10
STORY_DAYS = 150  # the house was set up this long ago
CUSTOM_CLIENTS = ["camille-rousseau", "lorenzo-bianchi", "sophie-van-damme",
                  "helene-de-montaigu", "thomas-girard", "maison-delacroix",
                  "gioielleria-ferraro", "galeries-saint-honore"]


# ---------------------------------------------------------------------------------------------
# the clock


class _Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@contextmanager
def simulated_clock(start: dt.datetime) -> Iterator[_Clock]:
    """Make `timezone.now()` answer `clock.at` until the block ends."""
    clock = _Clock(start)
    real_now = timezone.now
    timezone.now = clock
    try:
        yield clock
    finally:
        timezone.now = real_now


# ---------------------------------------------------------------------------------------------
# what is decided before anything is written


@dataclass(eq=False)  # scenarios are picked from lists by identity, never by value
class Scenario:
    """Where one order stands today and what happened to it on the way."""

    state: str  # draft_new, draft_partial, draft_ready, cancelled, launched
    step: str = ""  # launched: the step its pieces are at, or "delivered"
    late: bool = False
    hold: cat.Incident | None = None  # on hold today
    mid_hold: cat.Incident | None = None  # held and released on the way
    rework: bool = False
    change: str = ""  # a change request: open, assessed, approved, rejected
    change_by: str = "sales"
    override: bool = False  # launched with a promise shorter than the route allows
    client: str = ""
    model: str = ""
    text: str = ""  # why it was cancelled, or why the short promise was accepted


@dataclass
class Leg:
    """One step of a piece's route still to walk after the launch."""

    step: str
    workshop: str
    days: int
    operations: list[str]
    rework_to: int | None = None  # this leg ends by sending the piece back to that leg


@dataclass
class RouteEdit:
    """A change to a draft order's route, made through `production.routing`."""

    kind: str  # assign, skip, add
    position: int
    workshop: str | None = None
    days: int | None = None
    operations: list[str] | None = None
    step: str = ""
    reason: str = ""
    comment: str = ""
    reference: str = ""

    def apply(self, spec: list[dict]) -> None:
        if self.kind == "assign":
            row = spec[self.position - 1]
            row["workshop"] = self.workshop or row["workshop"]
            row["days"] = self.days or row["days"]
            row["operations"] = self.operations or row["operations"]
        elif self.kind == "skip":
            spec[self.position - 1]["skipped"] = True
        else:
            spec.insert(self.position, {"step": self.step, "workshop": self.workshop,
                                        "days": self.days, "operations": self.operations,
                                        "skipped": False})

    def run(self, story: Story, order: Order) -> None:
        actor = story.user("manager")
        rs = order.route.get(position=self.position)
        ws = story.workshops[self.workshop].pk if self.workshop else None
        if self.kind == "assign":
            routing.order_route_step_update(actor=actor, order_id=order.pk, step_id=rs.pk,
                                            workshop_id=ws, planned_days=self.days,
                                            operations=self.operations)
        elif self.kind == "skip":
            document_id = None
            if self.reason == "client_risk_acceptance":  # the signed acceptance, attached
                from .steps_design import written_acceptance

                document_id = written_acceptance(story, order, self.reference).pk
            routing.order_route_step_skip(actor=actor, order_id=order.pk, step_id=rs.pk,
                                          reason=self.reason, comment=self.comment,
                                          reference=self.reference, document_id=document_id)
        else:
            routing.order_route_step_add(actor=actor, order_id=order.pk, step=self.step,
                                         after_step_id=rs.pk, planned_days=self.days,
                                         workshop_id=ws, operations=self.operations)


@dataclass
class Plan:
    """One order: its content, its route, and the dated scenes of its life."""

    no: int
    scenario: Scenario
    client: str
    model: cat.Model
    lines: list[dict]
    template: str
    spec: list[dict]
    edits: list[RouteEdit]
    client_reference: str = ""
    notes: str = ""
    created_by: str = "sales"
    promised_date: dt.date | None = None
    limit: dt.datetime | None = None  # no scene at or after this (the present)
    scenes: list[tuple[dt.datetime, Callable[[], None]]] = field(default_factory=list)

    def at(self, when: dt.datetime, action: Callable[[], None],
           gap: dt.timedelta = dt.timedelta(minutes=3)) -> None:
        """Add a scene; it moves to working hours when that keeps it in the past, and comes
        at least `gap` after the previous scene."""
        office = _working_hours(when, self.no * 31 + len(self.scenes) * 17)
        if office < self.limit:
            when = office
        last = self.scenes[-1][0] if self.scenes else None
        if last is not None and when < last + gap:
            when = last + gap
            if when >= self.limit:
                when = last + dt.timedelta(minutes=3)
        if when >= self.limit and last is not None and last < self.limit:
            # The scenes before came close to the present (moved to this morning's working
            # hours, say): this one comes halfway between the last one and the present.
            when = last + (self.limit - last) / 2
        if when >= self.limit or (last is not None and when <= last):
            raise RuntimeError(f"demo order {self.no}: a scene falls in the future")
        self.scenes.append((when, action))


def _working_hours(when: dt.datetime, salt: int) -> dt.datetime:
    """`when`, or the next morning (8:00 to 9:30) when it falls outside 8:00–19:00."""
    local = timezone.localtime(when)
    if 8 <= local.hour < 19:
        return when
    day = local.date() + dt.timedelta(days=1 if local.hour >= 19 else 0)
    morning = dt.datetime.combine(day, dt.time(8), tzinfo=local.tzinfo)
    return morning + dt.timedelta(minutes=salt % 90, seconds=salt % 59)


def _scenarios(rng: random.Random) -> list[Scenario]:
    drafts = [Scenario(state) for state, n in DRAFTS for _ in range(n)]
    launched = [Scenario("launched", step) for step, n in LAUNCHED_AT for _ in range(n)]

    def at(*steps: str) -> list[Scenario]:
        return [s for s in launched if s.step in steps]

    def free(pool: list[Scenario]) -> list[Scenario]:
        return [s for s in pool if not (s.rework or s.hold or s.change or s.client)]

    for step, n in (("finishing", 2), ("setting", 1), ("delivery", 1), ("delivered", 1)):
        for s in rng.sample(free(at(step)), n):
            s.rework = True
    for incident in cat.HOLDS:
        s = rng.choice(free(at(incident.step)))
        s.hold = incident
        if incident.reason == "client_change_request":
            s.change, s.change_by, s.client = "open", "client.lemaire", "bijouterie-lemaire"
    s = rng.choice(free(at("design")))
    s.change, s.change_by = "open", "client.rousseau"
    s.client, s.model = "camille-rousseau", "bespoke-engagement"
    pool = free(at("prototyping", "manufacturing", "setting", "finishing", "delivery"))
    for status in ["open", "assessed", "assessed", "approved", "approved", "approved",
                   "rejected"]:
        s = rng.choice(pool)
        pool.remove(s)
        s.change = status
        if status == "assessed" and s.change_by == "sales" \
                and not any(x.change_by == "client.lemaire" and x.change == "assessed"
                            for x in launched):
            s.change_by, s.client = "client.lemaire", "bijouterie-lemaire"
    in_flight = [s for s in launched if s.step != "delivered" and s.change != "approved"]
    held = [s for s in in_flight if s.hold]
    late = rng.sample(held, 2)
    late += rng.sample([s for s in in_flight if s not in late], LATE_ORDERS - len(late))
    for s in late:
        s.late = True
    pool = [s for s in at("setting", "finishing", "delivery", "delivered")
            if not (s.hold or s.rework)]
    for incident in cat.MID_HOLDS:
        s = rng.choice(pool)
        pool.remove(s)
        s.mid_hold = incident
    for s in rng.sample([s for s in at("manufacturing", "setting") if not s.late], 2):
        s.override = True
    for s in rng.sample([s for s in at("delivered") if not s.rework], 3):
        s.late = True  # delivered after the promise
    for s in rng.sample(free(launched + drafts), 3):
        s.client = "bijouterie-lemaire"
    for s, text in zip([s for s in drafts if s.state == "cancelled"], cat.CANCEL_REASONS,
                       strict=False):
        s.text = text
    for s, text in zip([s for s in launched if s.override], cat.OVERRIDE_REASONS,
                       strict=False):
        s.text = text
    everything = drafts + launched
    rng.shuffle(everything)
    return everything


# ---------------------------------------------------------------------------------------------
# the story


class Story:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = timezone.now().replace(microsecond=0)
        self.today = timezone.localtime(self.now).date()
        self.users: dict[str, User] = {}
        self.workshops: dict[str, Workshop] = {}
        self.clients: dict[str, Client] = {}
        self.templates: dict[str, list[dict]] = {}
        self.plans: list[Plan] = []
        self.client_load: Counter[str] = Counter()
        self.changes_told: Counter[int] = Counter()

    def user(self, username: str) -> User:
        return self.users[username]

    # -- the house, its workshops, people and clients -----------------------------------------

    def set_up(self) -> None:
        house = house_workshop()
        workshop_update(actor=None, workshop=house, name=settings.ETABLI_HOUSE_NAME,
                        **cat.HOUSE)
        self.workshops[HOUSE] = house
        for data in cat.WORKSHOPS:
            self.workshops[data["code"]] = workshop_create(actor=None, **data)
        for data in cat.CLIENTS:
            data = dict(data)
            if data["kind"] == "b2b":
                data["email"] = f"orders@{data['code']}.example"
            else:
                data["email"] = f"{data['code']}@mail.example"
            self.clients[data["code"]] = client_create(actor=None, **data)
        for u in cat.DEMO_USERS:
            self.users[u.username] = user_create(
                actor=None, username=u.username, password=u.password, role=u.role,
                email=u.email, first_name=u.first_name, last_name=u.last_name,
                workshop_codes=[u.workshop] if u.workshop else None, client_code=u.client,
                language=u.language)
        manager = self.user("manager")
        for t in cat.ROUTE_TEMPLATES:
            routing.route_template_create(
                actor=manager, code=t["code"], name=t["name"], description=t["description"],
                steps=[{"step": step, "workshop": ws, "planned_days": days, "operations": ops}
                       for step, ws, days, ops in t["steps"]])
        for template in RouteTemplate.objects.prefetch_related("steps__workshop"):
            self.templates[template.code] = [
                {"step": s.step, "workshop": s.workshop.code if s.workshop else None,
                 "days": s.planned_days, "operations": list(s.operations), "skipped": False}
                for s in template.steps.order_by("position")]
            if template.is_default:
                self.templates.setdefault("standard", self.templates[template.code])

    # -- deciding every order -----------------------------------------------------------------

    def plan_orders(self) -> None:
        for no, scenario in enumerate(_scenarios(self.rng), start=1):
            plan = self._plan(no, scenario)
            if scenario.state == "launched":
                self._plan_launched(plan)
            else:
                self._plan_draft(plan)
            self.plans.append(plan)

    def _pick_model(self, s: Scenario) -> cat.Model:
        rng = self.rng
        if s.model:
            return cat.MODELS_BY_KEY[s.model]
        custom = [m for m in cat.MODELS if m.custom]
        with_stones = [m for m in cat.MODELS if m.has_stones]
        if s.step in ("design", "prototyping"):
            return rng.choice(custom)
        if s.step == "setting" or (s.hold and s.hold.reason == "material_unavailable") \
                or (s.rework and s.step in ("setting", "finishing")):
            return rng.choice(with_stones)
        if rng.random() < 0.25:
            return rng.choice(custom)
        return rng.choice([m for m in cat.MODELS if not m.custom])

    def _pick_client(self, s: Scenario, model: cat.Model) -> str:
        if s.client:
            code = s.client
        else:
            if model.custom:
                pool = CUSTOM_CLIENTS
            elif model.series:
                pool = [c["code"] for c in cat.CLIENTS if c["kind"] == "b2b"]
            else:
                pool = [c["code"] for c in cat.CLIENTS if c["channel"] != "wholesale"]
            least = min(self.client_load[c] for c in pool)
            code = self.rng.choice([c for c in pool if self.client_load[c] == least])
        self.client_load[code] += 1
        return code

    def _line(self, model: cat.Model, client: dict, quantity: int = 1,
              size: str | None = None, alloy: str | None = None) -> dict:
        rng = self.rng
        alloy = alloy or rng.choice(model.alloys)
        stones = rng.choice(model.stones) if model.stones else None
        price = Decimal(model.price_eur) * cat.ALLOY_PRICE_FACTOR[alloy]
        price += stones.price_eur if stones else 0
        if client["channel"] == "wholesale":
            price *= Decimal("0.62")
        elif client["kind"] == "b2b":
            price *= Decimal("0.75")
        price = (price / 10).quantize(Decimal("1")) * 10
        return {
            "description": model.description,
            "model_reference": model.model_reference,
            "is_custom_design": model.custom,
            "quantity": quantity,
            "size": size if size is not None else rng.choice(model.sizes),
            "alloy": alloy,
            "stones": stones.description if stones else "",
            "customisations": rng.choice(model.customisations),
            "specifications": model.specifications,
            "references": model.references,
            "target_price": str(price),
        }

    def _lines(self, s: Scenario, model: cat.Model, client: dict) -> list[dict]:
        rng = self.rng
        if model.custom or s.rework or client["kind"] == "b2c":
            return [self._line(model, client)]
        if model.series and client["channel"] == "wholesale":
            alloy = rng.choice(model.alloys)
            sizes = rng.sample(model.sizes, min(len(model.sizes), rng.randint(2, 3)))
            return [self._line(model, client, rng.randint(2, 4), size, alloy) for size in sizes]
        if model.series:
            return [self._line(model, client, rng.randint(3, 6))]
        lines = [self._line(model, client)]
        if rng.random() < 0.3:
            others = [m for m in cat.MODELS
                      if not m.custom and m.route == model.route and m is not model]
            if others:
                lines.append(self._line(rng.choice(others), client))
        return lines

    def _plan(self, no: int, s: Scenario) -> Plan:
        rng = self.rng
        model = self._pick_model(s)
        client_code = self._pick_client(s, model)
        client = next(c for c in cat.CLIENTS if c["code"] == client_code)
        template = model.route if model.route in self.templates else "standard"
        spec = [dict(row) for row in self.templates[template]]
        plan = Plan(no=no, scenario=s, client=client_code, model=model,
                    lines=self._lines(s, model, client), template=template, spec=spec,
                    edits=[], limit=self.now - dt.timedelta(minutes=30))
        if client["kind"] == "b2b":
            plan.client_reference = f"PO-{rng.randint(2100, 9899)}"
        plan.notes = rng.choice([
            "", "", "", "Gift: deliver in the house box with a handwritten card.",
            "Client prefers a call before any change.", "Insured shipment to the shop.",
            "Client will collect at the house.", "Deposit of 30 % received."])
        plan.created_by = rng.choice(["sales", "sales", "sales", "manager"])
        if s.state not in ("draft_new", "cancelled") \
                and not (s.state == "draft_partial" and rng.random() < 0.5):
            self._edit_route(plan)
        return plan

    def _edit_route(self, plan: Plan) -> None:
        """Choose the workshops of a route, skip what this piece does not need."""
        rng, spec, s, model = self.rng, plan.spec, plan.scenario, plan.model

        def pos(step: str) -> int:
            return next(i for i, row in enumerate(spec, start=1)
                        if row["step"] == step and not row["skipped"])

        def edit(kind: str, position: int, **kwargs) -> None:
            e = RouteEdit(kind, position, **kwargs)
            e.apply(spec)
            plan.edits.append(e)

        bench = rng.choice(["atelier-moreau", "atelier-interieur"])
        setter = rng.choice(["sertissage-dumont", "incastonatura-galli"])
        if plan.template == "catalogue":
            if rng.random() < 0.3:
                edit("assign", pos("setting"), workshop="incastonatura-galli")
            if rng.random() < 0.3:
                p = [i for i, row in enumerate(spec, 1) if row["operations"] == ["assembly"]]
                edit("assign", p[0], workshop="atelier-interieur")
            return
        if plan.template != "standard":
            return
        if s.step not in ("design", "prototyping") and rng.random() < 0.5:
            reason = rng.choice(["simple_design", "client_risk_acceptance",
                                 "exact_reproduction"])
            edit("skip", pos("prototyping"), reason=reason,
                 comment={"simple_design": "Simple shape; the CAD renders were enough.",
                          "exact_reproduction": "Same as a piece made last year.",
                          "client_risk_acceptance": "Client in a hurry; risk accepted."}[reason],
                 reference=f"Signed waiver W-{self.today.year}-{rng.randint(10, 99)}"
                 if reason == "client_risk_acceptance" else "")
        else:
            edit("assign", pos("prototyping"), workshop="fonderie-ricci",
                 operations=["wax_print", "prototype_casting"])
        edit("assign", pos("manufacturing"), workshop=bench, days=6, operations=["assembly"])
        edit("add", pos("manufacturing") - 1, step="manufacturing", workshop="fonderie-ricci",
             days=4, operations=["material_preparation", "casting"])
        if model.has_stones:
            edit("assign", pos("setting"), workshop=setter)
        else:
            edit("skip", pos("setting"), reason="other", comment="No stones on this piece.")
        white = any(line["alloy"] in ("750w", "950pt") for line in plan.lines)
        edit("assign", pos("finishing"), workshop="polissage-lambert", days=2,
             operations=["polishing", "plating", "cleaning"] if white
             else ["polishing", "cleaning"])
        after = pos("finishing")
        if model.key in ("bespoke-signet", "bespoke-cufflinks"):
            edit("add", after, step="finishing", workshop="gravure-peeters", days=2,
                 operations=["engraving_hallmarking"])
            after += 1
        elif rng.random() < 0.3 and model.key != "bespoke-initial":
            edit("add", after, step="finishing", workshop="bureau-garantie", days=2,
                 operations=["hallmarking"])
            after += 1
        elif model.key == "bespoke-initial":
            # A light pendant: the engraver strikes the maker's mark; under 3 g of gold it
            # needs no guarantee mark, so it never goes to the assay office.
            edit("add", after, step="finishing", workshop="gravure-peeters", days=1,
                 operations=["engraving_hallmarking"])
            after += 1
        edit("add", after, step="finishing", workshop=HOUSE, days=1, operations=["inspection"])

    def _earliest(self, plan: Plan, start: dt.date) -> dt.date:
        steps = [SimpleNamespace(step=r["step"], planned_days=r["days"], skipped=r["skipped"])
                 for r in plan.spec]
        return planning.deadline_check(steps, start, None).earliest_promise

    # -- drafts -------------------------------------------------------------------------------

    def _plan_draft(self, plan: Plan) -> None:
        rng, s = self.rng, plan.scenario
        run = OrderRun(self, plan)
        if s.state == "cancelled":
            created = self.now - dt.timedelta(days=rng.uniform(8, 40))
        else:
            created = self.now - dt.timedelta(hours=rng.uniform(6, 140))
        if s.state in ("draft_ready", "draft_partial") and rng.random() < 0.8:
            plan.promised_date = self._earliest(plan, created.date() + dt.timedelta(days=4)) \
                + dt.timedelta(days=rng.randint(5, 20))
        plan.at(created, run.create)
        codes = [code for code, _section, _label in LAUNCH_CHECKLIST]
        if s.state == "draft_partial":
            codes = sorted(rng.sample(codes, rng.randint(3, 9)), key=codes.index)
        elif s.state in ("draft_new", "cancelled"):
            codes = codes[:rng.randint(0, 3)]
        end = self.now - HOUR if s.state != "cancelled" \
            else created + dt.timedelta(days=rng.uniform(1, 4))
        self._plan_checks(plan, run, created, end, codes)
        if s.state == "cancelled":
            plan.at(end, partial(run.cancel, s.text or cat.CANCEL_REASONS[0]))

    def _plan_checks(self, plan: Plan, run: OrderRun, start: dt.datetime, end: dt.datetime,
                     codes: list[str]) -> None:
        if plan.edits:
            plan.at(start + HOUR / 2, run.edit_route)
        span = (end - start - HOUR) / (len(codes) + 1)
        for i, code in enumerate(codes, start=1):
            plan.at(start + HOUR + span * i, partial(run.check, code))

    # -- launched orders ----------------------------------------------------------------------

    def _legs(self, plan: Plan) -> list[Leg]:
        legs = [Leg(r["step"], r["workshop"], r["days"], list(r["operations"]))
                for r in plan.spec[1:] if not r["skipped"]]
        if any(leg.workshop is None for leg in legs):
            raise RuntimeError(f"demo order {plan.no}: a step has no workshop")
        if not plan.scenario.rework:
            return legs
        steps = [leg.step for leg in legs]
        if plan.scenario.step == "setting":
            at = steps.index("setting")
            back = max(i for i in range(at) if steps[i] == "manufacturing")
        else:
            at = steps.index("finishing")
            before = [i for i in range(at) if steps[i] == "setting"] \
                or [i for i in range(at) if steps[i] == "manufacturing"]
            back = before[-1]
        legs[at].rework_to = back
        copies = [Leg(leg.step, leg.workshop, leg.days, list(leg.operations))
                  for leg in legs[back:at + 1]]
        return legs[:at + 1] + copies + legs[at + 1:]

    def _plan_launched(self, plan: Plan) -> None:
        rng, s = self.rng, plan.scenario
        legs = self._legs(plan)
        rework_at = next((i for i, leg in enumerate(legs) if leg.rework_to is not None), None)
        if s.step == "delivered":
            final = len(legs)
        else:
            after = rework_at + 1 if rework_at is not None else 0
            candidates = [i for i, leg in enumerate(legs) if leg.step == s.step and i >= after]
            if s.hold and s.hold.who == "member":
                candidates = [i for i in candidates if legs[i].workshop != HOUSE] or candidates
            # Reworked pieces stop at the step redone, held ones where the hold's words fit
            # (manufacturing holds at the bench), others anywhere within their step.
            if rework_at is not None:
                final = candidates[0]
            elif s.hold:
                final = candidates[-1] if s.step == "manufacturing" else candidates[0]
            else:
                final = rng.choice(candidates)
        scenes, elapsed, anchor = self._walk(plan, legs, final)

        # Stretch or shorten the time since the last scene so that the open step is late (its
        # planned due date is past) or on time, as the scenario says.
        last = scenes[-1][0] if scenes else 0.0
        if final < len(legs):
            start = rework_at + 1 if rework_at is not None and rework_at < final else 0
            cum = sum(leg.days for leg in legs[start:final + 1])

            def due(hours: float) -> dt.date:
                launched = self.now - dt.timedelta(hours=hours)
                return timezone.localtime(launched + dt.timedelta(hours=anchor)).date() \
                    + dt.timedelta(days=cum)

            if s.late:
                lag = rng.randint(2, 9)
                while due(elapsed) > self.today - dt.timedelta(days=lag):
                    elapsed += 24
            else:
                while due(elapsed) <= self.today and elapsed - 24 > last + 1:
                    elapsed -= 24
        elapsed = max(elapsed, last + 1)
        launch = self.now - dt.timedelta(hours=elapsed)
        created = launch - dt.timedelta(hours=rng.uniform(26, 120))

        # The launch may move to the next morning (working hours): promise from that day.
        earliest = self._earliest(plan, timezone.localtime(launch).date() + dt.timedelta(days=1))
        if s.override:
            plan.promised_date = earliest - dt.timedelta(days=rng.randint(3, 6))
        elif s.late:
            # Promised with no slack: the late step puts the order at risk (an alert the
            # dashboard shows beside the overdue step).
            plan.promised_date = earliest + dt.timedelta(days=rng.randint(0, 1))
        else:
            plan.promised_date = earliest + dt.timedelta(days=rng.randint(2, 15))

        run = OrderRun(self, plan, legs)
        plan.at(created, run.create)
        self._plan_checks(plan, run, created, launch - HOUR,
                          [code for code, _section, _label in LAUNCH_CHECKLIST])
        plan.at(launch, run.launch)
        if s.change:
            scenes = self._plan_change(plan, scenes, elapsed)
        for hours, action in scenes:
            # A slip takes at least a couple of hours to travel, even after a night's wait.
            travel = getattr(action, "func", None) is OrderRun.receive
            plan.at(launch + dt.timedelta(hours=hours), partial(action, run),
                    gap=dt.timedelta(hours=2, minutes=plan.no % 50) if travel
                    else dt.timedelta(minutes=3))

    def _walk(self, plan: Plan, legs: list[Leg], final: int
              ) -> tuple[list[tuple[float, Callable]], float, float]:
        """Lay out the scenes after the launch, in hours since the launch."""
        rng, s = self.rng, plan.scenario
        scenes: list[tuple[float, Callable]] = []
        t = anchor = 0.0
        mid_leg = None
        if s.mid_hold:
            moves = [i for i in range(min(final, len(legs)))
                     if legs[i].workshop != HOUSE and (legs[i - 1].workshop if i else HOUSE)
                     != legs[i].workshop]
            fitting = [i for i in moves if s.mid_hold.step in ("", legs[i].step)]
            mid_leg = rng.choice(fitting or moves) if moves else None
        phase = ""
        for i, leg in enumerate(legs):
            moving = (legs[i - 1].workshop if i else HOUSE) != leg.workshop
            is_final = i == final
            if is_final:
                if s.hold:
                    phase = rng.choice(["received", "in_progress"]) if moving else "in_progress"
                elif moving:
                    phase = rng.choice(["ready", "in_transit", "received", "in_progress",
                                        "in_progress"])
                else:
                    phase = rng.choice(["ready", "in_progress", "in_progress"])
            if s.late:
                factor = rng.uniform(1.25, 1.5) if final == len(legs) else rng.uniform(0.95, 1.3)
            else:
                factor = rng.uniform(0.55, 0.8)
            total = leg.days * 24 * factor
            if moving:
                t += total * 0.08
                if phase == "ready":
                    break
                scenes.append((t, partial(OrderRun.send, leg=i)))
                t += max(2.0, total * 0.17)
                if phase == "in_transit":
                    break
                scenes.append((t, partial(OrderRun.receive, leg=i)))
                if i == mid_leg:
                    held = t + total * 0.05
                    scenes.append((held, partial(OrderRun.hold_all, incident=s.mid_hold)))
                    t = held + rng.uniform(20, 70)
                    scenes.append((t, OrderRun.release_all))
                t += total * 0.15
                if phase == "received":
                    break
            else:
                t += total * 0.2
                if phase == "ready":
                    break
            scenes.append((t, partial(OrderRun.start, leg=i)))
            t += total * 0.6
            if is_final:
                break
            if leg.rework_to is not None:
                scenes.append((t, partial(OrderRun.rework, leg=i)))
                anchor = t
                continue
            scenes.append((t, partial(OrderRun.complete, leg=i)))
        if final == len(legs):
            delivered = t
            t += rng.uniform(24, 60 * 24)  # delivered some time ago
            # The client confirms reception a little after delivery (no extra random draw, so
            # the rest of the story stays as the seed says).
            scenes.append((delivered + (t - delivered) * 0.3,
                           partial(OrderRun.confirm_reception)))
        elif s.hold:
            held = scenes[-1][0] + (t - scenes[-1][0]) * rng.uniform(0.2, 0.6)
            scenes.append((held, partial(OrderRun.hold_first, incident=s.hold)))
        return scenes, t, anchor

    def _plan_change(self, plan: Plan, scenes: list, elapsed: float) -> list:
        """Add the change request's scenes (asked, assessed, decided) among the others."""
        rng, s = self.rng, plan.scenario
        if s.hold and s.hold.reason == "client_change_request":
            held = next(h for h, action in scenes
                        if getattr(action, "func", None) is OrderRun.hold_first)
            asked = max(0.5, held - rng.uniform(2, 6))
        else:
            asked = elapsed * rng.uniform(0.3, 0.5)
        fitting = [i for i, (_d, _i, _a, models) in enumerate(cat.CHANGE_REQUESTS)
                   if not models or plan.model.key in models]
        if s.change_by == "client.rousseau":
            fitting = fitting[:1]
        pick = min(fitting, key=lambda i: (self.changes_told[i], rng.random()))
        self.changes_told[pick] += 1
        description, impact, assessment, _models = cat.CHANGE_REQUESTS[pick]
        extra = [(asked, partial(OrderRun.change_ask, description=description, who=s.change_by))]
        if s.change in ("assessed", "approved", "rejected"):
            assessed = asked + (elapsed - asked) * rng.uniform(0.1, 0.3)
            extra.append((assessed, partial(OrderRun.change_assess, impact=impact,
                                            assessment=assessment)))
            if s.change in ("approved", "rejected"):
                decided = assessed + (elapsed - assessed) * rng.uniform(0.1, 0.3)
                extra.append((decided, partial(OrderRun.change_decide,
                                               approve=s.change == "approved")))
        return sorted(scenes + extra, key=lambda scene: scene[0])

    # -- playing ------------------------------------------------------------------------------

    def play(self) -> None:
        start = self.now - dt.timedelta(days=STORY_DAYS)
        with simulated_clock(start) as clock:
            self.set_up()
            self.plan_orders()
            timeline = heapq.merge(*[[(when, plan.no, i, action)
                                      for i, (when, action) in enumerate(plan.scenes)]
                                     for plan in self.plans])
            for when, _no, _i, action in timeline:
                if not start < when < self.now:
                    raise RuntimeError(f"demo scene at {when:%Y-%m-%d %H:%M} is outside the "
                                       "story's time")
                clock.at = when
                action()
            # The metal and stones follow the pieces, on the same clock (see materials.py).
            play_materials(self, clock)
