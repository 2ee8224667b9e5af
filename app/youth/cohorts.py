"""Cohorts: created and edited by administrators and national coordinators, with a choice deadline per department."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.models import Department
from app.youth.models import Cohort, CohortDepartmentDeadline
from app.youth.validation import ValidCohort, YouthInvalid

TAKEN = "Une autre cohorte porte déjà ce nom : choisissez-en un autre."


class CohortNotFound(Exception):
    """No cohort has this id."""


@dataclass(frozen=True, slots=True)
class CohortView:
    id: int
    name: str
    stay_start: date
    stay_end: date
    missions_start: date
    missions_end: date
    open_for_signup: bool
    deadlines: tuple[tuple[str, str, date], ...]  # (department code, name, last day to choose)


async def _deadlines(session: AsyncSession, cohort_ids: list[int]) -> dict[int, list[tuple[str, str, date]]]:
    rows = await session.execute(
        select(CohortDepartmentDeadline.cohort_id, CohortDepartmentDeadline.department_code, Department.name,
               CohortDepartmentDeadline.choose_by)
        .join(Department, Department.code == CohortDepartmentDeadline.department_code)
        .where(CohortDepartmentDeadline.cohort_id.in_(cohort_ids))
        .order_by(CohortDepartmentDeadline.department_code)
    )
    found: dict[int, list[tuple[str, str, date]]] = {}
    for cohort_id, code, name, day in rows:
        found.setdefault(cohort_id, []).append((code, name, day))
    return found


def _view(cohort: Cohort, deadlines: list[tuple[str, str, date]]) -> CohortView:
    return CohortView(id=cohort.id, name=cohort.name, stay_start=cohort.stay_start, stay_end=cohort.stay_end,
                      missions_start=cohort.missions_start, missions_end=cohort.missions_end,
                      open_for_signup=cohort.open_for_signup, deadlines=tuple(deadlines))


async def list_cohorts(session: AsyncSession, *, open_only: bool = False) -> list[CohortView]:
    query = select(Cohort).order_by(Cohort.missions_start.desc(), Cohort.id.desc())
    if open_only:
        query = query.where(Cohort.open_for_signup).order_by(None).order_by(Cohort.missions_start, Cohort.id)
    cohorts = list(await session.scalars(query))
    deadlines = await _deadlines(session, [cohort.id for cohort in cohorts]) if cohorts else {}
    return [_view(cohort, deadlines.get(cohort.id, [])) for cohort in cohorts]


BIGINT_MAX = 2**63 - 1


async def get_cohort(session: AsyncSession, cohort_id: int) -> CohortView:
    if not 0 < cohort_id <= BIGINT_MAX:  # an id typed into the address: no cohort, never a database error
        raise CohortNotFound
    cohort = await session.get(Cohort, cohort_id)
    if cohort is None:
        raise CohortNotFound
    return _view(cohort, (await _deadlines(session, [cohort_id])).get(cohort_id, []))


async def save_cohort(session: AsyncSession, valid: ValidCohort, cohort_id: int | None = None) -> int:
    """Creates the cohort (`cohort_id` None) or replaces its fields and deadlines; raises `YouthInvalid` for a name
    another cohort has or an unknown department, `CohortNotFound`."""
    if valid.deadlines:
        known = set(await session.scalars(select(Department.code).where(Department.code.in_(list(valid.deadlines)))))
        unknown = sorted(code for code in valid.deadlines if code not in known)
        if unknown:
            raise YouthInvalid({"deadlines": f"Département(s) inconnu(s) : {', '.join(unknown)}. Écrivez leurs "
                                             "numéros, par exemple 01, 69 ou 2A."})
    taken = await session.scalar(
        select(Cohort.id).where(func.lower(Cohort.name) == valid.name.lower(),
                                Cohort.id != (cohort_id if cohort_id is not None else 0))
    )
    if taken is not None:
        raise YouthInvalid({"name": TAKEN})
    values = {"name": valid.name, "stay_start": valid.stay_start, "stay_end": valid.stay_end,
              "missions_start": valid.missions_start, "missions_end": valid.missions_end,
              "open_for_signup": valid.open_for_signup}
    if cohort_id is None:
        try:
            async with session.begin_nested():  # two identical submissions at once: one is refused, never a 500
                cohort = Cohort(**values)
                session.add(cohort)
                await session.flush()
        except IntegrityError as error:
            if "uq_cohorts_name" not in str(error.orig):
                raise
            raise YouthInvalid({"name": TAKEN}) from None
        cohort_id = cohort.id
    else:
        existing = await session.get(Cohort, cohort_id, with_for_update=True)
        if existing is None:
            raise CohortNotFound
        try:
            async with session.begin_nested():
                for field, value in values.items():
                    setattr(existing, field, value)
                existing.updated_at = func.now()
                await session.flush()
        except IntegrityError as error:
            if "uq_cohorts_name" not in str(error.orig):
                raise
            raise YouthInvalid({"name": TAKEN}) from None
        await session.execute(delete(CohortDepartmentDeadline).where(CohortDepartmentDeadline.cohort_id == cohort_id))
    if valid.deadlines:
        await session.execute(insert(CohortDepartmentDeadline).values([
            {"cohort_id": cohort_id, "department_code": code, "choose_by": day}
            for code, day in sorted(valid.deadlines.items())
        ]))
    await session.flush()
    return cohort_id


async def deadline_of(session: AsyncSession, cohort_id: int, department_code: str) -> date | None:
    """The last day a young person of this department chooses their mission in this cohort (None: not set yet)."""
    return await session.scalar(
        select(CohortDepartmentDeadline.choose_by).where(CohortDepartmentDeadline.cohort_id == cohort_id,
                                                         CohortDepartmentDeadline.department_code == department_code)
    )
