"""Invitations to manage an organisation: signed, expiring, single-use links sent by e-mail.

A token is `<secret>.<expiry>.<signature>` as app/accounts/tokens.py mints sign-in links, signed with a key derived
for invitations alone (a sign-in token is never an invitation, nor the reverse). PostgreSQL keeps only the SHA-256
of the secret; the token itself waits in Redis (`InvitationKeys.token`) until its e-mail job has sent it, so the
job payload holds the invitation's id only. Accepting consumes the row atomically (`accepted_at`); it signs in
only an address that had no account (`Accepted.account`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.models import User
from app.accounts.roles import roles_in
from app.accounts.schemas import Roles, SignedIn
from app.db.after_commit import Clients, after_commit
from app.organisations.models import ManagerInvitation, Organisation, OrganisationManager
from app.volunteers import confirmation
from app.volunteers.models import Volunteer
from queues import enqueue

PURPOSE = b"manager-invitation"
PREFIX = "renfort:invitations:"


class InvitationInvalid(Exception):
    """Not a token we signed: malformed, forged or altered."""


class InvitationExpired(Exception):
    """A genuine token past its expiry, already used, or whose invitation was cancelled."""


@dataclass(frozen=True, slots=True)
class InvitationKeys:
    invitation_id: int

    @property
    def token(self) -> str:
        """The token to e-mail, kept until its e-mail has left (never in a job payload)."""
        return f"{PREFIX}{self.invitation_id}:token"


def _key(secret: str) -> str:
    return hmac.new(secret.encode(), PURPOSE, hashlib.sha256).hexdigest()


def digest(token_id: str) -> str:
    return hashlib.sha256(token_id.encode()).hexdigest()


def mint(secret: str, expires_at: int) -> tuple[str, str]:
    """A new token and the digest PostgreSQL keeps of it."""
    token_id = tokens.new_id()
    return tokens.mint(_key(secret), token_id, expires_at), digest(token_id)


def read(secret: str, token: str, now: float) -> str:
    """The digest of a genuine, unexpired token; raises `InvitationInvalid` or `InvitationExpired`."""
    try:
        return digest(tokens.read(_key(secret), token, now).token_id)
    except tokens.LinkInvalid:
        raise InvitationInvalid from None
    except tokens.LinkExpired:
        raise InvitationExpired from None


def url(base_url: str, token: str) -> str:
    return f"{base_url}/invitation?jeton={token}"


async def create(session: AsyncSession, *, organisation_id: int, email: str, email_normalized: str,
                 invited_by: int | None, secret: str, days: int) -> int:
    """Records the invitation; once committed, its token goes to Redis and its e-mail job is queued."""
    now = int(datetime.now(UTC).timestamp())
    expires_at = now + days * 86_400
    token, token_digest = mint(secret, expires_at)
    invitation_id = int(await session.scalar(
        insert(ManagerInvitation).values(
            organisation_id=organisation_id, email=email, email_normalized=email_normalized, invited_by=invited_by,
            token_digest=token_digest, expires_at=datetime.fromtimestamp(expires_at, UTC),
        ).returning(ManagerInvitation.id)
    ) or 0)

    async def send(clients: Clients) -> None:
        await clients.redis.set(InvitationKeys(invitation_id).token, token, ex=expires_at - now)
        await asyncio.to_thread(enqueue.send_invitation_mail, clients.rq_connection, invitation_id)

    after_commit(session, send)
    return invitation_id


@dataclass(frozen=True, slots=True)
class Invitation:
    organisation_id: int
    organisation_name: str
    creator: bool  # the person registered the organisation themselves (nobody invited them)


def _usable(token_digest: str) -> ColumnElement[bool]:
    return and_(ManagerInvitation.token_digest == token_digest, ManagerInvitation.accepted_at.is_(None),
                ManagerInvitation.expires_at > func.now())


async def check(session: AsyncSession, *, secret: str, token: str, now: float) -> Invitation:
    """For the confirmation page: a genuine invitation, still usable. Consumes nothing."""
    row = (await session.execute(
        select(ManagerInvitation.organisation_id, Organisation.name, ManagerInvitation.invited_by)
        .join(Organisation, Organisation.id == ManagerInvitation.organisation_id)
        .where(_usable(read(secret, token, now)))
    )).first()
    if row is None:
        raise InvitationExpired
    return Invitation(organisation_id=row[0], organisation_name=row[1], creator=row[2] is None)


@dataclass(frozen=True, slots=True)
class Accepted:
    organisation_id: int
    organisation_name: str
    user_id: int
    roles: Roles  # the user's roles, this organisation included
    # Only for an address that had no account at all: it opens nothing else, so the link may sign it in. An address
    # with an account signs in as usual (a short-lived sign-in link), never with a days-long invitation.
    account: SignedIn | None


async def accept(session: AsyncSession, *, secret: str, token: str, now: float) -> Accepted:
    """Consumes the invitation (a second use, even concurrent, finds nothing), creates the user if needed and makes
    them a manager. Raises `InvitationInvalid` or `InvitationExpired`."""
    row = (await session.execute(
        update(ManagerInvitation).where(_usable(read(secret, token, now)))
        .values(accepted_at=func.now())
        .returning(ManagerInvitation.organisation_id, ManagerInvitation.email, ManagerInvitation.email_normalized)
    )).first()
    if row is None:
        raise InvitationExpired
    organisation_id, email, email_normalized = row
    volunteer = await session.scalar(select(Volunteer.id).where(Volunteer.email_normalized == email_normalized))
    if volunteer is not None:
        await confirmation.confirm_address(session, email_normalized)  # the link proved the address
    # Inserted only when no row holds the address (a concurrent insert of the same address makes this one a no-op);
    # a volunteer's address is an account already, which this link does not sign in.
    created = await session.scalar(
        insert(User).values(email=email, email_normalized=email_normalized,
                            last_sign_in_at=None if volunteer is not None else datetime.fromtimestamp(now, UTC))
        .on_conflict_do_nothing(index_elements=[User.email_normalized]).returning(User.id)
    )
    user_id = created if created is not None else await session.scalar(
        select(User.id).where(User.email_normalized == email_normalized))
    if user_id is None:
        raise InvitationExpired  # the account was deleted at that very moment, its invitations with it
    await session.execute(
        insert(OrganisationManager).values(organisation_id=organisation_id, user_id=user_id).on_conflict_do_nothing()
    )
    roles = await roles_in(session, user_id, volunteer=volunteer is not None)
    name = await session.scalar(select(Organisation.name).where(Organisation.id == organisation_id))
    assert roles is not None and name is not None
    new = created is not None and volunteer is None
    account = SignedIn(user_id=user_id, email=email, roles=roles, since=int(now)) if new else None
    return Accepted(organisation_id=organisation_id, organisation_name=name, user_id=user_id, roles=roles,
                    account=account)
