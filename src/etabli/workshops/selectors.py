from __future__ import annotations

from .models import Workshop, WorkshopKind


def house() -> Workshop:
    ws = Workshop.objects.filter(kind=WorkshopKind.HOUSE).first()
    if ws is None:
        ws = Workshop.objects.create(code="house", name="The house", kind=WorkshopKind.HOUSE)
    return ws


def workshops_for(user):
    return Workshop.objects.visible_to(user).prefetch_related("skills", "contacts")
