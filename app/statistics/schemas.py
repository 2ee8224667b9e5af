"""The statistics document: one msgspec Struct, computed by the refresh job and stored whole in Redis."""

from __future__ import annotations

import msgspec

from app.maps.render import Choropleth


class Month(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # "2026-03"
    label: str  # "mars 2026"
    new: int  # counted in that month (Paris time)
    cumulative: int  # counted up to the end of that month, since the beginning


class Series(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # one of figures.MEASURES
    total: int  # since the beginning, up to the end of the current month
    months: list[Month]  # the last figures.MONTHS months, the current one last


class DepartmentRow(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    population: int  # sum of its communes' municipal population
    volunteers: int
    applications: int
    missions: int
    organisations: int
    # Per 1,000 inhabitants; None when the population is unknown or, for counts of people, under SMALL_COUNT
    # (a rate would give the small count away).
    volunteers_per_thousand: float | None
    applications_per_thousand: float | None
    missions_per_thousand: float | None
    organisations_per_thousand: float | None


class Statistics(msgspec.Struct, frozen=True, kw_only=True):
    computed_at: str  # ISO 8601, UTC
    series: list[Series]  # in figures.MEASURES order
    departments: list[DepartmentRow]  # every department, by code
    volunteers_map: Choropleth  # volunteers per 1,000 inhabitants
