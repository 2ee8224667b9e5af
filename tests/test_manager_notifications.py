"""Organisations hear of their applications, through real workers, PostgreSQL, Redis and a mail sink: the first new
application at once, then one digest per window however many arrive (to each manager), within the managers'
budgets; once, a reminder of those left unanswered; and a manager's message answered to that manager."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy.ext.asyncio import AsyncEngine

from app.applications import service
from app.applications.capacity import ApplicationEvent, Places
from app.applications.statuses import ApplicationStatus
from app.db.base import make_engine, unit_of_work
from ops.services import MailSink
from queues import enqueue
from queues.connection import job_queue, sync_redis
from queues.worker import daily_lock, schedule_application_reminders
from tests.conftest import DATABASE_URL, REDIS_URL, run_worker
from tests.test_applications import add_volunteers
from tests.test_mail_delivery import payloads, run_due, run_until_nothing_waits, scheduled, to

NEW_ONE = "Nouvelle candidature pour « "
REMINDER = "Des candidatures attendent votre réponse"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = make_engine(DATABASE_URL, pool_size=0)
    yield engine
    await engine.dispose()


async def organisation(db: asyncpg.Connection, name: str, managers: list[str]) -> tuple[int, list[int]]:
    """A validated organisation in Lyon and its managers' user ids."""
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ($1, 'association', '1 rue', '69001', '69123', 'Aide.', 'validated') RETURNING id", name
    )
    user_ids = []
    for email in managers:
        user_id = await db.fetchval(
            "INSERT INTO users (email, email_normalized) VALUES ($1, $1) ON CONFLICT (email_normalized)"
            " DO UPDATE SET email = excluded.email RETURNING id", email
        )
        await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                         organisation_id, user_id)
        user_ids.append(user_id)
    return organisation_id, user_ids


async def mission(db: asyncpg.Connection, organisation_id: int, title: str, places: int = 100) -> int:
    mission_id = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, status) VALUES ($1, $2, 'Trier les colis.', 'solidarite-insertion', '{}', false, $3,"
        " false, 'published') RETURNING id", organisation_id, title, places,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, 'Quai', '69001', code, latitude, longitude FROM communes WHERE code = '69123'", mission_id
    )
    return int(mission_id)


async def apply(redis: Redis, engine: AsyncEngine, mission_id: int, volunteer_ids: list[int]) -> list[str]:
    """Through the rush path's own service (Redis only), as the web process applies."""
    places = Places(redis)
    return [(await service.apply(places, engine, mission_id, volunteer_id, "", adult_on=date(2008, 1, 1))).outcome
            for volunteer_id in volunteer_ids]


def jobs_named(connection: SyncRedis, function: str) -> list[str]:
    return [job_id for job_id, _ in scheduled(connection)
            if Job.fetch(job_id, connection=connection, serializer=JSONSerializer).func_name == function]


def make_due(connection: SyncRedis) -> None:
    """RQ's scheduled jobs, due now (the window they waited for has passed: see the caller's rewind)."""
    registry = job_queue(connection).scheduled_job_registry
    for job_id, _ in scheduled(connection):
        registry.schedule(Job.fetch(job_id, connection=connection, serializer=JSONSerializer), datetime.now(UTC))


