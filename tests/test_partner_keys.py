"""API keys: kept as SHA-256 only, checked without SQL from each process's copy, current within a second in every
web process (revoked key, deactivated partner), and a flood of unknown keys neither grows memory nor costs queries.
Every error on a partner path, Litestar's own included, answers with the `{ok, code, message}` envelope in French."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import Parameter
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import event

from app.db.base import make_engine
from app.main import create_app
from app.partners.auth import directory_of
from app.partners.directory import PartnerDirectory
from app.partners.keys import digest_of
from app.partners.rate_limit import PartnerKeys
from app.settings import Settings
from tests.partner_fixtures import create_key, create_partner
from tests.test_organisations import post_form, sign_in

ADMIN = "admin.partenaires@example.org"
PING = "/v0/ping"


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


def count_queries(app: Litestar) -> list[str]:
    statements: list[str] = []
    event.listen(app.state.web.engine.sync_engine, "before_cursor_execute",
                 lambda *arguments: statements.append(arguments[2]))
    return statements


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["ok"] is False and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


async def until(condition: Any, seconds: float) -> float:
    """How long `condition` took to hold (fails past `seconds`)."""
    started = time.monotonic()
    while not await condition():
        assert time.monotonic() - started < seconds, "not within the delay"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_key_made_on_the_admin_page_is_stored_as_its_digest_only_and_works_in_both_headers(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    partner_id = await create_partner(db, "Plateforme Sûre")
    page = f"/administration/partenaires/{partner_id}"
    response = await post_form(client, f"{page}/cles", {"libelle": "production"}, page)
    assert response.status_code == 200
    key = response.text.split('<code id="cle">', 1)[1].split("</code>", 1)[0]
    assert len(key) >= 40
    stored = await db.fetchrow("SELECT * FROM partner_api_keys WHERE partner_id = $1", partner_id)
    assert stored["digest"] == hashlib.sha256(key.encode()).hexdigest() and key.startswith(stored["prefix"])
    dump = await db.fetchval("SELECT string_agg(row_to_json(k)::text, '') FROM partner_api_keys k")
    assert key not in dump
    assert key not in (await client.get(page)).text  # shown once, never again

    client.cookies.clear()
    for header in ("x-api-key", "apikey"):
        ping = await client.get(PING, headers={header: key})
        assert ping.status_code == 200 and ping.json() == {"ok": True, "data": {"partner": "Plateforme Sûre"}}
        assert ping.headers["x-ratelimit-limit"] == "1200"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": ""}, {"x-api-key": "nope"}, {"apikey": "x" * 5_000},
                                     {"x-api-key": "é".encode() * 50}, {"x-api-key": b"\xff\x00"}])
async def test_a_missing_or_unknown_key_gets_a_401_envelope(client: AsyncTestClient[Litestar],
                                                            headers: dict[str, Any]) -> None:
    body = assert_envelope(await client.get(PING, headers=headers), 401, "UNAUTHORIZED")
    assert "x-api-key" in body["message"]


async def test_a_revoked_key_stops_working_within_a_second_in_every_process(
    client: AsyncTestClient[Litestar], other: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    partner_id = await create_partner(db, "Révocable")
    key = await create_key(db, partner_id)
    kept = await create_key(db, partner_id)
    await redis.incr("{renfort:partners}:version")  # as the admin page does after its commit
    assert (await other.get(PING, headers={"x-api-key": key})).status_code == 200
    key_id = await db.fetchval("SELECT id FROM partner_api_keys WHERE digest = $1",
                               hashlib.sha256(key.encode()).hexdigest())
    page = f"/administration/partenaires/{partner_id}"
    revoked = await post_form(client, f"{page}/cles/{key_id}/revoquer", {}, page)
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("fait=revoquee")

    async def refused() -> bool:
        return (await other.get(PING, headers={"x-api-key": key})).status_code == 401

    assert await until(refused, 1.5) < 1.1
    assert (await other.get(PING, headers={"x-api-key": kept})).status_code == 200


async def test_a_deactivated_partner_is_refused_within_a_second_in_every_process(
    client: AsyncTestClient[Litestar], other: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    partner_id = await create_partner(db, "Bientôt fermé")
    key = await create_key(db, partner_id)
    assert (await other.get(PING, headers={"x-api-key": key})).status_code == 200
    page = f"/administration/partenaires/{partner_id}"
    edited = await post_form(client, page, {"nom": "Bientôt fermé", "limite": "1200", "flux_intervalle": "360"}, page)
    assert edited.status_code == 303, edited.text
    assert await db.fetchval("SELECT active FROM partners WHERE id = $1", partner_id) is False

    async def refused() -> bool:
        return (await other.get(PING, headers={"x-api-key": key})).status_code == 401

    assert await until(refused, 1.5) < 1.1


async def test_a_flood_of_unknown_keys_costs_at_most_a_query_a_second_and_grows_nothing(
    client: AsyncTestClient[Litestar], db: asyncpg.Connection
) -> None:
    key = await create_key(db, await create_partner(db, "Seule"))
    assert (await client.get(PING, headers={"x-api-key": key})).status_code == 200
    directory = directory_of(client.app.state)
    statements = count_queries(client.app)
    started = time.monotonic()
    for _ in range(300):
        response = await client.get(PING, headers={"x-api-key": secrets.token_urlsafe(32)})
        assert response.status_code == 401
    assert len(statements) <= time.monotonic() - started + 1 and len(directory) == 1
    # A known key costs no query: the copy serves it, checked against Redis.
    before = len(statements)
    for _ in range(50):
        assert (await client.get(PING, headers={"x-api-key": key})).status_code == 200
    assert len(statements) == before


async def test_a_key_written_without_a_version_bump_works_within_a_second(
    client: AsyncTestClient[Litestar], db: asyncpg.Connection
) -> None:
    partner_id = await create_partner(db, "Script")
    assert (await client.get(PING, headers={"x-api-key": await create_key(db, partner_id)})).status_code == 200
    later = await create_key(db, partner_id)  # as a script would, without the admin page's bump

    async def accepted() -> bool:
        return (await client.get(PING, headers={"x-api-key": later})).status_code == 200

    assert await until(accepted, 1.5) < 1.2


async def test_a_key_made_after_a_process_loaded_its_copy_works_there_at_once(
    client: AsyncTestClient[Litestar], other: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    partner_id = await create_partner(db, "Nouvelle clé")
    assert (await other.get(PING, headers={"x-api-key": "pas-encore"})).status_code == 401  # copy loaded, empty
    page = f"/administration/partenaires/{partner_id}"
    made = await post_form(client, f"{page}/cles", {}, page)
    key = made.text.split('<code id="cle">', 1)[1].split("</code>", 1)[0]

    async def accepted() -> bool:
        return (await other.get(PING, headers={"x-api-key": key})).status_code == 200

    assert await until(accepted, 1.5) < 1.1


# The envelope of every error on a partner path ------------------------------------------------------------------


class Body(msgspec.Struct):
    places: int


@get("/v0/test-query", sync_to_thread=False)
def needs_a_number(limit: int) -> dict[str, int]:
    return {"limit": limit}


@get("/v0/test-path/{number:int}", sync_to_thread=False)
def needs_a_positive_number(number: Annotated[int, Parameter(ge=1)]) -> dict[str, int]:
    return {"number": number}


@post("/v2/test-body", sync_to_thread=False, request_max_body_size=1_000)
def needs_a_body(data: Body) -> dict[str, int]:
    return {"places": data.places}


@get("/v0/test-bug", sync_to_thread=False)
def has_a_bug() -> None:
    raise RuntimeError("a bug")


@get("/v0/test-database-down", sync_to_thread=False)
def database_down() -> None:
    raise ConnectionRefusedError("database refused the connection")


@get("/v0/test-redis-down", sync_to_thread=False)
def redis_down() -> None:
    raise RedisConnectionError("redis refused the connection")


@pytest.fixture
async def probed(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(settings)
    for handler in (needs_a_number, needs_a_positive_number, needs_a_body, has_a_bug, database_down, redis_down):
        app.register(handler)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


async def test_litestar_errors_on_partner_paths_take_the_envelope(probed: AsyncTestClient[Litestar]) -> None:
    assert_envelope(await probed.get("/v0/nothing-here"), 404, "NOT_FOUND")
    assert_envelope(await probed.get("/v2/nothing-here"), 404, "NOT_FOUND")
    assert_envelope(await probed.post(PING, json={}), 405, "METHOD_NOT_ALLOWED")
    body = assert_envelope(await probed.get("/v0/test-query?limit=beaucoup"), 400, "INVALID_QUERY")
    assert "limit" in body["message"]
    assert_envelope(await probed.get("/v0/test-query"), 400, "INVALID_QUERY")
    assert_envelope(await probed.get("/v0/test-path/0"), 400, "INVALID_PARAMS")
    assert_envelope(await probed.post("/v2/test-body", json={"places": "trois"}), 400, "INVALID_BODY")
    assert_envelope(await probed.post("/v2/test-body", content=b"{not json"), 400, "INVALID_BODY")
    assert_envelope(await probed.post("/v2/test-body", content=b"\x00" * 2_000), 413, "PAYLOAD_TOO_LARGE")
    assert_envelope(await probed.get("/v0/test-bug"), 500, "SERVER_ERROR")
    for path in ("/v0/test-database-down", "/v0/test-redis-down"):
        response = await probed.get(path)
        assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
        assert int(response.headers["retry-after"]) > 0
    # Elsewhere, the platform's own pages are unchanged.
    assert "ok" not in (await probed.get("/api/nothing-here", headers={"accept": "application/json"})).text


async def test_redis_down_on_a_key_authenticated_route_is_a_503_envelope(
    settings: Settings, db: asyncpg.Connection
) -> None:
    key = await create_key(db, await create_partner(db, "Sans Redis"))
    app = create_app(settings)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        web = app.state.web
        alive = web.redis
        web.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        try:
            response = await test_client.get(PING, headers={"x-api-key": key})
        finally:
            await web.redis.aclose()
            web.redis = alive
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["retry-after"]


async def test_the_minute_refresh_runs_in_the_background_and_a_version_change_is_waited_for(
    db: asyncpg.Connection, redis: Redis, settings: Settings
) -> None:
    now = [1000.0]
    engine = make_engine(settings.database_url, pool_size=1)
    directory = PartnerDirectory(engine, redis, clock=lambda: now[0])
    try:
        first = await create_key(db, await create_partner(db, "Première"))
        await redis.set(PartnerKeys.version, "41")
        assert await directory.find(digest_of(first)) is not None
        # A key a script wrote, with no version bump: the copy learns it with the minute's refresh.
        later = await create_key(db, await create_partner(db, "Scriptée"))
        now[0] += 61
        await directory.saw("41")  # returns at once: the refresh goes on in the background
        await directory.settled()
        assert await directory.find(digest_of(later)) is not None
        # A version change is waited for: the key revoked before it never passes after it.
        await db.execute("UPDATE partner_api_keys SET revoked_at = now()")
        await directory.saw("42")
        assert await directory.find(digest_of(first)) is None and await directory.find(digest_of(later)) is None
    finally:
        await directory.settled()
        await engine.dispose()
