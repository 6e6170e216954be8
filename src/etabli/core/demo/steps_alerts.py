"""The demo's alerts: once the story has been played, detection runs one pass, as the worker
would in its first minute, so the late steps, long holds, unreceived slips, open
nonconformities and waiting change requests of the story show as alerts at once.

The story leaves several orders late on purpose (`story.LATE_ORDERS`): their open steps are past
their planned due dates, so the first pass opens step-overdue alerts, and order-at-risk ones
where the projection passes the promise.
"""

from __future__ import annotations


def first_detection() -> dict:
    from etabli.alerts.detection import refresh_observed_durations, run_detection

    refresh_observed_durations()
    return run_detection()
