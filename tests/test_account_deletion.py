"""Deleting one's own account for real: the rows (volunteer, applications, user, roles), the places freed in Redis,
the dead letters, the sessions on every device, and copies of the sign-up still queued or being written, which never
come back (the erasure's tombstone)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.main import create_app
from app.settings import Settings
from app.volunteers.erasure import ERASURE_LOCK, SAFETY_MARGIN, forget_tombstones
from app.volunteers.schemas import QueuedSignup
from app.volunteers.signup_queue import SignupQueue
from ops.services import MailSink
from tests.conftest import DATABASE_URL, TEST_ENV, run_worker
from tests.factories import signup
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
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/connexion?suite=%2Fmon-espace%2Fsupprimer"
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
        mission_id = await online_mission(client, moderator, organisation_id, places="1")
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
            assert gone.status_code == 303 and gone.headers["location"] == "/connexion?suite=%2Fmon-espace"
        leaving.cookies.set(COOKIE, cookie)  # the old cookie, replayed
        replayed = await leaving.get("/mon-espace/profil", follow_redirects=False)
        assert replayed.status_code == 303
        assert replayed.headers["location"] == "/connexion?suite=%2Fmon-espace%2Fprofil"
        assert (await waiting.get("/mon-espace")).status_code == 200  # nobody else is signed out


async def bury(redis: Redis, records: list[QueuedSignup], reason: str) -> None:
    """Dead letters as the drain files them: claimed, then buried with the reason."""
    signups = queue(redis)
    await redis.rpush(signups.keys.pending, *[msgspec.json.encode(record) for record in records])
    claim = await signups.claim("test-consumer", len(records), lease_seconds=30)
    for raw in claim.records:
        key, owner = signups.describe(raw)
        assert await signups.bury(claim, raw, key=key, owner=owner, reason=reason)
    assert await signups.acknowledge(claim)


async def test_queued_copies_of_the_signup_are_never_written_back_and_its_dead_letters_go(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    other_dead = queued_signup(2, prefix="other")
    await bury(redis, [queued_signup(0, prefix="ana"), other_dead], "ForeignKeyViolationError 23503")
    mine, repeat = queued_signup(0, prefix="ana"), queued_signup(0, prefix="ana")
    theirs = queued_signup(1, prefix="other")
    await queue_signups(redis, [mine, repeat, theirs])
    await sign_in(client, redis, db, EMAIL)  # signed in before the sign-up was drained: no volunteer row yet

    assert (await delete_account(client)).status_code == 200
    assert [letter.key for letter in await queue(redis).dead_letters()] == [other_dead.receipt]
    assert await redis.exists(queue(redis).signup_keys.email_mark(EMAIL)) == 0
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert await redis.llen(queue(redis).keys.pending) == 3  # no list was read: the drain stops the copies

    await queue(redis).retry_dead_letters()
    run_worker({"SMTP_URL": mail_sink.url})
    assert [row["email"] for row in await db.fetch("SELECT email FROM volunteers ORDER BY email")] == [
        "other.1@example.org", "other.2@example.org"]
    assert await queue(redis).receipt_status(mine.receipt) == "saved"  # never written, and never will be

    # A later sign-up with the same address is a new one, and goes through.
    again = await client.post("/api/v1/volunteers", json=signup(email=EMAIL))
    assert again.status_code == 202
    run_worker({"SMTP_URL": mail_sink.url})
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email_normalized = $1", EMAIL) == 1


async def test_a_drain_writing_the_signup_is_waited_for_then_its_row_is_deleted(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    """The race: a drain transaction (even one whose lease ran out) inserts the row while the deletion runs."""
    await sign_in(client, redis, db, EMAIL)

    def drain_transaction_commits_late() -> None:
        """Another process, as a real consumer is (the test client blocks this test's event loop meanwhile)."""
        async def work() -> None:
            connection = await asyncpg.connect(DATABASE_URL)
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock_shared($1)", ERASURE_LOCK)
                started.set()
                await add_volunteer(connection, EMAIL)
                time.sleep(0.5)
            await connection.close()

        asyncio.run(work())

    started = threading.Event()
    draining = threading.Thread(target=drain_transaction_commits_late)
    draining.start()
    started.wait(10)
    begun = time.monotonic()
    assert (await delete_account(client)).status_code == 200
    waited = time.monotonic() - begun
    draining.join()
    assert waited >= 0.3  # it waited for the drain's transaction, whose row it then deleted
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 0
    assert await db.fetchval("SELECT count(*) FROM erasures") == 1


async def test_deleting_does_not_wait_for_a_consumer_holding_the_signup_and_that_copy_is_dropped(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await queue_signups(redis, [queued_signup(0, prefix="ana"), queued_signup(1, prefix="other")])
    signups = queue(redis)
    claim = await signups.claim("live-consumer", 10, lease_seconds=30)
    await sign_in(client, redis, db, EMAIL)

    started = time.monotonic()
    assert (await delete_account(client)).status_code == 200
    assert time.monotonic() - started < 5  # nothing waited on the consumer's lease
    assert await signups.requeue(claim) == 2  # the consumer gives the batch back, as on an outage
    run_worker()
    assert [row["email"] for row in await db.fetch("SELECT email FROM volunteers")] == ["other.1@example.org"]
    assert await signups.consumers() == []


async def test_tombstones_are_forgotten_once_no_queued_copy_can_need_them(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await add_volunteer(db, EMAIL)
    await sign_in(client, redis, db, EMAIL)
    assert (await delete_account(client)).status_code == 200
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            assert await forget_tombstones(session, queue_empty_at=datetime.now(UTC)) == 0  # still within the margin
        async with unit_of_work(engine) as session:
            later = datetime.now(UTC) + SAFETY_MARGIN + timedelta(seconds=1)
            assert await forget_tombstones(session, queue_empty_at=later) == 1
    finally:
        await engine.dispose()
    assert await db.fetchval("SELECT count(*) FROM erasures") == 0


async def test_an_organisation_manager_can_delete_and_only_loses_the_role(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "gestion@example.org", departments=("69",))
    organisation_id, _ = await register(client)
    # The only manager is held back (tests/test_onboarding_managers.py); with a co-manager, the deletion goes ahead.
    assert (await post_form(client, DELETE, {}, "/mon-espace")).status_code == 409
    colleague = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                  "collegue@example.org")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)", organisation_id,
                     colleague)
    page = await client.get(DELETE)
    assert "Vous gérez une ou plusieurs structures" in page.text and "votre profil de bénévole" not in page.text

    assert (await delete_account(client)).status_code == 200
    assert await db.fetchval("SELECT email FROM users") == "collegue@example.org"
    assert await db.fetchval("SELECT user_id FROM organisation_managers") == colleague
    assert await db.fetchval("SELECT count(*) FROM coordinator_scopes") == 0
    assert await db.fetchval("SELECT count(*) FROM organisations WHERE id = $1", organisation_id) == 1


async def test_the_only_administrator_cannot_delete_their_account_until_another_is_named(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin@example.org", admin=True)
    refused = await post_form(client, DELETE, {}, "/mon-espace")
    assert refused.status_code == 409 and "seule personne à administrer la plateforme" in refused.text
    assert await db.fetchval("SELECT count(*) FROM users WHERE is_admin") == 1
    await db.execute("INSERT INTO users (email, email_normalized, is_admin) VALUES ($1, $1, true)",
                     "admin2@example.org")
    assert (await delete_account(client)).status_code == 200
    assert await db.fetchval("SELECT email FROM users WHERE is_admin") == "admin2@example.org"


async def test_a_place_taken_moments_before_deleting_is_given_back_too(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    """The application is still in the queue, not in PostgreSQL, when the account goes."""
    async with (AsyncTestClient(app=create_app(settings)) as moderator,
                AsyncTestClient(app=create_app(settings)) as leaving,
                AsyncTestClient(app=create_app(settings)) as waiting):
        organisation_id = await validated_organisation(client, moderator, redis, db, "gestion@example.org")
        mission_id = await online_mission(client, moderator, organisation_id, places="1")
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
