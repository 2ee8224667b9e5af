"""Confirming the e-mail of a sign-up held back past the per-address limit (app/volunteers/accept.lua).

The `confirm_email` e-mail carries a signed link, `<volunteer id>.<expiry>.<signature>`: HMAC-SHA256 with SECRET_KEY
over a purpose, the id and the expiry, so a sign-in or dispatch signature never validates here and no address is in
it. The link expires when the purge would delete the sign-up (`HOLD` after it was accepted). Signing in through an
e-mailed link proves the address too (app/accounts/service.py). Either way the welcome e-mail goes once the
transaction has committed (app/deps.py), under the key the drain would have given it, so it never leaves twice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.after_commit import Clients, after_commit
from app.volunteers.models import Volunteer
from queues import enqueue

HOLD_DAYS = 30
HOLD = timedelta(days=HOLD_DAYS)
PATH = "/inscription/confirmer"
MAX_TOKEN = 200


class ConfirmLinkInvalid(Exception):
    """Not a confirmation link we signed: malformed, forged, altered, or signed for another purpose."""


class ConfirmLinkExpired(Exception):
    """A genuine link past its expiry, or whose sign-up is gone (purged or deleted): the same answer for both."""


@dataclass(frozen=True, slots=True)
class ConfirmLink:
    volunteer_id: int
    expires_at: int


def _signature(secret: str, body: str) -> str:
    mac = hmac.new(secret.encode(), f"confirm-email:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def expiry_of(accepted_at: datetime) -> int:
    return int((accepted_at + HOLD).timestamp())


def mint(secret: str, volunteer_id: int, expires_at: int) -> str:
    body = f"{volunteer_id}.{expires_at}"
    return f"{body}.{_signature(secret, body)}"


def url(base_url: str, secret: str, volunteer_id: int, expires_at: int) -> str:
    return f"{base_url}{PATH}?jeton={mint(secret, volunteer_id, expires_at)}"


def read(secret: str, token: str, now: float) -> ConfirmLink:
    """Checks the signature, then the expiry; raises `ConfirmLinkInvalid` or `ConfirmLinkExpired`."""
    parts = token.strip().split(".")
    if len(token) > MAX_TOKEN or len(parts) != 3 or not all(part.isdecimal() for part in parts[:2]):
        raise ConfirmLinkInvalid
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2].encode(), _signature(secret, body).encode()):
        raise ConfirmLinkInvalid
    link = ConfirmLink(volunteer_id=int(parts[0]), expires_at=int(parts[1]))
    if link.expires_at <= now:
        raise ConfirmLinkExpired
    return link


async def is_confirmed(session: AsyncSession, secret: str, token: str, now: float) -> bool:
    """For the page with the button: whether the link's sign-up is confirmed already. Changes nothing."""
    link = read(secret, token, now)
    unconfirmed = await session.scalar(select(Volunteer.unconfirmed).where(Volunteer.id == link.volunteer_id))
    if unconfirmed is None:
        raise ConfirmLinkExpired
    return not unconfirmed


async def confirm(session: AsyncSession, secret: str, token: str, now: float) -> bool:
    """Confirms the link's sign-up; True if this call did, False if it was confirmed already (a second click).
    Raises `ConfirmLinkInvalid` or `ConfirmLinkExpired`."""
    link = read(secret, token, now)
    rows = await session.execute(
        update(Volunteer).where(Volunteer.id == link.volunteer_id, Volunteer.unconfirmed)
        .values(unconfirmed=False).returning(Volunteer.id, Volunteer.receipt)
    )
    confirmed = _owe_welcomes(session, rows.all())
    if not confirmed and await session.scalar(select(Volunteer.id).where(Volunteer.id == link.volunteer_id)) is None:
        raise ConfirmLinkExpired
    return confirmed


async def confirm_address(session: AsyncSession, email_normalized: str) -> bool:
    """The person proved they read this address (an e-mailed sign-in link): their held-back sign-up is confirmed."""
    rows = await session.execute(
        update(Volunteer).where(Volunteer.email_normalized == email_normalized, Volunteer.unconfirmed)
        .values(unconfirmed=False).returning(Volunteer.id, Volunteer.receipt)
    )
    return _owe_welcomes(session, rows.all())


def _owe_welcomes(session: AsyncSession, rows: Sequence[Row[int, str]]) -> bool:
    welcomes = [(int(volunteer_id), f"welcome:{receipt}") for volunteer_id, receipt in rows]
    if welcomes:
        async def send(clients: Clients) -> None:
            await asyncio.to_thread(enqueue.send_volunteer_mails, clients.rq_connection, "welcome", welcomes)

        after_commit(session, send)  # only once the confirmation is safe in PostgreSQL
    return bool(rows)
