"""Legal texts: the current versions (Redis first, PostgreSQL when Redis has lost them), rendering, publishing a
new version, and the terms version a person accepted."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.db.after_commit import Clients, after_commit
from app.legal.current import Rendered, Versions, copy_of
from app.legal.kinds import KINDS, Kind, parse_kind
from app.legal.markup import render
from app.legal.models import LegalText
from app.legal.texts import DEFAULTS, substitute
from app.settings import Settings
from app.text_rules import TextRefused, clean_text
from app.volunteers.models import Volunteer

TITLE_LENGTH = 200
BODY_LENGTH = 40_000
# Publications of one kind take turns (version numbers follow each other): one lock per kind, this plus its index.
PUBLISH_LOCK = 7_212_020_311


class LegalTextInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid legal text")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Publication:
    title: str
    body: str
    major: bool


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: int
    title: str
    published_at: datetime
    published_by: str | None  # the admin's address, None for the release step or a deleted account
    major: bool


async def load_versions(session: AsyncSession) -> Versions:
    rows = await session.execute(select(LegalText.kind, func.max(LegalText.version)).group_by(LegalText.kind))
    current = {kind: version for name, version in rows if (kind := parse_kind(name)) is not None}
    major = await session.scalar(
        select(func.max(LegalText.version)).where(LegalText.kind == Kind.TERMS.value, LegalText.major)
    )
    return Versions(current, int(major or 1))


async def current_versions(session: AsyncSession, redis: Redis) -> Versions:
    """From the per-process copy of Redis's hash; loaded from PostgreSQL and written back when Redis has none."""
    copy = copy_of(redis)
    versions = await copy.get()
    if versions is None:
        versions = await load_versions(session)
        await copy.publish(versions)
    return versions


async def rendered(session: AsyncSession, redis: Redis, settings: Settings, kind: Kind,
                   version: int) -> Rendered | None:
    """One version as its page shows it; None when it does not exist. Each process renders a version once."""
    copy = copy_of(redis)
    found = copy.texts.get((kind, version))
    if found is not None:
        return found
    row = await session.scalar(select(LegalText).where(LegalText.kind == kind.value, LegalText.version == version))
    if row is None:
        return None
    found = Rendered(kind, row.version, substitute(row.title, settings), str(render(substitute(row.body, settings))),
                     row.published_at, row.major)
    copy.texts[(kind, version)] = found
    return found


async def history(session: AsyncSession) -> dict[Kind, list[VersionRow]]:
    """Every version of every kind, newest first, for the administration page."""
    rows = await session.execute(
        select(LegalText.kind, LegalText.version, LegalText.title, LegalText.published_at, User.email, LegalText.major)
        .outerjoin(User, User.id == LegalText.published_by)
        .order_by(LegalText.kind, LegalText.version.desc())
    )
    found: dict[Kind, list[VersionRow]] = {kind: [] for kind in KINDS}
    for name, version, title, published_at, email, major in rows:
        kind = parse_kind(name)
        if kind is not None:
            found[kind].append(VersionRow(version, title, published_at, email, major))
    return found


async def source_of(session: AsyncSession, kind: Kind) -> tuple[str, str]:
    """The title and body of the current version as typed (placeholders kept), to start the next one from."""
    row = (await session.execute(
        select(LegalText.title, LegalText.body).where(LegalText.kind == kind.value)
        .order_by(LegalText.version.desc()).limit(1)
    )).first()
    return (row[0], row[1]) if row is not None else DEFAULTS[kind]


def validate_publication(form: dict[str, Any]) -> Publication:
    errors: dict[str, str] = {}
    title = body = ""
    try:
        title = clean_text(form.get("title"), "Titre", TITLE_LENGTH, collapse=True)
        if not title:
            errors["title"] = "Indiquez le titre du texte."
    except TextRefused as refused:
        errors["title"] = refused.message
    try:
        body = clean_text(form.get("body"), "Texte", BODY_LENGTH, multiline=True)
        if not body:
            errors["body"] = "Saisissez le texte à publier."
    except TextRefused as refused:
        errors["body"] = refused.message
    if errors:
        raise LegalTextInvalid(errors)
    return Publication(title, body, bool(form.get("major")))


async def publish(session: AsyncSession, kind: Kind, publication: Publication, *, user_id: int | None) -> int:
    """Adds the next version of `kind`; once committed, every web process shows it within a second. `major` counts
    for the terms only: everyone is then asked to accept them at their next sign-in."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": PUBLISH_LOCK + list(Kind).index(kind)})
    latest = await session.scalar(select(func.max(LegalText.version)).where(LegalText.kind == kind.value))
    version = int(latest or 0) + 1
    major = publication.major and kind is Kind.TERMS
    session.add(LegalText(kind=kind.value, version=version, title=publication.title, body=publication.body,
                          major=major or version == 1, published_by=user_id))
    await session.flush()
    versions = await load_versions(session)

    async def announce(clients: Clients) -> None:
        await copy_of(clients.redis).publish(versions)

    after_commit(session, announce, key="legal:versions")
    return version


async def seed_defaults(session: AsyncSession) -> int:
    """Version 1 of every kind that has none yet; returns how many were added."""
    present = set((await session.scalars(select(LegalText.kind).distinct())).all())
    added = 0
    for kind, (title, body) in DEFAULTS.items():
        if kind.value not in present:
            session.add(LegalText(kind=kind.value, version=1, title=title, body=body, major=True))
            added += 1
    await session.flush()
    return added


async def accepted_terms(session: AsyncSession, user_id: int) -> int:
    """The highest terms version this person accepted: at sign-up (their volunteer row) or since, at a sign-in.
    Accounts from before versioning (nothing recorded) count as having accepted version 1."""
    found = await session.scalar(
        select(func.greatest(User.terms_version, Volunteer.terms_version))
        .select_from(User).outerjoin(Volunteer, Volunteer.email_normalized == User.email_normalized)
        .where(User.id == user_id)
    )
    return int(found or 1)


async def accept_terms(session: AsyncSession, user_id: int, version: int, now: datetime) -> bool:
    """Records the acceptance; False when the account no longer exists."""
    result = await session.execute(
        update(User).where(User.id == user_id)
        .values(terms_version=func.greatest(func.coalesce(User.terms_version, 0), version), terms_accepted_at=now)
        .returning(User.id)
    )
    return result.first() is not None


async def terms_in_force(session: AsyncSession, moments: list[datetime]) -> list[int | None]:
    """For sign-ups queued while Redis did not know the current version: the terms version published last before
    each moment (what the sign-up page showed then)."""
    rows = (await session.execute(
        select(LegalText.published_at, LegalText.version).where(LegalText.kind == Kind.TERMS.value)
        .order_by(LegalText.version)
    )).all()
    times = [published_at for published_at, _ in rows]
    versions = [version for _, version in rows]
    found: list[int | None] = []
    for moment in moments:
        index = bisect.bisect_right(times, moment)
        found.append(versions[index - 1] if index else (versions[0] if versions else None))
    return found
