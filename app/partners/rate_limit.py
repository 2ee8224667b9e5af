"""Per-partner rate limits shared by every web process: a fixed one-minute window counted in Redis by one script,
which also returns the partners' version. The requests of one event-loop tick are counted together: one round trip
for all of them, each told the count it made (the counter's value minus the requests counted after it)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from redis.asyncio import Redis

WINDOW_SECONDS = 60
SCRIPT = (Path(__file__).parent / "rate_limit.lua").read_text()


@dataclass(frozen=True, slots=True)
class PartnerKeys:
    """The partners' Redis keys. One hash tag for all of them: the script touches the version and a counter together,
    so they must share a slot on a Redis Cluster."""

    partner_id: int
    version: ClassVar[str] = "{renfort:partners}:version"

    @property
    def requests(self) -> str:
        return f"{{renfort:partners}}:requests:{self.partner_id}"


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    used: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
                "X-RateLimit-Reset": str(self.reset_seconds)}


@dataclass(slots=True)
class _Tick:
    """The requests counted in one event-loop tick, by partner, each waiting for its (version, count, ttl)."""

    loop: asyncio.AbstractEventLoop
    waiting: dict[int, list[asyncio.Future[tuple[str, int, int]]]] = field(default_factory=dict)


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(SCRIPT)
        self._tick: _Tick | None = None
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def hit(self, partner_id: int, limit: int) -> tuple[str, Quota]:
        """Counts one request; returns the partners' version as Redis holds it, and the partner's quota."""
        loop = asyncio.get_running_loop()
        if self._tick is None or self._tick.loop is not loop:
            self._tick = _Tick(loop)
            loop.call_soon(self._flush)
        future: asyncio.Future[tuple[str, int, int]] = loop.create_future()
        self._tick.waiting.setdefault(partner_id, []).append(future)
        version, used, ttl_ms = await future
        return version, Quota(limit=limit, used=used, reset_seconds=max(math.ceil(ttl_ms / 1000), 1))

    def _flush(self) -> None:
        tick = self._tick
        if tick is not None and tick.loop is asyncio.get_running_loop():
            self._tick = None
            task = asyncio.ensure_future(self._count(tick))  # errors are handed to each waiting request
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _count(self, tick: _Tick) -> None:
        partners = list(tick.waiting)
        try:
            reply = await self._script(keys=[PartnerKeys.version, *(PartnerKeys(key).requests for key in partners)],
                                       args=[WINDOW_SECONDS * 1000, *(len(tick.waiting[key]) for key in partners)])
        except BaseException as error:
            for futures in tick.waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(error)
            return
        version = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        for index, key in enumerate(partners):
            futures = tick.waiting[key]
            last, ttl_ms = int(reply[1 + 2 * index]), int(reply[2 + 2 * index])
            for rank, future in enumerate(futures):
                if not future.done():  # a request cancelled meanwhile: still counted, as it was sent
                    future.set_result((version, last - len(futures) + 1 + rank, ttl_ms))
