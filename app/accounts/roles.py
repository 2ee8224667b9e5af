"""The roles of a signed-in user as PostgreSQL holds them now, in one indexed query: the privileged guards re-read them
at every request, so a role revoked in the database stops working at the next request, not when the 30-day session
ends."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.models import CoordinatorScope, User
from app.accounts.schemas import Roles
from app.organisations.models import OrganisationManager


async def current_roles(engine: AsyncEngine, user_id: int, *, volunteer: bool) -> Roles | None:
    """None when the user no longer exists (their account was deleted). `volunteer` is kept from the session: it
    grants nothing a guard checks."""
    departments = select(func.array_agg(CoordinatorScope.department_code)).where(CoordinatorScope.user_id == User.id)
    organisations = select(func.array_agg(OrganisationManager.organisation_id)).where(
        OrganisationManager.user_id == User.id
    )
    query = select(User.is_admin, departments.scalar_subquery(), organisations.scalar_subquery()).where(
        User.id == user_id
    )
    async with engine.connect() as connection:  # its own connection, returned to the pool before the handler runs
        row = (await connection.execute(query)).first()
    if row is None:
        return None
    is_admin, scopes, managed = row
    scopes, managed = scopes or [], managed or []
    return Roles(
        volunteer=volunteer,
        admin=bool(is_admin),
        national_coordinator=None in scopes,
        departments=tuple(sorted(code for code in scopes if code is not None)),
        organisations=tuple(sorted(managed)),
    )
