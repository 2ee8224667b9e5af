"""SNU youth allocation: the exact engine (plain Python, no web or database import) that places young people on
the general-interest missions (MIG) they ranked.

The engine's names are loaded on first use, not on import of the package, and OR-Tools, numpy and pandas only when
`allocate` runs: web processes show the preview and apply the referent's adjustments without them (only the
allocation job solves)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from surge.youth.allocation import (
        CHOICE_DATES,
        CHOICE_LABELS,
        CHOICE_TOO_OLD,
        CHOICE_TOO_YOUNG,
        CHOICE_UNKNOWN_OFFER,
        MAX_CHOICES,
        UNPLACED_BY_REFERENT,
        UNPLACED_CHOICES_FULL,
        UNPLACED_LABELS,
        UNPLACED_NO_CHOICE,
        UNPLACED_NO_COMPATIBLE_CHOICE,
        AdjustmentError,
        Allocation,
        Assignment,
        ExcludedChoice,
        Move,
        Offer,
        OfferFill,
        Unassign,
        Unplaced,
        Young,
        age_on,
        allocate,
        choice_problem,
    )

__all__ = [
    "CHOICE_DATES",
    "CHOICE_LABELS",
    "CHOICE_TOO_OLD",
    "CHOICE_TOO_YOUNG",
    "CHOICE_UNKNOWN_OFFER",
    "MAX_CHOICES",
    "UNPLACED_BY_REFERENT",
    "UNPLACED_CHOICES_FULL",
    "UNPLACED_LABELS",
    "UNPLACED_NO_CHOICE",
    "UNPLACED_NO_COMPATIBLE_CHOICE",
    "AdjustmentError",
    "Allocation",
    "Assignment",
    "ExcludedChoice",
    "Move",
    "Offer",
    "OfferFill",
    "Unassign",
    "Unplaced",
    "Young",
    "age_on",
    "allocate",
    "choice_problem",
]

_ENGINE = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        return getattr(importlib.import_module("surge.youth.allocation"), name)
    raise AttributeError(name)
