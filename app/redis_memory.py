"""Redis memory and persistence, read from `INFO` only (a managed Redis refuses `CONFIG`), and the guard the write
paths consult before queueing more into a Redis close to its memory limit.

What INFO does not show is reported unknown (None), never guessed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("renfort.redis")

# A read that takes longer than this is abandoned: the guard then keeps its last answer.
READ_TIMEOUT = 1.0
SAFE_POLICY = "noeviction"


@dataclass(frozen=True)
class RedisMemory:
    used_bytes: int
    max_bytes: int | None  # 0 = no limit; None = INFO does not say
    policy: str | None
    aof_enabled: bool | None
    appendfsync: str | None

    @property
    def fraction(self) -> float | None:
        """Used over maximum; None without a (known) limit."""
        if not self.max_bytes:
            return None
        return self.used_bytes / self.max_bytes


def _int(info: dict[str, Any], name: str) -> int | None:
    value = info.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(info: dict[str, Any], name: str) -> str | None:
    value = info.get(name)
    if value is None or value == "":
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_memory(redis: Redis) -> RedisMemory:
    memory = await redis.info("memory")
    persistence = await redis.info("persistence")
    aof = _int(persistence, "aof_enabled")
    return RedisMemory(
        used_bytes=_int(memory, "used_memory") or 0,
        max_bytes=_int(memory, "maxmemory"),
        policy=_text(memory, "maxmemory_policy"),
        aof_enabled=None if aof is None else aof == 1,
        # Most servers do not list it in INFO; some managed ones do.
        appendfsync=_text(persistence, "appendfsync") or _text(persistence, "aof_fsync"),
    )


def unsafe(memory: RedisMemory) -> list[str]:
    """What makes this Redis unsafe to hold the write queues, in English for ops logs."""
    problems = []
    if memory.aof_enabled is False:
        problems.append("AOF is off (appendonly no): queued sign-ups and applications are lost if Redis restarts")
    elif memory.aof_enabled is None:
        problems.append("INFO does not say whether AOF is on: check that appendonly is yes")
    if memory.appendfsync == "no":
        problems.append("appendfsync is no: a crash loses whatever the OS had not yet written; use everysec")
    if memory.policy is None:
        problems.append("INFO does not show maxmemory_policy: check that it is noeviction")
    elif memory.policy != SAFE_POLICY:
        problems.append(
            f"maxmemory-policy is {memory.policy}: a full Redis would evict keys, deleting queued sign-ups and "
            "applications; use noeviction"
        )
    if memory.max_bytes == 0:
        problems.append(
            "no maxmemory: Redis grows until the host runs out of memory instead of refusing writes, and the "
            "memory guard cannot see the limit coming"
        )
    elif memory.max_bytes is None:
        problems.append("INFO does not show maxmemory: the memory guard cannot see the limit coming")
    return problems


async def warn_if_unsafe(redis: Redis) -> None:
    """Logs a warning per unsafe setting; never raises, so a Redis that is down does not stop a web start-up."""
    try:
        memory = await asyncio.wait_for(read_memory(redis), READ_TIMEOUT * 2)
    except (RedisError, OSError, TimeoutError) as error:
        log.warning("could not read Redis INFO at start-up (%s): memory and persistence unchecked",
                    type(error).__name__)
        return
    for problem in unsafe(memory):
        log.warning("Redis is unsafe for the write queues: %s", problem)


class MemoryGuard:
    """Answers "is Redis past `threshold` of its memory limit?" for the write paths, cheaply.

    INFO is read at most once per `max_age` seconds per process; callers arriving while a read is under way wait
    for that one read instead of sending their own. A failed read keeps the last answer: the write that follows
    succeeds or fails on its own, so a Redis hiccup here never turns every request into an error."""

    def __init__(self, redis: Redis, *, threshold: float, max_age: float = 1.0) -> None:
        self.redis = redis
        self.threshold = threshold
        self.max_age = max_age
        self.last: RedisMemory | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Task[None] | None = None

    async def over_limit(self) -> bool:
        memory = await self.current()
        fraction = memory.fraction if memory is not None else None
        return fraction is not None and fraction >= self.threshold

    async def current(self) -> RedisMemory | None:
        if time.monotonic() - self._read_at >= self.max_age:
            if self._reading is None or self._reading.get_loop() is not asyncio.get_running_loop():
                self._reading = asyncio.ensure_future(self._refresh())
            # Shielded: a caller cancelled while waiting must not cancel the read the others share.
            await asyncio.shield(self._reading)
        return self.last

    async def _refresh(self) -> None:
        try:
            self.last = await asyncio.wait_for(read_memory(self.redis), READ_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("could not read Redis memory (%s); keeping the last answer", type(error).__name__)
        finally:
            self._read_at = time.monotonic()
            self._reading = None
