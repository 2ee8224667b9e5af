"""Bulk dispatch: the matching engine (plain Python, no web or database import) that the dispatch job calls, the
runs (runs.py), their pages (controllers.py) and the proposal links (links.py).

The engine's names are loaded on first use, not on import of the package: web processes import the runs and
pages, and must not load OR-Tools, numpy and pandas for it (only the planning job solves)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from surge.dispatch.engine import (
        REASON_FULL,
        REASON_UNAVAILABLE,
        Assignment,
        Mission,
        MissionFill,
        Plan,
        Unassigned,
        Volunteer,
        accepts,
        plan_dispatch,
        reason_already_applied,
        reason_no_domain,
        reason_out_of_range,
        reason_too_young,
    )
    from surge.dispatch.geometry import haversine_km

_ENGINE = {"REASON_FULL", "REASON_UNAVAILABLE", "Assignment", "Mission", "MissionFill", "Plan", "Unassigned",
           "Volunteer", "accepts", "plan_dispatch", "reason_already_applied", "reason_no_domain", "reason_out_of_range",
           "reason_too_young"}


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        return getattr(importlib.import_module("surge.dispatch.engine"), name)
    if name == "haversine_km":
        return importlib.import_module("surge.dispatch.geometry").haversine_km
    raise AttributeError(name)


__all__ = [
    "REASON_FULL",
    "REASON_UNAVAILABLE",
    "Assignment",
    "Mission",
    "MissionFill",
    "Plan",
    "Unassigned",
    "Volunteer",
    "accepts",
    "haversine_km",
    "plan_dispatch",
    "reason_already_applied",
    "reason_no_domain",
    "reason_out_of_range",
    "reason_too_young",
]
