"""Planned dates: a route laid out day after day, and the safety buffer before the promise."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from etabli.workshops.models import StepKind


def safety_buffer_days(route_days: int) -> int:
    """Buffer kept between the planned finish and the promised date (default 10 %, ≥ 2 days)."""
    pct = settings.ETABLI_BUFFER_PERCENT
    return max(settings.ETABLI_BUFFER_MIN_DAYS, math.ceil(route_days * pct / 100))


@dataclass(frozen=True)
class DeadlineCheck:
    route_days: int
    buffer_days: int
    planned_finish: dt.date
    earliest_promise: dt.date
    promised_date: dt.date | None

    @property
    def ok(self) -> bool:
        return self.promised_date is not None and self.promised_date >= self.earliest_promise

    def as_dict(self) -> dict:
        return {
            "route_days": self.route_days,
            "buffer_days": self.buffer_days,
            "planned_finish": self.planned_finish.isoformat(),
            "earliest_realistic_date": self.earliest_promise.isoformat(),
            "promised_date": self.promised_date.isoformat() if self.promised_date else None,
            "ok": self.ok,
        }


def deadline_check(steps: Iterable, start: dt.date, promised: dt.date | None) -> DeadlineCheck:
    """`steps` are route steps (template, order or run rows) with `step`, `planned_days` and
    optionally `skipped`. Order receipt is done by the time production starts, so it does not
    count."""
    days = sum(s.planned_days for s in steps
               if not getattr(s, "skipped", False) and s.step != StepKind.ORDER_RECEIPT)
    buffer = safety_buffer_days(days)
    finish = start + dt.timedelta(days=days)
    return DeadlineCheck(days, buffer, finish, finish + dt.timedelta(days=buffer), promised)


def lay_out(runs: Iterable, start: dt.date) -> dt.date:
    """Give each run planned dates one after the other from `start`; returns the finish."""
    cursor = start
    for run in runs:
        run.planned_start = cursor
        cursor = cursor + dt.timedelta(days=run.planned_days)
        run.planned_due = cursor
    return cursor
