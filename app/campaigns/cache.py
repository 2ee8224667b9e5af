"""The campaigns as the public pages read them, from Redis (app/cache): the list of running and coming campaigns (the
home page, `/campagnes`) and each campaign by slug, tagged with the campaigns' version counter. A change bumps it
after its commit, and the missions' one too (a campaign's domains and tags decide which missions its page lists)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheKeys, Policy, shared
from app.db.after_commit import Clients, after_commit
from app.missions import cache as mission_cache

VERSION_KEY = "renfort:campaigns:version"
PREFIX = "renfort:campaigns:"
MISSING = b"-"
# Each entry says which dates it holds: readers filter by today, so a day's change needs no rebuild.
POLICY = Policy(fresh_seconds=300, keep_seconds=86_400, missing=MISSING)


def mark_changed(session: AsyncSession) -> None:
    after_commit(session, _invalidate, key=VERSION_KEY)
    mission_cache.mark_changed(session)


async def _invalidate(clients: Clients) -> None:
    await clients.redis.incr(VERSION_KEY)


async def directory(redis: Redis, build: Callable[[], Awaitable[bytes]]) -> bytes:
    return await shared(redis, POLICY).get(CacheKeys.of(VERSION_KEY, PREFIX, "current"), build)


async def by_slug(redis: Redis, slug: str, build: Callable[[], Awaitable[bytes]]) -> bytes:
    return await shared(redis, POLICY).get(CacheKeys.of(VERSION_KEY, PREFIX + "slug:", slug), build)
