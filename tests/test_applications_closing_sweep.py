"""An ended mission whose closing job was lost (its enqueue failed after the commit) or failed for good is closed by
the sweep: its open applications close, each person is told once, however many sweeps run; missions ended long
ago are left alone. The worker schedules the sweep every ten minutes. The daily e-mails' locks are spelled by the
e-mail keys' owner only."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.applications import service
from app.applications.capacity import Places
from app.db.base import make_engine
from app.settings import Settings
from ops.services import MailSink
from queues import enqueue, mail_keys
from queues.connection import job_queue, sync_redis
from queues.worker import CLOSING_SWEEP_LOCK, schedule_application_reminders, schedule_closing_sweep
from tests.conftest import REDIS_URL, TEST_ENV, run_worker
from tests.test_applications import apply, close, mission_of, signed_in_volunteers, statuses
from tests.test_mission_closing import decide

FIXTURES = (mission_of,)  # pytest finds fixtures by name in the module: the tests take it as a parameter
TITLE = "Distribution alimentaire du samedi"
CANCELLED = f"Mission annulée : « {TITLE} »"
FINISHED = f"Mission terminée : « {TITLE} »"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


@pytest.fixture
def swept_by_hand(rq: SyncRedis) -> None:
    """The workers' own sweep has just run: the test's workers sweep only when the test says so."""
    rq.set(CLOSING_SWEEP_LOCK, b"1", ex=600)


def sweep(mail_sink: MailSink) -> None:
    """What the worker schedules every ten minutes, then the worker that runs it (and the jobs it enqueues)."""
    connection = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.sweep_mission_closings(connection)
    connection.close()
    run_worker({"SMTP_URL": mail_sink.url})


def told(mail_sink: MailSink, subject: str) -> Counter[str]:
    return Counter(str(message["To"]) for message in mail_sink.messages() if message["Subject"] == subject)


async def end_without_closing(db: asyncpg.Connection, redis: Redis, mission_id: int, status: str,
                              days_ago: int = 0) -> None:
    """The mission's end is committed, and the closing job it asks for never runs."""
    await db.execute("UPDATE missions SET status = $2, status_changed_at = now() - make_interval(days => $3)"
                     " WHERE id = $1", mission_id, status, days_ago)
    await Places(redis).changed([mission_id])


async def test_the_sweep_closes_what_a_lost_closing_job_left_open_and_tells_each_person_once(
    client: AsyncTestClient, mission_of: Any, settings: Settings, redis: Redis, db: asyncpg.Connection,
    mail_sink: MailSink, swept_by_hand: None
) -> None:
    cancelled, finished, long_ago = [await mission_of(places="2") for _ in range(3)]
    clients, ids = await signed_in_volunteers(settings, redis, db, 3)
    try:
        for mission_id in (cancelled, finished, long_ago):
            assert [await apply(volunteer, mission_id) for volunteer in clients] == [
                "pending", "pending", "waitlisted"]
        await decide(client, finished, "accepter", ids[0])  # a finished mission keeps those it accepted
        run_worker({"SMTP_URL": mail_sink.url})
        await end_without_closing(db, redis, cancelled, "cancelled")
        await end_without_closing(db, redis, finished, "finished")
        await end_without_closing(db, redis, long_ago, "cancelled", days_ago=31)

        sweep(mail_sink)
        assert await statuses(db, cancelled) == dict.fromkeys(ids, "cancelled")
        assert await statuses(db, finished) == {ids[0]: "accepted", ids[1]: "cancelled", ids[2]: "cancelled"}
        assert set((await statuses(db, long_ago)).values()) == {"pending", "waitlisted"}
        assert told(mail_sink, CANCELLED) == Counter(f"benevole{n}@example.org" for n in range(1, 4))
        assert told(mail_sink, FINISHED) == Counter(["benevole2@example.org", "benevole3@example.org"])

        # Sweeps again (and the job the mission's end asked for, arriving late): nothing changes, nobody is told twice.
        versions = dict(await db.fetch("SELECT id, version FROM applications"))
        mails = len(mail_sink.messages())
        sweep(mail_sink)
        sweep(mail_sink)
        assert dict(await db.fetch("SELECT id, version FROM applications")) == versions
        assert len(mail_sink.messages()) == mails
    finally:
        await close(clients)


async def test_people_filed_to_be_told_but_not_told_are_told_by_the_sweep(
    mission_of: Any, settings: Settings, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink,
    swept_by_hand: None
) -> None:
    mission_id = await mission_of(places="3")
    clients, ids = await signed_in_volunteers(settings, redis, db, 2)
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        for volunteer in clients:
            assert await apply(volunteer, mission_id) == "pending"
        await end_without_closing(db, redis, mission_id, "cancelled")
        # A closing job closes the applications, then stops before it queues the e-mails; the drain writes them.
        places = Places(redis)
        assert (await service.close_applications(places, engine, mission_id)).closed == 2
        run_worker({"SMTP_URL": mail_sink.url})
        assert await statuses(db, mission_id) == dict.fromkeys(ids, "cancelled")  # nothing open in PostgreSQL
        assert told(mail_sink, CANCELLED) == Counter()

        sweep(mail_sink)
        assert told(mail_sink, CANCELLED) == Counter(["benevole1@example.org", "benevole2@example.org"])
        assert await places.closing_mails(mission_id) == {}
        sweep(mail_sink)
        assert told(mail_sink, CANCELLED) == Counter(["benevole1@example.org", "benevole2@example.org"])
    finally:
        await engine.dispose()
        await close(clients)


def test_the_worker_schedules_the_sweep_every_ten_minutes(rq: SyncRedis) -> None:
    assert schedule_closing_sweep(rq) is True
    assert schedule_closing_sweep(rq) is False  # however many workers tick
    assert 590 < rq.ttl(CLOSING_SWEEP_LOCK) <= 600
    [job] = job_queue(rq).get_jobs()
    assert job.func_name == "queues.mission_closing.sweep_mission_closings"


def test_the_daily_e_mails_locks_are_spelled_by_the_e_mail_keys_only(rq: SyncRedis) -> None:
    morning = datetime(2026, 12, 3, 9, tzinfo=UTC).timestamp()
    assert schedule_application_reminders(rq, now=morning) is True
    assert rq.exists(mail_keys.daily_lock("reminders", date(2026, 12, 3).isoformat()))
    # No other module spells the notices' prefix.
    spelled = re.compile(re.escape(mail_keys.NOTICES.rstrip(":")))
    owners = {path.relative_to(ROOT).as_posix() for folder in ("app", "surge", "queues")
              for path in (ROOT / folder).rglob("*.py") if spelled.search(path.read_text(encoding="utf-8"))}
    assert owners == {"queues/mail_keys.py"}
