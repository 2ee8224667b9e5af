"""Deleting one's own account for real: the rows (volunteer, applications, user, roles), the places freed in Redis,
every queued copy of the sign-up, the sessions on every device, and the race with a drain writing the sign-up."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from app.volunteers.signup_queue import SignupQueue, email_mark
from ops.services import MailSink
from tests.conftest import DATABASE_URL, REDIS_URL, TEST_ENV, run_worker
from tests.helpers import queue_signups, queued_signup
from tests.test_missions import online_mission, validated_organisation
from tests.test_organisations import post_form, register, sign_in

DELETE = "/mon-espace/supprimer"
COOKIE = "renfort_session"
EMAIL = "ana.0@example.org"


async def add_volunteer(db: asyncpg.Connection, email: str) -> int:
    """A volunteer row as the sign-up drain writes it (the sign-up path has its own tests)."""
    volunteer_id: int = await db.fetchval(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-' || $1, $1, $1, 'Ana',"
        " 'Martin', DATE '1990-04-12', '69003', '69123', '{solidarite-insertion}', 'weekends', '{}', now(), now())"
        " RETURNING id", email,
    )
    return volunteer_id


async def delete_account(client: AsyncTestClient) -> Any:
    return await post_form(client, DELETE, {}, DELETE)


def queue(redis: Redis) -> SignupQueue:
    return SignupQueue(redis, TEST_ENV["SECRET_KEY"])


async def test_the_confirmation_page_says_what_goes_and_nothing_goes_without_the_button(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    anonymous = await client.get(DELETE, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/connexion"
    await add_volunteer(db, EMAIL)
    await sign_in(client, redis, db, EMAIL)
    assert 'href="/mon-espace/supprimer"' in (await client.get("/mon-espace")).text
    page = await client.get(DELETE)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "La suppression est définitive" in page.text and "votre profil de bénévole" in page.text
    assert "toutes vos candidatures" in page.text and 'action="/mon-espace/supprimer"' in page.text

    forged = await client.post(DELETE, data={}, follow_redirects=False)
    assert forged.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 1
    assert await db.fetchval("SELECT count(*) FROM users") == 1
    assert (await client.get("/mon-espace")).status_code == 200


async def test_deleting_removes_the_rows_frees_the_place_and_ends_every_session(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings, mail_sink: MailSink
) -> None:
    async with (AsyncTestClient(app=create_app(settings)) as moderator,
                AsyncTestClient(app=create_app(settings)) as leaving,
                AsyncTestClient(app=create_app(settings)) as leaving_phone,
                AsyncTestClient(app=create_app(settings)) as waiting):
        organisation_id = await validated_organisation(client, moderator, redis, db, "gestion@example.org")
        mission_id = await online_mission(client, organisation_id, places="1")
        leaving_id, waiting_id = await add_volunteer(db, EMAIL), await add_volunteer(db, "zoe@example.org")
        await sign_in(leaving, redis, db, EMAIL)
        await sign_in(leaving_phone, redis, db, EMAIL)  # the same person on another device
        await sign_in(waiting, redis, db, "zoe@example.org")
        for volunteer in (leaving, waiting):
            response = await post_form(volunteer, f"/missions/{mission_id}/candidater", {"message": ""},
                                       f"/missions/{mission_id}-x")
            assert response.status_code == 303, response.text
        run_worker({"SMTP_URL": mail_sink.url})
        assert dict(await db.fetch("SELECT volunteer_id, status FROM applications")) == {
            leaving_id: "pending", waiting_id: "waitlisted"}
        cookie = leaving.cookies[COOKIE]

        response = await delete_account(leaving)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        assert "Votre compte est supprimé" in response.text
        # The place went to the wait-listed volunteer at once, in Redis, and reaches PostgreSQL with the drain.
        assert await redis.hget(f"renfort:applications:m{mission_id}:status", str(waiting_id)) == b"pending"
        assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email_normalized = $1", EMAIL) == 0
        assert await db.fetchval("SELECT count(*) FROM users WHERE email_normalized = $1", EMAIL) == 0
        assert await db.fetchval("SELECT count(*) FROM applications WHERE volunteer_id = $1", leaving_id) == 0
        run_worker({"SMTP_URL": mail_sink.url})
        assert dict(await db.fetch("SELECT volunteer_id, status FROM applications")) == {waiting_id: "pending"}

        for device in (leaving, leaving_phone):
            gone = await device.get("/mon-espace", follow_redirects=False)
            assert gone.status_code == 303 and gone.headers["location"] == "/connexion"
        leaving.cookies.set(COOKIE, cookie)  # the old cookie, replayed
        replayed = await leaving.get("/mon-espace/profil", follow_redirects=False)
        assert replayed.status_code == 303 and replayed.headers["location"] == "/connexion"
        assert (await waiting.get("/mon-espace")).status_code == 200  # nobody else is signed out


async def test_every_queued_copy_of_the_signup_is_purged_and_never_written_back(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    mine, repeat, theirs, buried = (queued_signup(0, prefix="ana"), queued_signup(0, prefix="ana"),
                                    queued_signup(1, prefix="other"), queued_signup(0, prefix="ana"))
    await queue_signups(redis, [mine, repeat, theirs])
    await queue(redis).bury(buried, "IntegrityError 23505")
    other_dead = queued_signup(2, prefix="other")
    await queue(redis).bury(other_dead, "DataError 22001")
    await sign_in(client, redis, db, EMAIL)  # signed in before the sign-up was drained: no volunteer row yet

    assert (await delete_account(client)).status_code == 200
    pending = [msgspec.json.decode(raw)["email_normalized"] for raw in await redis.lrange(queue(redis).pending, 0, -1)]
    assert pending == ["other.1@example.org"]
    assert [letter.record.email for letter in await queue(redis).dead_letters()] == ["other.2@example.org"]
    assert await redis.hkeys(queue(redis).dead_reasons) == [other_dead.receipt.encode()]
    assert await redis.exists(email_mark(TEST_ENV["SECRET_KEY"], EMAIL)) == 0
    assert await db.fetchval("SELECT count(*) FROM users") == 0

    await queue(redis).retry_dead_letters()
    run_worker({"SMTP_URL": mail_sink.url})
    assert [row["email"] for row in await db.fetch("SELECT email FROM volunteers ORDER BY email")] == [
        "other.1@example.org", "other.2@example.org"]


async def test_a_copy_being_drained_is_waited_for_then_deleted_with_the_row_it_wrote(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    """The race: a live consumer holds the sign-up and commits its row while the deletion runs."""
    await queue_signups(redis, [queued_signup(0, prefix="ana"), queued_signup(1, prefix="other")])
    signups = queue(redis)
    batch = await signups.claim_raw("live-consumer", 10, lease_seconds=30)
    assert len(batch) == 2
    await sign_in(client, redis, db, EMAIL)

    def consumer_commits_then_acknowledges() -> None:
        """Another process, as a real consumer is (the test client blocks this test's event loop meanwhile)."""
        async def work() -> None:
            time.sleep(0.5)
            connection = await asyncpg.connect(DATABASE_URL)
            await add_volunteer(connection, EMAIL)
            await connection.close()
            async with Redis.from_url(REDIS_URL) as redis_there:
                await queue(redis_there).acknowledge("live-consumer", ())

        asyncio.run(work())

    started = time.monotonic()
    draining = threading.Thread(target=consumer_commits_then_acknowledges)
    draining.start()
    assert (await delete_account(client)).status_code == 200
    elapsed = time.monotonic() - started
    draining.join()
    assert 0.5 <= elapsed < 3  # it waited for the consumer, not for the lease to run out
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 0
    assert await signups.consumers() == []


async def test_a_dead_consumers_copy_is_removed_without_waiting(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await queue_signups(redis, [queued_signup(0, prefix="ana"), queued_signup(1, prefix="other")])
    signups = queue(redis)
    await signups.claim_raw("dead-consumer", 10, lease_seconds=1)
    await asyncio.sleep(1.2)  # its lease ran out: it was killed mid-batch
    await sign_in(client, redis, db, EMAIL)

    started = time.monotonic()
    assert (await delete_account(client)).status_code == 200
    assert time.monotonic() - started < 1
    in_flight = await redis.lrange(signups.inflight_key("dead-consumer"), 0, -1)
    assert [msgspec.json.decode(raw)["email"] for raw in in_flight] == ["other.1@example.org"]
    assert await signups.recover_orphans() == 1  # the other person's sign-up is still re-drained


async def test_an_organisation_manager_can_delete_and_only_loses_the_role(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "gestion@example.org", departments=("69",))
    organisation_id, _ = await register(client)
    page = await client.get(DELETE)
    assert "Vous gérez une ou plusieurs structures" in page.text and "votre profil de bénévole" not in page.text

    assert (await delete_account(client)).status_code == 200
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert await db.fetchval("SELECT count(*) FROM organisation_managers") == 0
    assert await db.fetchval("SELECT count(*) FROM coordinator_scopes") == 0
    assert await db.fetchval("SELECT count(*) FROM organisations WHERE id = $1", organisation_id) == 1


async def test_a_place_taken_moments_before_deleting_is_given_back_too(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    """The application is still in the queue, not in PostgreSQL, when the account goes."""
    async with (AsyncTestClient(app=create_app(settings)) as moderator,
                AsyncTestClient(app=create_app(settings)) as leaving,
                AsyncTestClient(app=create_app(settings)) as waiting):
        organisation_id = await validated_organisation(client, moderator, redis, db, "gestion@example.org")
        mission_id = await online_mission(client, organisation_id, places="1")
        await add_volunteer(db, EMAIL)
        waiting_id = await add_volunteer(db, "zoe@example.org")
        await sign_in(leaving, redis, db, EMAIL)
        await sign_in(waiting, redis, db, "zoe@example.org")
        for volunteer in (leaving, waiting):
            response = await post_form(volunteer, f"/missions/{mission_id}/candidater", {})
            assert response.status_code == 303, response.text
        assert await db.fetchval("SELECT count(*) FROM applications") == 0  # nothing drained yet
        assert (await delete_account(leaving)).status_code == 200
        assert await redis.hget(f"renfort:applications:m{mission_id}:status", str(waiting_id)) == b"pending"
        run_worker()
        assert dict(await db.fetch("SELECT volunteer_id, status FROM applications")) == {waiting_id: "pending"}
