from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import Sequence


def next_number(key: str) -> int:
    """Return the next value of the counter `key`; must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_number must be called inside a transaction")
    Sequence.objects.get_or_create(key=key)
    seq = Sequence.objects.select_for_update().get(key=key)
    seq.last_value += 1
    seq.save(update_fields=["last_value"])
    return seq.last_value


def yearly_reference(prefix: str, width: int = 5) -> str:
    """`PREFIX-YYYY-00042`, numbered per prefix and per year."""
    year = timezone.localdate().year
    return f"{prefix}-{year}-{next_number(f'{prefix}-{year}'):0{width}d}"
