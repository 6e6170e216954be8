"""The rules each step's own app sets before a piece may move on.

The production services call these inside their transaction, after the state machine has said
the move is possible: design needs the client's approval before a piece leaves design, setting
needs a checked setting plan before a piece goes to the setter, finishing needs a signed passing
inspection, delivery needs the shipment delivered, and so on. Each app keeps its own rules in its
`gates.py`; this module only calls them, in route order.
"""

from __future__ import annotations

from importlib import import_module

GATE_MODULES = [
    "etabli.design.gates",
    "etabli.stonesetting.gates",
    "etabli.finishing.gates",
    "etabli.quality.gates",
    "etabli.shipping.gates",
]


def _modules():
    return [import_module(name) for name in GATE_MODULES]


def check_send(piece, run) -> None:
    for module in _modules():
        module.check_send(piece, run)


def check_start(piece, run) -> None:
    for module in _modules():
        module.check_start(piece, run)


def check_leave(piece, run) -> None:
    for module in _modules():
        module.check_leave(piece, run)
