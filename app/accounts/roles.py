"""The roles of a user as PostgreSQL holds them now, in one indexed query: read at sign-in, and again by the
privileged guards at every request, so a role revoked in the database stops working at the next request, not when
the 30-day session ends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.accounts.models import CoordinatorScope, ReferentScope, User
from app.accounts.schemas import Roles
from app.geo.models import Department
from app.organisations.models import OrganisationManager


def _query(user_id: int) -> Select[Any]:
    coordinated = select(func.array_agg(CoordinatorScope.department_code)).where(CoordinatorScope.user_id == User.id)
    managed = select(func.array_agg(OrganisationManager.organisation_id)).where(OrganisationManager.user_id == User.id)
    # A regional referent moderates every department of the region, as the dataset places them now.
    moderated = (
        select(func.array_agg(func.coalesce(ReferentScope.department_code, Department.code)))
        .select_from(ReferentScope)
        .outerjoin(Department, Department.region_code == ReferentScope.region_code)
        .where(ReferentScope.user_id == User.id)
        .where((ReferentScope.department_code.is_not(None)) | (ReferentScope.region_code.is_not(None)))
    )
    regions = select(func.array_agg(ReferentScope.region_code)).where(
        ReferentScope.user_id == User.id, ReferentScope.region_code.is_not(None)
    )
    national_referent = exists().where(
        ReferentScope.user_id == User.id, ReferentScope.department_code.is_(None), ReferentScope.region_code.is_(None)
    )
    return select(
        User.is_admin, coordinated.scalar_subquery(), managed.scalar_subquery(), moderated.scalar_subquery(),
        regions.scalar_subquery(), national_referent,
    ).where(User.id == user_id)


def _roles(row: Any, volunteer: bool) -> Roles:
    is_admin, coordinated, managed, moderated, regions, national_referent = row
    coordinated = coordinated or []
    return Roles(
        volunteer=volunteer,
        admin=bool(is_admin),
        national_coordinator=None in coordinated,
        departments=tuple(sorted(code for code in coordinated if code is not None)),
        organisations=tuple(sorted(managed or [])),
        national_referent=bool(national_referent),
        referent_departments=tuple(sorted({code for code in moderated or [] if code is not None})),
        referent_regions=tuple(sorted(regions or [])),
    )


async def roles_in(executor: AsyncSession | AsyncConnection, user_id: int, *, volunteer: bool) -> Roles | None:
    """None when the user does not exist (their account was deleted)."""
    row = (await executor.execute(_query(user_id))).first()
    return None if row is None else _roles(row, volunteer)


async def current_roles(engine: AsyncEngine, user_id: int, *, volunteer: bool) -> Roles | None:
    """For the guards. `volunteer` is kept from the session: it grants nothing a guard checks."""
    async with engine.connect() as connection:  # its own connection, returned to the pool before the handler runs
        return await roles_in(connection, user_id, volunteer=volunteer)
