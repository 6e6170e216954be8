"""The alerts' periodic jobs (run by `etabli serve`'s worker thread or `etabli worker`)."""

from __future__ import annotations

import datetime as dt

from etabli.core import jobs

from . import detection


@jobs.periodic("alerts.detect", every=dt.timedelta(minutes=1))
def detect() -> dict:
    """One detection pass of every alert rule: a step late this minute alerts next minute."""
    return detection.run_detection()


@jobs.periodic("alerts.observed_durations", every=dt.timedelta(hours=1))
def observed_durations() -> dict:
    """Refresh the observed median step durations the order-at-risk rule projects with."""
    return detection.refresh_observed_durations()
