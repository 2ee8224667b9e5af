"""One Redis cache for what many people read at once: the emergency pages, the mission search, the coordinators'
figures.

Each cached variant (`CacheKeys`) holds one value, tagged with its owner's version counter as it was when the
build started; the owner increments the counter after a change commits. A read (read.lua) is one round trip and
tells whether the value is fresh, stale (same version, older than `fresh_seconds`) or a previous copy (built before
the last change). The reads of one variant that reach a web process in the same event-loop tick share that round
trip, sent after the last of them arrived, so each still sees every change committed before it came.

- fresh: served.
- stale: served; one caller across all web processes (a lock in Redis) rebuilds it, in the background or, for a
  build that borrows its caller's database session, inline while the others keep the stale copy.
- previous copy: the lock holder rebuilds it inline (the first visit after a change sees the change), the others
  get the previous copy meanwhile; when the build fails (PostgreSQL unreachable) the previous copy is served.
- no copy: the lock holder builds it; the others wait for it a moment, then build it themselves. When the source is
  unreachable, `CacheUnavailable` (a French 503 with Retry-After, see app/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.db.errors import Failure, classify
from app.metrics.instruments import count_cache_reads
from app.redis_scripts import script

log = logging.getLogger("renfort.cache")

HERE = Path(__file__).parent
NO_COPY, FRESH, STALE, PREVIOUS = 0, 1, 2, 3  # read.lua's states
WAIT_STEP, WAIT_STEPS = 0.05, 40  # how long a caller without a copy waits for someone else's build: 2 s

Build = Callable[[], Awaitable[bytes]]


class CacheUnavailable(Exception):
    """No copy at all, and the build failed because its source is unreachable: a 503, not a 500."""


@dataclass(frozen=True, slots=True)
class CacheKeys:
    """The keys of one cached variant; `version` is the owner's counter, bumped after each change it commits."""

    version: str
    entry: str
    fresh: str
    lock: str

    @classmethod
    def of(cls, version: str, prefix: str, variant: str) -> CacheKeys:
        entry = prefix + variant
        return cls(version, entry, entry + ":fresh", entry + ":lock")


@dataclass(frozen=True, slots=True)
class Policy:
    fresh_seconds: int
    keep_seconds: int  # how long a value outlives its freshness, as the copy served while rebuilding or failing
    lock_seconds: int = 10
    rebuild_in_background: bool = True  # False when the build uses its caller's resources (its database session)
    # How long a "nothing here" answer is kept instead (an unknown name must not hold memory for a day).
    keep_missing_seconds: int = 60
    missing: bytes | None = None  # the value that means "nothing here", if the owner has one


@dataclass(frozen=True, slots=True)
class Found:
    state: int
    value: bytes | None
    version: str  # the owner's version when read: a build started now is tagged with it


@dataclass(slots=True)
class _Batch:
    keys: CacheKeys
    build: Build  # the first caller's: every caller of one variant builds the same value
    waiters: list[asyncio.Future[bytes]] = field(default_factory=list)  # one per caller: cancelling one spares the rest


_tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


