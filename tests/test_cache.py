"""The shared Redis cache (app/cache): one read per variant per event-loop tick, stale copies served while one caller
across processes rebuilds, the previous copy after a change or while the source is unreachable, and a 503 only when
there is no copy at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from app.cache import CacheKeys, CacheUnavailable, Policy, SharedCache
from ops.processes import free_port
from ops.valkey import LocalRedis

VERSION = "renfort:test:version"
KEYS = CacheKeys.of(VERSION, "renfort:test:", "variant")
POLICY = Policy(fresh_seconds=5, keep_seconds=60)


class Builds:
    """A build that counts its runs and returns the value it is told to."""

    def __init__(self, value: bytes, delay: float = 0.0, error: Exception | None = None) -> None:
        self.value, self.delay, self.error, self.runs = value, delay, error, 0

    async def __call__(self) -> bytes:
        self.runs += 1
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return self.value


def count_reads(cache: SharedCache) -> list[int]:
    """Counts the read script's round trips (the real script still runs, on the real Redis)."""
    calls = [0]
    real = cache._read

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await real(*args, **kwargs)

    cache._read = counted  # type: ignore[assignment]
    return calls


async def test_visits_of_one_variant_in_one_tick_share_one_redis_read(redis: Redis) -> None:
    cache = SharedCache(redis, POLICY)
    first = Builds(b"<h1>page</h1>")
    assert await cache.get(KEYS, first) == b"<h1>page</h1>"
    reads = count_reads(cache)
    values = await asyncio.gather(*[cache.get(KEYS, Builds(b"other")) for _ in range(200)])
    assert set(values) == {b"<h1>page</h1>"} and reads == [1] and first.runs == 1


async def test_a_stale_value_is_served_while_one_process_rebuilds_it_in_the_background(redis: Redis) -> None:
    one, other = SharedCache(redis, POLICY), SharedCache(redis, POLICY)  # two web processes
    await one.get(KEYS, Builds(b"v1"))
    await redis.delete(KEYS.fresh)  # as FRESH_SECONDS later
    slow = Builds(b"v2", delay=0.3)
    assert await asyncio.gather(one.get(KEYS, slow), other.get(KEYS, slow)) == [b"v1", b"v1"]  # nobody waits
    await asyncio.sleep(0.5)
    assert slow.runs == 1 and await other.get(KEYS, Builds(b"v3")) == b"v2"


async def test_after_a_change_the_first_visit_sees_it_and_the_others_keep_the_previous_copy(redis: Redis) -> None:
    one, other = SharedCache(redis, POLICY), SharedCache(redis, POLICY)
    await one.get(KEYS, Builds(b"before"))
    await redis.incr(VERSION)
    rebuilding = asyncio.ensure_future(one.get(KEYS, Builds(b"after", delay=0.3)))
    await asyncio.sleep(0.1)
    assert await other.get(KEYS, Builds(b"never")) == b"before"
    assert await rebuilding == b"after"
    assert await other.get(KEYS, Builds(b"never")) == b"after"


async def test_a_build_started_before_a_change_never_overwrites_the_newer_value(redis: Redis) -> None:
    cache = SharedCache(redis, POLICY)
    await redis.set(VERSION, 2)
    await cache.get(KEYS, Builds(b"at version 2"))
    await cache._put(KEYS, "1", b"at version 1, finished late", None)
    assert await cache.get(KEYS, Builds(b"never")) == b"at version 2"


async def test_without_any_copy_an_outage_is_unavailable_and_a_bug_is_raised_as_it_is(redis: Redis) -> None:
    cache = SharedCache(redis, POLICY)
    with pytest.raises(CacheUnavailable):
        await cache.get(KEYS, Builds(b"", error=ConnectionRefusedError("connection refused")))
    with pytest.raises(ZeroDivisionError):
        await cache.get(KEYS, Builds(b"", error=ZeroDivisionError()))
    assert await redis.get(KEYS.lock) is None  # nothing to serve: the next visit may try at once
    assert await cache.get(KEYS, Builds(b"back")) == b"back"


async def test_while_the_source_is_down_visits_get_the_previous_copy_without_retrying_each_time(redis: Redis) -> None:
    cache = SharedCache(redis, POLICY)
    await cache.get(KEYS, Builds(b"last good"))
    await redis.incr(VERSION)
    down = Builds(b"", error=ConnectionRefusedError("connection refused"))
    for _ in range(5):
        assert await cache.get(KEYS, down) == b"last good"
    assert down.runs == 1  # the lock stays until it expires: one attempt per LOCK_SECONDS, not one per visit
    await redis.delete(KEYS.lock)  # as LOCK_SECONDS later
    assert await cache.get(KEYS, Builds(b"rebuilt")) == b"rebuilt"


async def test_a_nothing_here_answer_is_kept_a_minute_not_a_day(redis: Redis) -> None:
    cache = SharedCache(redis, Policy(fresh_seconds=5, keep_seconds=86_400, missing=b"none"))
    assert await cache.get(KEYS, Builds(b"none")) == b"none"
    assert 0 < await redis.ttl(KEYS.entry) <= 5 + 60
    other = CacheKeys.of(VERSION, "renfort:test:", "found")
    await cache.get(other, Builds(b"page"))
    assert await redis.ttl(other.entry) > 3_600


async def test_a_redis_at_its_memory_limit_still_serves_the_stale_copy(tmp_path: Any) -> None:
    """Taking the build lock is a write Redis refuses when full: visits get the copy, not an error."""
    server = LocalRedis(tmp_path / "valkey", port=free_port())
    server.start()
    small = Redis.from_url(server.url())
    try:
        cache = SharedCache(small, POLICY)
        await cache.get(KEYS, Builds(b"v1"))
        await small.delete(KEYS.fresh)  # stale now
        used = int((await small.info("memory"))["used_memory"])
        await small.config_set("maxmemory", str(used))
        await small.config_set("maxmemory-policy", "noeviction")
        with pytest.raises(Exception, match="maxmemory"):
            await small.set("filler", b"x" * 100_000)
        assert await cache.get(KEYS, Builds(b"v2")) == b"v1"
    finally:
        await small.aclose()
        server.stop()
