"""Everything Renfort holds about one person, as one JSON document: their account, their volunteer row, their
roles, the organisations they manage, their applications (dispatch proposals included) with the missions' titles,
the invitations addressed to them, the role changes about them, and the rows of any other table that points at
them by a `user_id`, `volunteer_id` or `subject_user_id` column (consents, legal acceptances…).

Rows are serialised column by column from the mapping, so a column added later appears without a change here.
Other people's data never goes in: role changes keep no other person's address, invitations they sent are left out
(the addresses are the invitees')."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Table, inspect, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import CoordinatorScope, ReferentScope, RoleChange, User
from app.applications.models import Application
from app.applications.schemas import STATUS_LABELS as APPLICATION_LABELS
from app.db import registry
from app.missions.models import Mission
from app.organisations.models import ManagerInvitation, Organisation, OrganisationManager
from app.organisations.schemas import STATUS_LABELS as ORGANISATION_LABELS
from app.volunteers.models import Volunteer

FORMAT = "renfort-donnees-personnelles/1"
# The columns by which a row of another table is about a person (not merely written by them).
SUBJECT_COLUMNS = {"users": ("user_id", "subject_user_id"), "volunteers": ("volunteer_id",)}
# Shown in their own sections, or left out on purpose.
EXPLICIT = {"users", "volunteers", "applications", "coordinator_scopes", "referent_scopes", "organisation_managers",
            "role_changes", "manager_invitations"}


def columns(row: Any) -> dict[str, Any] | None:
    """Every mapped column of an ORM row."""
    if row is None:
        return None
    return {attribute.key: getattr(row, attribute.key) for attribute in inspect(type(row)).column_attrs}


async def personal_data(session: AsyncSession, user_id: int, *, now: datetime | None = None) -> dict[str, Any] | None:
    """None when the account no longer exists."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    volunteer = await session.scalar(select(Volunteer).where(Volunteer.email_normalized == user.email_normalized))
    document: dict[str, Any] = {
        "format": FORMAT,
        "genere_le": now or datetime.now(UTC),
        "compte": columns(user),
        "benevole": columns(volunteer),
        "preferences_e_mail": None if volunteer is None else {
            "e_mails_sur_mes_candidatures": volunteer.mail_applications,
            "e_mails_des_urgences_et_propositions": volunteer.mail_emergencies,
        },
        "roles": await _roles(session, user),
        "structures_gerees": await _organisations(session, user_id),
        "candidatures": [] if volunteer is None else await _applications(session, volunteer.id),
        "invitations_recues": await _invitations(session, user.email_normalized),
        "historique_des_roles": await _role_changes(session, user_id),
        "autres_donnees": await _other_tables(session, user_id, None if volunteer is None else volunteer.id),
    }
    return document


def encode(document: dict[str, Any]) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document, enc_hook=str), indent=2)


async def _roles(session: AsyncSession, user: User) -> dict[str, Any]:
    coordinated = list(await session.scalars(
        select(CoordinatorScope.department_code).where(CoordinatorScope.user_id == user.id)
    ))
    refereed = (await session.execute(
        select(ReferentScope.department_code, ReferentScope.region_code).where(ReferentScope.user_id == user.id)
    )).all()
    return {
        "administration": user.is_admin,
        "coordination": sorted(code or "national" for code in coordinated),
        "referent": sorted(f"departement:{department}" if department else f"region:{region}" if region
                           else "national" for department, region in refereed),
    }


async def _organisations(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Organisation.id, Organisation.name, Organisation.status)
        .join(OrganisationManager, OrganisationManager.organisation_id == Organisation.id)
        .where(OrganisationManager.user_id == user_id).order_by(Organisation.id)
    )
    return [{"id": row.id, "nom": row.name, "statut": ORGANISATION_LABELS.get(row.status, row.status)}
            for row in rows]


async def _applications(session: AsyncSession, volunteer_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Application, Mission.title, Organisation.name.label("organisation_name"))
        .join(Mission, Mission.id == Application.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(Application.volunteer_id == volunteer_id).order_by(Application.applied_at, Application.id)
    )
    found = []
    for application, title, organisation_name in rows:
        entry = {"mission": title, "structure": organisation_name,
                 "statut_libelle": APPLICATION_LABELS.get(application.status, application.status)}
        entry |= columns(application) or {}
        found.append(entry)
    return found


async def _invitations(session: AsyncSession, email_normalized: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(ManagerInvitation.email, Organisation.name, ManagerInvitation.created_at,
               ManagerInvitation.expires_at, ManagerInvitation.accepted_at)
        .join(Organisation, Organisation.id == ManagerInvitation.organisation_id)
        .where(ManagerInvitation.email_normalized == email_normalized).order_by(ManagerInvitation.id)
    )
    return [{"adresse": row.email, "structure": row.name, "envoyee_le": row.created_at, "expire_le": row.expires_at,
             "acceptee_le": row.accepted_at} for row in rows]


async def _role_changes(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    """The changes of this person's roles, and those they made (then the other person is not named)."""
    rows = await session.execute(
        select(RoleChange).where(or_(RoleChange.subject_user_id == user_id, RoleChange.actor_user_id == user_id))
        .order_by(RoleChange.at, RoleChange.id)
    )
    changes = []
    for change in rows.scalars():
        about_me = change.subject_user_id == user_id
        changes.append({"le": change.at, "action": change.action, "role": change.role, "perimetre": change.scope,
                        "concerne": "vous" if about_me else "une autre personne",
                        "par": "vous" if change.actor_user_id == user_id else "l'administration"})
    return changes


async def _other_tables(session: AsyncSession, user_id: int, volunteer_id: int | None) -> dict[str, list[Any]]:
    wanted = {"users": user_id, "volunteers": volunteer_id}
    found: dict[str, list[Any]] = {}
    for table in registry.metadata.sorted_tables:
        if table.name in EXPLICIT:
            continue
        conditions = [column == wanted[target] for column, target in _subject_columns(table)
                      if wanted[target] is not None]
        if not conditions:
            continue
        rows = (await session.execute(select(table).where(or_(*conditions)))).mappings().all()
        if rows:
            found[table.name] = [dict(row) for row in rows]
    return found


def _subject_columns(table: Table) -> list[tuple[Any, str]]:
    pairs = []
    for column in table.columns:
        for foreign_key in column.foreign_keys:
            target = foreign_key.column.table.name
            if column.name in SUBJECT_COLUMNS.get(target, ()):
                pairs.append((column, target))
    return pairs
