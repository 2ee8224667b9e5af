"""An organisation's managers: who they are, inviting co-managers (within the caps of invitation_limits.py),
leaving. An organisation never ends without a manager: leaving and deleting one's account lock the organisation's
row first, so two last managers leaving at once are decided one after the other, and the second is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.organisations import invitations
from app.organisations.invitation_limits import InvitationLimits
from app.organisations.models import ManagerInvitation, Organisation, OrganisationManager
from app.organisations.service import OrganisationNotFound
from app.organisations.validation import OrganisationInvalid
from app.text_rules import TextRefused
from app.volunteers.validation import parse_email

MAX_PENDING = 20  # invitations waiting for an answer, per organisation


async def manager_addresses(session: AsyncSession, organisation_id: int,
                            user_ids: list[int] | None = None) -> list[tuple[int, str]]:
    """(user id, normalised address) of the organisation's managers now, by id; `user_ids` narrows them (a deferred
    e-mail goes only to those still owed it, and never to someone who stopped managing since)."""
    query = (select(User.id, User.email_normalized).join(OrganisationManager, OrganisationManager.user_id == User.id)
             .where(OrganisationManager.organisation_id == organisation_id))
    if user_ids is not None:
        query = query.where(User.id.in_(user_ids))
    return [(user_id, email) for user_id, email in await session.execute(query.order_by(User.id))]


class LastManager(Exception):
    """The only manager of an organisation asked to leave it."""


class TooManyInvitations(Exception):
    """Past a cap of app/organisations/invitation_limits.py; `message` is for the e-mail field."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__("invitation cap reached")
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Manager:
    user_id: int
    email: str


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    id: int
    email: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Team:
    organisation_id: int
    organisation_name: str
    managers: list[Manager]
    pending: list[PendingInvitation]


async def team(session: AsyncSession, organisation_id: int) -> Team:
    name = await session.scalar(select(Organisation.name).where(Organisation.id == organisation_id))
    if name is None:
        raise OrganisationNotFound
    managers = (await session.execute(
        select(User.id, User.email).join(OrganisationManager, OrganisationManager.user_id == User.id)
        .where(OrganisationManager.organisation_id == organisation_id).order_by(User.email_normalized)
    )).all()
    pending = (await session.execute(
        select(ManagerInvitation.id, ManagerInvitation.email, ManagerInvitation.expires_at)
        .where(ManagerInvitation.organisation_id == organisation_id, ManagerInvitation.accepted_at.is_(None),
               ManagerInvitation.expires_at > func.now())
        .order_by(ManagerInvitation.created_at, ManagerInvitation.id)
    )).all()
    return Team(organisation_id, name, [Manager(*row) for row in managers],
                [PendingInvitation(*row) for row in pending])


async def invite(session: AsyncSession, organisation_id: int, *, email: object, invited_by: int, secret: str,
                 days: int, limits: InvitationLimits) -> None:
    """A manager invites a co-manager; inviting an address again replaces its pending invitation (a new link).
    Raises `OrganisationInvalid` with the message for the e-mail field, or `TooManyInvitations`. Every check comes
    before the first write: a refused invitation changes nothing."""
    try:
        typed, normalized = parse_email(email)
    except TextRefused as refused:
        raise OrganisationInvalid({"email": refused.message}) from None
    await _lock(session, organisation_id)
    already = await session.scalar(
        select(func.count()).select_from(OrganisationManager).join(User, User.id == OrganisationManager.user_id)
        .where(OrganisationManager.organisation_id == organisation_id, User.email_normalized == normalized)
    )
    if already:
        raise OrganisationInvalid({"email": "Cette personne gère déjà la structure."})
    others_pending = await session.scalar(
        select(func.count()).select_from(ManagerInvitation)
        .where(ManagerInvitation.organisation_id == organisation_id, ManagerInvitation.accepted_at.is_(None),
               ManagerInvitation.expires_at > func.now(), ManagerInvitation.email_normalized != normalized)
    )
    if (others_pending or 0) >= MAX_PENDING:
        raise OrganisationInvalid({"email": f"Cette structure a déjà {MAX_PENDING} invitations en attente : "
                                            "annulez-en une avant d'en envoyer une autre."})
    verdict = await limits.take(organisation_id, normalized)
    wait = _wait(verdict.retry_after)
    if verdict.outcome == "organisation":
        raise TooManyInvitations(
            f"Cette structure a déjà envoyé {limits.per_organisation} invitations ces dernières 24 heures (les "
            f"invitations annulées comptent aussi). Vous pourrez en envoyer une autre dans {wait}.",
            verdict.retry_after)
    if verdict.outcome == "address":
        raise TooManyInvitations(
            f"Cette adresse ne peut pas être invitée pour le moment : vous pourrez l'inviter dans {wait}.",
            verdict.retry_after)
    await session.execute(delete(ManagerInvitation).where(
        ManagerInvitation.organisation_id == organisation_id, ManagerInvitation.email_normalized == normalized,
        ManagerInvitation.accepted_at.is_(None),
    ))
    await invitations.create(session, organisation_id=organisation_id, email=typed, email_normalized=normalized,
                             invited_by=invited_by, secret=secret, days=days)


def _wait(seconds: int) -> str:
    if seconds < 3600:
        minutes = -(-seconds // 60)
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours = -(-seconds // 3600)
    return "1 heure" if hours == 1 else f"{hours} heures"


async def cancel(session: AsyncSession, organisation_id: int, invitation_id: int) -> None:
    """Idempotent: an invitation already accepted, cancelled or of another organisation is left alone."""
    await session.execute(delete(ManagerInvitation).where(
        ManagerInvitation.id == invitation_id, ManagerInvitation.organisation_id == organisation_id,
        ManagerInvitation.accepted_at.is_(None),
    ))


async def _lock(session: AsyncSession, organisation_id: int) -> None:
    found = await session.scalar(
        select(Organisation.id).where(Organisation.id == organisation_id).with_for_update()
    )
    if found is None:
        raise OrganisationNotFound


async def _managers(session: AsyncSession, organisation_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(OrganisationManager).where(OrganisationManager.organisation_id
                                                                     == organisation_id)
    ) or 0)


async def leave(session: AsyncSession, organisation_id: int, user_id: int) -> None:
    """Raises `LastManager` when nobody else manages the organisation."""
    await _lock(session, organisation_id)
    if await _managers(session, organisation_id) <= 1:
        raise LastManager
    await session.execute(delete(OrganisationManager).where(
        OrganisationManager.organisation_id == organisation_id, OrganisationManager.user_id == user_id,
    ))


@dataclass(frozen=True, slots=True)
class Managed:
    id: int
    name: str


async def solely_managed(session: AsyncSession, user_id: int, *, lock: bool = False) -> list[Managed]:
    """The organisations nobody but this user manages. With `lock`, every organisation they manage stays locked
    until the transaction ends (in id order, as `leave` takes them), so nobody leaves one meanwhile."""
    query = (select(Organisation.id, Organisation.name)
             .join(OrganisationManager, OrganisationManager.organisation_id == Organisation.id)
             .where(OrganisationManager.user_id == user_id).order_by(Organisation.id))
    managed = (await session.execute(query.with_for_update(of=Organisation) if lock else query)).all()
    if not managed:
        return []
    counts = dict((await session.execute(
        select(OrganisationManager.organisation_id, func.count())
        .where(OrganisationManager.organisation_id.in_([row[0] for row in managed]))
        .group_by(OrganisationManager.organisation_id)
    )).all())
    return sorted((Managed(id, name) for id, name in managed if counts.get(id, 0) <= 1), key=lambda row: row.name)