async def test_the_first_application_is_emailed_at_once_then_a_rush_makes_one_digest_per_window_per_manager(
    redis: Redis, db: asyncpg.Connection, engine: AsyncEngine, mail_sink: MailSink, rq: SyncRedis
) -> None:
    organisation_id, _ = await organisation(db, "Banque alimentaire du Rhône",
                                            ["chef@example.org", "adjointe@example.org"])
    sorting, driving = await mission(db, organisation_id, "Tri des colis"), await mission(db, organisation_id,
                                                                                          "Livraisons", places=10)
    people = [volunteer_id for volunteer_id, _ in await add_volunteers(db, 51)]
    env = {"SMTP_URL": mail_sink.url, "APPLICATION_DIGEST_MINUTES": "60"}

    assert await apply(redis, engine, sorting, people[:1]) == ["pending"]
    run_worker(env)
    for manager in ("chef@example.org", "adjointe@example.org"):
        [mail] = to(mail_sink, manager)
        assert mail["Subject"] == "Nouvelle candidature pour « Tri des colis »"
        text = mail.get_content()
        assert "Camille" in text and f"/missions/{sorting}/candidatures" in text
        assert "Nom1" not in text and "@example.org" not in text  # the first name only

    # The rush, within the window, drained in many small batches: not one e-mail more for now, one digest waiting.
    outcomes = await apply(redis, engine, sorting, people[1:31]) + await apply(redis, engine, driving, people[31:])
    assert outcomes.count("waitlisted") == 10
    run_worker({**env, "DRAIN_BATCH_SIZE": "7"})
    assert len(to(mail_sink, "chef@example.org")) == len(to(mail_sink, "adjointe@example.org")) == 1
    assert len(jobs_named(rq, "queues.manager_notifications.notify_new_applications")) == 1
    for text in payloads(rq):
        assert "@" not in text and "Camille" not in text, text

    # As an hour later: the window has passed and the scheduled run sends the digest.
    await db.execute("UPDATE organisations SET applications_notified_at = applications_notified_at"
                     " - interval '61 minutes'")
    make_due(rq)
    run_due(rq, env)
    for manager in ("chef@example.org", "adjointe@example.org"):
        _, digest = to(mail_sink, manager)
        assert digest["Subject"] == "50 nouvelles candidatures pour Banque alimentaire du Rhône"
        text = digest.get_content()
        assert "« Tri des colis » : 30 candidature(s)" in text
        assert "« Livraisons » : 20 candidature(s), dont 10 sur liste d'attente" in text
        assert f"/missions/{sorting}/candidatures" in text and f"/missions/{driving}/candidatures" in text
    assert await db.fetchval("SELECT count(*) FROM applications WHERE announced_at IS NULL") == 0

    # Nothing new: running everything again sends nothing.
    enqueue.notify_new_applications(rq, organisation_id)
    run_worker(env)
    assert len(mail_sink.messages()) == 2 * 2 + 51  # the managers' two each, and each volunteer's own
    assert scheduled(rq) == []


async def test_an_application_drained_late_from_a_backlog_is_still_in_the_next_digest(
    redis: Redis, db: asyncpg.Connection, engine: AsyncEngine, mail_sink: MailSink, rq: SyncRedis
) -> None:
    organisation_id, _ = await organisation(db, "Croix du quartier", ["chef@example.org"])
    mission_id = await mission(db, organisation_id, "Maraude")
    first, late, next_one = [volunteer_id for volunteer_id, _ in await add_volunteers(db, 3)]
    env = {"SMTP_URL": mail_sink.url}
    await apply(redis, engine, mission_id, [first])
    run_worker(env)
    assert len(to(mail_sink, "chef@example.org", NEW_ONE)) == 1

    # Applied a minute before that e-mail left, written only now (it waited in a backlog), as the drain writes it.
    async with unit_of_work(engine) as session:
        await service.save_events(session, [ApplicationEvent(mission_id, late, ApplicationStatus.PENDING, 10**9,
                                                             "applied", time.time() - 60)])
    await apply(redis, engine, mission_id, [next_one])
    run_worker(env)
    await db.execute("UPDATE organisations SET applications_notified_at = applications_notified_at"
                     " - interval '2 hours'")
    make_due(rq)
    run_due(rq, env)
    [_, digest] = to(mail_sink, "chef@example.org")
    assert digest["Subject"] == "2 nouvelles candidatures pour Croix du quartier"


