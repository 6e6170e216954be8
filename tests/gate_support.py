"""Satisfy each step app's gates when tests walk a piece along its route.

`HouseSetup.advance` calls these before a send, a start and a completion; each step app's
tests keep what it takes in `tests/<app>/support.py` (an approved design, a checked setting
plan, a signed passing inspection, a delivered shipment…).
"""

from __future__ import annotations

from importlib import import_module

SUPPORT_MODULES = ["tests.design.support", "tests.stonesetting.support",
                   "tests.finishing.support", "tests.quality.support", "tests.shipping.support"]


def _modules():
    return [import_module(name) for name in SUPPORT_MODULES]


def before_send(h, piece, run) -> None:
    for module in _modules():
        module.before_send(h, piece, run)


def before_start(h, piece, run) -> None:
    for module in _modules():
        module.before_start(h, piece, run)


def before_complete(h, piece, run) -> None:
    for module in _modules():
        module.before_complete(h, piece, run)
