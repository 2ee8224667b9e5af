"""Draining queued sign-ups into PostgreSQL: batches, idempotence, dead letters, and a worker killed mid-batch."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.db.base import make_engine, unit_of_work
from app.volunteers.service import save_signups
from app.volunteers.signup_queue import KEYS, PENDING, PREFIX
from tests.conftest import DATABASE_URL, ROOT, TEST_ENV, run_worker
from tests.helpers import eventually, kill_worker, queue_signups, queued_signup, start_worker


async def receipts_saved(redis: Redis, receipts: list[str]) -> bool:
    statuses = await redis.mget([PREFIX + "receipt:" + receipt for receipt in receipts])
    return all(status == b"saved" for status in statuses)


async def test_a_backlog_drains_in_batches_and_every_receipt_is_saved(redis: Redis, db: asyncpg.Connection) -> None:
    records = [queued_signup(n) for n in range(3_000)]
    await queue_signups(redis, records)
    run_worker({"DRAIN_BATCH_SIZE": "500"})
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 3_000
    assert await db.fetchval("SELECT count(DISTINCT email_normalized) FROM volunteers") == 3_000
    assert await redis.llen(PENDING) == 0
    assert await receipts_saved(redis, [r.receipt for r in records])


async def test_saving_the_same_batch_twice_writes_it_once() -> None:
    records = [queued_signup(n, prefix="twice") for n in range(50)]
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            first = await save_signups(session, TEST_ENV["SECRET_KEY"], records)
        async with unit_of_work(engine) as session:
            again = await save_signups(session, TEST_ENV["SECRET_KEY"], records)
        async with async_sessionmaker(engine)() as session:
            count = (await session.execute(
                __import__("sqlalchemy").text("SELECT count(*) FROM volunteers WHERE email LIKE 'twice.%'")
            )).scalar()
    finally:
        await engine.dispose()
    assert count == 50
    # The second pass recognises its own rows: same welcome keys (deduplicated by the mail job), no reminders.
    assert [key for _, key in again.welcome] == [key for _, key in first.welcome]
    assert again.reminder == []


async def test_a_record_postgresql_refuses_goes_to_dead_letters_and_the_rest_lands(
    redis: Redis, db: asyncpg.Connection, client: AsyncTestClient
) -> None:
    good = [queued_signup(n, prefix="batch") for n in range(20)]
    bad = queued_signup(99, prefix="orphan", commune_code="00000")
    await queue_signups(redis, [*good[:10], bad, *good[10:]])
    run_worker()
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 20
    assert await redis.zcard(KEYS.dead_order) == 1

    listing = subprocess.run(
        [sys.executable, "-m", "queues.deadletters", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "1 inscription(s) en lettres mortes" in listing.stdout
    assert bad.receipt in listing.stdout and "fk_volunteers_commune_code_communes" in listing.stdout
    assert "orphan" not in listing.stdout  # no e-mail in ops output

    assert (await client.get("/ops/dead-letters")).status_code == 401
    page = await client.get("/ops/dead-letters", headers={"Authorization": "Bearer ops-test-token"})
    assert page.status_code == 200 and bad.receipt in page.text and "orphan" not in page.text  # ids, no e-mail

    # Ops fix the cause (here: the missing reference row), then put the record back: it lands, once.
    await db.execute("INSERT INTO communes VALUES ('00000', 'Commune de test', '69', '{69003}', 0, NULL, NULL)")
    try:
        retried = subprocess.run(
            [sys.executable, "-m", "queues.deadletters", "retry"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        assert "1 inscription(s) remise(s) dans la file" in retried.stdout
        run_worker()
        assert await db.fetchval("SELECT count(*) FROM volunteers WHERE commune_code = '00000'") == 1
        assert await redis.zcard(KEYS.dead_order) == 0
    finally:
        await db.execute("DELETE FROM volunteers WHERE commune_code = '00000'")
        await db.execute("DELETE FROM communes WHERE code = '00000'")


async def test_worker_killed_mid_batch_loses_and_doubles_nothing(redis: Redis, db: asyncpg.Connection) -> None:
    total = 20_000
    records = [queued_signup(n, prefix="kill") for n in range(total)]
    await queue_signups(redis, records)
    env = {"DRAIN_BATCH_SIZE": "1000", "DRAIN_LEASE_SECONDS": "3"}

    async def mid_batch() -> bool:
        saved = await db.fetchval("SELECT count(*) FROM volunteers")
        return 0 < saved < total - 3_000 and bool(await redis.scard(PREFIX + "consumers"))

    left_in_flight: list[bytes] = []
    for _ in range(5):  # a kill can land between two batches; then kill the next worker, until one dies holding one
        worker = start_worker(env)
        try:
            await eventually(mid_batch, timeout=90, interval=0.01)
        finally:
            kill_worker(worker)
        left_in_flight = [key async for key in redis.scan_iter(match=PREFIX + "inflight:*")]
        if left_in_flight:
            break
    assert left_in_flight, "a worker should have died holding a batch"
    assert await db.fetchval("SELECT count(*) FROM volunteers") < total

    await asyncio.sleep(4)  # the dead consumer's lease runs out
    run_worker(env)
    assert await db.fetchval("SELECT count(*) FROM volunteers") == total
    assert await db.fetchval("SELECT count(DISTINCT email_normalized) FROM volunteers") == total
    assert [key async for key in redis.scan_iter(match=PREFIX + "inflight:*")] == []
    assert await receipts_saved(redis, [r.receipt for r in records])
