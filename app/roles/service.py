"""Granting and revoking roles, for the command line and the administration page: referents (departments, a region or
national, `referent_scopes`), coordinators (departments or national, `coordinator_scopes`) and admins
(`users.is_admin`). Each change writes its `role_changes` row in the caller's transaction; a grant of what the person
already holds changes and audits nothing. A revocation is checked before anything is deleted, so a refused one leaves
the transaction as it found it (the page's request still commits).

The guards re-read roles at every privileged request (app/accounts/roles.py): a change counts from the person's
next request, without signing them out."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import CoordinatorScope, ReferentScope, RoleChange, User
from app.accounts.service import parse_email
from app.geo.models import Department, Region
from app.roles.schemas import NATIONAL, Actor, Change, Holding, JournalEntry, Role, Scope
from app.roles.scopes import RoleInvalid, RoleRefused, check_scope
from app.volunteers.validation import SignupInvalid

LAST_ADMIN = ("C'est la dernière personne à administrer la plateforme : nommez d'abord quelqu'un d'autre à "
              "l'administration, puis retirez-lui ce rôle.")


def _address(email: object) -> tuple[str, str]:
    try:
        return parse_email(email)
    except SignupInvalid as invalid:
        raise RoleInvalid(invalid.errors["email"], "email") from None


async def _existing_user(session: AsyncSession, email: object) -> int | None:
    return await session.scalar(select(User.id).where(User.email_normalized == _address(email)[1]))


async def _user(session: AsyncSession, email: object) -> int:
    """The person's user id, their `users` row created when they have none: they can then ask for a sign-in link."""
    typed, normalized = _address(email)
    created = await session.scalar(
        insert(User).values(email=typed, email_normalized=normalized)
        .on_conflict_do_nothing(index_elements=[User.email_normalized]).returning(User.id)
    )
    user_id = created if created is not None else await _existing_user(session, email)
    if user_id is None:  # deleted between the two statements
        raise RoleRefused("Ce compte vient d'être supprimé : réessayez.", "email")
    return user_id


def _rows(role: Role, user_id: int, scope: Scope) -> list[dict[str, Any]]:
    if role is Role.COORDINATOR:
        return [{"user_id": user_id, "department_code": code} for code in scope.departments or (None,)]
    if scope.region is not None:
        return [{"user_id": user_id, "department_code": None, "region_code": scope.region}]
    return [{"user_id": user_id, "department_code": code, "region_code": None} for code in scope.departments or (None,)]


async def _add(session: AsyncSession, role: Role, user_id: int, scope: Scope) -> Scope | None:
    """What the grant added: the part of `scope` the person did not hold yet, None when they held all of it."""
    if role is Role.ADMIN:
        promoted = await session.scalar(
            update(User).where(User.id == user_id, User.is_admin.is_(False)).values(is_admin=True).returning(User.id)
        )
        return NATIONAL if promoted is not None else None
    model: Any = CoordinatorScope if role is Role.COORDINATOR else ReferentScope
    # ON CONFLICT: a concurrent grant of the same scope waits for this one and then adds (and audits) nothing.
    added = list(await session.scalars(
        insert(model).values(_rows(role, user_id, scope)).on_conflict_do_nothing().returning(model.department_code)
    ))
    if not added:
        return None
    return scope if scope.national or scope.region else Scope(departments=tuple(sorted(added)))


async def _audit(session: AsyncSession, actor: Actor, change: Change) -> Change:
    await session.execute(insert(RoleChange).values(
        actor_user_id=actor.user_id, actor_label=actor.label, subject_user_id=change.subject_user_id,
        action=change.action, role=change.role.value, scope=change.scope.text,
    ))
    return change


async def grant(session: AsyncSession, *, actor: Actor, email: object, role: Role, scope: Scope) -> Change | None:
    """None when the person already held all of it. Raises `RoleInvalid`."""
    await check_scope(session, role, scope)
    user_id = await _user(session, email)
    added = await _add(session, role, user_id, scope)
    if added is None:
        return None
    return await _audit(session, actor, Change(action="grant", role=role, scope=added, subject_user_id=user_id))


def _not_held(role: Role, scope: Scope, missing: list[str]) -> RoleRefused:
    if role is Role.ADMIN:
        return RoleRefused("Cette personne n'a pas le rôle d'administration.")
    if role is Role.COORDINATOR:
        if scope.national:
            return RoleRefused("Cette personne n'a pas la coordination nationale.")
        return RoleRefused(f"Cette personne ne coordonne pas ces départements : {', '.join(missing)}.")
    if scope.national:
        return RoleRefused("Cette personne n'est pas référent·e national·e.")
    if scope.region is not None:
        return RoleRefused(f"Cette personne n'est pas référent·e de la région {scope.region}.")
    return RoleRefused(f"Cette personne n'est pas référent·e de ces départements : {', '.join(missing)}.")


