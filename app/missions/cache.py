"""The search cache: results in Redis under an explicit key made of the normalised query and a version counter.

Any change to what is online (a mission's status, an organisation's status) increments the counter *after* its
transaction commits, so every older entry stops being read at once and expires on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from sqlalchemy.ext.asyncio import AsyncSession

VERSION_KEY = "renfort:missions:version"
ENTRY_PREFIX = "renfort:missions:search"
TTL_SECONDS = 300
CHANGED = "missions_changed"  # a flag in session.info, read by whoever owns the transaction
CAPACITY_CHANGED = "missions_capacity_changed"  # the ids of the missions whose places or openness changed

# The version and the entry it selects, read in one round trip: on the search's hot path they are two reads that
# depend on each other. The entry's key is built inside the script, so it cannot be declared: fine on one Redis
# (and its replicas); on Redis Cluster the entries would need the version key's hash slot.
LOOKUP = """
local key = ARGV[1] .. ':v' .. (redis.call('GET', KEYS[1]) or '0') .. ':' .. ARGV[2]
return {key, redis.call('GET', key)}
"""
LOOKUP_SHA = hashlib.sha1(LOOKUP.encode(), usedforsecurity=False).hexdigest()  # EVALSHA names scripts by it


def mark_changed(session: AsyncSession, mission_ids: Iterable[int] = ()) -> None:
    """What is online changed. `mission_ids`: missions whose places or openness changed, so that the capacity Redis
    holds for them is read again (app/applications/capacity.py) — only theirs, not every mission's."""
    session.info[CHANGED] = True
    session.info.setdefault(CAPACITY_CHANGED, set()).update(mission_ids)


def changed_capacity(session: AsyncSession) -> set[int]:
    return set(session.info.get(CAPACITY_CHANGED, ()))


def changed(session: AsyncSession) -> bool:
    return bool(session.info.get(CHANGED))


async def invalidate(redis: Redis) -> None:
    await redis.incr(VERSION_KEY)


async def lookup(redis: Redis, normalised_query: str) -> tuple[str, bytes | None]:
    """The entry's key at the current version, and the cached entry (None when this query is not cached)."""
    try:
        reply = await redis.evalsha(LOOKUP_SHA, 1, VERSION_KEY, ENTRY_PREFIX, normalised_query)
    except NoScriptError:  # first call on this Redis, or after a restart or SCRIPT FLUSH
        reply = await redis.eval(LOOKUP, 1, VERSION_KEY, ENTRY_PREFIX, normalised_query)
    key, value = reply
    return (key.decode() if isinstance(key, bytes) else str(key)), (
        value.encode() if isinstance(value, str) else value
    )
