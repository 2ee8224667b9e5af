"""A mark on applications (`announced_at`, `reminded_at`) is committed only with its e-mail job queued, and that job
reads the mark once the marking transaction has ended: an enqueue that fails leaves nothing marked (the job's retry
tells the managers, once), and an e-mail job that starts before the mark is committed waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import load_settings
from ops.services import MailSink, free_port
from queues import enqueue
from queues.connection import job_queue, sync_redis
from queues.manager_notifications import ANNOUNCED, _notify, _remind, stamp
from queues.runtime import JobContext
from tests.conftest import DATABASE_URL, run_worker
from tests.helpers import eventually
from tests.test_applications import add_volunteers
from tests.test_mail_delivery import to
from tests.test_manager_notifications import REMINDER, engine, mission, organisation, pending_for, rq

__all__ = ["engine", "rq"]  # fixtures, shared with test_manager_notifications.py


@pytest.fixture
async def broken_queue(redis: Redis, engine: AsyncEngine) -> AsyncIterator[JobContext]:
    """A job's context whose RQ connection points at a port nobody listens on: every enqueue fails for real."""
    closed = sync_redis(f"redis://127.0.0.1:{free_port()}/0")
    yield JobContext(settings=load_settings(), engine=engine, redis=redis, rq_connection=closed)
    closed.close()


async def unannounced(db: asyncpg.Connection, mission_id: int, count: int) -> None:
    for volunteer_id, _ in await add_volunteers(db, count):
        await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                         " VALUES ($1, $2, 'pending', 1, now())", mission_id, volunteer_id)


async def test_a_failed_enqueue_marks_nothing_and_the_retry_tells_the_managers_once(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis, broken_queue: JobContext
) -> None:
    organisation_id, _ = await organisation(db, "Banque alimentaire", ["chef@example.org"])
    await unannounced(db, await mission(db, organisation_id, "Tri des colis"), 2)
    with pytest.raises(RedisConnectionError):
        await _notify(broken_queue, organisation_id)
    assert await db.fetchval("SELECT count(*) FROM applications WHERE announced_at IS NOT NULL") == 0
    assert await db.fetchval("SELECT applications_notified_at FROM organisations") is None
    assert job_queue(rq).count == 0

    env = {"SMTP_URL": mail_sink.url}
    enqueue.notify_new_applications(rq, organisation_id)  # as RQ retries the failed job
    run_worker(env)
    [mail] = to(mail_sink, "chef@example.org")
    assert mail["Subject"] == "2 nouvelles candidatures pour Banque alimentaire"
    enqueue.notify_new_applications(rq, organisation_id)
    run_worker(env)
    assert len(to(mail_sink, "chef@example.org")) == 1


async def test_a_failed_enqueue_of_a_reminder_marks_nothing_and_the_retry_reminds_once(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis, broken_queue: JobContext
) -> None:
    organisation_id, _ = await organisation(db, "Épicerie solidaire", ["chef@example.org"])
    mission_id = await mission(db, organisation_id, "Accueil")
    for volunteer_id, _ in await add_volunteers(db, 2):
        await pending_for(db, mission_id, volunteer_id, days_ago=9)
    with pytest.raises(RedisConnectionError):
        await _remind(broken_queue)
    assert await db.fetchval("SELECT count(*) FROM applications WHERE reminded_at IS NOT NULL") == 0

    env = {"SMTP_URL": mail_sink.url}
    enqueue.remind_pending_applications(rq)
    run_worker(env)
    assert len(to(mail_sink, "chef@example.org", REMINDER)) == 1
    enqueue.remind_pending_applications(rq)
    run_worker(env)
    assert len(to(mail_sink, "chef@example.org", REMINDER)) == 1


@pytest.fixture
async def marking() -> AsyncIterator[asyncpg.Connection]:
    """Another connection, closed (its transaction with it) even when the test fails, so no lock outlives it."""
    connection = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    yield connection
    await connection.close()


async def mark_in_open_transaction(marking: asyncpg.Connection, rq: SyncRedis, organisation_id: int,
                                   user_ids: list[int]) -> asyncpg.transaction.Transaction:
    """As `_notify` does: the organisation's row locked, the applications marked, the e-mail job queued, and the
    transaction still open."""
    transaction = marking.transaction()
    await transaction.start()
    await marking.execute("SELECT 1 FROM organisations WHERE id = $1 FOR UPDATE", organisation_id)
    mark = await marking.fetchval("UPDATE applications SET announced_at = now() RETURNING announced_at")
    enqueue.send_manager_mails(rq, ANNOUNCED, organisation_id, stamp(mark), user_ids)
    return transaction


async def run_worker_against(db: asyncpg.Connection, env: dict[str, str]) -> asyncio.Task[object]:
    """A burst worker in the background, once it waits on a lock (or has ended, which the caller then sees)."""
    worker = asyncio.create_task(asyncio.to_thread(run_worker, env))

    async def waiting() -> bool:
        return worker.done() or bool(await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"))

    await eventually(waiting)
    return worker


async def test_an_e_mail_job_that_starts_before_its_mark_is_committed_waits_and_tells_it(
    db: asyncpg.Connection, marking: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    organisation_id, managers = await organisation(db, "Croix du quartier", ["chef@example.org"])
    await unannounced(db, await mission(db, organisation_id, "Maraude"), 1)
    transaction = await mark_in_open_transaction(marking, rq, organisation_id, managers)
    worker = await run_worker_against(db, {"SMTP_URL": mail_sink.url})
    blocked = not worker.done()  # on the organisation's row, rather than done with "nothing to tell"
    await transaction.commit()
    await worker
    assert blocked
    [mail] = to(mail_sink, "chef@example.org")
    assert mail["Subject"] == "Nouvelle candidature pour « Maraude »"


async def test_an_e_mail_job_whose_mark_is_rolled_back_sends_nothing(
    db: asyncpg.Connection, marking: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    organisation_id, managers = await organisation(db, "Croix du quartier", ["chef@example.org"])
    await unannounced(db, await mission(db, organisation_id, "Maraude"), 1)
    transaction = await mark_in_open_transaction(marking, rq, organisation_id, managers)
    worker = await run_worker_against(db, {"SMTP_URL": mail_sink.url})
    await transaction.rollback()
    await worker
    assert to(mail_sink, "chef@example.org") == []
    assert await db.fetchval("SELECT count(*) FROM applications WHERE announced_at IS NULL") == 1
