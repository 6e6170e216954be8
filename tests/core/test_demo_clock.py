"""The demo's dated scenes stay in the past whatever the time of day it is built at."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from etabli.core.demo.story import Plan

PARIS = ZoneInfo("Europe/Paris")


def plan(limit: dt.datetime) -> Plan:
    return Plan(no=29, scenario=None, client="", model=None, lines=[], template="", spec=[],
                edits=[], limit=limit)


def nothing() -> None:
    pass


def test_scenes_moved_to_this_mornings_hours_leave_room_for_the_next_ones():
    """A Sunday at 8:53: a night scene moves to this morning just before now; the next scenes
    (each meant hours later) still come after it and before now."""
    now = dt.datetime(2026, 11, 22, 8, 53, tzinfo=PARIS)
    p = plan(now)
    p.at(dt.datetime(2026, 11, 21, 18, 0, tzinfo=PARIS), nothing)
    p.at(dt.datetime(2026, 11, 22, 2, 0, tzinfo=PARIS), nothing)  # night: this morning
    for hours in (3, 6, 9):
        p.at(dt.datetime(2026, 11, 22, 2 + hours, 0, tzinfo=PARIS), nothing,
             gap=dt.timedelta(hours=2, minutes=29))
    times = [when for when, _action in p.scenes]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(when < now for when in times)


def test_a_first_scene_in_the_future_is_refused():
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=PARIS)
    with pytest.raises(RuntimeError, match="future"):
        plan(now).at(now + dt.timedelta(minutes=1), nothing)


@pytest.mark.parametrize("hour", range(24))
def test_a_day_of_scenes_fits_before_any_hour(hour):
    now = dt.datetime(2026, 11, 22, hour, 17, tzinfo=PARIS)
    p = plan(now)
    start = now - dt.timedelta(days=2)
    for i in range(12):
        p.at(start + dt.timedelta(hours=4 * i), nothing, gap=dt.timedelta(hours=2))
    times = [when for when, _action in p.scenes]
    assert times == sorted(times) and all(when < now for when in times)
