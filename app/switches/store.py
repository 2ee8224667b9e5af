"""The switches in Redis: one hash of values and the journal of changes not yet copied into PostgreSQL.

A switch never set is off. Reads are cheap (one HGETALL); web processes read through the sampler (board.py) and
workers through `SwitchReader`, never once per request or per job.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.redis_scripts import script
from app.switches.schemas import Switch, SwitchChange

SCRIPTS = Path(__file__).parent
ON = b"1"


@dataclass(frozen=True, slots=True)
class SwitchKeys:
    prefix: str = "renfort:switches:"

    @property
    def values(self) -> str:  # hash: switch name → "1" (on) or "0" (off)
        return self.prefix + "values"

    @property
    def journal(self) -> str:  # list of changes (JSON) waiting to be copied into PostgreSQL
        return self.prefix + "journal"

    @property
    def held_jobs(self) -> str:  # list of RQ job ids held back while pause_jobs is on (jobs.py)
        return self.prefix + "held-jobs"


KEYS = SwitchKeys()


def decode(values: dict[Any, Any]) -> frozenset[Switch]:
    """The switches that are on; names this version does not know are ignored."""
    known = {switch.value.encode(): switch for switch in Switch}
    return frozenset(known[name] for name, value in values.items() if value == ON and name in known)


class SwitchStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._flip = script(redis, SCRIPTS, "flip")

    async def read(self) -> frozenset[Switch]:
        return decode(await self.redis.hgetall(KEYS.values))

    async def turn(self, switch: Switch, on: bool, *, actor: str, actor_user_id: int | None = None,
                   reason: str | None = None) -> SwitchChange | None:
        """The change, or None when the switch already had that value."""
        change = SwitchChange(id=secrets.token_hex(12), switch=switch, on=on, actor=actor, actor_user_id=actor_user_id,
                              reason=reason or None, at=datetime.now(UTC))
        changed = await self._flip(keys=[KEYS.values, KEYS.journal],
                                   args=[switch.value, "1" if on else "0", msgspec.json.encode(change)])
        return change if changed else None

    async def held_jobs(self) -> int:
        """Jobs the workers set aside while pause_jobs is on (jobs.py), waiting to be queued again."""
        return int(await self.redis.llen(KEYS.held_jobs))

    async def unjournaled(self, limit: int = 500) -> list[tuple[Any, SwitchChange]]:
        """Changes waiting for PostgreSQL, oldest first, with their raw entry (to remove them once copied)."""
        raw: list[Any] = await self.redis.lrange(KEYS.journal, 0, limit - 1)
        changes = []
        for entry in raw:
            try:
                changes.append((entry, msgspec.json.decode(entry, type=SwitchChange)))
            except msgspec.ValidationError:  # a switch a newer version knows (a rolling deploy): left for it to copy
                continue
        return changes

    async def forget_journaled(self, entries: Iterable[Any]) -> None:
        async with self.redis.pipeline(transaction=False) as pipeline:
            for entry in entries:
                pipeline.lrem(KEYS.journal, 1, entry)
            await pipeline.execute()


class SwitchReader:
    """For the workers (synchronous Redis): the switches at most `max_age` seconds old. A failed read keeps the
    last values; a process that never read them sees every switch off."""

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self.values: frozenset[Switch] = frozenset()
        self._read_at = float("-inf")

    def current(self, connection: SyncRedis) -> frozenset[Switch]:
        if time.monotonic() - self._read_at >= self.max_age:
            with contextlib.suppress(RedisError):  # the last values stand until Redis answers again
                self.values = decode(connection.hgetall(KEYS.values))
            self._read_at = time.monotonic()
        return self.values
