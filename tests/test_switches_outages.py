"""Outages, on throwaway servers this module starts: Redis down → the sign-up page says in French that signing up is
unavailable for a few minutes (503 + Retry-After, never a 500, nothing half-written); PostgreSQL down → sign-ups are
still accepted, cached mission searches still read, and organisation pages answer a French 503, never a 500."""

from __future__ import annotations

import html
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import load_settings
from app.switches.board import SwitchBoard
from app.volunteers.signup_queue import PENDING
from ops.postgres import LocalPostgres
from ops.processes import free_port
from ops.valkey import LocalRedis
from tests import test_database_outage
from tests.conftest import run_release
from tests.factories import signup
from tests.helpers import eventually
from tests.test_organisations import register, sign_in
from tests.test_signin import csrf_token

UNAVAILABLE = "Les inscriptions sont momentanément indisponibles"
throwaway_postgres = test_database_outage.throwaway_postgres  # the same fixture: a PostgreSQL of this test's own


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "valkey", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(throwaway_redis: LocalRedis) -> AsyncIterator[AsyncTestClient]:
    settings = load_settings({**os.environ, "REDIS_URL": throwaway_redis.url()})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def says_signup_unavailable(response: Any) -> bool:
    text = html.unescape(response.text)
    return (response.status_code == 503 and response.headers.get("retry-after") == "120"
            and UNAVAILABLE in text and "réessayez dans quelques minutes" in text and "Rien n'a été enregistré" in text)


def form(token: str) -> dict[str, Any]:
    values = signup(email="pendant.panne@example.org")
    return {**values, "consent": "on", "domains": values["domains"][0], "skills": "", "_csrf_token": token}


async def test_with_redis_down_the_signup_page_says_signing_up_is_unavailable(
    redis_client: AsyncTestClient, throwaway_redis: LocalRedis
) -> None:
    page = await redis_client.get("/inscription")
    assert page.status_code == 200
    token = csrf_token(page.text)

    throwaway_redis.stop()
    await eventually(lambda: _unavailable(redis_client), timeout=5, interval=0.2)  # the sampler noticed
    posted = await redis_client.post("/inscription", data=form(token), follow_redirects=False)
    assert says_signup_unavailable(posted)
    api = await redis_client.post("/api/v1/volunteers", json=signup())
    assert api.status_code == 503 and "retry-after" in api.headers and "error" in api.json()

    throwaway_redis.start()
    await eventually(lambda: _open(redis_client), timeout=10, interval=0.2)

    # Redis lost between two samples: the accept itself fails, and the error handler gives the same page.
    board: SwitchBoard = redis_client.app.state.web.switches
    redis_client.blocking_portal.call(board.stop)
    throwaway_redis.stop()
    assert board.redis_reachable
    posted = await redis_client.post("/inscription", data=form(token), follow_redirects=False)
    assert says_signup_unavailable(posted)

    throwaway_redis.start()
    check = Redis.from_url(throwaway_redis.url())
    try:
        assert await check.llen(PENDING) == 0  # nothing half-written
        assert [key async for key in check.scan_iter(match="renfort:signups:*")] == []
    finally:
        await check.aclose()


async def _unavailable(client: AsyncTestClient) -> bool:
    return says_signup_unavailable(await client.get("/inscription"))


async def _open(client: AsyncTestClient) -> bool:
    return (await client.get("/inscription")).status_code == 200


async def test_with_postgresql_down_signups_are_accepted_and_organisation_pages_answer_a_french_503(
    throwaway_postgres: LocalPostgres, redis: Redis
) -> None:
    url = throwaway_postgres.url("renfort")
    run_release({"DATABASE_URL": url})
    settings = load_settings({**os.environ, "DATABASE_URL": url})
    database = await asyncpg.connect(url)
    async with AsyncTestClient(app=create_app(settings)) as client:
        await sign_in(client, redis, database, "gestion.panne@example.org")
        organisation_id, location = await register(client)
        await database.execute("UPDATE organisations SET status = 'validated' WHERE id = $1", organisation_id)
        await database.close()
        search = "/missions?code_postal=69003"
        assert (await client.get(search)).status_code == 200  # now cached in Redis
        page = await client.get("/inscription")
        token = csrf_token(page.text)

        throwaway_postgres.stop(mode="immediate")
        for path in (location, f"/organisations/{organisation_id}/modifier", "/mon-espace/structures",
                     "/moderation/organisations"):
            response = await client.get(path, follow_redirects=False)
            assert response.status_code == 503, (path, response.status_code)
            assert "retry-after" in response.headers
            assert "Cette page est momentanément indisponible" in html.unescape(response.text), path
            assert "Les inscriptions des bénévoles restent ouvertes" in html.unescape(response.text), path
        assert (await client.get(search)).status_code == 200  # read from the cache
        posted = await client.post("/inscription", data=form(token), follow_redirects=False)
        assert posted.status_code == 303 and posted.headers["location"].startswith("/inscription/merci")
        assert (await client.post("/api/v1/volunteers", json=signup())).status_code == 202
    assert await redis.llen(PENDING) == 2
