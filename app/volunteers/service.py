"""Sign-up use cases: accept into the queue (web, Redis only) and save queued batches (workers, PostgreSQL)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.index import PostcodeIndex, PostcodesUnavailable
from app.legal.service import terms_in_force
from app.volunteers.erasure import drop_erased
from app.volunteers.intake import Accepted, SignupIntake
from app.volunteers.models import Volunteer
from app.volunteers.schemas import QueuedSignup
from app.volunteers.validation import ValidSignup, validate_signup

HONEYPOT_FIELD = "website"
# What a sign-up within the limit replaces of a held-back row of the same address (app/volunteers/accept.lua).
REPLACEABLE = ("receipt", "email", "first_name", "last_name", "phone", "birth_date", "postal_code", "commune_code",
               "domains", "availability", "skills", "emergency_slug", "consent_at", "accepted_at", "unconfirmed",
               "terms_version")
SIGNUP_FIELDS = tuple(f.name for f in fields(ValidSignup))


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key already used for a different sign-up."""


class SignupBacklogged(Exception):
    """The queue is over its bound: the client should come back in a moment."""


def new_receipt() -> str:
    return secrets.token_urlsafe(16)


async def accept_signup(
    intake: SignupIntake,
    index: PostcodeIndex,
    data: dict[str, Any],
    *,
    client_ip: str,
    idempotency_key: str | None,
    now: datetime,
    today: date,
    terms_version: int | None = None,
) -> Accepted:
    """Validates and queues a sign-up; touches Redis only. Raises `SignupInvalid`, `IdempotencyKeyReused` or
    `SignupBacklogged`. The answer is the same whether the e-mail was known or not, and whether the address was
    past its limit (the sign-up is then held back until its e-mail is confirmed). Before the first release has
    published any postal code, raises `PostcodesUnavailable`: nothing could be validated."""
    if not len(index):
        raise PostcodesUnavailable
    if data.get(HONEYPOT_FIELD):
        # Bots fill every field; they get the answer a person gets, and nothing is kept.
        return Accepted("accepted", new_receipt(), False)
    signup = validate_signup(data, index, today)
    # A shallow copy of the fields: dataclasses.asdict deep-copies and showed up in the accept path's profile.
    values = {name: getattr(signup, name) for name in SIGNUP_FIELDS}
    record = QueuedSignup(receipt=new_receipt(), accepted_at=now, consent_at=now, terms_version=terms_version, **values)
    accepted = await intake.accept(record, client_ip=client_ip, idempotency_key=idempotency_key)
    if accepted.outcome == "conflict":
        raise IdempotencyKeyReused
    if accepted.outcome == "backlogged":
        raise SignupBacklogged
    return accepted


@dataclass
class SaveOutcome:
    """What a drained batch became: receipts now safe in PostgreSQL, and who should get which e-mail."""

    saved_receipts: list[str] = field(default_factory=list)
    welcome: list[tuple[int, str]] = field(default_factory=list)  # (volunteer id, mail idempotency key)
    reminder: list[tuple[int, str]] = field(default_factory=list)
    confirm: list[tuple[int, str]] = field(default_factory=list)  # held back: asked to confirm their e-mail


def _row(record: QueuedSignup) -> dict[str, Any]:
    return {
        "receipt": record.receipt,
        "email": record.email,
        "email_normalized": record.email_normalized,
        "first_name": record.first_name,
        "last_name": record.last_name,
        "phone": record.phone,
        "birth_date": record.birth_date,
        "postal_code": record.postal_code,
        "commune_code": record.commune_code,
        "domains": record.domains,
        "availability": record.availability,
        "skills": record.skills,
        "emergency_slug": record.emergency,
        "consent_at": record.consent_at,
        "accepted_at": record.accepted_at,
        "unconfirmed": record.unconfirmed,
        "terms_version": record.terms_version,
    }


async def with_terms_version(session: AsyncSession, records: list[QueuedSignup]) -> list[QueuedSignup]:
    """Records queued without a terms version (Redis did not know it) get the one in force when they arrived."""
    missing = [record for record in records if record.terms_version is None and not record.duplicate]
    if not missing:
        return records
    versions = dict(zip([r.receipt for r in missing],
                        await terms_in_force(session, [r.accepted_at for r in missing]), strict=True))
    return [msgspec.structs.replace(record, terms_version=versions[record.receipt]) if record.receipt in versions
            else record for record in records]


async def save_signups(session: AsyncSession, secret: str, batch: list[QueuedSignup]) -> SaveOutcome:
    """Writes a batch in one multi-row insert; idempotent, so a batch drained twice gives the same rows.

    A record whose e-mail is already saved under another receipt is a repeat sign-up: no second row, a reminder
    e-mail instead (not for a repeat past the per-address limit). A record found saved under its own receipt was
    written by a consumer that died before it could acknowledge: it is treated as new (its welcome e-mail is
    deduplicated by key). Records of a person erased after they were queued are dropped (app/volunteers/erasure.py);
    every receipt of the batch counts as saved, since none of them will ever be written."""
    outcome = SaveOutcome(saved_receipts=[record.receipt for record in batch])
    records = await with_terms_version(session, await drop_erased(session, secret, batch))
    fresh: dict[str, QueuedSignup] = {}
    for record in records:
        current = fresh.get(record.email_normalized)
        if not record.duplicate and (current is None or (current.unconfirmed and not record.unconfirmed)):
            fresh[record.email_normalized] = record
    inserted: dict[str, int] = {}
    if fresh:
        # executemany with RETURNING: SQLAlchemy folds it into multi-row INSERTs sized to stay under the bind limit.
        # A sign-up within the limit takes the place of a held-back row of the same address, nobody having
        # confirmed that one; any other existing row stays as it is.
        rows = insert(Volunteer)
        statement = rows.on_conflict_do_update(
            index_elements=[Volunteer.email_normalized],
            set_={column: rows.excluded[column] for column in REPLACEABLE},
            where=Volunteer.unconfirmed & ~rows.excluded.unconfirmed,
        ).returning(Volunteer.id, Volunteer.receipt)
        result = await session.execute(statement, [_row(record) for record in fresh.values()])
        inserted = {receipt: volunteer_id for volunteer_id, receipt in result}
    others = [r for r in records if r.receipt not in inserted]
    existing: dict[str, tuple[int, str]] = {}
    if others:
        emails = list({r.email_normalized for r in others})
        query = select(Volunteer.email_normalized, Volunteer.id, Volunteer.receipt).where(
            Volunteer.email_normalized.in_(emails)
        )
        existing = {email: (volunteer_id, receipt) for email, volunteer_id, receipt in await session.execute(query)}
    for record in records:
        first = outcome.confirm if record.unconfirmed else outcome.welcome
        if record.receipt in inserted:
            first.append((inserted[record.receipt], f"welcome:{record.receipt}"))
        elif (row := existing.get(record.email_normalized)) is not None:
            volunteer_id, saved_receipt = row
            if saved_receipt == record.receipt:
                first.append((volunteer_id, f"welcome:{record.receipt}"))
            elif not record.unconfirmed:
                outcome.reminder.append((volunteer_id, f"reminder:{record.receipt}"))
    return outcome
