"""Per-partner rate limits are counted in Redis, so every web process shares them: past the limit a partner gets a
429 envelope with Retry-After, and every response of a key-authenticated route tells its quota."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from app.main import create_app
from app.partners.rate_limit import PartnerKeys, RateLimiter
from app.settings import Settings
from tests.partner_fixtures import create_key, create_partner

PING = "/v0/ping"


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


async def test_the_limit_is_shared_by_two_web_processes_and_then_429(
    client: AsyncTestClient[Litestar], other: AsyncTestClient[Litestar], db: asyncpg.Connection, redis: Redis
) -> None:
    partner_id = await create_partner(db, "Pressée", rate_limit_per_minute=5)
    key = await create_key(db, partner_id)
    remaining = []
    for instance in (client, other, client, other, client):
        response = await instance.get(PING, headers={"x-api-key": key})
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "5"
        assert 0 < int(response.headers["x-ratelimit-reset"]) <= 60
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    for instance in (other, client):
        refused = await instance.get(PING, headers={"x-api-key": key})
        assert refused.status_code == 429
        body = refused.json()
        assert body["ok"] is False and body["code"] == "TOO_MANY_REQUESTS" and "minute" in body["message"]
        assert refused.headers["x-ratelimit-limit"] == "5" and refused.headers["x-ratelimit-remaining"] == "0"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]

    # Another partner has its own quota.
    fresh = await create_key(db, await create_partner(db, "Patiente", rate_limit_per_minute=5))
    await redis.incr(PartnerKeys.version)  # as the admin page does after its commit
    assert (await other.get(PING, headers={"x-api-key": fresh})).status_code == 200

    # The window ends: the partner is served again.
    await redis.delete(PartnerKeys(partner_id).requests)
    assert (await client.get(PING, headers={"x-api-key": key})).status_code == 200


async def test_the_counter_expires_with_its_window(client: AsyncTestClient[Litestar], db: asyncpg.Connection,
                                                   redis: Redis) -> None:
    partner_id = await create_partner(db, "Fenêtre")
    key = await create_key(db, partner_id)
    assert (await client.get(PING, headers={"x-api-key": key})).headers["x-ratelimit-remaining"] == "1199"
    ttl = await redis.pttl(PartnerKeys(partner_id).requests)
    assert 55_000 < ttl <= 60_000


async def test_a_new_limit_applies_within_a_second(client: AsyncTestClient[Litestar], db: asyncpg.Connection,
                                                   redis: Redis) -> None:
    partner_id = await create_partner(db, "Réglable")
    key = await create_key(db, partner_id)
    assert (await client.get(PING, headers={"x-api-key": key})).headers["x-ratelimit-limit"] == "1200"
    await db.execute("UPDATE partners SET rate_limit_per_minute = 1 WHERE id = $1", partner_id)
    await redis.incr(PartnerKeys.version)  # as every admin change does after its commit
    await client.get(PING, headers={"x-api-key": key})
    response = await client.get(PING, headers={"x-api-key": key})
    assert response.status_code == 429 and response.headers["x-ratelimit-limit"] == "1"


async def test_requests_of_one_tick_share_a_round_trip_and_each_gets_its_own_count(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    await redis.delete(PartnerKeys(71).requests, PartnerKeys(72).requests)
    await redis.set(PartnerKeys.version, "7")
    before = int((await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0))
    hits = await asyncio.gather(*(limiter.hit(71, 5) for _ in range(7)), *(limiter.hit(72, 100) for _ in range(3)))
    after = int((await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0))
    assert after - before == 1
    assert {version for version, _ in hits} == {"7"}
    assert [quota.used for _, quota in hits] == [1, 2, 3, 4, 5, 6, 7, 1, 2, 3]
    assert [quota.exceeded for _, quota in hits[:7]] == [False] * 5 + [True] * 2
    assert all(0 < quota.reset_seconds <= 60 for _, quota in hits)
    # The next tick goes on from there.
    (_, quota), = await asyncio.gather(limiter.hit(71, 5))
    assert quota.used == 8 and int(await redis.get(PartnerKeys(71).requests) or 0) == 8


async def test_a_redis_failure_reaches_every_request_of_the_tick(redis: Redis) -> None:
    broken = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    limiter = RateLimiter(broken)
    outcomes = await asyncio.gather(*(limiter.hit(73, 5) for _ in range(3)), return_exceptions=True)
    assert len(outcomes) == 3 and all(isinstance(outcome, RedisConnectionError) for outcome in outcomes), outcomes
    await broken.aclose()