async def test_manager_emails_over_budget_wait_and_leave_once_each(
    redis: Redis, db: asyncpg.Connection, engine: AsyncEngine, mail_sink: MailSink, rq: SyncRedis
) -> None:
    first_organisation, _ = await organisation(db, "Restos du Rhône", ["benevole.chef@example.org"])
    second_organisation, _ = await organisation(db, "Secours de Lyon", ["benevole.chef@example.org"])
    first_mission = await mission(db, first_organisation, "Distribution")
    second_mission = await mission(db, second_organisation, "Collecte")
    one, other = [volunteer_id for volunteer_id, _ in await add_volunteers(db, 2)]
    env = {"SMTP_URL": mail_sink.url, "MAIL_BUDGET_APPLICATION": "1", "MAIL_BUDGET_WINDOW_SECONDS": "2"}
    await apply(redis, engine, first_mission, [one])
    await apply(redis, engine, second_mission, [other])

    run_worker(env)
    assert len(to(mail_sink, "benevole.chef@example.org")) == 1  # one per window for this manager
    assert len(to(mail_sink, "benevole1@example.org")) == 1  # the volunteers' own e-mails are not held back
    assert len(jobs_named(rq, "queues.manager_notifications.send_manager_mails")) == 1
    run_until_nothing_waits(rq, env)
    subjects = sorted(mail["Subject"] for mail in to(mail_sink, "benevole.chef@example.org"))
    assert subjects == ["Nouvelle candidature pour « Collecte »", "Nouvelle candidature pour « Distribution »"]


# Reminders ------------------------------------------------------------------------------------------------------

async def pending_for(db: asyncpg.Connection, mission_id: int, volunteer_id: int, days_ago: float,
                      status: str = "pending") -> None:
    await db.execute(
        "INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at, announced_at)"
        " VALUES ($1, $2, $3, 1, now() - make_interval(secs => $4), now())", mission_id, volunteer_id, status,
        days_ago * 86_400,
    )


async def test_pending_applications_left_unanswered_are_reminded_once_and_at_most_once_a_day(
    db: asyncpg.Connection, engine: AsyncEngine, mail_sink: MailSink, rq: SyncRedis
) -> None:
    organisation_id, _ = await organisation(db, "Épicerie solidaire", ["chef@example.org", "adjoint@example.org"])
    quiet_organisation, _ = await organisation(db, "Club réactif", ["reactif@example.org"])
    mission_id = await mission(db, organisation_id, "Accueil")
    answered = await mission(db, quiet_organisation, "Tri")
    people = [volunteer_id for volunteer_id, _ in await add_volunteers(db, 7)]
    for volunteer_id in people[:3]:
        await pending_for(db, mission_id, volunteer_id, days_ago=9)
    await pending_for(db, mission_id, people[3], days_ago=2)  # too recent
    await pending_for(db, answered, people[4], days_ago=10, status="accepted")  # answered
    env = {"SMTP_URL": mail_sink.url, "APPLICATION_REMINDER_DAYS": "7"}

    enqueue.remind_pending_applications(rq)
    run_worker(env)
    for manager in ("chef@example.org", "adjoint@example.org"):
        [mail] = to(mail_sink, manager, REMINDER)
        text = mail.get_content()
        assert "3 candidature(s) à des missions de Épicerie solidaire" in text
        assert "« Accueil » : 3 candidature(s)" in text and f"/missions/{mission_id}/candidatures" in text
    assert to(mail_sink, "reactif@example.org") == []
    reminded = await db.fetchval("SELECT count(*) FROM applications WHERE reminded_at IS NOT NULL")
    assert reminded == 3

    # The drain writing a later change of a reminded application keeps its reminder.
    async with unit_of_work(engine) as session:
        await service.save_events(session, [ApplicationEvent(mission_id, people[0], ApplicationStatus.PENDING, 2,
                                                             "promoted", time.time())])
    assert await db.fetchval("SELECT reminded_at IS NOT NULL AND version = 2 FROM applications"
                             " WHERE volunteer_id = $1", people[0])
    # Cancelled, then applied again: a new application, told and reminded anew.
    async with unit_of_work(engine) as session:
        await service.save_events(session, [
            ApplicationEvent(mission_id, people[1], ApplicationStatus.CANCELLED, 3, "cancelled", time.time())])
        await service.save_events(session, [
            ApplicationEvent(mission_id, people[1], ApplicationStatus.PENDING, 4, "applied", time.time())])
    assert await db.fetchval("SELECT reminded_at IS NULL AND announced_at IS NULL AND version = 4 FROM applications"
                             " WHERE volunteer_id = $1", people[1])
    await db.execute("UPDATE applications SET reminded_at = now() WHERE volunteer_id = $1", people[1])

    # The same day, another one comes due: the job runs again, nothing leaves (one reminder a day at most).
    await pending_for(db, mission_id, people[5], days_ago=8)
    enqueue.remind_pending_applications(rq)
    run_worker(env)
    assert len(to(mail_sink, "chef@example.org", REMINDER)) == 1

    # The next day: only the one not reminded yet.
    await db.execute("UPDATE applications SET reminded_at = reminded_at - interval '1 day'"
                     " WHERE reminded_at IS NOT NULL")
    enqueue.remind_pending_applications(rq)
    run_worker(env)
    [_, second] = to(mail_sink, "chef@example.org", REMINDER)
    assert "1 candidature(s) à des missions de Épicerie solidaire" in second.get_content()
    assert await db.fetchval("SELECT count(*) FROM applications WHERE reminded_at IS NULL") == 2


