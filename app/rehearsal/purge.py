"""The purge: every trace of rehearsal traffic goes, and nothing else.

People (volunteers and users of the rehearsal domain) are erased by the account deletion itself
(app/accounts/deletion.py: their places given back, wait-lists moved up, dead letters, dedupe marks, rows), then
their sessions, receipts and mission index go from Redis. The tombstone an erasure writes is needed only while a
copy of the sign-up may still be queued: with both queues seen empty first, it goes too. Once no rehearsal person is
left, the rehearsal organisations (marked by their donation URL on the reserved domain, and managed by nobody) go
with their missions, their applications, the rehearsal emergencies and their dispatch runs, the missions' keys in
Redis, and the sign-in links minted for rehearsal applicants and never confirmed. A call works for a bounded time
and says how many people are left: call it again until none is.
"""

from __future__ import annotations

import time

import msgspec
from litestar.stores.base import Store
from sqlalchemy import ARRAY, String, bindparam, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.deletion import LastAdmin, SoleManager, delete_account
from app.accounts.models import User
from app.accounts.schemas import LinkRecord, Roles, SignedIn
from app.accounts.sessions import SESSIONS_OF
from app.applications.keys import ENGAGED, MissionKeys, volunteer_missions_key
from app.applications.models import Application
from app.db.base import unit_of_work
from app.missions.cache import mark_changed
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.rehearsal import DOMAIN, is_rehearsal_address
from app.rehearsal.service import MARK, check_run, emergency_slug, rehearsal_organisations
from app.state import WebState
from app.volunteers.models import Erasure, Volunteer
from app.volunteers.signup_queue import KEYS, digest
from surge.emergencies.models import Emergency

BATCH = 2_000  # people read per call
CHUNK = 100  # people erased per transaction (drains wait on the erasure's lock meanwhile)
BUDGET_SECONDS = 5.0  # a call stops erasing past this, well within an HTTP time-out
# Every key MissionKeys names (its properties): a key added there is purged too.
MISSION_KEYS = tuple(name for name in dir(MissionKeys) if isinstance(getattr(MissionKeys, name), property))


class Purged(msgspec.Struct, kw_only=True):
    people: int = 0  # accounts erased (a volunteer, a user, or both)
    refused: int = 0  # left in place: the only manager of an organisation, or the last admin
    sessions: int = 0
    links: int = 0  # sign-in links minted and never confirmed
    receipts: int = 0
    tombstones: int = 0  # deleted, the queues being empty
    tombstones_kept: int = 0  # kept, a queue not being empty (the workers forget them later)
    organisations: int = 0
    missions: int = 0
    emergencies: int = 0
    remaining: int = 0  # rehearsal people still there: call again

    def add(self, other: Purged) -> None:
        for name in self.__struct_fields__:
            if name != "remaining":
                setattr(self, name, getattr(self, name) + getattr(other, name))
        self.remaining = other.remaining


def pattern(run: str | None) -> str:
    """LIKE pattern of the rehearsal addresses of one run (`<run>.…`) or of all; a run's name holds no wildcard."""
    return f"{check_run(run)}.%@{DOMAIN}" if run else f"%@{DOMAIN}"


class _Person(msgspec.Struct):
    email: str
    user_id: int | None = None
    volunteer_ids: list[int] = msgspec.field(default_factory=list)
    receipts: list[str] = msgspec.field(default_factory=list)


async def _people(session: AsyncSession, run: str | None, limit: int) -> dict[str, _Person]:
    like = pattern(run)
    people: dict[str, _Person] = {}
    for volunteer_id, email, receipt in await session.execute(
            select(Volunteer.id, Volunteer.email_normalized, Volunteer.receipt)
            .where(Volunteer.email_normalized.like(like)).order_by(Volunteer.id).limit(limit)):
        person = people.setdefault(email, _Person(email))
        person.volunteer_ids.append(int(volunteer_id))
        person.receipts.append(str(receipt))
    for user_id, email in await session.execute(
            select(User.id, User.email_normalized).where(User.email_normalized.like(like)).order_by(User.id)
            .limit(limit)):
        people.setdefault(email, _Person(email)).user_id = int(user_id)
    return {email: person for email, person in people.items() if is_rehearsal_address(email)}


