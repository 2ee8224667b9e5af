"""E-mails to an organisation's managers about their applications: the first new one at once, then one digest per
window however many arrive (settings.application_digest_minutes), and once a reminder of those left unanswered
(settings.application_reminder_days).

Each decision is taken under the organisation's row lock and marked on the applications it tells of
(`announced_at`, `reminded_at`), so each is told once whatever the order in which drains write them (a backlog
drains early applications after later ones). The e-mail job is queued inside the transaction that marks, before its
commit, and reads the mark only once that transaction has ended: a mark committed always has its e-mail, a mark
rolled back sends none, and each mark's e-mail leaves once (the outbox keys it by the mark). The e-mails are rendered
from PostgreSQL by that mark when they leave, and again if the outbox defers them; payloads hold ids and the mark
only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis as SyncRedis
from redis.exceptions import RedisError
from sqlalchemy import Select, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.applications.models import Application
from app.applications.statuses import ApplicationStatus as Status
from app.db.base import unit_of_work
from app.formats import PARIS
from app.missions.models import Mission
from app.organisations.managers import manager_addresses
from app.organisations.models import Organisation, OrganisationManager
from app.settings import Settings
from app.volunteers.models import Volunteer
from queues import enqueue
from queues.mail import summary
from queues.mail_keys import NoticeKeys
from queues.outbox import Letter, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.notices")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEW = (Status.PENDING, Status.WAITLISTED)
ANNOUNCED, REMINDED = "announced", "reminded"
REQUEST_TTL = 600  # a job lost with its request still set: the next drain asks again after this
# A digest run that starts a little before its window ends (clocks differ between hosts) sends rather than waits.
SLACK = timedelta(seconds=5)


def request_notice(connection: SyncRedis, organisation_id: int) -> bool:
    """After a drain committed new applications of this organisation: one job, unless one is queued and not
    started (it will read them)."""
    keys = NoticeKeys(organisation_id)
    if not connection.set(keys.requested, b"1", nx=True, ex=REQUEST_TTL):
        return False
    try:
        enqueue.notify_new_applications(connection, organisation_id)
    except RedisError:
        connection.delete(keys.requested)
        raise
    return True


def _visible() -> Any:
    """Applications of volunteers shown to managers (a held-back sign-up is shown to nobody)."""
    return exists().where(Volunteer.id == Application.volunteer_id, ~Volunteer.unconfirmed)


def _unannounced(organisation_id: int) -> Select[Any]:
    return (select(Application.id).join(Mission, Mission.id == Application.mission_id)
            .where(Mission.organisation_id == organisation_id, Application.status.in_(NEW),
                   Application.announced_at.is_(None), _visible())
            .correlate(None))  # whole inside the UPDATE that marks them, never tied to its row


async def _managers(session: AsyncSession, organisation_id: int) -> list[int]:
    return list(await session.scalars(select(OrganisationManager.user_id).where(
        OrganisationManager.organisation_id == organisation_id).order_by(OrganisationManager.user_id)))


async def _queue_mails(context: JobContext, kind: str, organisation_id: int, at: datetime, user_ids: list[int]
                       ) -> None:
    """Called inside the transaction that marks the applications, with the organisation's row locked, before the
    commit: a failed enqueue rolls the mark back (and the job's retry marks again), and a mark is never committed
    without its e-mail job. The e-mail job waits for that row lock before it reads the mark (`_send`), so it sees
    the committed mark, or none when the transaction rolled back (then it sends nothing)."""
    if user_ids:
        await asyncio.to_thread(enqueue.send_manager_mails, context.rq_connection, kind, organisation_id, stamp(at),
                                user_ids)


def stamp(at: datetime) -> int:
    """Microseconds since the epoch, exactly as PostgreSQL keeps a timestamp, to find the marked rows again."""
    return (at - EPOCH) // timedelta(microseconds=1)


# --- new applications -------------------------------------------------------------------------------------------

def notify_new_applications(organisation_id: int) -> dict[str, int]:
    return run_job(lambda context: _notify(context, int(organisation_id)))


async def _notify(context: JobContext, organisation_id: int) -> dict[str, int]:
    window = timedelta(minutes=context.settings.application_digest_minutes)
    # Dropped before reading: a drain committing from now on asks for a run of its own.
    await context.redis.delete(NoticeKeys(organisation_id).requested)
    async with unit_of_work(context.engine) as session:
        row = (await session.execute(
            select(Organisation.applications_notified_at, func.now()).where(Organisation.id == organisation_id)
            .with_for_update(of=Organisation)
        )).first()
        if row is None or not await session.scalar(select(exists(_unannounced(organisation_id)))):
            return {"announced": 0, "scheduled": 0}
        notified_at, now = row
        if notified_at is not None and now + SLACK < notified_at + window:
            await _schedule_digest(context, organisation_id, notified_at + window)
            return {"announced": 0, "scheduled": 1}
        told = await session.execute(
            update(Application).where(Application.id.in_(_unannounced(organisation_id)))
            .values(announced_at=now).returning(Application.id)
        )
        count = len(told.all())
        await session.execute(update(Organisation).where(Organisation.id == organisation_id)
                              .values(applications_notified_at=now))
        await _queue_mails(context, ANNOUNCED, organisation_id, now, await _managers(session, organisation_id))
    log.info("%d new application(s) told to the managers of organisation %d", count, organisation_id)
    return {"announced": count, "scheduled": 0}


async def _schedule_digest(context: JobContext, organisation_id: int, due: datetime) -> None:
    """One run at the window's end, however many runs before it ask (the key names the window)."""
    due_at = int(due.timestamp()) + 1
    key = NoticeKeys(organisation_id).digest(due_at)
    left = max(due_at - int(datetime.now(UTC).timestamp()), 0)
    if not await context.redis.set(key, b"1", nx=True, ex=left + 86_400):
        return
    try:
        await asyncio.to_thread(enqueue.notify_new_applications, context.rq_connection, organisation_id,
                                at=datetime.fromtimestamp(due_at, UTC))
    except RedisError:
        await context.redis.delete(key)
        raise


# --- reminders --------------------------------------------------------------------------------------------------

def remind_pending_applications() -> dict[str, int]:
    return run_job(_remind)


async def _remind(context: JobContext) -> dict[str, int]:
    """Pending applications unanswered for application_reminder_days, never reminded: one e-mail per manager of
    each organisation, at most one a day per organisation however often this runs."""
    days = context.settings.application_reminder_days
    async with unit_of_work(context.engine) as session:
        now = (await session.execute(select(func.now()))).scalar_one()
        local = now.astimezone(PARIS)
        day_start = datetime(local.year, local.month, local.day, tzinfo=PARIS)
        other, other_mission = aliased(Application), aliased(Mission)
        reminded_today = exists().where(other.mission_id == other_mission.id,
                                        other_mission.organisation_id == Mission.organisation_id,
                                        other.reminded_at >= day_start)
        due = and_(Application.mission_id == Mission.id, Application.status == Status.PENDING,
                   Application.reminded_at.is_(None), Application.applied_at < now - timedelta(days=days),
                   _visible(), ~reminded_today)
        # The organisations' rows first, in id order as `_notify` takes them: their e-mail jobs wait on these locks.
        locked = list(await session.scalars(
            select(Organisation.id).where(exists().where(Mission.organisation_id == Organisation.id, due))
            .order_by(Organisation.id).with_for_update(of=Organisation)
        ))
        counts: dict[int, int] = {}
        if locked:
            rows = await session.execute(
                update(Application).where(due, Mission.organisation_id.in_(locked))
                .values(reminded_at=now).returning(Mission.organisation_id)
            )
            for (organisation_id,) in rows:
                counts[organisation_id] = counts.get(organisation_id, 0) + 1
        for organisation_id in sorted(counts):
            await _queue_mails(context, REMINDED, organisation_id, now, await _managers(session, organisation_id))
    log.info("reminded %d organisation(s) of %d pending application(s)", len(counts), sum(counts.values()))
    return {"organisations": len(counts), "applications": sum(counts.values())}


# --- the e-mails ------------------------------------------------------------------------------------------------

def send_manager_mails(kind: str, organisation_id: int, at: int, user_ids: list[int]) -> dict[str, int]:
    """`kind`: ANNOUNCED or REMINDED; `at`: the mark (microseconds since the epoch) naming what the e-mail tells."""
    return run_job(lambda context: _send(context, str(kind), int(organisation_id), int(at),
                                         [int(user_id) for user_id in user_ids]))


async def _send(context: JobContext, kind: str, organisation_id: int, at: int, user_ids: list[int]
                ) -> dict[str, int]:
    settings = context.settings
    marked = EPOCH + timedelta(microseconds=at)
    column = Application.announced_at if kind == ANNOUNCED else Application.reminded_at
    async with unit_of_work(context.engine) as session:
        # Waits for a transaction still marking (it holds the row until it commits or rolls back): what is read next
        # is its committed mark, or nothing.
        name = await session.scalar(select(Organisation.name).where(Organisation.id == organisation_id)
                                    .with_for_update(read=True))
        missions = (await session.execute(
            select(Mission.id, Mission.title, func.count().label("count"),
                   func.count().filter(Application.status == Status.WAITLISTED).label("waitlisted"),
                   func.min(Volunteer.first_name).label("first_name"), func.min(Application.applied_at).label("since"))
            .join(Application, Application.mission_id == Mission.id)
            .join(Volunteer, Volunteer.id == Application.volunteer_id)
            .where(Mission.organisation_id == organisation_id, column == marked)
            .group_by(Mission.id).order_by(func.min(Application.applied_at), Mission.id)
        )).all()
        # Still managers: a role revoked since gets nothing.
        managers = await manager_addresses(session, organisation_id, user_ids)
    if name is None or not missions:
        log.info("manager e-mails (%s) moot: nothing left to tell (organisation %d)", kind, organisation_id)
        return {}
    letter_kind, values = _letter(settings, kind, organisation_id, name, missions)
    letters = [Letter(f"manager:{kind}:{organisation_id}:{at}:{user_id}", letter_kind, email, values,
                      item=(user_id,), ids=f"organisation {organisation_id}, user {user_id}")
               for user_id, email in managers]

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_manager_mails(context.rq_connection, kind, organisation_id, at,
                                   [int(letter.item[0]) for letter in group], delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("manager e-mails (%s): %s (organisation %d)", kind, summary(batch.summary()), organisation_id)
    return batch.summary()


MAX_LISTED = 30  # missions listed in one e-mail; the rest are counted


def _letter(settings: Settings, kind: str, organisation_id: int, name: str, missions: Sequence[Any]
            ) -> tuple[str, dict[str, object]]:
    listed = [{"id": row.id, "title": row.title, "count": row.count, "waitlisted": row.waitlisted,
               "since": f"{row.since.astimezone(PARIS):%d/%m/%Y}"} for row in missions[:MAX_LISTED]]
    values: dict[str, object] = {
        "organisation_name": name, "organisation_id": organisation_id, "base_url": settings.base_url,
        "missions": listed, "more": len(missions) - len(listed), "total": sum(row.count for row in missions),
        "window": _duration(settings.application_digest_minutes), "days": settings.application_reminder_days,
    }
    if kind == REMINDED:
        return "manager_reminder", values
    if values["total"] == 1:
        # The volunteer's first name only: the manager sees the rest in the list of applicants.
        return "manager_new_application", {**values, "first_name": missions[0].first_name, "mission": listed[0]}
    return "manager_applications_digest", values


def _duration(minutes: int) -> str:
    if minutes % 60:
        return f"{minutes} minutes"
    return "heure" if minutes == 60 else f"{minutes // 60} heures"
