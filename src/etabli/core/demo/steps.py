"""The demo's work inside each step (design rounds, setting plans, inspections, shipments…).

The order scenes call these around each send, start and completion, so the step apps' gates
are met the way a house would meet them; each step app's demo part is in `steps_<app>.py`.
"""

from __future__ import annotations

from importlib import import_module

STEP_MODULES = ["steps_design", "steps_stonesetting", "steps_finishing", "steps_quality",
                "steps_shipping"]


def _modules():
    return [import_module(f"etabli.core.demo.{name}") for name in STEP_MODULES]


def before_send(scene, piece, run) -> None:
    for module in _modules():
        module.before_send(scene, piece, run)


def before_start(scene, piece, run) -> None:
    for module in _modules():
        module.before_start(scene, piece, run)


def before_complete(scene, piece, run) -> None:
    for module in _modules():
        module.before_complete(scene, piece, run)