async def _remaining(session: AsyncSession, run: str | None) -> int:
    like = pattern(run)
    volunteers = await session.scalar(select(func.count()).where(Volunteer.email_normalized.like(like)))
    no_volunteer = ~exists().where(Volunteer.email_normalized == User.email_normalized)
    users = await session.scalar(select(func.count()).where(User.email_normalized.like(like), no_volunteer))
    return int(volunteers or 0) + int(users or 0)


async def queues_empty(web: WebState) -> bool:
    """No sign-up or application change queued or in flight: no copy of a rehearsal write can still land."""
    signups, applications = web.signups, web.places.queue
    return not (await signups.depth() or await signups.inflight() or await applications.depth()
                or await applications.inflight())


async def end_sessions(web: WebState, store: Store, user_id: int) -> int:
    """Every session of a user, as signing out everywhere does (app/accounts/sessions.py)."""
    members = await web.redis.smembers(SESSIONS_OF + str(user_id))
    for member in members:
        await store.delete(member.decode() if isinstance(member, bytes) else str(member))
    await web.redis.delete(SESSIONS_OF + str(user_id))
    return len(members)


async def _erase(web: WebState, people: list[_Person]) -> list[_Person]:
    """Erases `people` in one transaction (one commit for many: a purge erases thousands); returns those erased.
    The account deletion refuses the only manager of an organisation, or the last admin, before touching anything:
    they stay, and the others go."""
    erased = []
    async with unit_of_work(web.engine, web.clients) as session:
        for person in people:
            account = SignedIn(user_id=person.user_id or 0, email=person.email, roles=Roles(), since=0)
            try:
                await delete_account(web, session, account)
            except (SoleManager, LastAdmin):
                continue
            erased.append(person)
    async with web.redis.pipeline(transaction=False) as pipe:
        for person in erased:
            for receipt in person.receipts:
                pipe.delete(KEYS.receipt(receipt))
            for volunteer_id in person.volunteer_ids:
                pipe.delete(volunteer_missions_key(volunteer_id))
                pipe.hdel(ENGAGED, str(volunteer_id))
        await pipe.execute()
    return erased


async def _erase_plain_signups(web: WebState, run: str | None) -> list[tuple[str, str]]:
    """Rehearsal sign-ups that never became an account nor applied (most of a wave), BATCH at a time: their rows in
    one statement, then their dedupe marks, dead letters and receipts. The account deletion would do the same one
    person at a time, plus what only accounts and applicants have (places, sessions, management, roles). Called with
    both queues empty only, so no copy of them is left to land and no tombstone is needed."""
    plain = (select(Volunteer.id).where(
        Volunteer.email_normalized.like(pattern(run)),
        ~exists().where(User.email_normalized == Volunteer.email_normalized),
        ~exists().where(Application.volunteer_id == Volunteer.id),
    ).order_by(Volunteer.id).limit(BATCH))
    async with unit_of_work(web.engine) as session:
        rows = (await session.execute(delete(Volunteer).where(Volunteer.id.in_(plain.scalar_subquery()))
                                      .returning(Volunteer.email_normalized, Volunteer.receipt))).all()
    erased = [(str(email), str(receipt)) for email, receipt in rows]  # the pattern ends in @rehearsal.invalid
    for email, _ in erased:
        await web.signups.forget_person(email)
    async with web.redis.pipeline(transaction=False) as pipe:
        for _, receipt in erased:
            pipe.delete(KEYS.receipt(receipt))
        await pipe.execute()
    return erased


