"""Panels that each step's app adds to shared pages, and its menu entries.

The piece page, the order page, the client's order page and the workshop's piece page are
owned by their apps; design, setting, finishing, quality and delivery each contribute a panel
(a template and its context) through their `panels.py`, so no page has to know them all.
"""

from __future__ import annotations

from importlib import import_module

PANEL_APPS = ["design", "stonesetting", "finishing", "quality", "shipping", "alerts",
              "notifications", "reports"]


def _providers(name: str):
    for app in PANEL_APPS:
        module = import_module(f"etabli.{app}.panels")
        yield getattr(module, name)


def piece_panels(request, piece) -> list[dict]:
    return [p for provider in _providers("piece_panels") for p in provider(request, piece)]


def order_panels(request, order) -> list[dict]:
    return [p for provider in _providers("order_panels") for p in provider(request, order)]


def portal_order_panels(request, order) -> list[dict]:
    return [p for provider in _providers("portal_order_panels")
            for p in provider(request, order)]


def workshop_piece_panels(request, piece) -> list[dict]:
    return [p for provider in _providers("workshop_piece_panels")
            for p in provider(request, piece)]


def nav_items(user) -> list[tuple[str, str]]:
    return [item for provider in _providers("nav_items") for item in provider(user)]