class SharedCache:
    def __init__(self, redis: Redis, policy: Policy) -> None:
        self.redis = redis
        self.policy = policy
        self._read = script(redis, HERE, "read")
        self._store = script(redis, HERE, "store")
        self._release = script(redis, HERE, "release")
        self._batches: dict[str, _Batch] = {}

    def get(self, keys: CacheKeys, build: Build) -> asyncio.Future[bytes]:
        """The value: joins the read of this variant that goes out at the end of the current loop tick, or starts it.
        Raises what the build raised when there is no copy to serve (`CacheUnavailable` for an outage)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes] = loop.create_future()
        batch = self._batches.get(keys.entry)
        if batch is None:
            batch = self._batches[keys.entry] = _Batch(keys, build)
            loop.call_soon(self._send, keys.entry)
        batch.waiters.append(waiter)
        return waiter

    def _send(self, entry: str) -> None:
        _spawn(self._answer(self._batches.pop(entry)))

    async def _answer(self, batch: _Batch) -> None:
        try:
            value = await self._resolve(batch.keys, batch.build, len(batch.waiters))
        except Exception as error:  # each caller raises it (a Redis outage is every visit's error)
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
                waiter.set_result(value)

    async def read(self, keys: CacheKeys) -> Found:
        state, value, version = await self._read(keys=[keys.version, keys.entry, keys.fresh])
        return Found(int(state), _bytes(value) if value is not None else None, _text(version))

    async def _resolve(self, keys: CacheKeys, build: Build, visits: int = 1) -> bytes:
        found = await self.read(keys)
        # Per visit: a hit is a copy of the current version, fresh or stale.
        count_cache_reads(keys.entry, found.state in (FRESH, STALE) and found.value is not None, visits)
        if found.state == FRESH and found.value is not None:
            return found.value
        if found.state == STALE and found.value is not None:
            token = await self._try_lock(keys)
            if token is not None and self.policy.rebuild_in_background:
                _spawn(self._rebuild(keys, found.version, build, token))
            elif token is not None:
                return await self._build(keys, found, build, token)
            return found.value
        try:
            token = await self._lock(keys)
        except RedisError as error:
            if found.value is not None:
                return found.value
            # Redis refuses writes (full): nothing built could be stored, so every visit would query the source.
            raise CacheUnavailable from error
        if token is None:
            if found.value is not None:  # someone is rebuilding it: the previous copy meanwhile
                return found.value
            waited = await self._wait(keys)
            if waited is not None:
                return waited
        return await self._build(keys, found, build, token)

    async def _build(self, keys: CacheKeys, found: Found, build: Build, token: str | None) -> bytes:
        try:
            value = await build()
        except Exception as error:
            outage = classify(error) is Failure.UNAVAILABLE
            if found.value is not None:  # the previous copy beats an error page
                # The lock stays until it expires: meanwhile visits get the copy at once instead of each retrying.
                _log_failure(error, outage)
                return found.value
            if token is not None:  # with nothing to serve, the next caller may as well try at once
                await self._release(keys=[keys.lock], args=[token])
            if outage:
                raise CacheUnavailable from error
            raise
        try:
            await self._put(keys, found.version, value, token)
        except RedisError as error:  # Redis full: this visit still gets its page, the next one builds again
            log.warning("could not store a cache entry (%s)", type(error).__name__)
        return value

    async def _rebuild(self, keys: CacheKeys, version: str, build: Build, token: str) -> None:
        try:
            await self._put(keys, version, await build(), token)
        except Exception as error:  # the stale copy keeps being served; the first read after the lock expires retries
            _log_failure(error, classify(error) is Failure.UNAVAILABLE)

    async def _put(self, keys: CacheKeys, version: str, value: bytes, token: str | None) -> None:
        policy = self.policy
        await self._store(keys=[keys.entry, keys.fresh, keys.lock],
                          args=[version, value, policy.fresh_seconds + self._keep(value), policy.fresh_seconds,
                                token or ""])

    def _keep(self, value: bytes) -> int:
        policy = self.policy
        return policy.keep_missing_seconds if value == policy.missing else policy.keep_seconds

    async def _try_lock(self, keys: CacheKeys) -> str | None:
        """The build lock, or None when someone holds it — or when Redis refuses the write (at its memory limit):
        then whoever has a copy serves it rather than an error."""
        try:
            return await self._lock(keys)
        except RedisError as error:
            log.warning("could not take a cache build lock (%s)", type(error).__name__)
            return None

    async def _lock(self, keys: CacheKeys) -> str | None:
        token = secrets.token_hex(8)
        return token if await self.redis.set(keys.lock, token, nx=True, ex=self.policy.lock_seconds) else None

    async def _wait(self, keys: CacheKeys) -> bytes | None:
        for _ in range(WAIT_STEPS):
            await asyncio.sleep(WAIT_STEP)
            found = await self.read(keys)
            if found.value is not None:
                return found.value
        return None


_shared: WeakKeyDictionary[Redis, dict[Policy, SharedCache]] = WeakKeyDictionary()


def shared(redis: Redis, policy: Policy) -> SharedCache:
    """The process's cache for this client and policy, so that the callers of one variant share their reads."""
    caches = _shared.setdefault(redis, {})
    cache = caches.get(policy)
    if cache is None:
        cache = caches[policy] = SharedCache(redis, policy)
    return cache


def _log_failure(error: Exception, outage: bool) -> None:
    if outage:  # a warning: an outage is reported where it is noticed, not by every cache it empties
        log.warning("serving the previous copy of a cached value: its source is unreachable (%s)", type(error).__name__)
    else:
        log.exception("serving the previous copy of a cached value that could not be rebuilt")


def _spawn(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