async def admins_locked(session: AsyncSession) -> set[int]:
    """Every admin row locked until the commit: two admins revoking each other (or deleting their accounts) at once
    cannot both see another admin left."""
    return set(await session.scalars(select(User.id).where(User.is_admin.is_(True)).with_for_update()))


async def _remove_admin(session: AsyncSession, user_id: int) -> None:
    admins = await admins_locked(session)
    if user_id not in admins:
        raise _not_held(Role.ADMIN, NATIONAL, [])
    if len(admins) == 1:
        raise RoleRefused(LAST_ADMIN)
    await session.execute(update(User).where(User.id == user_id).values(is_admin=False))


def _matching(model: Any, user_id: int, scope: Scope) -> list[Any]:
    conditions = [model.user_id == user_id]
    if model is ReferentScope:
        conditions.append(ReferentScope.region_code.is_(None) if scope.region is None
                          else ReferentScope.region_code == scope.region)
    if scope.departments:
        conditions.append(model.department_code.in_(scope.departments))
    else:
        conditions.append(model.department_code.is_(None))
    return conditions


async def _remove_scopes(session: AsyncSession, role: Role, user_id: int, scope: Scope) -> None:
    model: Any = CoordinatorScope if role is Role.COORDINATOR else ReferentScope
    conditions = _matching(model, user_id, scope)
    held = list(await session.scalars(select(model.department_code).where(*conditions).with_for_update()))
    missing = [code for code in scope.departments if code not in held]
    if not held or missing:
        raise _not_held(role, scope, missing)
    await session.execute(delete(model).where(*conditions))


async def revoke(session: AsyncSession, *, actor: Actor, email: object, role: Role, scope: Scope) -> Change:
    """All of `scope` or nothing. Raises `RoleInvalid`, or `RoleRefused` when the person does not hold all of it or is
    the last admin."""
    await check_scope(session, role, scope)
    user_id = await _existing_user(session, email)
    if user_id is None:
        raise _not_held(role, scope, list(scope.departments))
    if role is Role.ADMIN:
        await _remove_admin(session, user_id)
    else:
        await _remove_scopes(session, role, user_id, scope)
    return await _audit(session, actor, Change(action="revoke", role=role, scope=scope, subject_user_id=user_id))


def _unit(department_code: str | None, region_code: str | None = None) -> Scope:
    if region_code is not None:
        return Scope(region=region_code)
    return Scope(departments=(department_code,)) if department_code is not None else NATIONAL


def _order(scope: Scope) -> tuple[int, str]:
    return (0, "") if scope.national else (1, scope.region) if scope.region else (2, scope.departments[0])


async def holders(session: AsyncSession, role: Role | None = None) -> list[Holding]:
    """Who holds what, role by role (admins, coordinators, referents), people by address."""
    found: list[Holding] = []
    if role in (None, Role.ADMIN):
        admins = await session.execute(
            select(User.id, User.email).where(User.is_admin.is_(True)).order_by(User.email_normalized)
        )
        found += [Holding(role=Role.ADMIN, user_id=uid, email=email, scopes=(NATIONAL,)) for uid, email in admins]
    queries: list[tuple[Role, Any]] = [
        (Role.COORDINATOR, select(User.id, User.email, CoordinatorScope.department_code)
         .join(CoordinatorScope, CoordinatorScope.user_id == User.id)),
        (Role.REFERENT, select(User.id, User.email, ReferentScope.department_code, ReferentScope.region_code)
         .join(ReferentScope, ReferentScope.user_id == User.id)),
    ]
    for held_role, query in queries:
        if role not in (None, held_role):
            continue
        rows = (await session.execute(query.order_by(User.email_normalized, User.id))).all()
        for (user_id, email), group in groupby(rows, key=lambda row: (row[0], row[1])):
            scopes = sorted((_unit(*row[2:]) for row in group), key=_order)
            found.append(Holding(role=held_role, user_id=user_id, email=email, scopes=tuple(scopes)))
    return found


async def journal(session: AsyncSession, limit: int = 100) -> list[JournalEntry]:
    """The latest changes first."""
    rows = await session.execute(
        select(RoleChange.at, RoleChange.actor_label, User.email, RoleChange.action, RoleChange.role, RoleChange.scope)
        .outerjoin(User, User.id == RoleChange.subject_user_id)
        .order_by(RoleChange.at.desc(), RoleChange.id.desc()).limit(limit)
    )
    return [JournalEntry(at=at, actor=actor, subject=subject, action=action, role=role, scope=scope)
            for at, actor, subject, action, role, scope in rows]


async def place_names(session: AsyncSession) -> tuple[dict[str, str], dict[str, str]]:
    """(department code → name, region code → name), regions by name."""
    departments = dict((await session.execute(select(Department.code, Department.name))).all())
    regions = dict((await session.execute(select(Region.code, Region.name).order_by(Region.name))).all())
    return departments, regions
