"""Bulk dispatch: the matching engine (plain Python, no web or database import) that the dispatch job calls."""

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
    reason_no_domain,
    reason_out_of_range,
)
from surge.dispatch.geometry import haversine_km

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
    "reason_no_domain",
    "reason_out_of_range",
]
