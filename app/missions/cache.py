"""The search cache: results in Redis under an explicit key made of the normalised query and a version counter.

Any change to what is online (a mission's status, an organisation's status) increments the counter *after* its
transaction commits, so every older entry stops being read at once and expires on its own.
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

VERSION_KEY = "renfort:missions:version"
ENTRY_PREFIX = "renfort:missions:search"
TTL_SECONDS = 300
CHANGED = "missions_changed"  # a flag in session.info, read by whoever owns the transaction


def mark_changed(session: AsyncSession) -> None:
    session.info[CHANGED] = True


def changed(session: AsyncSession) -> bool:
    return bool(session.info.get(CHANGED))


async def invalidate(redis: Redis) -> None:
    await redis.incr(VERSION_KEY)


async def entry_key(redis: Redis, normalised_query: str) -> str:
    version = int(await redis.get(VERSION_KEY) or 0)
    return f"{ENTRY_PREFIX}:v{version}:{normalised_query}"
