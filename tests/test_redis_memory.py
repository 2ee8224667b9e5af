"""Redis memory and persistence, read from INFO, against a throwaway Valkey each test starts on its own port and
data folder: the guard the write paths consult, the start-up warnings, and what /ready and /metrics show."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as sync_redis
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.redis_memory import MemoryGuard, RedisMemory, read_memory, unsafe, warn_if_unsafe
from app.settings import SettingsError, load_settings
from app.state import build_state
from ops.services import LocalRedis, free_port, scratch_folder
from tests.conftest import TEST_ENV
from tests.factories import signup

MB = 1024 * 1024


@pytest.fixture
def valkey() -> Iterator[LocalRedis]:
    folder = scratch_folder()
    server = LocalRedis(folder / "valkey", free_port())
    server.start()
    yield server
    server.kill()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def admin(valkey: LocalRedis) -> Iterator[sync_redis.Redis]:
    """The test's own hand on the server's configuration (the application never calls CONFIG)."""
    client = sync_redis.Redis.from_url(valkey.url())
    yield client
    client.close()


@pytest.fixture
async def valkey_client(valkey: LocalRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(valkey.url(), socket_timeout=2, socket_connect_timeout=1)
    yield client
    await client.aclose()


def fill(admin: sync_redis.Redis, fraction: float) -> float:
    """Writes 8 KiB values until used memory stays at `fraction` of maxmemory; returns the fraction reached.

    Small writes, and the figure read again once the server has trimmed its client buffers: a query buffer still
    holding a large pipeline counts in used_memory for a moment, then is freed, and the fraction falls back."""
    limit = int(admin.info("memory")["maxmemory"])
    number = 0
    for _ in range(200):
        while int(admin.info("memory")["used_memory"]) / limit < fraction:
            with admin.pipeline(transaction=False) as pipe:
                for _ in range(4):
                    pipe.set(f"fill:{number}", b"x" * 8_192)
                    number += 1
                pipe.execute()
        time.sleep(0.05)
        settled = int(admin.info("memory")["used_memory"])
        if settled / limit >= fraction:
            return settled / limit
    raise AssertionError(f"used memory would not stay at {fraction:.0%} of maxmemory")


def info_calls(admin: sync_redis.Redis) -> int:
    return int(admin.info("commandstats").get("cmdstat_info", {}).get("calls", 0))


async def test_read_memory_reports_limit_policy_and_persistence_from_info(
    admin: sync_redis.Redis, valkey_client: Redis
) -> None:
    admin.config_set("maxmemory", 64 * MB)
    memory = await read_memory(valkey_client)
    assert memory.max_bytes == 64 * MB
    assert 0 < memory.used_bytes < 64 * MB
    assert memory.fraction == pytest.approx(memory.used_bytes / (64 * MB))
    assert memory.policy == "noeviction"
    assert memory.aof_enabled is True
    assert memory.appendfsync in (None, "everysec")  # shown only where INFO lists it
    assert unsafe(memory) == []


async def test_memory_guard_turns_on_when_redis_fills_past_the_threshold(
    admin: sync_redis.Redis, valkey_client: Redis
) -> None:
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used * 2 + 4 * MB)
    guard = MemoryGuard(valkey_client, threshold=0.8, max_age=0.2)
    assert not await guard.over_limit()
    reached = fill(admin, 0.85)
    assert 0.85 <= reached < 1
    await asyncio.sleep(0.25)
    assert await guard.over_limit()
    admin.flushdb()
    await asyncio.sleep(0.25)
    assert not await guard.over_limit()


async def test_memory_guard_reads_info_at_most_once_per_second_for_all_callers(
    admin: sync_redis.Redis, valkey_client: Redis
) -> None:
    admin.config_set("maxmemory", 64 * MB)
    guard = MemoryGuard(valkey_client, threshold=0.8)
    admin.config_resetstat()
    answers = await asyncio.gather(*[guard.over_limit() for _ in range(50)])
    assert answers == [False] * 50
    first = info_calls(admin)
    assert first == 2  # one read (INFO memory + INFO persistence) shared by the 50 callers
    await asyncio.gather(*[guard.over_limit() for _ in range(50)])
    assert info_calls(admin) == first + 1  # only the test's own INFO commandstats: the answer was fresh
    await asyncio.sleep(1.05)
    await asyncio.gather(*[guard.over_limit() for _ in range(50)])
    assert info_calls(admin) == first + 2 + 2  # the test's two INFO commandstats, and one more read


async def test_memory_guard_keeps_its_last_answer_when_redis_fails(
    valkey: LocalRedis, admin: sync_redis.Redis, valkey_client: Redis
) -> None:
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used * 2 + 4 * MB)
    fill(admin, 0.85)
    guard = MemoryGuard(valkey_client, threshold=0.8, max_age=0.1)
    assert await guard.over_limit()
    valkey.kill()
    await asyncio.sleep(0.15)
    started = time.monotonic()
    assert await guard.over_limit()  # no error, and the same answer
    assert time.monotonic() - started < 1.5

    never_read = MemoryGuard(valkey_client, threshold=0.8)
    assert not await never_read.over_limit()  # nothing known: the write itself will tell


def test_unsafe_names_each_setting_that_would_lose_queued_writes() -> None:
    safe = RedisMemory(used_bytes=10, max_bytes=100, policy="noeviction", aof_enabled=True, appendfsync="everysec")
    assert unsafe(safe) == []
    problems = unsafe(RedisMemory(used_bytes=10, max_bytes=0, policy="allkeys-lru", aof_enabled=False,
                                  appendfsync="no"))
    assert len(problems) == 4
    assert any("appendonly no" in problem for problem in problems)
    assert any("allkeys-lru" in problem and "noeviction" in problem for problem in problems)
    assert any("appendfsync is no" in problem for problem in problems)
    assert any("no maxmemory" in problem for problem in problems)
    unknown = unsafe(RedisMemory(used_bytes=10, max_bytes=None, policy=None, aof_enabled=None, appendfsync=None))
    assert len(unknown) == 3 and all("INFO does not" in problem for problem in unknown)


async def test_web_start_up_warns_about_a_redis_without_aof_that_evicts(
    valkey: LocalRedis, admin: sync_redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    admin.config_set("appendonly", "no")
    admin.config_set("maxmemory-policy", "allkeys-lru")
    admin.config_set("maxmemory", 0)
    settings = load_settings({**os.environ, "REDIS_URL": valkey.url()})
    with caplog.at_level(logging.WARNING, logger="renfort.redis"):
        state = await build_state(settings)
        await state.close()
    warnings = [record.getMessage() for record in caplog.records if record.name == "renfort.redis"]
    assert any("appendonly no" in warning for warning in warnings), warnings
    assert any("maxmemory-policy is allkeys-lru" in warning for warning in warnings), warnings
    assert any("no maxmemory" in warning for warning in warnings), warnings


async def test_web_start_up_says_nothing_of_a_safe_redis_and_survives_an_unreachable_one(
    valkey: LocalRedis, admin: sync_redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    admin.config_set("maxmemory", 256 * MB)
    settings = load_settings({**os.environ, "REDIS_URL": valkey.url()})
    with caplog.at_level(logging.WARNING, logger="renfort.redis"):
        state = await build_state(settings)
        await state.close()
    assert [record for record in caplog.records if record.name == "renfort.redis"] == []

    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    with caplog.at_level(logging.WARNING, logger="renfort.redis"):
        await warn_if_unsafe(unreachable)  # does not raise
    await unreachable.aclose()
    assert any("could not read Redis INFO" in record.getMessage() for record in caplog.records)


def metric(text: str, name: str) -> float:
    values = [line.split()[-1] for line in text.splitlines() if line.split(" ")[0].split("{")[0] == name]
    assert len(values) == 1, f"{name} should appear once in:\n{text}"
    return float(values[0])


async def test_ready_and_metrics_show_redis_memory_and_saturation_past_the_threshold(
    valkey: LocalRedis, admin: sync_redis.Redis
) -> None:
    settings = load_settings({**os.environ, "REDIS_URL": valkey.url()})
    async with AsyncTestClient(app=create_app(settings)) as client:
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", used * 2 + 4 * MB)
        ready = await client.get("/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["redis_memory"] == "ok"
        assert body["memory"]["max_bytes"] == used * 2 + 4 * MB
        assert 0 < body["memory"]["fraction"] < 0.8
        assert body["memory"]["policy"] == "noeviction"
        assert body["persistence"]["aof_enabled"] is True
        assert "applications_pending" in body["queue"] and "signups_pending" in body["queue"]

        reached = fill(admin, 0.85)
        ready = await client.get("/ready")
        assert ready.status_code == 200  # near the limit is for ops to act on, not an outage
        body = ready.json()
        assert body["status"] == "ok" and body["redis_memory"] == "saturée"
        assert body["memory"]["fraction"] == pytest.approx(reached, abs=0.02)

        metrics = (await client.get("/metrics", headers={"Authorization": "Bearer ops-test-token"})).text
        assert metric(metrics, "renfort_redis_memory_fraction") == pytest.approx(reached, abs=0.02)
        assert metric(metrics, "renfort_redis_memory_saturated") == 1
        assert metric(metrics, "renfort_redis_memory_max_bytes") == used * 2 + 4 * MB
        assert metric(metrics, "renfort_redis_aof_enabled") == 1
        assert 'renfort_redis_settings{maxmemory_policy="noeviction",' in metrics
        types = dict(line.split(" ")[2:4] for line in metrics.splitlines() if line.startswith("# TYPE "))
        names = {line.split(" ")[0].split("{")[0] for line in metrics.splitlines() if not line.startswith("#")}
        # A histogram's samples are its _bucket, _sum and _count; a counter's the family's name (…_total).
        family = {name: base if types.get(base := name.rpartition("_")[0]) == "histogram" else name for name in names}
        assert set(family.values()) == set(types) and all(name.startswith("renfort_") for name in names)

        # And the write paths turn new work away rather than fill Redis.
        turned_away = await client.post("/api/v1/volunteers", json=signup(email="tard@example.org"))
        assert turned_away.status_code == 503 and turned_away.headers["retry-after"]


@pytest.mark.parametrize("raw", ["0", "1.5", "-0.2", "quatre-vingts", "nan"])
def test_a_memory_limit_fraction_outside_0_to_1_is_refused_at_start_up(raw: str) -> None:
    with pytest.raises(SettingsError, match="REDIS_MEMORY_LIMIT_FRACTION doit être une fraction entre 0"):
        load_settings({**TEST_ENV, "REDIS_MEMORY_LIMIT_FRACTION": raw})
    assert load_settings({**TEST_ENV, "REDIS_MEMORY_LIMIT_FRACTION": "0.9"}).redis_memory_limit_fraction == 0.9
    assert load_settings(TEST_ENV).redis_memory_limit_fraction == 0.8
