"""PostgreSQL goes down in the middle of a wave: sign-ups keep being accepted (even by a restarted web process),
nothing is lost while the workers wait, and the backlog lands exactly once when PostgreSQL is back.

Runs against a throwaway PostgreSQL this test starts on its own port and data folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import load_settings
from app.volunteers.signup_queue import PENDING, PREFIX
from ops.processes import scratch_folder
from ops.services import LocalPostgres, free_port
from tests.conftest import run_release
from tests.factories import signup
from tests.helpers import eventually, kill_worker, start_worker

API = "/api/v1/volunteers"


@pytest.fixture
def throwaway_postgres() -> Iterator[LocalPostgres]:
    folder = scratch_folder()  # not tmp_path: as root the server runs as `nobody`, who must reach the folder
    server = LocalPostgres(folder / "postgres", free_port())
    server.start()
    server.create_database("renfort")
    yield server
    server.kill()
    shutil.rmtree(folder, ignore_errors=True)


async def sign_up_many(client: AsyncTestClient, count: int, prefix: str) -> list[str]:
    receipts = []
    for number in range(count):
        response = await client.post(API, json=signup(email=f"{prefix}.{number}@example.org"))
        assert response.status_code == 202
        receipts.append(response.json()["receipt"])
    return receipts


async def test_signups_survive_a_postgresql_outage_and_a_web_restart(
    throwaway_postgres: LocalPostgres, redis: Redis
) -> None:
    url = throwaway_postgres.url("renfort")
    run_release({"DATABASE_URL": url})
    settings = load_settings({**os.environ, "DATABASE_URL": url})

    async with AsyncTestClient(app=create_app(settings)) as client:
        receipts = await sign_up_many(client, 30, "before")
        throwaway_postgres.stop(mode="immediate")
        receipts += await sign_up_many(client, 30, "during")
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["postgresql"].startswith("indisponible")
        assert ready.json()["queue"]["signups_pending"] == 60

    # A web process (re)started while PostgreSQL is down still serves sign-ups: it needs no SQL to start.
    async with AsyncTestClient(app=create_app(settings)) as restarted:
        receipts += await sign_up_many(restarted, 30, "restarted")

    worker = start_worker({"DATABASE_URL": url, "DRAIN_BATCH_SIZE": "25"})
    try:
        # The worker tries, fails, and puts every batch back: nothing is dropped while it waits.
        async def backlog_intact() -> bool:
            in_flight = 0
            async for key in redis.scan_iter(match=PREFIX + "inflight:*"):
                in_flight += await redis.llen(key)
            return await redis.llen(PENDING) + in_flight == 90

        await eventually(backlog_intact, timeout=10)
        throwaway_postgres.start()
        database = await asyncpg.connect(url)
        try:
            async def all_saved() -> bool:
                return await database.fetchval("SELECT count(*) FROM volunteers") == 90

            await eventually(all_saved, timeout=90, interval=0.5)
            assert await database.fetchval("SELECT count(DISTINCT email_normalized) FROM volunteers") == 90
        finally:
            await database.close()
    finally:
        kill_worker(worker)
    statuses = await redis.mget([PREFIX + "receipt:" + receipt for receipt in receipts])
    assert set(statuses) == {b"saved"}
