"""The search cache: results in Redis (app/cache) under an explicit key made of the normalised query, tagged with a
version counter.

Any change to what is online (a mission's status, an organisation's status) increments the counter *after* its
transaction commits, so the next search of each query builds its results again (the searches that arrive while it
does get the previous results) and the older entries expire on their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.applications.capacity import Places
from app.cache import CacheKeys, Policy, SharedCache, shared
from app.db.after_commit import Clients, after_commit

VERSION_KEY = "renfort:missions:version"
ENTRY_PREFIX = "renfort:missions:search:"
TTL_SECONDS = 300  # places taken move without a version change: results are rebuilt at least this often
KEEP_SECONDS = 600
# Inline: the page's search builds on the request's (or the emergency page build's) database session.
POLICY = Policy(fresh_seconds=TTL_SECONDS, keep_seconds=KEEP_SECONDS, rebuild_in_background=False)
def mark_changed(session: AsyncSession, mission_ids: Iterable[int] = ()) -> None:
    """What is online changed: once the transaction commits, every cached search is stale. `mission_ids`: missions
    whose places or openness changed, so that the capacity Redis holds for them is read again
    (app/applications/capacity.py) — only theirs, not every mission's."""
    after_commit(session, _invalidate, key=VERSION_KEY)
    changed = set(mission_ids)
    if changed:
        after_commit(session, lambda clients: Places(clients.redis).changed(changed))


async def _invalidate(clients: Clients) -> None:
    await invalidate(clients.redis)  # after the commit, so no search can re-cache the old state


async def invalidate(redis: Redis) -> None:
    await redis.incr(VERSION_KEY)


def keys(normalised_query: str) -> CacheKeys:
    return CacheKeys.of(VERSION_KEY, ENTRY_PREFIX, normalised_query)


def results(redis: Redis) -> SharedCache:
    return shared(redis, POLICY)
