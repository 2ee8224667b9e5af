"""The queued write path on a bad day: records PostgreSQL refuses, a write held past the lease, a consumer whose
lease was taken over, a Redis at its memory limit. Nothing lost, nothing doubled, nothing stuck."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.applications.capacity import PREFIX as APPLICATIONS
from app.db.base import make_engine
from app.durable_queue import DurableQueue
from app.main import create_app
from app.settings import load_settings
from app.volunteers.schemas import QueuedSignup
from app.volunteers.signup_queue import KEYS, PENDING, PREFIX, SignupQueue
from ops.processes import free_port
from ops.valkey import LocalRedis
from queues.drain import Writer, Written, drain
from tests.conftest import DATABASE_URL, TEST_ENV, run_worker
from tests.factories import signup
from tests.helpers import eventually, kill_worker, queue_signups, queued_signup, start_worker
from tests.test_account_deletion import add_volunteer


def encoded(records: list[QueuedSignup]) -> list[bytes]:
    return [msgspec.json.encode(record) for record in records]


async def dead_reasons(redis: Redis, prefix: str) -> dict[str, str]:
    letters = await DurableQueue(redis, prefix).dead_letters()
    return {letter.key: letter.reason for letter in letters}


async def test_records_postgresql_refuses_for_their_content_are_isolated_and_the_rest_lands(
    redis: Redis, db: asyncpg.Connection
) -> None:
    good = [queued_signup(n, prefix="good") for n in range(30)]
    nul = msgspec.structs.replace(queued_signup(0, prefix="nul"), first_name="Ana\x00")
    too_long = msgspec.structs.replace(queued_signup(0, prefix="long"), last_name="M" * 150)
    garbage = b'{"receipt": 12'
    # Straight onto the queue, as if validation had let them through: the drain must still cope.
    await redis.rpush(PENDING, *encoded(good[:10]), encoded([nul])[0], *encoded(good[10:20]), garbage,
                      encoded([too_long])[0], *encoded(good[20:]))
    run_worker({"DRAIN_BATCH_SIZE": "50"})

    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email LIKE 'good.%'") == 30
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 30
    assert await redis.llen(PENDING) == 0 and await redis.scard(KEYS.consumers) == 0
    reasons = await dead_reasons(redis, PREFIX)
    assert set(reasons) >= {nul.receipt, too_long.receipt} and len(reasons) == 3
    assert "22021" in reasons[nul.receipt] and "22001" in reasons[too_long.receipt]
    assert all("Ana" not in why and "MMM" not in why for why in reasons.values())  # no value quoted


async def test_an_application_change_postgresql_refuses_is_dead_lettered_and_the_others_are_saved(
    redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Banque alimentaire', 'association', '1 rue', '69003', '69123', 'Aide', 'validated') RETURNING id")
    mission_id = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, priority, status) VALUES ($1, 'Tri', 'Une mission de test assez longue.',"
        " 'solidarite-insertion', '{}', false, current_date, 50, false, false, 'published') RETURNING id",
        organisation_id)
    volunteers = [await add_volunteer(db, f"v{n}@example.org") for n in range(6)]

    def event(volunteer_id: int, version: int, message: str) -> bytes:
        return msgspec.json.encode({"m": mission_id, "v": volunteer_id, "s": "pending", "n": version, "k": "applied",
                                    "t": 1_700_000_000.0, "msg": message})

    changes = [event(volunteer, n + 1, "Bonjour") for n, volunteer in enumerate(volunteers[:5])]
    changes.insert(2, event(volunteers[5], 99, "Bonjour\x00"))
    await redis.rpush(APPLICATIONS + "pending", *changes)
    run_worker()

    saved = await db.fetch("SELECT volunteer_id FROM applications ORDER BY volunteer_id")
    assert [row["volunteer_id"] for row in saved] == volunteers[:5]
    assert list(await dead_reasons(redis, APPLICATIONS)) == [f"{mission_id}:{volunteers[5]}:99"]
    assert await redis.llen(APPLICATIONS + "pending") == 0


async def test_a_consumer_whose_lease_was_taken_over_can_neither_acknowledge_nor_give_back_nor_bury(
    redis: Redis,
) -> None:
    queue = SignupQueue(redis, TEST_ENV["SECRET_KEY"])
    await queue_signups(redis, [queued_signup(n, prefix="fence") for n in range(3)])
    stale = await queue.claim("stalled", 10, lease_seconds=1)
    assert len(stale.records) == 3
    await asyncio.sleep(1.2)  # it stalled past its lease
    assert await queue.recover_orphans() == 3
    fresh = await queue.claim("healthy", 10, lease_seconds=30)
    assert fresh.records == stale.records

    assert not await queue.renew(stale, 30)
    assert not await queue.acknowledge(stale, ["receipt"])
    assert await queue.requeue(stale) == -1
    assert not await queue.bury(stale, stale.records[0], key="x", owner="y", reason="test")
    assert await queue.depth() == 0 and await queue.dead_count() == 0  # the healthy claim is untouched
    assert await queue.recover_orphans() == 0  # a live lease is never taken back
    assert await queue.acknowledge(fresh, ["r"]) and await queue.consumers() == []


async def test_a_write_held_past_the_lease_keeps_its_lease_and_is_written_once(
    redis: Redis, db: asyncpg.Connection
) -> None:
    records = [queued_signup(n, prefix="slow") for n in range(200)]
    await queue_signups(redis, records)
    blocker = await asyncpg.connect(DATABASE_URL)
    await blocker.execute("BEGIN; LOCK TABLE volunteers IN EXCLUSIVE MODE")  # reads go on, inserts wait
    env = {"DRAIN_LEASE_SECONDS": "2"}
    workers = [start_worker(env), start_worker(env)]
    try:
        await eventually(lambda: redis.scard(KEYS.consumers), timeout=60, interval=0.05)
        holder = (await SignupQueue(redis, TEST_ENV["SECRET_KEY"]).consumers())[0]
        await asyncio.sleep(7)  # three leases and more
        assert await SignupQueue(redis, TEST_ENV["SECRET_KEY"]).consumers() == [holder]
        assert await redis.exists(KEYS.lease(holder))  # renewed while it waits on PostgreSQL
        await blocker.execute("COMMIT")

        async def all_saved() -> bool:
            return await db.fetchval("SELECT count(*) FROM volunteers") == 200 and await redis.llen(PENDING) == 0
        await eventually(all_saved, timeout=60)
    finally:
        for worker in workers:
            kill_worker(worker, signal.SIGTERM)
        await blocker.close()
    assert await db.fetchval("SELECT count(DISTINCT email_normalized) FROM volunteers") == 200


async def test_a_full_redis_keeps_draining_and_new_signups_get_503_until_it_has_room(
    tmp_path: Path, db: asyncpg.Connection
) -> None:
    """A throwaway Valkey at a small maxmemory with noeviction, filled by a surge, then drained."""
    server = LocalRedis(tmp_path / "valkey", port=free_port())
    server.start()
    url = server.url()
    try:
        small = Redis.from_url(url)
        await small.config_set("maxmemory", "8mb")
        await small.config_set("maxmemory-policy", "noeviction")
        queued = []
        number = 0
        # The surge: sign-ups queued until Redis refuses writes.
        while True:
            batch = [queued_signup(number + n, prefix="full") for n in range(200)]
            number += 200
            try:
                await queue_signups(small, batch)
            except Exception as error:
                assert "maxmemory" in str(error) or "OOM" in str(error)
                break
            queued.extend(batch)
        assert queued and (await small.info("memory"))["used_memory"] >= 7 * 1024 * 1024
        settings = load_settings({**os.environ, "REDIS_URL": url})
        async with AsyncTestClient(app=create_app(settings)) as client:
            turned_away = await client.post("/api/v1/volunteers", json=signup(email="late@example.org"))
            assert turned_away.status_code == 503 and turned_away.headers["retry-after"]

            # RQ cannot even register a worker now; the worker drains outside RQ until there is room.
            run_worker({"REDIS_URL": url, "DRAIN_BATCH_SIZE": "500"}, timeout=300)
            assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email LIKE 'full.%'") == len(queued)
            assert await small.llen(PENDING) == 0 and await small.llen(KEYS.effects) == 0

            await asyncio.sleep(1.1)  # the web's look at Redis's memory is at most a second old
            assert (await client.post("/api/v1/volunteers", json=signup(email="late@example.org"))).status_code == 202
        await small.aclose()
    finally:
        server.stop()


async def test_effects_are_handed_on_once_even_when_drains_deliver_in_parallel(redis: Redis) -> None:
    queue = DurableQueue(redis, "renfort:test-effects:")
    await redis.rpush(queue.keys.pending, b"record")
    claim = await queue.claim("writer", 1, lease_seconds=30)
    effects = [str(n).encode() for n in range(300)]
    assert await queue.acknowledge(claim, effects=effects)
    sent: list[bytes] = []

    async def send(effect: bytes) -> None:
        await asyncio.sleep(0)  # another drain gets its turn between reading an effect and removing it
        sent.append(effect)

    while await queue.effects_depth():
        await asyncio.gather(*[queue.deliver_effects(send, limit=50) for _ in range(4)])
    assert sorted(sent) == sorted(effects)


async def test_a_batch_whose_lease_ran_out_mid_write_is_never_acknowledged_with_the_next_one(redis: Redis) -> None:
    """The lease expires while a write stalls (its renewals lost): the write is cancelled, and the batch left to the
    recovery — the next batch is claimed under another name, so acknowledging it cannot drop the first."""
    queue = DurableQueue(redis, "renfort:test-lease:")
    await redis.rpush(queue.keys.pending, b"A1", b"A2")
    written: list[bytes] = []

    async def write(records: list[bytes]) -> Written:
        if records == [b"A1", b"A2"] and not written:
            await redis.delete(queue.keys.lease((await queue.consumers())[0]))  # as if it ran out
            await redis.rpush(queue.keys.pending, b"B1")  # arrives meanwhile
            await asyncio.sleep(2)  # the renewal finds the lease gone and cancels this write
        written.extend(records)
        return Written()

    async def deliver(effect: bytes) -> None:
        raise AssertionError("no effects here")

    settings = SimpleNamespace(drain_batch_size=10, drain_lease_seconds=2, drain_consumers=1)
    context: Any = SimpleNamespace(settings=settings, redis=redis)
    writer = Writer(write=write, describe=lambda record: (record.decode(), ""), deliver=deliver)
    log = logging.getLogger("test")
    await drain(context, queue, writer, enqueue_next=lambda attempt: None, attempt=0, log=log)
    assert written == [b"B1"]
    await drain(context, queue, writer, enqueue_next=lambda attempt: None, attempt=0, log=log)  # recovers A
    assert sorted(written) == [b"A1", b"A2", b"B1"]
    assert await queue.consumers() == [] and await queue.depth() == 0


async def test_pages_that_read_postgresql_answer_503_while_it_is_unreachable(client: AsyncTestClient) -> None:
    web = client.app.state.web
    await web.engine.dispose()
    web.engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/renfort")  # nobody there
    page = await client.get("/missions/1")
    assert page.status_code == 503 and page.headers["retry-after"]
    assert "Réessayez" in page.text
