"""Accounts left inactive are anonymised, after two warnings by e-mail.

A person's activity is the latest of: their sign-up (accepted, saved), a profile change (`last_activity_at`), their
account's creation and last sign-in, and their applications (made or changed). Past `inactivity_days` without any,
they are warned 30 days and again 7 days before, then anonymised. Each warning is recorded with its time; a warning
older than the latest activity belongs to a finished period and counts for nothing, so any activity starts the cycle
again without resetting anything. The anonymisation never comes sooner than 30 days after the first warning nor 7
days after the second, whenever the sweep first ran.

Anonymising keeps the rows (applications, audit entries: their statistics and history stay true) and removes who
they were: names, address, phone, skills, free texts, the sign-up's receipt and the emergency it came through; the
birth date keeps its year, the postal code its department and the commune becomes the department's most populous
(the same for everyone there, so it says no more than the department). Domains and availability stay: alone they
name nobody. The address becomes a placeholder with a random part (`anonyme-v…-<hex>@anonyme.invalid`), which
nobody can take first: the sign-up refuses the reserved domains. The person's data-download file, ready or under
way, is forgotten.
A tombstone (app/volunteers/erasure.py) keeps a copy of the sign-up still queued from writing them back, their
sessions end, and their roles and organisations go — an organisation left with no manager is suspended and its
referents are told.

Every step is a conditional UPDATE (`… WHERE anonymised_at IS NULL`, a warning only over an older one), so a second
run changes nothing and queues no second e-mail; the e-mails' keys name the period too (the outbox sends a key
once). People are handled in batches of `BATCH`, each its own transaction, and each person in a savepoint: one
that fails is logged by id, counted as `failed` and left for the next run, the others go on. Right before
anonymising, the rows are locked and their activity read again: someone who came back since the batch was read
is left alone."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import CoordinatorScope, ReferentScope, RoleChange, User
from app.accounts.sessions import SESSIONS_OF
from app.applications.models import Application
from app.db.after_commit import Clients, after_commit
from app.geo.models import Commune
from app.missions.cache import mark_changed
from app.missions.models import Mission
from app.organisations.models import ManagerInvitation, Organisation, OrganisationManager
from app.organisations.notifications import stamp
from app.privacy import download
from app.volunteers import validation
from app.volunteers.erasure import record_erasure
from app.volunteers.models import Volunteer
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue

BATCH = 200
FIRST_NOTICE = timedelta(days=30)
LAST_NOTICE = timedelta(days=7)
ANONYMOUS = "Anonyme"
PLACEHOLDER_DOMAIN = validation.PLACEHOLDER_DOMAIN  # RFC 2606: never delivered, and refused at sign-up
SESSION_NAMESPACE = "renfort:sessions:"  # the session store's (app/main.py registers it under this namespace)
ACTOR = "anonymisation pour inactivité"
SUSPENSION_REASON = ("La dernière personne qui gérait cette structure n'a plus d'activité sur Renfort depuis "
                     "longtemps : son compte a été anonymisé. La structure reste suspendue tant qu'aucun·e "
                     "gestionnaire ne la reprend.")
WARNING = "inactivity_warning"
SUSPENDED = "inactivity_organisation_suspended"

log = logging.getLogger("renfort.privacy")


class Step(StrEnum):
    FIRST_WARNING = "warned_30"
    LAST_WARNING = "warned_7"
    ANONYMISE = "anonymised"


@dataclass(frozen=True, slots=True)
class Person:
    """A volunteer row (with the account of the same address, if any) or an account without a volunteer row."""

    volunteer_id: int | None
    user_id: int | None
    activity: datetime
    warned_30_at: datetime | None
    warned_7_at: datetime | None

    @property
    def target(self) -> str:
        """How the e-mail job names the person: by the row the warnings are recorded on."""
        return f"v{self.volunteer_id}" if self.volunteer_id is not None else f"u{self.user_id}"


@dataclass
class Sweep:
    """What a run did, in counts only (for the log line), and the e-mails it queued."""

    counts: dict[str, int] = field(default_factory=lambda: {step.value: 0 for step in Step} | {
        "organisations_suspended": 0, "kept_last_admin": 0, "came_back": 0, "failed": 0})
    mails: list[list[Any]] = field(default_factory=list)


def next_step(person: Person, now: datetime, period: timedelta) -> tuple[Step, datetime] | None:
    """The step due now, and the day of the anonymisation it announces (or the anonymisation's own)."""
    deadline = person.activity + period
    warned_30 = person.warned_30_at if person.warned_30_at and person.warned_30_at > person.activity else None
    warned_7 = person.warned_7_at if person.warned_7_at and person.warned_7_at > person.activity else None
    if warned_30 is None:
        return (Step.FIRST_WARNING, max(deadline, now + FIRST_NOTICE)) if now >= deadline - FIRST_NOTICE else None
    due = max(deadline, warned_30 + FIRST_NOTICE)
    if warned_7 is None:
        return (Step.LAST_WARNING, max(due, now + LAST_NOTICE)) if now >= due - LAST_NOTICE else None
    due = max(due, warned_7 + LAST_NOTICE)
    return (Step.ANONYMISE, due) if now >= due else None


def _latest_application() -> Any:
    return (select(func.max(func.greatest(Application.applied_at, Application.updated_at)))
            .where(Application.volunteer_id == Volunteer.id).scalar_subquery())


def _volunteer_activity() -> ColumnElement[Any]:
    """A volunteer's latest activity, over the account of the same address (outer-joined)."""
    return func.greatest(Volunteer.accepted_at, Volunteer.saved_at, Volunteer.last_activity_at, User.created_at,
                         User.last_sign_in_at, _latest_application())


def _account_activity() -> ColumnElement[Any]:
    return func.greatest(User.created_at, User.last_sign_in_at)


async def volunteers_batch(session: AsyncSession, after: int, horizon: datetime) -> list[Person]:
    """Volunteers (past `after`, by id) whose activity is older than `horizon`: those a step may be due for."""
    activity = _volunteer_activity()
    rows = await session.execute(
        select(Volunteer.id, User.id, activity, Volunteer.inactivity_warned_30_at, Volunteer.inactivity_warned_7_at)
        .outerjoin(User, User.email_normalized == Volunteer.email_normalized)
        .where(Volunteer.id > after, Volunteer.anonymised_at.is_(None), ~Volunteer.unconfirmed, activity < horizon)
        .order_by(Volunteer.id).limit(BATCH)
    )
    return [Person(*row) for row in rows]


async def accounts_batch(session: AsyncSession, after: int, horizon: datetime) -> list[Person]:
    """Accounts without a volunteer row (managers, referents, coordinators…), as `volunteers_batch`."""
    activity = _account_activity()
    rows = await session.execute(
        select(literal(None, BigInteger), User.id, activity, User.inactivity_warned_30_at, User.inactivity_warned_7_at)
        .where(User.id > after, User.anonymised_at.is_(None), activity < horizon,
               ~exists().where(Volunteer.email_normalized == User.email_normalized))
        .order_by(User.id).limit(BATCH)
    )
    return [Person(*row) for row in rows]


async def handle(session: AsyncSession, people: list[Person], *, now: datetime, period: timedelta, secret: str,
                 sweep: Sweep) -> None:
    """In the batch's transaction: the step due for each person, each in its own savepoint (a failure undoes that
    person's step only, and what it added to `sweep`)."""
    for person in people:
        step = next_step(person, now, period)
        if step is None:
            continue
        counts, mails = dict(sweep.counts), len(sweep.mails)
        try:
            async with session.begin_nested():
                await _step(session, person, step, now=now, secret=secret, sweep=sweep)
        except Exception as error:  # one person's failure must not stop the sweep
            sweep.counts.clear()
            sweep.counts.update(counts)
            del sweep.mails[mails:]
            sweep.counts["failed"] += 1
            # The ids and the error's type only: its message may quote the row's values.
            log.error("inactivity step %s failed for %s: %s", step[0].value, person.target, type(error).__name__)


async def _step(session: AsyncSession, person: Person, step: tuple[Step, datetime], *, now: datetime, secret: str,
                sweep: Sweep) -> None:
    kind, day = step
    if kind is Step.ANONYMISE:
        await anonymise(session, person, now=now, secret=secret, sweep=sweep)
    elif await _record_warning(session, person, kind, now):
        sweep.counts[kind.value] += 1
        days = 30 if kind is Step.FIRST_WARNING else 7
        key = f"{WARNING}:{days}:{person.target}:{int(person.activity.timestamp() * 1_000_000)}"
        sweep.mails.append([WARNING, person.target, key, day.date().isoformat(), days])


async def _record_warning(session: AsyncSession, person: Person, step: Step, now: datetime) -> bool:
    """Only over no warning, or one of a finished period: a second run records (and sends) nothing."""
    model: Any = Volunteer if person.volunteer_id is not None else User
    column = model.inactivity_warned_30_at if step is Step.FIRST_WARNING else model.inactivity_warned_7_at
    row_id = person.volunteer_id if person.volunteer_id is not None else person.user_id
    result = await session.execute(
        update(model).where(model.id == row_id, model.anonymised_at.is_(None),
                            or_(column.is_(None), column <= person.activity))
        .values({column.key: now}).returning(model.id)
    )
    return result.first() is not None


def placeholder(kind: str, row_id: int) -> str:
    """Unique by the row's id, unguessable by its random part (and in a domain the sign-up refuses)."""
    return f"anonyme-{kind}{row_id}-{secrets.token_hex(8)}@{PLACEHOLDER_DOMAIN}"


async def still_inactive(session: AsyncSession, person: Person) -> bool:
    """Locks the person's rows (account first: a sign-in waits for the anonymisation) and tells whether their
    activity, read again, is still the one the step was decided on."""
    if person.user_id is not None:
        account = await session.scalar(
            select(User.id).where(User.id == person.user_id, _account_activity() <= person.activity)
            .with_for_update()
        )
        if account is None and await session.scalar(select(User.id).where(User.id == person.user_id)) is not None:
            return False
    if person.volunteer_id is not None:
        volunteer = await session.scalar(
            select(Volunteer.id).outerjoin(User, User.email_normalized == Volunteer.email_normalized)
            .where(Volunteer.id == person.volunteer_id, _volunteer_activity() <= person.activity)
            .with_for_update(of=Volunteer)
        )
        if volunteer is None:
            return False
    return True


async def anonymise(session: AsyncSession, person: Person, *, now: datetime, secret: str, sweep: Sweep) -> None:
    if person.user_id is not None and await _last_admin(session, person.user_id):
        sweep.counts["kept_last_admin"] += 1  # nobody would be left to administer the platform
        return
    if not await still_inactive(session, person):
        sweep.counts["came_back"] += 1  # signed in, applied or saved their profile since the batch was read
        return
    addresses: list[str] = []
    if person.volunteer_id is not None:
        address = await _anonymise_volunteer(session, person.volunteer_id, now, secret)
        if address is None:
            return  # done by an earlier run
        addresses.append(address)
    if person.user_id is not None:
        address = await _anonymise_account(session, person.user_id, now, secret, sweep)
        if address is None and person.volunteer_id is None:
            return
        if address is not None:
            addresses.append(address)
    sweep.counts[Step.ANONYMISE.value] += 1
    user_id = person.user_id

    async def forget(clients: Clients) -> None:
        queue = SignupQueue(clients.redis, secret)
        for address in set(addresses):
            await queue.forget_person(address)  # dedupe mark and dead letters of the sign-up
        if user_id is not None:
            await end_sessions(clients, user_id)
            await download.forget_user(clients.redis, user_id)

    after_commit(session, forget)


async def _last_admin(session: AsyncSession, user_id: int) -> bool:
    admins = set(await session.scalars(select(User.id).where(User.is_admin)))
    return admins == {user_id}


def _generalised_postal_code() -> ColumnElement[Any]:
    # The department only: "69003" → "69000", overseas "97411" → "97400".
    return case((Volunteer.postal_code.like("97%"), func.left(Volunteer.postal_code, 3) + "00"),
                else_=func.left(Volunteer.postal_code, 2) + "000")


def _department_commune() -> Any:
    """The most populous commune of the volunteer's department: chosen by the department alone, not the person."""
    own, other = aliased(Commune), aliased(Commune)
    home = (select(own.department_code).where(own.code == Volunteer.commune_code)
            .correlate(Volunteer).scalar_subquery())
    return (select(other.code).where(other.department_code == home)
            .order_by(other.population.desc(), other.code).limit(1).correlate(Volunteer).scalar_subquery())


async def _anonymise_volunteer(session: AsyncSession, volunteer_id: int, now: datetime, secret: str) -> str | None:
    """The address it had, or None when already anonymised."""
    address = await session.scalar(
        select(Volunteer.email_normalized).where(Volunteer.id == volunteer_id, Volunteer.anonymised_at.is_(None))
        .with_for_update()
    )
    if address is None:
        return None
    await record_erasure(session, secret, address, now)
    anonymous = placeholder("v", volunteer_id)
    await session.execute(update(Volunteer).where(Volunteer.id == volunteer_id).values(
        email=anonymous, email_normalized=anonymous, first_name=ANONYMOUS, last_name=ANONYMOUS, phone=None,
        birth_date=func.date_trunc("year", Volunteer.birth_date).cast(Date),
        postal_code=_generalised_postal_code(),
        commune_code=func.coalesce(_department_commune(), Volunteer.commune_code),
        receipt=secrets.token_hex(16), emergency_slug=None, skills=[], mail_applications=False,
        mail_emergencies=False, anonymised_at=now,
    ))
    # The rows stay; the words the person wrote with them go.
    await session.execute(update(Application).where(Application.volunteer_id == volunteer_id).values(message=None))
    await session.execute(delete(ManagerInvitation).where(ManagerInvitation.email_normalized == address))
    return address


async def _anonymise_account(session: AsyncSession, user_id: int, now: datetime, secret: str,
                             sweep: Sweep) -> str | None:
    row = (await session.execute(
        select(User.email_normalized, User.is_admin).where(User.id == user_id, User.anonymised_at.is_(None))
        .with_for_update()
    )).first()
    if row is None:
        return None
    address, was_admin = row
    await record_erasure(session, secret, address, now)
    await _revoke_roles(session, user_id, was_admin, now)
    anonymous = placeholder("u", user_id)
    await session.execute(update(User).where(User.id == user_id).values(
        email=anonymous, email_normalized=anonymous, is_admin=False, anonymised_at=now,
    ))
    # The audit keeps its rows; the address it wrote for this person as an actor goes.
    await session.execute(update(RoleChange).where(RoleChange.actor_user_id == user_id).values(actor_label=ANONYMOUS))
    await session.execute(delete(ManagerInvitation).where(ManagerInvitation.email_normalized == address))
    left = list(await session.scalars(
        delete(OrganisationManager).where(OrganisationManager.user_id == user_id)
        .returning(OrganisationManager.organisation_id)
    ))
    if left:
        await _suspend_unmanaged(session, left, now, sweep)
    return address


async def _revoke_roles(session: AsyncSession, user_id: int, was_admin: bool, now: datetime) -> None:
    """Roles go with the person, each one written to the audit as any revocation is."""
    scopes: list[tuple[str, str]] = [("admin", "national")] if was_admin else []
    for (department,) in (await session.execute(
        delete(CoordinatorScope).where(CoordinatorScope.user_id == user_id).returning(CoordinatorScope.department_code)
    )).all():
        scopes.append(("coordinator", f"departements:{department}" if department else "national"))
    for department, region in (await session.execute(
        delete(ReferentScope).where(ReferentScope.user_id == user_id)
        .returning(ReferentScope.department_code, ReferentScope.region_code)
    )).all():
        scopes.append(("referent", f"departements:{department}" if department else f"region:{region}" if region
                       else "national"))
    if scopes:
        await session.execute(insert(RoleChange), [
            {"at": now, "actor_user_id": None, "actor_label": ACTOR, "subject_user_id": user_id, "action": "revoke",
             "role": role, "scope": scope} for role, scope in scopes
        ])


async def _suspend_unmanaged(session: AsyncSession, organisation_ids: list[int], now: datetime,
                             sweep: Sweep) -> None:
    """The organisations of `organisation_ids` left with no manager: online ones are suspended (their missions go
    offline with them) and their referents told."""
    suspended = list(await session.scalars(
        update(Organisation)
        .where(Organisation.id.in_(organisation_ids), Organisation.status == "validated",
               ~exists().where(OrganisationManager.organisation_id == Organisation.id))
        .values(status="suspended", status_reason=SUSPENSION_REASON, status_changed_at=now, updated_at=now)
        .returning(Organisation.id)
    ))
    if not suspended:
        return
    mark_changed(session, await session.scalars(select(Mission.id).where(Mission.organisation_id.in_(suspended))))
    for organisation_id in suspended:
        sweep.counts["organisations_suspended"] += 1
        sweep.mails.append([SUSPENDED, f"o{organisation_id}", f"{SUSPENDED}:{organisation_id}:{stamp(now)}", "", 0])


async def end_sessions(clients: Clients, user_id: int) -> None:
    """Signs a user out on every device, from a job (the web's `end_every_session` needs a request)."""
    members = await clients.redis.smembers(SESSIONS_OF + str(user_id))
    ids = [member.decode() if isinstance(member, bytes) else str(member) for member in members]
    await clients.redis.delete(SESSIONS_OF + str(user_id), *[SESSION_NAMESPACE + session_id for session_id in ids])


def queue_mails(session: AsyncSession, mails: list[list[Any]]) -> None:
    """Once the batch committed: its e-mails, by ids and keys only."""
    if not mails:
        return
    items = [list(item) for item in mails]

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_inactivity_mails, clients.rq_connection, items)

    after_commit(session, send)

