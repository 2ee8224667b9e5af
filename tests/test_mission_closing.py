"""A cancelled or finished mission closes its open applications (through Redis, then the drain) and tells each
person concerned once, by e-mail, however many times the job runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.applications import service
from app.applications.capacity import MissionKeys, Places
from app.db.base import make_engine
from app.settings import Settings
from ops.services import MailSink
from queues import enqueue
from tests.conftest import TEST_ENV, run_worker
from tests.test_applications import apply, close, mission_of, notice_after, signed_in_volunteers, statuses
from tests.test_missions import act
from tests.test_organisations import post_form

TITLE = "Distribution alimentaire du samedi"
CANCELLED = f"Mission annulée : « {TITLE} »"
FINISHED = f"Mission terminée : « {TITLE} »"

FIXTURES = (mission_of,)  # pytest finds fixtures by name in the module: the tests take it as a parameter


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url, pool_size=0)
    yield engine
    await engine.dispose()


def close_job(mission_id: int) -> None:
    """What the mission's service enqueues once a cancellation or end is committed."""
    connection = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.close_mission_applications(connection, mission_id)
    connection.close()


def told(mail_sink: MailSink, subject: str) -> Counter[str]:
    return Counter(str(message["To"]) for message in mail_sink.messages() if message["Subject"] == subject)


async def decide(client: AsyncTestClient, mission_id: int, decision: str, volunteer_id: int) -> None:
    path = f"/missions/{mission_id}/candidatures/decision"
    response = await post_form(client, path, {"decision": decision, "volunteer": [str(volunteer_id)], "confirm": "1"})
    assert "1 candidature(s)" in await notice_after(client, response)


async def test_a_cancelled_mission_closes_every_open_application_and_tells_each_person_once(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection,
    mail_sink: MailSink
) -> None:
    mission_id = await mission_of(places="2")
    clients, ids = await signed_in_volunteers(settings, redis, db, 5)
    try:
        assert [await apply(volunteer, mission_id) for volunteer in clients] == [
            "pending", "pending", "waitlisted", "waitlisted", "waitlisted"]
        await decide(client, mission_id, "accepter", ids[0])
        # Left on their own.
        await post_form(clients[4], f"/mon-espace/candidatures/{mission_id}/annuler", {"confirm": "1"})
        run_worker({"SMTP_URL": mail_sink.url})

        assert (await act(client, mission_id, "annuler")).status_code == 303
        close_job(mission_id)
        run_worker({"SMTP_URL": mail_sink.url})
        assert await statuses(db, mission_id) == dict.fromkeys(ids, "cancelled")
        assert told(mail_sink, CANCELLED) == Counter(f"benevole{n}@example.org" for n in range(1, 5))
        assert await redis.scard(MissionKeys(mission_id).holders) == 0
        page = await clients[0].get("/mon-espace/candidatures")
        assert "Annulée" in page.text and "La mission a été annulée par la structure." in page.text
        body = next(m for m in mail_sink.messages() if m["Subject"] == CANCELLED).get_content()
        assert "vous n'avez rien à faire" in body

        # The job again (a retry, a second click): nothing more is closed, nobody is told twice.
        versions = dict(await db.fetch("SELECT volunteer_id, version FROM applications"))
        close_job(mission_id)
        run_worker({"SMTP_URL": mail_sink.url})
        assert dict(await db.fetch("SELECT volunteer_id, version FROM applications")) == versions
        assert set(told(mail_sink, CANCELLED).values()) == {1}
    finally:
        await close(clients)


async def test_a_finished_mission_closes_what_is_still_open_and_keeps_the_accepted(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection,
    mail_sink: MailSink
) -> None:
    mission_id = await mission_of(places="1")
    clients, ids = await signed_in_volunteers(settings, redis, db, 3)
    try:
        assert [await apply(volunteer, mission_id) for volunteer in clients] == ["pending", "waitlisted", "waitlisted"]
        await decide(client, mission_id, "accepter", ids[0])

        assert (await act(client, mission_id, "terminer")).status_code == 303
        close_job(mission_id)
        close_job(mission_id)
        run_worker({"SMTP_URL": mail_sink.url})
        assert await statuses(db, mission_id) == {ids[0]: "accepted", ids[1]: "cancelled", ids[2]: "cancelled"}
        assert told(mail_sink, FINISHED) == Counter(["benevole2@example.org", "benevole3@example.org"])
        # The organisation then marks the participation done.
        await decide(client, mission_id, "terminer", ids[0])
        run_worker()
        assert (await statuses(db, mission_id))[ids[0]] == "done"
    finally:
        await close(clients)


async def test_e_mails_a_stopped_run_did_not_queue_are_sent_by_the_next(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection,
    mail_sink: MailSink, engine: AsyncEngine
) -> None:
    mission_id = await mission_of(places="3")
    clients, ids = await signed_in_volunteers(settings, redis, db, 2)
    try:
        for volunteer in clients:
            assert await apply(volunteer, mission_id) == "pending"
        assert (await act(client, mission_id, "annuler")).status_code == 303
        # A run closes the applications, then stops before it queues the e-mails.
        places = Places(redis)
        closing = await service.close_applications(places, engine, mission_id)
        assert closing.closed == 2
        assert set(await places.closing_mails(mission_id)) == set(ids)
        assert (await service.close_applications(places, engine, mission_id)).closed == 0

        close_job(mission_id)
        run_worker({"SMTP_URL": mail_sink.url})
        assert told(mail_sink, CANCELLED) == Counter(["benevole1@example.org", "benevole2@example.org"])
        assert await places.closing_mails(mission_id) == {}
        assert await statuses(db, mission_id) == dict.fromkeys(ids, "cancelled")
    finally:
        await close(clients)


async def test_a_mission_still_online_closes_nothing(client: AsyncTestClient, mission_of: Any, settings: Any,
                                                     redis: Redis, db: asyncpg.Connection,
                                                     engine: AsyncEngine) -> None:
    mission_id = await mission_of()
    clients, ids = await signed_in_volunteers(settings, redis, db, 1)
    try:
        assert await apply(clients[0], mission_id) == "pending"
        closing = await service.close_applications(Places(redis), engine, mission_id)
        assert closing.closed == 0
        assert await redis.hget(MissionKeys(mission_id).status, str(ids[0])) == b"pending"
    finally:
        await close(clients)