async def purge_people(web: WebState, store: Store, *, run: str | None, budget_seconds: float = BUDGET_SECONDS
                       ) -> Purged:
    """Erases rehearsal people for up to `budget_seconds`; `remaining` says how many are left."""
    deadline = time.monotonic() + budget_seconds
    outcome = Purged()
    empty = await queues_empty(web)  # read before erasing: a copy queued after it would be a new rehearsal's
    if empty:
        while time.monotonic() < deadline:
            plain = await _erase_plain_signups(web, run)
            outcome.people += len({email for email, _ in plain})
            outcome.receipts += len(plain)
            if len(plain) < BATCH:
                break
    async with unit_of_work(web.engine) as session:
        people = list((await _people(session, run, BATCH)).values())
    erased: list[str] = []
    for start in range(0, len(people), CHUNK):
        if time.monotonic() > deadline:
            break
        chunk = people[start:start + CHUNK]
        done = await _erase(web, chunk)
        outcome.refused += len(chunk) - len(done)
        for person in done:
            erased.append(person.email)
            outcome.receipts += len(person.receipts)
            if person.user_id is not None:
                outcome.sessions += await end_sessions(web, store, person.user_id)
    outcome.people += len(erased)
    async with unit_of_work(web.engine) as session:
        if erased and empty:
            secret = web.settings.secret_key.reveal()
            digests = bindparam("digests", [digest(secret, email) for email in erased], type_=ARRAY(String))
            result = await session.execute(delete(Erasure).where(Erasure.email_digest == func.any(digests)))
            outcome.tombstones = int(getattr(result, "rowcount", 0) or 0)
        elif erased:
            outcome.tombstones_kept = len(erased)
        outcome.remaining = await _remaining(session, run)
    return outcome


async def purge_structure(web: WebState, *, run: str | None) -> Purged:
    """The rehearsal organisations, their missions (applications and addresses go with them), the rehearsal
    emergencies (their dispatch runs go with them), and the missions' keys in Redis."""
    outcome = Purged()
    async with unit_of_work(web.engine, web.clients) as session:
        organisations = (await session.execute(
            select(Organisation.id, Organisation.donation_url).where(rehearsal_organisations(run)))).all()
        ids = [int(organisation_id) for organisation_id, _ in organisations]
        slugs = [emergency_slug(str(url).removeprefix(MARK)) for _, url in organisations]
        mission_ids = list(await session.scalars(select(Mission.id).where(Mission.organisation_id.in_(ids))))
        if slugs:
            result = await session.execute(delete(Emergency).where(Emergency.slug.in_(slugs)))
            outcome.emergencies = int(getattr(result, "rowcount", 0) or 0)
        if ids:
            await session.execute(delete(Organisation).where(Organisation.id.in_(ids)))
            mark_changed(session)  # searches and emergency pages drop them from the commit on
        outcome.organisations, outcome.missions = len(ids), len(mission_ids)
    if mission_ids:
        async with web.redis.pipeline(transaction=False) as pipe:
            for mission_id in mission_ids:
                keys = MissionKeys(mission_id)
                pipe.delete(*(getattr(keys, name) for name in MISSION_KEYS))
            await pipe.execute()
    return outcome


async def forget_links(web: WebState, *, run: str | None) -> int:
    """Sign-in links minted for rehearsal applicants and never confirmed: each holds its address until it lapses."""
    forgotten = 0
    async for key in web.redis.scan_iter(match=tokens.link_key("*"), count=1_000):
        raw = await web.redis.get(key)
        try:
            email = msgspec.json.decode(raw, type=LinkRecord).email_normalized if raw else ""
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if is_rehearsal_address(email) and (run is None or email.startswith(run + ".")):
            forgotten += int(await web.redis.delete(key))
    return forgotten


async def purge(web: WebState, store: Store, *, run: str | None, budget_seconds: float = BUDGET_SECONDS) -> Purged:
    """One round: people first (their erasure gives back the places they hold), then, once none is left, the
    rehearsal's own organisations, missions and emergencies."""
    outcome = await purge_people(web, store, run=run, budget_seconds=budget_seconds)
    if outcome.remaining == 0:
        outcome.add(await purge_structure(web, run=run))
        outcome.links = await forget_links(web, run=run)
        outcome.remaining = 0
    return outcome
