"""The public emergency page `/urgence/{slug}` (and the home page's banner), served from a Redis page cache.

A surge sends thousands of visitors a second to one page. A visit costs at most one Redis call (a Lua script reads
the current cache version and the page in one round trip) and no SQL; visits of the same variant that reach a web
process in the same event-loop tick share that call, which is sent after the last of them arrived, so each still
sees every change committed before it came. The HTML is built at most once per FRESH_SECONDS per variant (with or
without a postal code) by whichever read finds it stale, while the others keep serving the previous copy; a change
to the emergency or its missions bumps the missions' cache version, which is part of the key, so the next visit
after the commit builds the new page. Counters are computed by that build.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.missions.cache import VERSION_KEY
from app.missions.models import Mission
from app.missions.service import ONLINE_STATUSES, taken
from app.volunteers.models import Volunteer

log = logging.getLogger("renfort.emergency_page")

PREFIX = "renfort:pages:"
FRESH_SECONDS = 5
KEEP_SECONDS = 3600
LOCK_SECONDS = 10
FOUND, MISSING = b"2", b"4"  # the first byte of a cached entry: a page, or "no such public emergency"

LATEST_SECONDS = 86_400

# → {entry or false, fresh (0/1), key, the last entry built at any version (only when the current one is missing)}
READ = """
local key = ARGV[1] .. (redis.call('GET', KEYS[1]) or '0') .. ':' .. ARGV[2]
local entry = redis.call('GET', key)
local latest = false
if not entry then latest = redis.call('GET', ARGV[1] .. 'latest:' .. ARGV[2]) end
return {entry, redis.call('EXISTS', key .. ':fresh'), key, latest}
"""


class PageUnavailable(Exception):
    """No copy of the page at all, and it cannot be built now (PostgreSQL unreachable): a 503, not a 500."""


@dataclass(frozen=True, slots=True)
class Counters:
    volunteers: int  # signed up from this emergency's page (saved in PostgreSQL)
    missions: int  # online missions attached to it
    places_open: int
    places_filled: int


async def counters(session: AsyncSession, slug: str) -> Counters:
    volunteers = await session.scalar(select(func.count()).where(Volunteer.emergency_slug == slug))
    missions = dict((await session.execute(
        select(Mission.id, Mission.places).where(Mission.emergency_slug == slug, Mission.status.in_(ONLINE_STATUSES))
    )).all())
    held = await taken(session, list(missions))  # the places held on these missions only
    filled = sum(min(held.get(mission_id, 0), places) for mission_id, places in missions.items())
    return Counters(volunteers=int(volunteers or 0), missions=len(missions),
                    places_open=sum(missions.values()) - filled, places_filled=filled)


Build = Callable[[], Awaitable[bytes | None]]  # the page's HTML, or None when there is no such public page


@dataclass(frozen=True, slots=True)
class Lookup:
    key: str  # the entry's key at the current cache version
    cached: bool  # an entry exists: a page, or MISSING
    page: bytes | None  # the page, when the entry is one
    latest: bytes | str | None  # when there is no entry: the last one built before the cache version moved


@dataclass(slots=True)
class _Batch:
    build: Build  # the first visit's, to rebuild a stale page
    waiters: list[asyncio.Future[Lookup]] = field(default_factory=list)  # one per visit: cancelling one spares the rest


class PageCache:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._read = redis.register_script(READ)
        self._batches: dict[tuple[str, str], _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def get(self, name: str, variant: str, build: Build) -> bytes | None:
        found = await self._lookup(name, variant, build)
        if found.cached:
            return found.page
        if not await self._lock(found.key):  # someone is building it: the previous copy meanwhile, if any
            if found.latest is not None:
                return _page(found.latest)
            for _ in range(40):
                await asyncio.sleep(0.05)
                entry = await self.redis.get(found.key)
                if entry:
                    return _page(entry)
        try:
            return _page(await self._store(found.key, await build()))
        except Exception as error:  # PostgreSQL down, say: the previous copy beats an error page
            await self.redis.delete(found.key + ":lock")
            if found.latest is not None:
                log.warning("serving the previous copy of a page that could not be rebuilt (%s)", type(error).__name__)
                return _page(found.latest)
            raise PageUnavailable from error

    def _lookup(self, name: str, variant: str, build: Build) -> asyncio.Future[Lookup]:
        """Joins the read of this variant that goes out at the end of the current loop tick, or starts it."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Lookup] = loop.create_future()
        batch = self._batches.get((name, variant))
        if batch is None:
            batch = self._batches[(name, variant)] = _Batch(build)
            loop.call_soon(self._send, name, variant)
        batch.waiters.append(waiter)
        return waiter

    def _send(self, name: str, variant: str) -> None:
        self._spawn(self._answer(name, variant, self._batches.pop((name, variant))))

    async def _answer(self, name: str, variant: str, batch: _Batch) -> None:
        try:
            entry, fresh, key, latest = await self._read(keys=[VERSION_KEY], args=[PREFIX + name + ":", variant])
            key = key.decode() if isinstance(key, bytes) else str(key)
            found = Lookup(key, bool(entry), _page(entry) if entry else None, latest or None)
            if entry and not fresh and await self._lock(key):  # stale: rebuilt in the background, served meanwhile
                self._spawn(self._rebuild(key, batch.build))
        except Exception as error:  # each visit raises it (a Redis outage is every visit's 500)
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            return
        except BaseException:  # the loop is shutting down
            for waiter in batch.waiters:
                waiter.cancel()
            raise
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(found)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lock(self, key: str) -> bool:
        return bool(await self.redis.set(key + ":lock", b"1", nx=True, ex=LOCK_SECONDS))

    async def _rebuild(self, key: str, build: Build) -> None:
        try:
            await self._store(key, await build())
        except Exception:  # the stale copy keeps being served; the next visit after the lock expires retries
            log.exception("could not rebuild a cached page")

    async def _store(self, key: str, html: bytes | None) -> bytes:
        entry = MISSING if html is None else FOUND + html
        prefix, _, variant = key.rpartition(":")  # PREFIX + name + ":" + version + ":" + variant
        latest = prefix.rpartition(":")[0] + ":latest:" + variant
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, entry, ex=KEEP_SECONDS)
            pipe.set(latest, entry, ex=LATEST_SECONDS)
            pipe.set(key + ":fresh", b"1", ex=FRESH_SECONDS)
            pipe.delete(key + ":lock")
            await pipe.execute()
        return entry


def _page(entry: bytes | str) -> bytes | None:
    raw = entry if isinstance(entry, bytes) else entry.encode()
    return raw[1:] if raw[:1] == FOUND else None