def paris(day: date, hour: int) -> float:
    return datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).timestamp()


async def test_reminders_are_scheduled_once_a_day_from_eight_paris_time(rq: SyncRedis) -> None:
    run_worker()  # a burst (a test, a one-off catch-up) schedules no day's e-mail as a side effect
    today = datetime.now(PARIS).date().isoformat()
    assert not rq.exists(daily_lock("reminders", today)) and not rq.exists(daily_lock("referent-digest", today))
    day = date(2026, 12, 3)
    assert schedule_application_reminders(rq, now=paris(day, 6)) is False  # too early: nobody is at work
    assert schedule_application_reminders(rq, now=paris(day, 8)) is True
    assert schedule_application_reminders(rq, now=paris(day, 15)) is False  # however many workers tick
    assert rq.exists(daily_lock("reminders", "2026-12-03"))
    assert schedule_application_reminders(rq, now=paris(date(2026, 12, 4), 9)) is True
    assert job_queue(rq).count == 2


# A manager's message ----------------------------------------------------------------------------------------------

async def test_a_managers_message_is_answered_to_that_manager(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    organisation_id, (writer, revoked) = await organisation(db, "Entraide", ["ecrit@example.org",
                                                                             "ancien@example.org"])
    mission_id = await mission(db, organisation_id, "Soutien scolaire")
    (volunteer_id, address), (other_id, other_address) = await add_volunteers(db, 2)
    for person in (volunteer_id, other_id):
        await pending_for(db, mission_id, person, days_ago=1)
    await db.execute("DELETE FROM organisation_managers WHERE user_id = $1", revoked)
    enqueue.send_application_mails(rq, [(mission_id, volunteer_id, "application_message", "message:reply:1",
                                       "Rendez-vous lundi à 17 h.")], sender_user_id=writer)
    enqueue.send_application_mails(rq, [(mission_id, other_id, "application_message", "message:reply:2",
                                       "Rendez-vous mardi.")], sender_user_id=revoked)
    for text in payloads(rq):
        assert "@" not in text and "Rendez-vous" not in text, text

    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = to(mail_sink, address)
    assert mail["Reply-To"] == "ecrit@example.org"
    assert "Rendez-vous lundi à 17 h." in mail.get_content()
    assert "répondez simplement à cet e-mail" in mail.get_content()
    # No longer a manager when it left: no address of theirs goes out, and the text does not promise a reply.
    [unanswerable] = to(mail_sink, other_address)
    assert unanswerable["Reply-To"] is None
    assert "contactez directement la structure" in unanswerable.get_content()


def test_an_address_that_would_inject_a_header_is_refused_as_reply_to() -> None:
    from app.mail import build

    with pytest.raises(ValueError):
        build("Renfort <ne-pas-repondre@renfort.example>", "a@example.org", "Objet", "Corps",
              reply_to="b@example.org\r\nBcc: c@example.org")
