"""Periodic work of the notifications: sending what waits, and the daily digests."""

from __future__ import annotations

import datetime as dt

from etabli.core import jobs

from . import delivery


@jobs.periodic("notifications.deliver", every=dt.timedelta(seconds=15))
def deliver() -> dict:
    """Send the e-mails and webhook deliveries that are due (also queued on each change)."""
    return delivery.deliver()


@jobs.periodic("notifications.digest", every=dt.timedelta(minutes=10))
def digest() -> dict:
    """Queue today's digests once the digest hour has come (each person at most once a day)."""
    return delivery.digest_run()
